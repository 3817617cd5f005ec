/**
 * A scheduler task and the types around it: what a caller submits
 * (`TaskSpec`), gets back (`TaskHandle`, `TaskResult`) and streams
 * (`TokenEvent`), the session record a task runs for (`SlotOwner`), and the
 * `Task` record the scheduler drives. `scheduler.ts` re-exports the public
 * types; nothing here imports the scheduler.
 *
 * @example
 * ```ts ignore
 * import type { TaskSpec } from "./_task.ts";
 * const spec: Partial<TaskSpec> = { stop: { nPredict: 16 }, priority: 1 };
 * console.log(spec.priority); // 1
 * ```
 * @module
 */

import type {
  Context,
  Model,
  Sampler,
  SamplerParams,
} from "../../bindings/mod.ts";
import { Errno, WasiNnError } from "../errno.ts";
import type { StopOptions, StopReason } from "./stopping.ts";
import type { TokenProbs } from "./token_probs.ts";
import { Generation } from "./_generation.ts";
import type { Checkpoint } from "./_prompt_cache.ts";

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
  /** The task running (or queued) for this session, if any. */
  running?: RunningTask;
}

/**
 * What a slot owner knows of the task it runs: whether it still waits in the
 * queue (a queued task's session may lose its slot). The scheduler's own task
 * objects implement it.
 *
 * @example
 * ```ts
 * import type { RunningTask } from "./scheduler.ts";
 * const t: RunningTask = { queued: true };
 * console.log(t.queued); // true
 * ```
 */
export interface RunningTask {
  /** True while the task waits for a slot. */
  readonly queued: boolean;
}

/**
 * One image or audio clip of a prompt: it takes the prompt's tokens
 * [start, end), placeholders (negative ids, the same for the same media) that
 * the prompt cache compares like any token.
 */
export interface MediaSpan {
  /** First token of the span in the prompt. */
  start: number;
  /** One past its last token. */
  end: number;
  /**
   * Positions it takes: its token count, or fewer with M-RoPE (qwen2vl:
   * an image's tokens share positions), so the positions of what follows
   * run behind the token indexes.
   */
  nPos: number;
}

/**
 * The media of a prompt (images, audio, through llama.cpp's mtmd): where
 * they are, and how one is evaluated into a sequence.
 */
export interface PromptMedia {
  /** The spans, in order, not overlapping. */
  readonly spans: readonly MediaSpan[];
  /** Its id in an engine process (where `eval` runs), when it lives in one. */
  readonly remote?: number;
  /**
   * Encodes span `span` and decodes its embeddings into sequence `seq` of
   * `ctx` from position `pos`; the last one's logits are kept when
   * `logitsLast` (to sample next).
   */
  eval(
    ctx: Context,
    span: MediaSpan,
    seq: number,
    pos: number,
    logitsLast: boolean,
  ): Promise<void>;
}

/** What to run. */
export interface TaskSpec {
  /** The session. */
  owner: SlotOwner;
  /** Prompt tokens (the whole conversation; the cached prefix is reused). */
  prompt: Int32Array;
  /** The prompt's images and audio, when it has any (their tokens are placeholders). */
  media?: PromptMedia;
  /**
   * The sampler: one the caller owns (prompt tokens are fed to it), or the
   * parameters of one that the scheduler makes for the task and frees when
   * it ends (what an engine in another process is given).
   */
  sampler: Sampler | Partial<SamplerParams>;
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

/**
 * Throws the WasiNnError a scheduler (in this process or an engine's)
 * refuses `spec` with when it is `closed` (RuntimeError) or the session
 * already runs a task (Busy).
 */
export function checkSubmittable(closed: boolean, spec: TaskSpec): void {
  if (closed) {
    throw new WasiNnError(Errno.RuntimeError, "the scheduler was closed");
  }
  if (spec.owner.running) {
    throw new WasiNnError(
      Errno.Busy,
      `session ${spec.owner.id} already has a running task`,
    );
  }
}

/** Where a task is: waiting, decoding its prompt, generating, ended. */
export type Phase = "queued" | "prompt" | "generate" | "done";

/** The scheduler's record of one task; `owner.running` while it lasts. */
export class Task implements RunningTask {
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
  /** The media span the prompt has reached: evaluated before any more of it. */
  mediaDue?: MediaSpan;
  /** When its last image was encoded (the scheduler's count): the longest waiting goes next. */
  mediaTurn = 0;
  /** Position minus token index at `pos` (below 0 after M-RoPE media). */
  posShift = 0;
  timer?: ReturnType<typeof setTimeout>;
  resolve!: (r: TaskResult) => void;
  reject!: (e: unknown) => void;
  result: Promise<TaskResult>;

  constructor(
    readonly spec: TaskSpec,
    /** The sampler it samples with (the caller's, or made for it). */
    readonly sampler: Sampler,
    model: Model,
    now: number,
  ) {
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

  /** True while the task waits for a slot. */
  get queued(): boolean {
    return this.phase === "queued";
  }

  /** What the task produced, ending at `end` (ms) for `reason`. */
  outcome(
    reason: StopReason,
    matched: string | number | undefined,
    end: number,
  ): TaskResult {
    const start = this.firstToken || end;
    const n = this.gen.tokens.length;
    return {
      text: this.gen.text,
      tokens: [...this.gen.tokens],
      stopReason: reason,
      stoppedBy: matched,
      truncated: this.truncated,
      probs: this.gen.probs,
      timings: {
        queueMs: (this.admitted || end) - this.enqueued,
        promptDecoded: this.pending.length,
        promptReused: this.reused,
        promptReusedChunks: this.reusedChunks,
        promptMs: this.admitted ? start - this.admitted : 0,
        generateMs: end - start,
        tokensPerSecond: end > start ? (n * 1000) / (end - start) : 0,
      },
    };
  }

  /**
   * On-demand tasks: the next token event, or null when the task ended; when
   * one must be generated first, its demand grows and `wanted()` runs.
   */
  next(wanted: () => void): Promise<TokenEvent | null> {
    if (this.ready.length > 0) return Promise.resolve(this.ready.shift()!);
    if (this.phase === "done") return Promise.resolve(null);
    return new Promise((res) => {
      this.waiters.push(res);
      this.demand++;
      wanted();
    });
  }

  /** Hands a generated token to a waiting `next()`, or keeps it for the next one. */
  deliver(ev: TokenEvent | null): void {
    const w = this.waiters.shift();
    if (w) w(ev);
    else if (this.spec.onDemand) this.ready.push(ev);
  }

  /** Ends the token stream: every waiting and later `next()` gets null. */
  endStream(): void {
    while (this.waiters.length > 0) this.waiters.shift()!(null);
    this.ready.push(null);
  }
}
