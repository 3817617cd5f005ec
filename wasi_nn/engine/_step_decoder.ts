/**
 * How the scheduler's calls reach its llama.cpp context without stalling the
 * event loop: a short generation step as a blocking call (then a yield every
 * few milliseconds), anything longer as a non-blocking call on a worker
 * thread. While a non-blocking call runs the context is its own: sequences
 * freed meanwhile are cleared once it has returned, never during it.
 *
 * @example
 * ```ts ignore
 * import { StepDecoder } from "./_step_decoder.ts";
 * const decoder = new StepDecoder(ctx, { nSeq: 4 });
 * await decoder.decode(batch); // throws LlamaError when llama.cpp fails it
 * console.log(decoder.steps, decoder.decoded);
 * ```
 * @module
 */

import type { Batch, Context } from "../../bindings/mod.ts";
import type { SchedulerOptions } from "./_scheduler_options.ts";

/** What chooses between a blocking and a non-blocking decode. */
export type DecodeOptions = Pick<
  SchedulerOptions,
  "nSeq" | "blockingSteps" | "blockingStepMaxMs"
>;

/** Decodes steps on one context, and counts them. */
export class StepDecoder {
  #ctx: Context;
  #o: DecodeOptions;
  /** A non-blocking call is running on a worker thread: the context is its. */
  #busy = false;
  /** Sequences freed while #busy: cleared once the call has returned. */
  #clearLater: number[] = [];
  #closed = false;
  #lastStepMs = 0;
  #lastYield = 0;
  /** Decode steps so far (an image's evaluation counts as one). */
  steps = 0;
  /** How many of them were blocking calls. */
  blocking = 0;
  /** Tokens (and image positions) decoded so far. */
  decoded = 0;

  /** Decodes on `ctx`, which stays the caller's to free. */
  constructor(ctx: Context, o: DecodeOptions) {
    this.#ctx = ctx;
    this.#o = o;
  }

  /** Clears a freed sequence: now, or once the running call has returned. */
  clear(seq: number): void {
    if (this.#closed) return;
    if (this.#busy) this.#clearLater.push(seq);
    else this.#ctx.seqRemove(seq);
  }

  /**
   * Decodes a step's batch: a generation step (at most one token per slot)
   * whose last one was short as a blocking call, anything else
   * non-blocking. Throws what the decode throws; counts it when it worked.
   */
  async decode(batch: Batch): Promise<void> {
    const n = batch.tokens.length;
    const generation = n <= this.#o.nSeq;
    const block = this.#o.blockingSteps !== false && generation &&
      this.#lastStepMs < (this.#o.blockingStepMaxMs ?? 50);
    const t0 = performance.now();
    if (block) {
      // A generation step takes a few milliseconds: a blocking call, then
      // one turn of the event loop, is much faster than a non-blocking
      // call's two thread hops, and the event loop still runs between steps.
      this.#ctx.decodeSync(batch);
      this.#lastStepMs = performance.now() - t0;
      this.blocking++;
      // Yield every few milliseconds rather than every step: a long pause
      // lets the thread pool fall asleep, and waking it costs more than
      // the step. Timers and I/O still run at least every ~5 ms.
      const now = performance.now();
      if (now - this.#lastYield >= 5) {
        await yieldToEventLoop();
        this.#lastYield = performance.now();
      }
    } else {
      await this.nonBlocking(() => this.#ctx.decode(batch));
      // A generation step's time, to choose blocking again when it is short.
      if (generation) this.#lastStepMs = performance.now() - t0;
    }
    this.count(n);
  }

  /** Decodes a batch non-blocking (a session's part, decoded alone); counts it when it worked. */
  async decodeApart(batch: Batch): Promise<void> {
    await this.nonBlocking(() => this.#ctx.decode(batch));
    this.count(batch.tokens.length);
  }

  /**
   * Runs `work`, a non-blocking call on the context (a decode, an image
   * encode): sequences freed meanwhile are cleared once it has returned.
   */
  async nonBlocking(work: () => Promise<void>): Promise<void> {
    this.#busy = true;
    try {
      await work();
    } finally {
      this.#busy = false;
      const seqs = this.#clearLater;
      this.#clearLater = [];
      for (const seq of seqs) this.clear(seq);
    }
  }

  /** Counts one step of `n` positions decoded by other means (an image). */
  count(n: number): void {
    this.steps++;
    this.decoded += n;
  }

  /** The context is being freed: nothing is cleared any more. */
  close(): void {
    this.#closed = true;
  }
}

/** One macrotask turn: timers, I/O and other guests' calls get to run. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
