/**
 * `Context`: a llama.cpp context (KV cache and compute buffers) for a model.
 * Several sequences (sessions) can share one context; each token of a batch
 * names its sequence.
 *
 * @example
 * ```ts ignore
 * import { Model } from "./model.ts";
 * import { Context } from "./context.ts";
 * import { Sampler } from "./sampler.ts";
 * using model = await Model.load(".cache/models/tiny.gguf");
 * const ctx = await Context.create(model, { nCtx: 512 });
 * const sampler = Sampler.create(model, { temp: 0 });
 * const prompt = model.tokenize("Hello");
 * await ctx.decodePrompt(prompt);
 * const { token } = await ctx.step(sampler, { pos: prompt.length });
 * console.log(model.tokenToPiece(token));
 * ```
 * @module
 */

import { symbols } from "./_library.ts";
import { check, cstr, errorBuffer } from "./_buffers.ts";
import { type ContextOptions, contextParams } from "./_context_params.ts";
import { LlamaError, Status } from "./errors.ts";
import { Lifetime } from "./_lifetime.ts";
import type { Model } from "./model.ts";
import type { Sampler } from "./sampler.ts";

/** Options of `Context.create` (defined with their struct form). */
export type { ContextOptions };

/** A batch for `decode`: parallel arrays, one entry per token. */
export interface Batch {
  /** Token ids. */
  tokens: Int32Array<ArrayBuffer>;
  /** Positions. */
  pos: Int32Array<ArrayBuffer>;
  /** Sequence ids. */
  seqIds: Int32Array<ArrayBuffer>;
  /** 1 = keep logits for this token (its batch index is its array index). Default: last only. */
  logits?: Uint8Array<ArrayBuffer>;
}

/** Result of one generation step. */
export interface StepResult {
  /** The sampled token (also when decoding it failed). */
  token: number;
  /** Set when decoding the token failed (e.g. NoKvSpace = context full). */
  error?: LlamaError;
}

/** llama.cpp perf counters of a context. */
export interface Perf {
  /** Model load time. */
  tLoadMs: number;
  /** Prompt processing time. */
  tPromptMs: number;
  /** Generation time. */
  tEvalMs: number;
  /** Prompt tokens processed. */
  nPrompt: number;
  /** Tokens generated. */
  nEval: number;
  /** Tokens reused from cache. */
  nReused: number;
}

/** A context. Create with `Context.create`; owned by its model. */
export class Context {
  #ptr: Deno.PointerValue;
  #model: Model;
  /** Freed once closed and no non-blocking call is in flight. */
  #life = new Lifetime(() => this.#free());
  #err = errorBuffer();
  #tok = new Int32Array(1);

  private constructor(ptr: Deno.PointerValue, model: Model) {
    this.#ptr = ptr;
    this.#model = model;
    model.adopt(this);
  }

  /** Creates a context without blocking the event loop. */
  static async create(
    model: Model,
    options: ContextOptions = {},
  ): Promise<Context> {
    const s = symbols();
    const p = contextParams(options);
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    // Adopted by the model before the model's pin ends, so that a close() of
    // the model meanwhile waits for this context too.
    const ctx = await model.use(async (m) => {
      const status = await s.wnb_context_new(m, p, out, err);
      check(status, err, "creating the context");
      return new Context(Deno.UnsafePointer.create(out[0]), model);
    });
    if (model.closed) {
      // The model was closed while the context was being made.
      ctx.close();
      void ctx.pointer; // the use-after-close error
    }
    return ctx;
  }

  /** Creates a context with a blocking call (for hosts that cannot await). */
  static createSync(model: Model, options: ContextOptions = {}): Context {
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    const status = symbols().wnb_context_new_sync(
      model.pointer,
      contextParams(options),
      out,
      err,
    );
    check(status, err, "creating the context");
    return new Context(Deno.UnsafePointer.create(out[0]), model);
  }

  /** The native handle; throws if closed. */
  get pointer(): Deno.PointerObject {
    if (this.#ptr === null || this.#life.closing) {
      throw new LlamaError(
        Status.Usage,
        "Context was closed (or its model was)",
      );
    }
    return this.#ptr;
  }

  /** The model this context belongs to. */
  get model(): Model {
    return this.#model;
  }

  /** Context length. */
  get nCtx(): number {
    return symbols().wnb_context_n_ctx(this.pointer);
  }

  /** Max tokens per decode. */
  get nBatch(): number {
    return symbols().wnb_context_n_batch(this.pointer);
  }

  /** Sequences this context holds. */
  get nSeqMax(): number {
    return symbols().wnb_context_n_seq_max(this.pointer);
  }

  /**
   * The pooling in effect (the option, or the model's default): 0 none,
   * 1 mean, 2 cls, 3 last, 4 rank. With 0, `embeddings` takes a batch index;
   * otherwise a sequence id.
   */
  get poolingType(): number {
    return symbols().wnb_context_pooling_type(this.pointer);
  }

  /** While true, running and future decodes stop with LlamaError(Cancelled). */
  setAbort(abort: boolean): void {
    symbols().wnb_context_set_abort(this.pointer, abort ? 1 : 0);
  }

  /** Throws unless the context is open and idle (llama.cpp contexts are single-threaded). */
  #idle(): Deno.PointerObject {
    const p = this.pointer;
    if (this.#life.pins > 0) {
      throw new LlamaError(
        Status.Usage,
        "Context is busy with another call; await it before starting the next",
      );
    }
    return p;
  }

  /**
   * Runs one non-blocking call: the context (and `sampler`, if given) stay
   * allocated until it returns, even when closed meanwhile.
   */
  async #run<T>(
    f: (p: Deno.PointerObject) => Promise<T>,
    sampler?: Sampler,
  ): Promise<T> {
    const p = this.#idle();
    const done = this.#life.pin();
    const doneSampler = sampler?.pin();
    try {
      return await f(p);
    } finally {
      doneSampler?.();
      done();
    }
  }

  /**
   * Runs a non-blocking native call of another binding (e.g. `Mtmd.eval`)
   * on this context: it must be idle (else LlamaError(Usage)), counts as
   * busy meanwhile, and is not freed before the call returns.
   *
   * @example
   * ```ts ignore
   * await ctx.use((p) => somethingNonBlocking(p));
   * ```
   */
  use<T>(f: (ptr: Deno.PointerObject) => Promise<T>): Promise<T> {
    return this.#run(f);
  }

  /**
   * Decodes a batch (at most nBatch tokens) without blocking the event loop.
   * Resolves once every backend has finished (RPC servers and GPUs compute
   * asynchronously), so reading the logits afterwards does not wait.
   */
  decode(batch: Batch): Promise<void> {
    const err = errorBuffer();
    return this.#run(async (p) => {
      const st = await symbols().wnb_decode(
        p,
        batch.tokens,
        batch.pos,
        batch.seqIds,
        batch.logits ?? null,
        batch.tokens.length,
        err,
      );
      check(st, err, "decode");
    });
  }

  /** Decodes a batch, blocking until every backend has finished (for tight loops). */
  decodeSync(batch: Batch): void {
    const st = symbols().wnb_decode_sync(
      this.#idle(),
      batch.tokens,
      batch.pos,
      batch.seqIds,
      batch.logits ?? null,
      batch.tokens.length,
      this.#err,
    );
    check(st, this.#err, "decode");
  }

  /** Decodes a prompt of any length into a sequence, keeping the last token's logits. */
  decodePrompt(
    tokens: Int32Array<ArrayBuffer>,
    pos0 = 0,
    seqId = 0,
  ): Promise<void> {
    const err = errorBuffer();
    return this.#run(async (p) => {
      const st = await symbols().wnb_decode_prompt(
        p,
        tokens,
        tokens.length,
        pos0,
        seqId,
        err,
      );
      check(st, err, "prompt decode");
    });
  }

  /** Blocking `decodePrompt`. */
  decodePromptSync(tokens: Int32Array<ArrayBuffer>, pos0 = 0, seqId = 0): void {
    const st = symbols().wnb_decode_prompt_sync(
      this.#idle(),
      tokens,
      tokens.length,
      pos0,
      seqId,
      this.#err,
    );
    check(st, this.#err, "prompt decode");
  }

  /**
   * One generation step: sample from batch index `idx` (default -1 = last),
   * and unless it ends generation, decode it at `pos` in `seqId`.
   */
  step(
    sampler: Sampler,
    opts: { pos: number; seqId?: number; idx?: number },
  ): Promise<StepResult> {
    const sp = sampler.pointer;
    // One call at a time per context (#run enforces it), so the buffers are reused.
    return this.#run(async (p) => {
      const st = await symbols().wnb_generate_step(
        p,
        sp,
        opts.idx ?? -1,
        opts.seqId ?? 0,
        opts.pos,
        this.#tok,
        this.#err,
      );
      return stepResult(st, this.#tok[0], this.#err);
    }, sampler);
  }

  /** Blocking `step`. */
  stepSync(
    sampler: Sampler,
    opts: { pos: number; seqId?: number; idx?: number },
  ): StepResult {
    const st = symbols().wnb_generate_step_sync(
      this.#idle(),
      sampler.pointer,
      opts.idx ?? -1,
      opts.seqId ?? 0,
      opts.pos,
      this.#tok,
      this.#err,
    );
    return stepResult(st, this.#tok[0], this.#err);
  }

  /**
   * The embedding of batch index `idxOrSeq` (no pooling) or of sequence
   * `idxOrSeq` (pooled), normalised: -1 none, 0 max-abs, 1 taxicab, 2 euclidean.
   * With rank pooling (4), the model's classifier scores (`n_cls_out` values).
   */
  embeddings(idxOrSeq: number, normalize = 2): Float32Array {
    const p = this.pointer;
    let out = new Float32Array(Math.max(this.#model.nEmbd, 1) * 4);
    for (;;) {
      const r = symbols().wnb_embeddings(
        p,
        idxOrSeq,
        out,
        out.length,
        normalize,
        this.#err,
      );
      if (r < 0) check(-r, this.#err, "embeddings");
      // More values than the buffer holds (nothing was written): again, with room.
      if (r > out.length) out = new Float32Array(r);
      else return out.slice(0, r);
    }
  }

  /** Clears the whole KV cache. */
  clearMemory(): void {
    symbols().wnb_memory_clear(this.pointer);
  }

  /** Removes positions [p0, p1) of a sequence (-1 = open end). Returns false if it could not. */
  seqRemove(seq: number, p0 = -1, p1 = -1): boolean {
    return symbols().wnb_memory_seq_rm(this.pointer, seq, p0, p1) !== 0;
  }

  /** Copies positions [p0, p1) of sequence src into dst. */
  seqCopy(src: number, dst: number, p0 = -1, p1 = -1): void {
    symbols().wnb_memory_seq_cp(this.pointer, src, dst, p0, p1);
  }

  /** Removes every sequence but `seq`. */
  seqKeep(seq: number): void {
    symbols().wnb_memory_seq_keep(this.pointer, seq);
  }

  /** Shifts positions [p0, p1) of a sequence by delta (context shift). */
  seqAdd(seq: number, p0: number, p1: number, delta: number): void {
    symbols().wnb_memory_seq_add(this.pointer, seq, p0, p1, delta);
  }

  /** Smallest position held for a sequence, -1 if empty. */
  seqPosMin(seq: number): number {
    return symbols().wnb_memory_seq_pos_min(this.pointer, seq);
  }

  /** Largest position held for a sequence, -1 if empty. */
  seqPosMax(seq: number): number {
    return symbols().wnb_memory_seq_pos_max(this.pointer, seq);
  }

  /** Whether positions can be shifted (seqAdd) in this model's memory. */
  get canShift(): boolean {
    return symbols().wnb_memory_can_shift(this.pointer) !== 0;
  }

  /**
   * A sequence's state in memory, for a context checkpoint. `partial`
   * keeps only what `seqRemove` cannot roll back (the recurrent state, the
   * sliding-window cells); restore it with `setSequenceState`. Empty when
   * there is nothing to save.
   */
  sequenceState(seq: number, partial = true): Uint8Array<ArrayBuffer> {
    const p = this.#idle();
    const flags = partial ? 1 : 0;
    const need = symbols().wnb_state_seq_get(p, seq, flags, null, 0);
    if (need <= 0) return new Uint8Array(0);
    const buf = new Uint8Array(need);
    const got = symbols().wnb_state_seq_get(p, seq, flags, buf, need);
    return got === need ? buf : new Uint8Array(0);
  }

  /** Restores a sequence from `sequenceState` bytes (the same `partial`). */
  setSequenceState(
    seq: number,
    data: Uint8Array<ArrayBuffer>,
    partial = true,
  ): void {
    const st = symbols().wnb_state_seq_set(
      this.#idle(),
      seq,
      partial ? 1 : 0,
      data,
      data.length,
      this.#err,
    );
    check(st, this.#err, "restoring a sequence state");
  }

  /** Saves a sequence's KV state and its tokens to a file. */
  saveSequence(
    path: string,
    seq: number,
    tokens: Int32Array<ArrayBuffer>,
  ): Promise<void> {
    const err = errorBuffer();
    return this.#run(async (p) => {
      const st = await symbols().wnb_state_seq_save(
        p,
        cstr(path),
        seq,
        tokens,
        tokens.length,
        err,
      );
      check(st, err, "saving the sequence");
    });
  }

  /** Restores a sequence saved by saveSequence; returns its tokens. */
  loadSequence(
    path: string,
    seq: number,
    maxTokens = this.nCtx,
  ): Promise<Int32Array> {
    const err = errorBuffer();
    const tokens = new Int32Array(Math.max(1, maxTokens));
    const n = new Int32Array(1);
    return this.#run(async (p) => {
      const st = await symbols().wnb_state_seq_load(
        p,
        cstr(path),
        seq,
        tokens,
        tokens.length,
        n,
        err,
      );
      check(st, err, "restoring the sequence");
      return tokens.slice(0, n[0]);
    });
  }

  /** llama.cpp's perf counters. */
  perf(): Perf {
    const d = new Float64Array(6);
    symbols().wnb_perf(this.pointer, d);
    return {
      tLoadMs: d[0],
      tPromptMs: d[1],
      tEvalMs: d[2],
      nPrompt: d[3],
      nEval: d[4],
      nReused: d[5],
    };
  }

  /** Resets the perf counters. */
  resetPerf(): void {
    symbols().wnb_perf_reset(this.pointer);
  }

  #free(): void {
    if (this.#ptr === null) return;
    symbols().wnb_context_free(this.#ptr);
    this.#ptr = null;
    this.#model.release(this);
  }

  /**
   * Frees the context. If a non-blocking call is running, it is aborted and
   * the context is freed when it returns. Safe to call twice.
   */
  close(): void {
    if (this.#ptr === null || this.#life.closing) return;
    if (this.#life.pins > 0) symbols().wnb_context_set_abort(this.#ptr, 1);
    this.#life.close();
  }

  /** Frees the context at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function stepResult(
  status: number,
  token: number,
  err: Uint8Array,
): StepResult {
  if (status === 0) return { token };
  try {
    check(status, err, "generation step");
  } catch (e) {
    return { token, error: e as LlamaError };
  }
  return { token };
}
