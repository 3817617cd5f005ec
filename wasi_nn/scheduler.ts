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
 * import { Model, Sampler } from "../bindings/mod.ts";
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
  type ContextOptions,
  LlamaError,
  type Model,
  type Sampler,
  Status,
} from "../bindings/mod.ts";
import { Errno, WasiNnError } from "./errno.ts";
import { PriorityQueue } from "./priority_queue.ts";
import type { StopOptions, StopReason } from "./stopping.ts";
import type { TokenProbs } from "./token_probs.ts";
import { checkPromptFits, Generation, shiftSpan } from "./_generation.ts";
import { kvCacheBytes } from "./_kv_memory.ts";
import {
  addCheckpoint,
  type Checkpoint,
  CHECKPOINT_OFFSET,
  commonPrefix,
  type MemoryTraits,
  memoryTraits,
  rollBack,
} from "./_prompt_cache.ts";

/** Options of `Scheduler.create`. */
export interface SchedulerOptions {
  /** Slots: sequences decoded together (sessions with a live KV state). */
  nSeq: number;
  /** Context length of each slot. */
  nCtxPerSeq: number;
  /** Max tokens per decode (shared by all slots in a step). Default 512. */
  nBatch?: number;
  /** Physical batch. */
  nUbatch?: number;
  /** Generation threads. */
  threads?: number;
  /** Prompt threads. */
  threadsBatch?: number;
  /** Thread-pool polling 0..100 (default 50; 0 when blockingSteps is false). */
  poll?: number;
  /** Flash attention. */
  flashAttn?: "auto" | "on" | "off";
  /**
   * Other options of the shared context: KV cache types, RoPE overrides,
   * KV offload. Size, sequences, batches, threads and polling come from the
   * fields above; the KV cache is never unified and never computes embeddings.
   */
  context?: ContextOptions;
  /**
   * The most tokens that idle sessions may keep cached in this context's
   * slots; beyond it, the least recently used idle sessions lose their cache
   * (the original project's `max_cache_tokens`). Default: no limit.
   */
  maxCacheTokens?: number;
  /**
   * Asked after every task: when true (memory is short), every idle session
   * loses its cache, so llama.cpp's KV cells can be reused at once.
   */
  memoryPressure?: () => boolean;
  /**
   * When the scheduler is idle and a task comes, wait up to this long for
   * more tasks before the first decode, so they share it (the original
   * project's `batch_timeout_ms`). Default 0: the same turn of the event loop.
   */
  batchWaitMs?: number;
  /** Tasks allowed to wait; one more is refused with Busy. Default 256. */
  maxQueue?: number;
  /** Milliseconds of waiting worth one priority level. Default 5000. */
  agingMs?: number;
  /** Clock in ms. */
  now?: () => number;
  /**
   * Generation steps (no prompt tokens in the batch) as blocking calls
   * followed by one event-loop turn (default true); prompt batches are
   * always non-blocking. false: every decode is non-blocking.
   */
  blockingSteps?: boolean;
  /**
   * A generation step runs blocking only while the last one took less than
   * this (default 50 ms): a big model's steps are long, and blocking the
   * event loop that long would stall the program; a non-blocking call's
   * thread hops cost little next to such a step.
   */
  blockingStepMaxMs?: number;
}

/** A scheduler's counters (`Scheduler.stats`). */
export interface SchedulerStats {
  /** Decode steps so far. */
  steps: number;
  /** Of those, blocking calls (short generation steps). */
  blockingSteps: number;
  /** Tokens decoded so far. */
  decoded: number;
  /** Tasks waiting for a slot. */
  queued: number;
  /** Tasks running. */
  running: number;
  /** Slots holding a session's tokens. */
  slotsUsed: number;
}

/** A session's claim on a slot: its KV sequence and the tokens in it. */
export interface SlotOwner {
  /** Session id. */
  readonly id: string;
  /** The slot (sequence id) holding this session's KV, if any. */
  slot?: number;
  /** Tokens held in that slot, position by position. */
  cached: number[];
  /** Context checkpoints of that slot (memory that cannot drop a tail, or SWA). */
  checkpoints: Checkpoint[];
  /** Last time a task of this session ended (ms). */
  lastUsed: number;
  /** The task running for this session, if any. */
  running?: unknown;
}

/** What to run. */
export interface TaskSpec {
  /** The session. */
  owner: SlotOwner;
  /** Prompt tokens (the whole conversation; the cached prefix is reused). */
  prompt: Int32Array;
  /** The sampler (owned by the caller; prompt tokens are fed to it). */
  sampler: Sampler;
  /** Stopping criteria. */
  stop?: StopOptions;
  /** Generate past end-of-generation tokens. */
  ignoreEos?: boolean;
  /** Priority level (higher first). */
  priority?: number;
  /** Cancels the task (queued or running). */
  signal?: AbortSignal;
  /** Tasks allowed to wait when this one comes (default: the scheduler's maxQueue). */
  maxQueue?: number;
  /** Longest wait in the queue before Busy. */
  queueTimeoutMs?: number;
  /** Reuse the session's cached prefix (default true). */
  cachePrompt?: boolean;
  /** Also reuse cached chunks of at least this many tokens found later in the prompt (the server's n_cache_reuse; 0 = off). */
  cacheReuse?: number;
  /** Shift the context when it fills instead of stopping. */
  contextShift?: boolean;
  /** Tokens kept at the start on a shift, after the BOS (-1 = the whole prompt; default 0, as the server). */
  nKeep?: number;
  /** Tokens discarded on a shift (0 = half of what is not kept). */
  nDiscard?: number;
  /** Streaming: tokens are produced only on demand (`TaskHandle.next`). */
  onDemand?: boolean;
  /** Record the top-N candidate probabilities of every generated token (the server's n_probs). */
  nProbs?: number;
  /** Text released as it becomes safe (complete characters, no stop-string prefix). */
  onText?: (text: string) => void;
  /** Each generated token's bytes (not for the final EOG token). */
  onToken?: (token: number, bytes: Uint8Array) => void;
}

/** A generated token, for on-demand (streaming) tasks. */
export interface TokenEvent {
  /** Token id. */
  token: number;
  /** Its bytes. */
  bytes: Uint8Array;
}

/** Timings of one task. */
export interface TaskTimings {
  /** Waiting for a slot. */
  queueMs: number;
  /** Prompt tokens actually decoded (not reused). */
  promptDecoded: number;
  /** Prompt tokens reused from the session's cache. */
  promptReused: number;
  /** Of those, tokens reused by shifting cached chunks (n_cache_reuse). */
  promptReusedChunks: number;
  /** From admission to the first sampled token. */
  promptMs: number;
  /** From the first to the last token. */
  generateMs: number;
  /** Generated tokens per second. */
  tokensPerSecond: number;
}

/** The outcome of a task. */
export interface TaskResult {
  /** Generated text (cut at a stop string unless includeStop). */
  text: string;
  /** Generated tokens (the EOG token included when it ended generation). */
  tokens: number[];
  /** Why it stopped. */
  stopReason: StopReason;
  /** The stop string or token that matched. */
  stoppedBy?: string | number;
  /** Whether a context shift dropped tokens. */
  truncated: boolean;
  /** Per generated token: its probability and the top candidates (when nProbs > 0). */
  probs?: TokenProbs[];
  /** Timings. */
  timings: TaskTimings;
}

/** A submitted task. */
export interface TaskHandle {
  /** Settles when the task ends (rejects with WasiNnError on Busy, PromptTooLong, errors). */
  result: Promise<TaskResult>;
  /** On-demand tasks: generate one more token; null when the task ended. */
  next(): Promise<TokenEvent | null>;
  /** Stops the task (result resolves with stopReason "cancelled"). */
  cancel(): void;
}

type Phase = "queued" | "prompt" | "generate" | "done";

class Task {
  phase: Phase = "queued";
  slot = -1;
  pending: Int32Array = new Int32Array(0);
  pendingAt = 0;
  pos = 0;
  lastToken = -1;
  demand: number;
  waiters: ((e: TokenEvent | null) => void)[] = [];
  ready: (TokenEvent | null)[] = [];
  gen: Generation;
  truncated = false;
  cancelled = false;
  enqueued: number;
  admitted = 0;
  firstToken = 0;
  reused = 0;
  reusedChunks = 0;
  /** How the cache was reused: "none" | "tail" | "checkpoint" | "reset". */
  reuse = "none";
  /** Position where a checkpoint is to be taken (-1: none). */
  checkpointAt = -1;
  timer?: ReturnType<typeof setTimeout>;
  resolve!: (r: TaskResult) => void;
  reject!: (e: unknown) => void;
  result: Promise<TaskResult>;

  constructor(readonly spec: TaskSpec, model: Model, now: number) {
    this.demand = spec.onDemand ? 0 : Infinity;
    this.gen = new Generation(model, {
      stop: spec.stop,
      ignoreEos: spec.ignoreEos,
      nProbs: spec.nProbs,
    });
    this.enqueued = now;
    this.result = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.result.catch(() => {}); // observed by the caller through the handle
  }
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
  #slots: (SlotOwner | undefined)[];
  #owners = new Map<string, SlotOwner>();
  #running = false;
  #wake?: () => void;
  #now: () => number;
  #closed = false;
  #nBatch: number;
  #steps = 0;
  #lastYield = 0;
  #decoded = 0;
  #blocking = 0;
  #lastStepMs = 0;
  #traits: MemoryTraits;

  private constructor(model: Model, ctx: Context, opts: SchedulerOptions) {
    this.#model = model;
    this.#ctx = ctx;
    this.#opts = { maxQueue: 256, ...opts };
    this.#now = opts.now ?? (() => performance.now());
    this.#queue = new PriorityQueue({
      agingMs: opts.agingMs ?? 5000,
      now: this.#now,
    });
    this.#slots = new Array(opts.nSeq).fill(undefined);
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
      slotsUsed: this.#slots.filter(Boolean).length,
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
    this.#freeSlot(owner);
    this.#owners.delete(owner.id);
  }

  /** Frees a session's slot (its cached tokens are dropped). */
  #freeSlot(owner: SlotOwner): void {
    if (owner.slot !== undefined) {
      if (!this.#closed) this.#ctx.seqRemove(owner.slot);
      this.#slots[owner.slot] = undefined;
      owner.slot = undefined;
    }
    owner.cached = [];
    owner.checkpoints = [];
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
    const slot = owner.slot ?? this.#takeSlot(owner);
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
      this.#freeSlot(owner);
      throw e instanceof LlamaError
        ? new WasiNnError(Errno.RuntimeError, e.message)
        : e;
    }
  }

  /** Runs f while no decode is running. */
  async #exclusive<T>(f: () => Promise<T>): Promise<T> {
    while (this.#running && this.#active.size > 0) {
      await new Promise((r) => setTimeout(r, 1));
    }
    return await f();
  }

  /** Queues a task. Throws WasiNnError(Busy) when the queue is full or the session is busy. */
  submit(spec: TaskSpec): TaskHandle {
    if (this.#closed) {
      throw new WasiNnError(Errno.RuntimeError, "the scheduler was closed");
    }
    if (spec.owner.running) {
      throw new WasiNnError(
        Errno.Busy,
        `session ${spec.owner.id} already has a running task`,
      );
    }
    // Tasks that a free slot will take at the next step are not waiting.
    const waiting = this.#queue.size - this.#freeSlots();
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
    const task = new Task(spec, this.#model, this.#now());
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
      next: () => this.#next(task),
      cancel: () => this.#cancel(task),
    };
  }

  /** Slots a queued task could take now: empty, or held by an idle session. */
  #freeSlots(): number {
    let n = 0;
    for (const o of this.#slots) {
      if (!o?.running || (o.running as Task).phase === "queued") n++;
    }
    return n;
  }

  #next(task: Task): Promise<TokenEvent | null> {
    if (task.ready.length > 0) return Promise.resolve(task.ready.shift()!);
    if (task.phase === "done") return Promise.resolve(null);
    return new Promise((res) => {
      task.waiters.push(res);
      task.demand++;
      this.#kick();
    });
  }

  #deliver(task: Task, ev: TokenEvent | null): void {
    const w = task.waiters.shift();
    if (w) w(ev);
    else if (task.spec.onDemand) task.ready.push(ev);
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
      // A task submitted while the loop was finishing must not be left waiting.
      if (this.#queue.size > 0 && !this.#closed) this.#kick();
    });
  }

  /**
   * Frees idle sessions' slots: all of them under memory pressure, otherwise
   * the least recently used ones until the cached tokens of idle sessions fit
   * in maxCacheTokens. Returns how many slots were freed.
   */
  #trimCache(): number {
    const idle = this.#slots.filter((o): o is SlotOwner =>
      o !== undefined && !o.running
    );
    if (idle.length === 0) return 0;
    if (this.#opts.memoryPressure?.()) {
      for (const o of idle) this.#freeSlot(o);
      return idle.length;
    }
    const max = this.#opts.maxCacheTokens;
    if (max === undefined) return 0;
    let total = idle.reduce((n, o) => n + o.cached.length, 0);
    let freed = 0;
    idle.sort((a, b) => a.lastUsed - b.lastUsed);
    for (const o of idle) {
      if (total <= max) break;
      total -= o.cached.length;
      this.#freeSlot(o);
      freed++;
    }
    return freed;
  }

  /** Finds a slot for an owner: its own, a free one, or the least recently used idle one. */
  #takeSlot(owner: SlotOwner): number | undefined {
    if (owner.slot !== undefined) return owner.slot;
    let slot = this.#slots.findIndex((o) => o === undefined);
    if (slot < 0) {
      let lru: SlotOwner | undefined;
      for (const o of this.#slots) {
        // A session whose task is only queued may lose its slot (and its cache).
        const busy = o?.running && (o.running as Task).phase !== "queued";
        if (o && !busy && (!lru || o.lastUsed < lru.lastUsed)) lru = o;
      }
      if (!lru) return undefined;
      slot = lru.slot!;
      this.#freeSlot(lru);
    }
    this.#slots[slot] = owner;
    owner.slot = slot;
    owner.cached = [];
    owner.checkpoints = [];
    return slot;
  }

  #admit(): void {
    while (this.#queue.size > 0) {
      const task = this.#queue.peek()!;
      const slot = this.#takeSlot(task.spec.owner);
      if (slot === undefined) return;
      this.#queue.pop();
      if (task.timer !== undefined) clearTimeout(task.timer);
      try {
        this.#start(task, slot);
      } catch (e) {
        // Whatever went wrong, this session's slot content is unknown now.
        this.#freeSlot(task.spec.owner);
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
    const { owner, prompt, sampler } = task.spec;
    task.slot = slot;
    task.admitted = this.#now();
    // At least the prompt's last token is decoded: its logits are needed.
    const n0 = task.spec.cachePrompt === false
      ? 0
      : Math.min(commonPrefix(owner.cached, prompt), prompt.length - 1);
    let n = n0;
    let reusedChunks = 0;
    const minChunk = task.spec.cacheReuse ?? 0;
    if (
      task.spec.cachePrompt !== false && minChunk > 0 && this.#traits.canShift
    ) {
      // The server's n_cache_reuse: after the common prefix, find chunks of the
      // cache that reappear later in the prompt and shift them into place.
      const cache = owner.cached;
      let headC = n, headP = n;
      while (headC < cache.length && headP < prompt.length - 1) {
        let m = 0;
        while (
          headC + m < cache.length && headP + m < prompt.length - 1 &&
          cache[headC + m] === prompt[headP + m]
        ) m++;
        if (m >= minChunk) {
          if (headC !== headP) {
            this.#ctx.seqRemove(slot, headP, headC);
            this.#ctx.seqAdd(slot, headC, headC + m, headP - headC);
            for (let i = 0; i < m; i++) cache[headP + i] = cache[headC + i];
          }
          headC += m;
          headP += m;
          reusedChunks += m;
        } else {
          headC++;
        }
      }
      n = headP;
    }
    // Drop the rest, as far as the memory allows (recurrent state, SWA window).
    const back = rollBack(
      this.#ctx,
      slot,
      owner.cached.length,
      n,
      this.#traits,
      owner.checkpoints,
    );
    n = back.kept;
    if (back.how === "checkpoint" || back.how === "reset") reusedChunks = 0;
    owner.cached.length = n;
    task.reused = n;
    task.reusedChunks = reusedChunks;
    task.reuse = back.how;
    // A checkpoint near the end of the prompt lets the next turn reuse it.
    const at = prompt.length - CHECKPOINT_OFFSET;
    task.checkpointAt = this.#traits.needsCheckpoints && at > n ? at : -1;
    task.pending = prompt.subarray(n) as Int32Array;
    task.pendingAt = 0;
    task.pos = n;
    for (const t of prompt) sampler.accept(t);
    task.phase = "prompt";
    this.#active.add(task);
  }

  /** Makes room in a full slot by discarding tokens (the server's context shift). */
  #shift(task: Task): boolean {
    const owner = task.spec.owner;
    const nCtx = this.nCtxPerSeq;
    if (!task.spec.contextShift || !this.#traits.canShift) return false;
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

  async #loop(): Promise<void> {
    const tokens = new Int32Array(this.#nBatch);
    const pos = new Int32Array(this.#nBatch);
    const seqs = new Int32Array(this.#nBatch);
    const logits = new Uint8Array(this.#nBatch);
    while (!this.#closed) {
      for (const t of [...this.#active]) {
        if (t.cancelled) this.#finish(t, "cancelled");
      }
      this.#admit();
      if (this.#active.size === 0) {
        if (this.#queue.size === 0) return;
        // Every slot is held by a running task elsewhere: wait for a change.
        await new Promise<void>((r) => this.#wake = r);
        continue;
      }
      let n = 0;
      const sampleAt: [Task, number][] = [];
      // 1. One token for every generating task that wants one.
      for (const t of this.#active) {
        if (t.phase !== "generate" || t.demand <= 0 || n >= this.#nBatch) {
          continue;
        }
        if (t.pos >= this.nCtxPerSeq && !this.#shift(t)) {
          this.#finish(t, "context_full");
          continue;
        }
        tokens[n] = t.lastToken;
        pos[n] = t.pos;
        seqs[n] = t.slot;
        logits[n] = 1;
        sampleAt.push([t, n]);
        t.spec.owner.cached.push(t.lastToken);
        t.pos++;
        n++;
      }
      // 2. Prompt chunks fill the rest of the batch.
      for (const t of this.#active) {
        if (t.phase !== "prompt" || n >= this.#nBatch) continue;
        let take = Math.min(this.#nBatch - n, t.pending.length - t.pendingAt);
        // A chunk ends where a checkpoint is to be taken.
        if (t.checkpointAt > t.pos) {
          take = Math.min(take, t.checkpointAt - t.pos);
        }
        for (let i = 0; i < take; i++) {
          const tok = t.pending[t.pendingAt + i];
          tokens[n] = tok;
          pos[n] = t.pos;
          seqs[n] = t.slot;
          logits[n] = 0;
          t.spec.owner.cached.push(tok);
          t.pos++;
          n++;
        }
        t.pendingAt += take;
        if (t.pendingAt === t.pending.length) {
          logits[n - 1] = 1;
          sampleAt.push([t, n - 1]);
        }
      }
      if (n === 0) {
        // Only on-demand tasks without demand: sleep until something changes.
        await new Promise<void>((r) => this.#wake = r);
        continue;
      }
      const batch = {
        tokens: tokens.subarray(0, n) as Int32Array<ArrayBuffer>,
        pos: pos.subarray(0, n) as Int32Array<ArrayBuffer>,
        seqIds: seqs.subarray(0, n) as Int32Array<ArrayBuffer>,
        logits: logits.subarray(0, n) as Uint8Array<ArrayBuffer>,
      };
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
          await this.#ctx.decode(batch);
          // A generation step's time, to choose blocking again when it is short.
          if (n <= this.#opts.nSeq) this.#lastStepMs = performance.now() - t0;
        }
        this.#steps++;
        this.#decoded += n;
      } catch (e) {
        // One session's failure must not cost the others: decode each
        // session's part alone, so that only the one that fails fails.
        await this.#retryApart(batch, sampleAt, e);
        continue;
      }
      this.#checkpoint(batch.seqIds);
      for (const [t, idx] of sampleAt) {
        if (t.phase === "done") continue;
        this.#sample(t, idx);
      }
    }
  }

  /**
   * After a failed decode of a batch of several sessions: decodes each
   * session's part alone (and samples it at once: the next decode
   * overwrites the logits). A part that fails again fails its task only.
   */
  async #retryApart(
    batch: {
      tokens: Int32Array<ArrayBuffer>;
      pos: Int32Array<ArrayBuffer>;
      seqIds: Int32Array<ArrayBuffer>;
      logits: Uint8Array<ArrayBuffer>;
    },
    sampleAt: [Task, number][],
    first: unknown,
  ): Promise<void> {
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
          await this.#ctx.decode(part);
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
      this.#checkpoint(part.seqIds);
      for (const [task, i] of sampleAt) {
        if (task !== t || task.phase === "done") continue;
        this.#sample(task, idx.indexOf(i));
      }
    }
  }

  /** Ends a task whose decode failed; the cache keeps only what the sequence still holds. */
  #lose(t: Task, e: unknown): void {
    const owner = t.spec.owner;
    const held = this.#ctx.seqPosMax(t.slot) + 1;
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

  #sample(t: Task, idx: number): void {
    const now = this.#now();
    if (t.phase === "prompt") {
      t.phase = "generate";
      t.firstToken = now;
    }
    let token: number;
    try {
      token = t.spec.sampler.sample(this.#ctx, idx);
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
    const out = t.gen.take(token, t.spec.sampler);
    if (!out.eog) t.spec.onToken?.(token, out.bytes);
    if (out.emit) t.spec.onText?.(out.emit);
    if (out.eog) {
      this.#finish(t, "eos", token);
      return;
    }
    if (t.spec.onDemand) {
      t.demand--;
      this.#deliver(t, { token, bytes: out.bytes });
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
    this.#trimCache();
    const end = this.#now();
    const start = t.firstToken || end;
    const n = t.gen.tokens.length;
    t.resolve({
      text: t.gen.text,
      tokens: [...t.gen.tokens],
      stopReason: reason,
      stoppedBy: matched,
      truncated: t.truncated,
      probs: t.gen.probs,
      timings: {
        queueMs: (t.admitted || end) - t.enqueued,
        promptDecoded: t.pending.length,
        promptReused: t.reused,
        promptReusedChunks: t.reusedChunks,
        promptMs: t.admitted ? start - t.admitted : 0,
        generateMs: end - start,
        tokensPerSecond: end > start ? (n * 1000) / (end - start) : 0,
      },
    });
    while (t.waiters.length > 0) t.waiters.shift()!(null);
    t.ready.push(null);
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
    while (t.waiters.length > 0) t.waiters.shift()!(null);
    t.ready.push(null);
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
