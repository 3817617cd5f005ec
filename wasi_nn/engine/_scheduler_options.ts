/**
 * The scheduler's options (`Scheduler.create`) and counters
 * (`Scheduler.stats`); `scheduler.ts` re-exports both.
 *
 * @example
 * ```ts
 * import type { SchedulerOptions } from "./_scheduler_options.ts";
 * const opts: SchedulerOptions = { nSeq: 4, nCtxPerSeq: 512, batchWaitMs: 2 };
 * console.log(opts.nSeq * opts.nCtxPerSeq); // 2048
 * ```
 * @module
 */

import type { ContextOptions } from "../../bindings/mod.ts";

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
