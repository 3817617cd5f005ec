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
  Context,
  LlamaError,
  type Model,
  Sampler,
  Status,
} from "../../bindings/mod.ts";
import { Errno, toWasiNn, WasiNnError } from "../errno.ts";
import { PriorityQueue } from "./_priority_queue.ts";
import type { StopReason } from "./stopping.ts";
import { checkPromptFits, shiftContext } from "./_generation.ts";
import { kvCacheBytes } from "./_kv_memory.ts";
import {
  addCheckpoint,
  type MemoryTraits,
  memoryTraits,
} from "./_prompt_cache.ts";
import { resumePrompt } from "./_prompt_resume.ts";
import { Slots } from "./_slots.ts";
import {
  addNextTokens,
  addPromptChunks,
  firstTokens,
  type FullBatch,
  newBatch,
  partOf,
  seqsInclude,
  type Step,
} from "./_step_batch.ts";
import { StepDecoder } from "./_step_decoder.ts";
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
  /**
   * Something changed while the loop was awake (a task ended, came or
   * wants a token): the loop collects again instead of sleeping.
   */
  #kicked = false;
  #now: () => number;
  #closed = false;
  #decoder: StepDecoder;
  #nBatch: number;
  /** Images encoded so far: who is next (`Task.mediaTurn`). */
  #mediaTurns = 0;
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
    this.#decoder = new StepDecoder(ctx, this.#opts);
    // llama.cpp's memory is not to be touched while a decode runs on it.
    this.#slots = new Slots(opts.nSeq, (slot) => this.#decoder.clear(slot));
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
      steps: this.#decoder.steps,
      blockingSteps: this.#decoder.blocking,
      decoded: this.#decoder.decoded,
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
    } else this.#kicked = true;
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
    task.slot = slot;
    task.admitted = this.#now();
    resumePrompt(this.#ctx, this.#traits, task, slot);
    // Media placeholders (negative) are no tokens for the penalties.
    for (const t of task.spec.prompt) if (t >= 0) task.sampler.accept(t);
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
    const o = {
      promptLength: task.spec.prompt.length,
      addBos: this.#model.info.add_bos,
      nKeep: task.spec.nKeep,
      nDiscard: task.spec.nDiscard,
    };
    const span = shiftContext(this.#ctx, task.slot, task.pos, nCtx, o);
    if (!span) return false;
    owner.cached.splice(span.keep, span.discard);
    owner.checkpoints = []; // positions moved
    task.pos -= span.discard;
    task.truncated = true;
    return true;
  }

  /**
   * The step loop, as the server's `update_slots()`: collect a batch, decode
   * it, sample from it; sleep while there is nothing to decode.
   */
  async #loop(): Promise<void> {
    const buf = newBatch(this.#nBatch);
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
          // Unless something changed while collecting: a task that ended
          // there (a full context) left a slot for a queued one.
          if (this.#kicked) continue;
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
    this.#kicked = false;
    for (const t of [...this.#active]) {
      if (t.cancelled) this.#finish(t, "cancelled");
    }
    this.#admit();
    if (this.#active.size === 0) {
      return this.#queue.size === 0 ? "idle" : "wait";
    }
    const sampleAt: [Task, number][] = [];
    const nBatch = this.#nBatch;
    // A full slot shifts, or its task ends.
    const roomFor = (t: Task) => {
      if (this.#shift(t)) return true;
      this.#finish(t, "context_full");
      return false;
    };
    let n = addNextTokens(
      this.#active,
      buf,
      nBatch,
      this.nCtxPerSeq,
      sampleAt,
      roomFor,
    );
    n = addPromptChunks(this.#active, buf, n, nBatch, sampleAt);
    return n === 0 ? "wait" : { batch: firstTokens(buf, n), sampleAt };
  }

  /**
   * Decodes a step's batch (blocking or not: `StepDecoder`). On failure,
   * decodes each session's part apart (`#retryApart`, which also samples
   * them) and returns false; true when the batch is ready to sample.
   */
  async #decode(step: Step): Promise<boolean> {
    try {
      await this.#decoder.decode(step.batch);
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
    const tasks = [...this.#active].filter((t) =>
      seqsInclude(step.batch.seqIds, t.slot)
    );
    for (const t of tasks) {
      const part = partOf(step, t.slot);
      const p0 = part.batch.pos[0];
      // Whatever the failed decode left of this part goes first.
      if (!this.#ctx.seqRemove(t.slot, p0, -1)) {
        this.#lose(t, first);
        continue;
      }
      let error: unknown = tasks.length > 1 ? undefined : first;
      if (error === undefined) {
        try {
          await this.#decoder.decodeApart(part.batch);
        } catch (e) {
          error = e;
        }
      }
      if (error !== undefined) {
        this.#ctx.seqRemove(t.slot, p0, -1);
        this.#lose(t, error);
        continue;
      }
      this.#sample(part);
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
      await this.#decoder.nonBlocking(() =>
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
    this.#decoder.count(n);
    this.#checkpoint(Int32Array.of(t.slot));
    if (t.pendingAt === t.pending.length) this.#sampleTask(t, -1);
  }

  /** Saves a checkpoint for each task of the batch that reached its checkpoint position. */
  #checkpoint(seqIds: Int32Array): void {
    for (const t of this.#active) {
      if (t.checkpointAt < 0 || t.pos !== t.checkpointAt) continue;
      if (!seqsInclude(seqIds, t.slot)) continue;
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

  /** Ends a task with its result. */
  #finish(t: Task, reason: StopReason, matched?: string | number): void {
    if (t.phase === "done") return;
    const emit = t.gen.finish();
    if (emit) t.spec.onText?.(emit);
    this.#end(t);
    this.#slots.trim(this.#opts.memoryPressure, this.#opts.maxCacheTokens);
    t.resolve(t.outcome(reason, matched, this.#now()));
    t.endStream();
    this.#settle();
    this.#kick();
  }

  /** Ends a task with an error. */
  #fail(t: Task, e: unknown): void {
    if (t.phase === "done") return;
    this.#end(t);
    t.reject(e);
    t.endStream();
    this.#settle();
  }

  /** What ending does to any task: it leaves the loop, its session is free. */
  #end(t: Task): void {
    t.phase = "done";
    this.#active.delete(t);
    if (t.timer !== undefined) clearTimeout(t.timer);
    t.spec.owner.running = undefined;
    t.spec.owner.lastUsed = this.#now();
  }

  /** Frees the context; queued and running tasks fail with RuntimeError. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#decoder.close();
    const err = new WasiNnError(Errno.RuntimeError, "the scheduler was closed");
    for (const t of this.#queue.items()) this.#fail(t, err);
    for (const t of [...this.#active]) this.#fail(t, err);
    this.#wake?.();
    this.#ctx.close();
  }
}
