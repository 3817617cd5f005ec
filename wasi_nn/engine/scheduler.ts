/**
 * One scheduler per loaded model and context shape: continuous batching as
 * llama.cpp's server does it with slots. At each step every running task
 * adds its work (its next token, or a chunk of its prompt) to ONE batch, and
 * one non-blocking decode serves them all.
 *
 * - Each session owns one sequence (slot) of a shared llama.cpp context, with
 *   its own KV cells: nothing of one session's state reaches another.
 * - Tasks wait in a priority queue (levels, FIFO within a level, aging) for a
 *   free slot; a full queue answers Busy; a task can time out in the queue,
 *   and be cancelled at any time (its slot is freed at once).
 * - A slot keeps its session's tokens after a task: the next turn of that
 *   session re-decodes only what differs (the server's `cache_prompt`).
 *   Slots of idle sessions are taken back, least recently used first.
 * - When a sequence fills its context, a context shift (keep `n_keep`,
 *   discard half of the rest, as the server does) continues generation if
 *   enabled; otherwise the task stops with "context_full".
 *
 * @example
 * ```ts ignore
 * import { Model, Sampler } from "../../bindings/mod.ts";
 * import { Scheduler } from "./scheduler.ts";
 * using model = await Model.load(".cache/models/tiny.gguf");
 * const sched = await Scheduler.create(model, { nSeq: 4, nCtxPerSeq: 512 });
 * const owner = sched.newOwner("chat-1");
 * const task = sched.submit({
 *   owner,
 *   prompt: model.tokenize("Hello"),
 *   sampler: Sampler.create(model, { temp: 0 }),
 *   stop: { nPredict: 16 },
 * });
 * console.log((await task.result).text);
 * sched.close();
 * ```
 * @module
 */

import {
  type Batch,
  Context,
  LlamaError,
  type Model,
  Sampler,
  Status,
} from "../../bindings/mod.ts";
import { Errno, toWasiNn, WasiNnError } from "../errno.ts";
import { PriorityQueue } from "./_priority_queue.ts";
import type { StopReason } from "./stopping.ts";
import { checkPromptFits, shiftSpan } from "./_generation.ts";
import { kvCacheBytes } from "./_kv_memory.ts";
import {
  addCheckpoint,
  checkpointPosition,
  type MemoryTraits,
  memoryTraits,
  reusablePrefix,
  reuseChunks,
  rollBack,
} from "./_prompt_cache.ts";
import { Slots } from "./_slots.ts";
import { nextMedia, outsideMedia, posShiftAt } from "./_media.ts";
import type { SchedulerOptions, SchedulerStats } from "./_scheduler_options.ts";
import {
  checkSubmittable,
  type SlotOwner,
  Task,
  type TaskHandle,
  type TaskSpec,
} from "./_task.ts";

export type { SchedulerOptions, SchedulerStats } from "./_scheduler_options.ts";
export type {
  RunningTask,
  SlotOwner,
  TaskHandle,
  TaskResult,
  TaskSpec,
  TaskTimings,
  TokenEvent,
} from "./_task.ts";

/** A batch with every array set (`logits` too); also the loop's buffers. */
type FullBatch = Required<Batch>;

/** One decode step: its batch, and the tasks to sample with their batch indexes. */
interface Step {
  batch: FullBatch;
  sampleAt: [Task, number][];
}

/** Continuous batching over one llama.cpp context. */
export class Scheduler {
  #model: Model;
  #ctx: Context;
  #opts:
    & Required<Pick<SchedulerOptions, "nSeq" | "nCtxPerSeq" | "maxQueue">>
    & SchedulerOptions;
  #queue: PriorityQueue<Task>;
  #active = new Set<Task>();
  #slots: Slots;
  #owners = new Map<string, SlotOwner>();
  #running = false;
  #wake?: () => void;
  #now: () => number;
  #closed = false;
  /** A non-blocking decode is running on a worker thread: the context is its. */
  #decoding = false;
  /** Slots freed while #decoding: cleared once the decode has returned. */
  #clearLater: number[] = [];
  #nBatch: number;
  #steps = 0;
  /** Images encoded so far: who is next (`Task.mediaTurn`). */
  #mediaTurns = 0;
  #lastYield = 0;
  #decoded = 0;
  #blocking = 0;
  #lastStepMs = 0;
  #traits: MemoryTraits;
  /** Settled (and dropped) when the loop goes idle; `#exclusive` waits on it. */
  #idle?: PromiseWithResolvers<void>;

  private constructor(model: Model, ctx: Context, opts: SchedulerOptions) {
    this.#model = model;
    this.#ctx = ctx;
    this.#opts = { maxQueue: 256, ...opts };
    this.#now = opts.now ?? (() => performance.now());
    this.#queue = new PriorityQueue({
      agingMs: opts.agingMs ?? 5000,
      now: this.#now,
    });
    this.#slots = new Slots(opts.nSeq, (slot) => {
      if (this.#closed) return;
      // llama.cpp's memory is not to be touched while a decode runs on it.
      if (this.#decoding) this.#clearLater.push(slot);
      else this.#ctx.seqRemove(slot);
    });
    this.#nBatch = ctx.nBatch;
    this.#traits = memoryTraits(model.info, ctx.canShift);
  }

  /** Creates the shared context: nSeq sequences of nCtxPerSeq tokens each. */
  static async create(
    model: Model,
    opts: SchedulerOptions,
  ): Promise<Scheduler> {
    if (opts.nSeq < 1) {
      throw new WasiNnError(Errno.InvalidArgument, "nSeq must be at least 1");
    }
    const ctx = await Context.create(model, {
      ...opts.context,
      embeddings: false,
      nCtx: opts.nCtxPerSeq * opts.nSeq,
      nSeqMax: opts.nSeq,
      nBatch: opts.nBatch ?? 512,
      nUbatch: opts.nUbatch ?? Math.min(512, opts.nBatch ?? 512),
      nThreads: opts.threads,
      nThreadsBatch: opts.threadsBatch ?? opts.threads,
      // Generation steps are blocking calls (blockingSteps): poll like
      // llama.cpp's tools; with every decode non-blocking, 0 avoids spinning
      // threads that steal the core each thread hop needs.
      poll: opts.poll ?? (opts.blockingSteps === false ? 0 : 50),
      flashAttn: opts.flashAttn,
      kvUnified: false, // each sequence has its own cells: no session can starve another
    });
    return new Scheduler(model, ctx, opts);
  }

  /** The model it serves. */
  get model(): Model {
    return this.#model;
  }

  /**
   * Context length of each slot: what was asked for (llama.cpp may round its
   * buffers up; the limit stays the one asked for).
   */
  get nCtxPerSeq(): number {
    return Math.min(
      this.#opts.nCtxPerSeq,
      Math.floor(this.#ctx.nCtx / this.#opts.nSeq),
    );
  }

  /** Bytes of the shared context's KV cache (every slot's cells, of the cache types asked for). */
  get kvBytes(): number {
    return kvCacheBytes(
      this.#model.info,
      this.#ctx.nCtx,
      this.#opts.context?.typeK,
      this.#opts.context?.typeV,
    );
  }

  /** Slots. */
  get nSeq(): number {
    return this.#opts.nSeq;
  }

  /** Counters: decode steps (and how many were blocking calls) and tokens decoded so far, tasks waiting and running. */
  get stats(): SchedulerStats {
    return {
      steps: this.#steps,
      blockingSteps: this.#blocking,
      decoded: this.#decoded,
      queued: this.#queue.size,
      running: this.#active.size,
      slotsUsed: this.#slots.used,
    };
  }

  /** Sessions bound to this scheduler (0: nothing would be lost by closing it). */
  get owners(): number {
    return this.#owners.size;
  }

  /** A session record for this scheduler (its KV lives in a slot while it has one). */
  newOwner(id: string): SlotOwner {
    const o: SlotOwner = {
      id,
      cached: [],
      checkpoints: [],
      lastUsed: this.#now(),
    };
    this.#owners.set(id, o);
    return o;
  }

  /** Forgets a session and frees its slot. */
  dropOwner(owner: SlotOwner): void {
    this.#slots.free(owner);
    this.#owners.delete(owner.id);
  }

  /** Saves a session's KV and tokens to a file (the session must be idle and hold a slot). */
  async saveOwner(owner: SlotOwner, path: string): Promise<number> {
    if (owner.running) {
      throw new WasiNnError(Errno.Busy, `session ${owner.id} is busy`);
    }
    if (owner.slot === undefined || owner.cached.length === 0) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `session ${owner.id} holds no state to save`,
      );
    }
    await this.#exclusive(() =>
      this.#ctx.saveSequence(path, owner.slot!, Int32Array.from(owner.cached))
    );
    return owner.cached.length;
  }

  /** Restores a session from a file written by saveOwner. */
  async restoreOwner(owner: SlotOwner, path: string): Promise<number> {
    if (owner.running) {
      throw new WasiNnError(Errno.Busy, `session ${owner.id} is busy`);
    }
    const slot = owner.slot ?? this.#slots.take(owner);
    if (slot === undefined) {
      throw new WasiNnError(Errno.Busy, "every slot is busy");
    }
    try {
      const tokens = await this.#exclusive(() =>
        this.#ctx.loadSequence(path, slot, this.nCtxPerSeq)
      );
      owner.cached = [...tokens];
      owner.checkpoints = [];
      return owner.cached.length;
    } catch (e) {
      this.#slots.free(owner);
      throw e instanceof LlamaError
        ? new WasiNnError(Errno.RuntimeError, e.message)
        : e;
    }
  }

  /** Runs f while no decode is running. */
  async #exclusive<T>(f: () => Promise<T>): Promise<T> {
    while (this.#busy) {
      this.#idle ??= Promise.withResolvers<void>();
      await this.#idle.promise;
    }
    return await f();
  }

  /** The loop runs and has tasks: a decode may be in flight. */
  get #busy(): boolean {
    return this.#running && this.#active.size > 0;
  }

  /**
   * Wakes `#exclusive` once the loop is idle. Called wherever `#busy` can
   * turn false: a task leaving `#active` (`#finish`, `#fail`), the loop
   * ending (`#run`).
   */
  #settle(): void {
    if (this.#idle === undefined || this.#busy) return;
    const idle = this.#idle;
    this.#idle = undefined;
    idle.resolve();
  }

  /** Queues a task. Throws WasiNnError(Busy) when the queue is full or the session is busy. */
  submit(spec: TaskSpec): TaskHandle {
    checkSubmittable(this.#closed, spec);
    // Tasks that a free slot will take at the next step are not waiting.
    const waiting = this.#queue.size - this.#slots.available();
    const maxQueue = spec.maxQueue ?? this.#opts.maxQueue;
    if (waiting >= maxQueue) {
      throw new WasiNnError(
        Errno.Busy,
        `${waiting} tasks are already waiting (max_queue ${maxQueue}); retry later`,
      );
    }
    if (!spec.contextShift) {
      checkPromptFits(
        spec.prompt.length,
        this.nCtxPerSeq,
        "a session's context",
      );
    }
    if (spec.prompt.length === 0) {
      throw new WasiNnError(Errno.InvalidArgument, "the prompt is empty");
    }
    // Parameters: a sampler of the task's own, freed when it ends.
    let sampler: Sampler;
    if (spec.sampler instanceof Sampler) sampler = spec.sampler;
    else {
      try {
        sampler = Sampler.create(this.#model, spec.sampler);
      } catch (e) {
        throw toWasiNn(e);
      }
    }
    const task = new Task(spec, sampler, this.#model, this.#now());
    if (sampler !== spec.sampler) {
      task.result.finally(() => sampler.close()).catch(() => {});
    }
    spec.owner.running = task;
    this.#queue.push(task, spec.priority ?? 0);
    if (spec.queueTimeoutMs !== undefined && spec.queueTimeoutMs > 0) {
      task.timer = setTimeout(() => {
        if (task.phase === "queued" && this.#queue.remove(task)) {
          this.#fail(
            task,
            new WasiNnError(
              Errno.Busy,
              `waited ${spec.queueTimeoutMs} ms for a free slot`,
            ),
          );
        }
      }, spec.queueTimeoutMs);
    }
    const onAbort = () => this.#cancel(task);
    if (spec.signal?.aborted) queueMicrotask(onAbort);
    else spec.signal?.addEventListener("abort", onAbort, { once: true });
    task.result.finally(() =>
      spec.signal?.removeEventListener("abort", onAbort)
    ).catch(() => {});
    this.#kick();
    return {
      result: task.result,
      next: () => task.next(() => this.#kick()),
      cancel: () => this.#cancel(task),
    };
  }

  #cancel(task: Task): void {
    if (task.phase === "done") return;
    task.cancelled = true;
    if (task.phase === "queued" && this.#queue.remove(task)) {
      this.#finish(task, "cancelled");
      return;
    }
    this.#kick();
  }

  #kick(): void {
    if (this.#wake) {
      const w = this.#wake;
      this.#wake = undefined;
      w();
    }
    if (!this.#running) {
      this.#running = true;
      // Start on the next microtask: tasks submitted in the same turn (say
      // Promise.all over several sessions) share the first batch, as the
      // server's slots do when requests arrive together; or after batchWaitMs.
      const wait = this.#opts.batchWaitMs ?? 0;
      if (wait > 0) setTimeout(() => this.#run(), wait);
      else queueMicrotask(() => this.#run());
    }
  }

  #run(): void {
    this.#loop().catch((e) => {
      for (const t of [...this.#active]) this.#fail(t, e);
    }).finally(() => {
      this.#running = false;
      this.#settle();
      // A task submitted while the loop was finishing must not be left waiting.
      if (this.#queue.size > 0 && !this.#closed) this.#kick();
    });
  }

  #admit(): void {
    while (this.#queue.size > 0) {
      const task = this.#queue.peek()!;
      const slot = this.#slots.take(task.spec.owner);
      if (slot === undefined) return;
      this.#queue.pop();
      if (task.timer !== undefined) clearTimeout(task.timer);
      try {
        this.#start(task, slot);
      } catch (e) {
        // Whatever went wrong, this session's slot content is unknown now.
        this.#slots.free(task.spec.owner);
        this.#fail(
          task,
          e instanceof WasiNnError
            ? e
            : new WasiNnError(Errno.RuntimeError, String(e)),
        );
      }
    }
  }

  #start(task: Task, slot: number): void {
    const { owner, prompt } = task.spec;
    const sampler = task.sampler;
    task.slot = slot;
    task.admitted = this.#now();
    const media = task.spec.media;
    let n = reusablePrefix(
      owner.cached,
      prompt,
      task.spec.cachePrompt !== false,
    );
    // An image's embeddings are all reused or none.
    if (media) n = outsideMedia(n, media.spans);
    let reusedChunks = 0;
    const minChunk = task.spec.cacheReuse ?? 0;
    if (
      task.spec.cachePrompt !== false && minChunk > 0 &&
      this.#traits.canShift && !media
    ) {
      const r = reuseChunks(this.#ctx, slot, owner.cached, prompt, n, minChunk);
      n = r.end;
      reusedChunks = r.moved;
    }
    // Drop the rest, as far as the memory allows (recurrent state, SWA window).
    const spans = media?.spans ?? [];
    const back = rollBack(
      this.#ctx,
      slot,
      owner.cached.length,
      n,
      this.#traits,
      owner.checkpoints,
      (k) => k + posShiftAt(k, spans),
    );
    n = back.kept;
    if (back.how === "checkpoint" || back.how === "reset") reusedChunks = 0;
    owner.cached.length = n;
    task.reused = n;
    task.reusedChunks = reusedChunks;
    task.reuse = back.how;
    // A checkpoint near the end of the prompt lets the next turn reuse it.
    task.checkpointAt = checkpointPosition(prompt.length, n, this.#traits);
    if (media && task.checkpointAt > 0) {
      const at = outsideMedia(task.checkpointAt, media.spans);
      task.checkpointAt = at > n ? at : -1;
    }
    task.pending = prompt.subarray(n) as Int32Array;
    task.pendingAt = 0;
    task.pos = n;
    task.posShift = posShiftAt(n, spans);
    // Media placeholders (negative) are no tokens for the penalties.
    for (const t of prompt) if (t >= 0) sampler.accept(t);
    task.phase = "prompt";
    this.#active.add(task);
  }

  /** Makes room in a full slot by discarding tokens (the server's context shift). */
  #shift(task: Task): boolean {
    const owner = task.spec.owner;
    const nCtx = this.nCtxPerSeq;
    // A shift would cut through images (llama.cpp's server refuses it too).
    if (
      !task.spec.contextShift || !this.#traits.canShift || task.spec.media
    ) return false;
    const span = shiftSpan(task.pos, nCtx, {
      promptLength: task.spec.prompt.length,
      addBos: this.#model.info.add_bos,
      nKeep: task.spec.nKeep,
      nDiscard: task.spec.nDiscard,
    });
    if (!span) return false;
    const { keep: nKeep, discard: nDiscard } = span;
    this.#ctx.seqRemove(task.slot, nKeep, nKeep + nDiscard);
    this.#ctx.seqAdd(task.slot, nKeep + nDiscard, task.pos, -nDiscard);
    owner.cached.splice(nKeep, nDiscard);
    owner.checkpoints = []; // positions moved
    task.pos -= nDiscard;
    task.truncated = true;
    return true;
  }

  /**
   * The step loop, as the server's `update_slots()`: collect a batch, decode
   * it, sample from it; sleep while there is nothing to decode.
   */
  async #loop(): Promise<void> {
    const buf: FullBatch = {
      tokens: new Int32Array(this.#nBatch),
      pos: new Int32Array(this.#nBatch),
      seqIds: new Int32Array(this.#nBatch),
      logits: new Uint8Array(this.#nBatch),
    };
    while (!this.#closed) {
      const step = this.#collect(buf);
      if (step === "idle") return;
      // At most one image (or clip) is encoded per step, after the batch:
      // the other sessions wait no longer than one encode.
      const media = this.#mediaTask();
      if (step === "wait") {
        if (!media) {
          // Every slot is held by a running task elsewhere, or only on-demand
          // tasks without demand run: sleep until something changes.
          await new Promise<void>((r) => this.#wake = r);
          continue;
        }
      } else if (await this.#decode(step)) this.#sample(step);
      if (media) await this.#evalMedia(media);
    }
  }

  /**
   * Collects the next step: ends cancelled tasks, admits queued ones, and
   * builds the batch (the server's `pre_decode`). "idle": no task at all;
   * "wait": nothing to decode now.
   */
  #collect(buf: FullBatch): Step | "idle" | "wait" {
    for (const t of [...this.#active]) {
      if (t.cancelled) this.#finish(t, "cancelled");
    }
    this.#admit();
    if (this.#active.size === 0) {
      return this.#queue.size === 0 ? "idle" : "wait";
    }
    const sampleAt: [Task, number][] = [];
    let n = this.#addNextTokens(buf, sampleAt);
    n = this.#addPromptChunks(buf, n, sampleAt);
    if (n === 0) return "wait";
    return {
      batch: {
        tokens: buf.tokens.subarray(0, n),
        pos: buf.pos.subarray(0, n),
        seqIds: buf.seqIds.subarray(0, n),
        logits: buf.logits.subarray(0, n),
      },
      sampleAt,
    };
  }

  /**
   * Adds one token for every generating task that wants one (shifting or
   * ending a task whose slot is full). Returns the batch length.
   */
  #addNextTokens(buf: FullBatch, sampleAt: [Task, number][]): number {
    let n = 0;
    for (const t of this.#active) {
      if (t.phase !== "generate" || t.demand <= 0 || n >= this.#nBatch) {
        continue;
      }
      if (t.pos >= this.nCtxPerSeq && !this.#shift(t)) {
        this.#finish(t, "context_full");
        continue;
      }
      buf.tokens[n] = t.lastToken;
      buf.pos[n] = t.pos + t.posShift;
      buf.seqIds[n] = t.slot;
      buf.logits[n] = 1;
      sampleAt.push([t, n]);
      t.spec.owner.cached.push(t.lastToken);
      t.pos++;
      n++;
    }
    return n;
  }

  /**
   * Fills the rest of the batch (from `n` on) with prompt chunks; a chunk
   * ends where a checkpoint is to be taken, and a prompt's last token keeps
   * its logits. Returns the batch length.
   */
  #addPromptChunks(
    buf: FullBatch,
    n: number,
    sampleAt: [Task, number][],
  ): number {
    for (const t of this.#active) {
      if (t.phase !== "prompt" || n >= this.#nBatch || t.mediaDue) continue;
      let take = Math.min(this.#nBatch - n, t.pending.length - t.pendingAt);
      if (t.checkpointAt > t.pos) {
        take = Math.min(take, t.checkpointAt - t.pos);
      }
      const span = t.spec.media && nextMedia(t.spec.media.spans, t.pos);
      if (span) {
        // The text before the image first; the image in its own turn.
        if (span.start === t.pos) {
          t.mediaDue = span;
          continue;
        }
        take = Math.min(take, span.start - t.pos);
      }
      for (let i = 0; i < take; i++) {
        const tok = t.pending[t.pendingAt + i];
        buf.tokens[n] = tok;
        buf.pos[n] = t.pos + t.posShift;
        buf.seqIds[n] = t.slot;
        buf.logits[n] = 0;
        t.spec.owner.cached.push(tok);
        t.pos++;
        n++;
      }
      t.pendingAt += take;
      if (t.pendingAt === t.pending.length) {
        buf.logits[n - 1] = 1;
        sampleAt.push([t, n - 1]);
      }
    }
    return n;
  }

  /**
   * Decodes a step's batch: a short generation step blocking, then yielding
   * to the event loop every few milliseconds; anything else non-blocking.
   * On failure, decodes each session's part apart (`#retryApart`, which also
   * samples them) and returns false; true when the batch is ready to sample.
   */
  /**
   * A non-blocking decode. Sessions dropped meanwhile (finalized, closed)
   * have their sequences cleared once it has returned, never during it.
   */
  #decodeAsync(batch: Parameters<Context["decode"]>[0]): Promise<void> {
    return this.#nonBlocking(() => this.#ctx.decode(batch));
  }

  /**
   * Runs `work`, a non-blocking call on the context (a decode, an image
   * encode): sessions dropped meanwhile have their sequences cleared once
   * it has returned, never during it.
   */
  async #nonBlocking(work: () => Promise<void>): Promise<void> {
    this.#decoding = true;
    try {
      await work();
    } finally {
      this.#decoding = false;
      const slots = this.#clearLater;
      this.#clearLater = [];
      if (!this.#closed) {
        for (const slot of slots) this.#ctx.seqRemove(slot);
      }
    }
  }

  async #decode(step: Step): Promise<boolean> {
    const { batch } = step;
    const n = batch.tokens.length;
    try {
      const block = this.#opts.blockingSteps !== false &&
        n <= this.#opts.nSeq &&
        this.#lastStepMs < (this.#opts.blockingStepMaxMs ?? 50);
      const t0 = performance.now();
      if (block) {
        // A generation step (one token per running session) takes a few
        // milliseconds: a blocking call, then one turn of the event loop,
        // is much faster than a non-blocking call's two thread hops, and the
        // event loop still runs between steps.
        this.#ctx.decodeSync(batch);
        this.#lastStepMs = performance.now() - t0;
        this.#blocking++;
        // Yield every few milliseconds rather than every step: a long pause
        // lets the thread pool fall asleep, and waking it costs more than
        // the step. Timers and I/O still run at least every ~5 ms.
        const now = performance.now();
        if (now - this.#lastYield >= 5) {
          await yieldToEventLoop();
          this.#lastYield = performance.now();
        }
      } else {
        await this.#decodeAsync(batch);
        // A generation step's time, to choose blocking again when it is short.
        if (n <= this.#opts.nSeq) this.#lastStepMs = performance.now() - t0;
      }
      this.#steps++;
      this.#decoded += n;
      return true;
    } catch (e) {
      // One session's failure must not cost the others: decode each
      // session's part alone, so that only the one that fails fails.
      await this.#retryApart(step, e);
      return false;
    }
  }

  /**
   * After a decode (the server's `post_decode`): saves the checkpoints the
   * batch reached, then samples every task of the step that is still running
   * (the logits are gone at the next decode).
   */
  #sample(step: Step): void {
    this.#checkpoint(step.batch.seqIds);
    for (const [t, idx] of step.sampleAt) {
      if (t.phase === "done") continue;
      this.#sampleTask(t, idx);
    }
  }

  /**
   * After a failed decode of a batch of several sessions: decodes each
   * session's part alone (and samples it at once: the next decode
   * overwrites the logits). A part that fails again fails its task only.
   */
  async #retryApart(step: Step, first: unknown): Promise<void> {
    const { batch, sampleAt } = step;
    const tasks = [...this.#active].filter((t) =>
      seqsInclude(batch.seqIds, batch.seqIds.length, t.slot)
    );
    for (const t of tasks) {
      const idx: number[] = [];
      for (let i = 0; i < batch.seqIds.length; i++) {
        if (batch.seqIds[i] === t.slot) idx.push(i);
      }
      const part = {
        tokens: Int32Array.from(idx, (i) => batch.tokens[i]),
        pos: Int32Array.from(idx, (i) => batch.pos[i]),
        seqIds: Int32Array.from(idx, (i) => batch.seqIds[i]),
        logits: Uint8Array.from(idx, (i) => batch.logits[i]),
      };
      const p0 = part.pos[0];
      // Whatever the failed decode left of this part goes first.
      if (!this.#ctx.seqRemove(t.slot, p0, -1)) {
        this.#lose(t, first);
        continue;
      }
      let error: unknown = tasks.length > 1 ? undefined : first;
      if (error === undefined) {
        try {
          await this.#decodeAsync(part);
        } catch (e) {
          error = e;
        }
      }
      if (error !== undefined) {
        this.#ctx.seqRemove(t.slot, p0, -1);
        this.#lose(t, error);
        continue;
      }
      this.#steps++;
      this.#decoded += idx.length;
      this.#sample({
        batch: part,
        sampleAt: sampleAt.filter(([task]) => task === t)
          .map(([task, i]) => [task, idx.indexOf(i)]),
      });
    }
  }

  /** Ends a task whose decode failed; the cache keeps only what the sequence still holds. */
  #lose(t: Task, e: unknown): void {
    const owner = t.spec.owner;
    // Positions are token counts, unless M-RoPE media made them differ:
    // then nothing of the sequence is kept.
    const held = t.posShift === 0 ? this.#ctx.seqPosMax(t.slot) + 1 : 0;
    if (held <= 0) {
      this.#ctx.seqRemove(t.slot, -1, -1);
      owner.cached = [];
    } else owner.cached.length = Math.min(owner.cached.length, held);
    owner.checkpoints = owner.checkpoints.filter((c) => c.nTokens <= held);
    if (e instanceof LlamaError && e.code === Status.NoKvSpace) {
      this.#finish(t, "context_full");
    } else {
      this.#fail(t, new WasiNnError(Errno.RuntimeError, (e as Error).message));
    }
  }

  /** The task whose image is next to encode: the one that waited longest for its last. */
  #mediaTask(): Task | undefined {
    let best: Task | undefined;
    for (const t of this.#active) {
      if (!t.mediaDue || t.phase !== "prompt" || t.cancelled) continue;
      if (!best || t.mediaTurn < best.mediaTurn) best = t;
    }
    return best;
  }

  /**
   * Encodes the task's due image and decodes its embeddings into its
   * sequence (a non-blocking call, as a decode); then the prompt goes on
   * after it, or, when it ended the prompt, the first token is sampled.
   */
  async #evalMedia(t: Task): Promise<void> {
    const span = t.mediaDue!;
    const owner = t.spec.owner;
    const last = span.end === t.spec.prompt.length;
    t.mediaTurn = ++this.#mediaTurns;
    let error: unknown;
    try {
      await this.#nonBlocking(() =>
        t.spec.media!.eval(this.#ctx, span, t.slot, t.pos + t.posShift, last)
      );
    } catch (e) {
      error = e;
    }
    if (this.#closed) return;
    if (error !== undefined || t.phase === "done") {
      // What the eval left of the image goes; the cache ends before it.
      this.#ctx.seqRemove(t.slot, span.start + t.posShift, -1);
      owner.cached.length = Math.min(owner.cached.length, span.start);
      if (error !== undefined) this.#lose(t, error);
      return;
    }
    t.mediaDue = undefined;
    for (let i = span.start; i < span.end; i++) {
      owner.cached.push(t.spec.prompt[i]);
    }
    const n = span.end - span.start;
    t.pos += n;
    t.posShift += span.nPos - n;
    t.pendingAt += n;
    this.#steps++;
    this.#decoded += n;
    this.#checkpoint(Int32Array.of(t.slot));
    if (t.pendingAt === t.pending.length) this.#sampleTask(t, -1);
  }

  /** Saves a checkpoint for each task of the batch that reached its checkpoint position. */
  #checkpoint(seqIds: Int32Array): void {
    for (const t of this.#active) {
      if (t.checkpointAt < 0 || t.pos !== t.checkpointAt) continue;
      if (!seqsInclude(seqIds, seqIds.length, t.slot)) continue;
      t.checkpointAt = -1;
      try {
        addCheckpoint(t.spec.owner.checkpoints, {
          nTokens: t.pos,
          data: this.#ctx.sequenceState(t.slot, true),
        });
      } catch { /* a checkpoint is an optimisation */ }
    }
  }

  /** Samples one task's token at batch index `idx` and takes it. */
  #sampleTask(t: Task, idx: number): void {
    const now = this.#now();
    if (t.phase === "prompt") {
      t.phase = "generate";
      t.firstToken = now;
    }
    let token: number;
    try {
      token = t.sampler.sample(this.#ctx, idx);
    } catch (e) {
      this.#fail(
        t,
        new WasiNnError(
          Errno.RuntimeError,
          `sampling failed: ${(e as Error).message}`,
        ),
      );
      return;
    }
    const out = t.gen.take(token, t.sampler);
    if (!out.eog) t.spec.onToken?.(token, out.bytes);
    if (out.emit) t.spec.onText?.(out.emit);
    if (out.eog) {
      this.#finish(t, "eos", token);
      return;
    }
    if (t.spec.onDemand) {
      // The first token is sampled from the prompt whether or not a next()
      // asked for it yet (an engine process's demand can come later): it
      // waits in the task, and only an asked-for token uses up demand.
      t.demand = Math.max(0, t.demand - 1);
      t.deliver({ token, bytes: out.bytes });
    }
    t.lastToken = token;
    if (out.stop) this.#finish(t, out.stop.reason, out.stop.matched);
  }

  #finish(t: Task, reason: StopReason, matched?: string | number): void {
    if (t.phase === "done") return;
    const emit = t.gen.finish();
    if (emit) t.spec.onText?.(emit);
    t.phase = "done";
    this.#active.delete(t);
    if (t.timer !== undefined) clearTimeout(t.timer);
    const owner = t.spec.owner;
    owner.running = undefined;
    owner.lastUsed = this.#now();
    this.#slots.trim(this.#opts.memoryPressure, this.#opts.maxCacheTokens);
    t.resolve(t.outcome(reason, matched, this.#now()));
    t.endStream();
    this.#settle();
    this.#kick();
  }

  #fail(t: Task, e: unknown): void {
    if (t.phase === "done") return;
    t.phase = "done";
    this.#active.delete(t);
    if (t.timer !== undefined) clearTimeout(t.timer);
    t.spec.owner.running = undefined;
    t.spec.owner.lastUsed = this.#now();
    t.reject(e);
    t.endStream();
    this.#settle();
  }

  /** Frees the context; queued and running tasks fail with RuntimeError. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const err = new WasiNnError(Errno.RuntimeError, "the scheduler was closed");
    for (const t of this.#queue.items()) this.#fail(t, err);
    for (const t of [...this.#active]) this.#fail(t, err);
    this.#wake?.();
    this.#ctx.close();
  }
}

/** One macrotask turn: timers, I/O and other guests' calls get to run. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function seqsInclude(seqs: Int32Array, n: number, slot: number): boolean {
  for (let i = 0; i < n; i++) if (seqs[i] === slot) return true;
  return false;
}
