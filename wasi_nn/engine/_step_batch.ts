/**
 * Building one decode step's batch from the running tasks, as llama.cpp's
 * server does in `update_slots()`: first one token for every generating
 * task, then prompt chunks into the room left. Nothing here decodes; the
 * tasks' positions and caches advance as their tokens are added.
 *
 * @example
 * ```ts
 * import { newBatch, seqsInclude } from "./_step_batch.ts";
 * const buf = newBatch(512);
 * buf.seqIds.set([0, 0, 2]);
 * console.log(seqsInclude(buf.seqIds.subarray(0, 3), 2)); // true
 * ```
 * @module
 */

import type { Batch } from "../../bindings/mod.ts";
import { nextMedia } from "./_media.ts";
import type { Task } from "./_task.ts";

/** A batch with every array set (`logits` too); also the loop's buffers. */
export type FullBatch = Required<Batch>;

/** One decode step: its batch, and the tasks to sample with their batch indexes. */
export interface Step {
  /** What is decoded. */
  batch: FullBatch;
  /** Each task that samples after the decode, with its token's batch index. */
  sampleAt: [Task, number][];
}

/**
 * Buffers for batches of up to `n` tokens.
 *
 * @example
 * ```ts
 * import { newBatch } from "./_step_batch.ts";
 * console.log(newBatch(8).tokens.length); // 8
 * ```
 */
export function newBatch(n: number): FullBatch {
  return {
    tokens: new Int32Array(n),
    pos: new Int32Array(n),
    seqIds: new Int32Array(n),
    logits: new Uint8Array(n),
  };
}

/**
 * Adds one token for every generating task that wants one, while the batch
 * has room; `roomFor(t)` is asked first when a task's slot is full (it
 * shifts the context, or ends the task and says false). Returns the batch
 * length.
 *
 * @example
 * ```ts ignore
 * const n = addNextTokens(active, buf, 512, nCtxPerSeq, (t) => shift(t));
 * ```
 */
export function addNextTokens(
  tasks: Iterable<Task>,
  buf: FullBatch,
  nBatch: number,
  nCtx: number,
  sampleAt: [Task, number][],
  roomFor: (t: Task) => boolean,
): number {
  let n = 0;
  for (const t of tasks) {
    if (t.phase !== "generate" || t.demand <= 0 || n >= nBatch) continue;
    if (t.pos >= nCtx && !roomFor(t)) continue;
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
 * ends where a checkpoint is to be taken or an image starts (the image is
 * then due: `t.mediaDue`), and a prompt's last token keeps its logits.
 * Returns the batch length.
 *
 * @example
 * ```ts ignore
 * n = addPromptChunks(active, buf, n, 512, sampleAt);
 * ```
 */
export function addPromptChunks(
  tasks: Iterable<Task>,
  buf: FullBatch,
  n: number,
  nBatch: number,
  sampleAt: [Task, number][],
): number {
  for (const t of tasks) {
    if (t.phase !== "prompt" || n >= nBatch || t.mediaDue) continue;
    let take = Math.min(nBatch - n, t.pending.length - t.pendingAt);
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
 * The first `n` entries of the buffers, as a step's batch (views, no copy).
 *
 * @example
 * ```ts
 * import { firstTokens, newBatch } from "./_step_batch.ts";
 * console.log(firstTokens(newBatch(8), 3).pos.length); // 3
 * ```
 */
export function firstTokens(buf: FullBatch, n: number): FullBatch {
  return {
    tokens: buf.tokens.subarray(0, n),
    pos: buf.pos.subarray(0, n),
    seqIds: buf.seqIds.subarray(0, n),
    logits: buf.logits.subarray(0, n),
  };
}

/**
 * One sequence's part of a step (a copy), with its sampling indexes
 * renumbered into the part: to decode a session alone after a shared
 * decode failed.
 *
 * @example
 * ```ts
 * import { newBatch, partOf } from "./_step_batch.ts";
 * const batch = newBatch(3);
 * batch.seqIds.set([0, 1, 1]);
 * console.log(partOf({ batch, sampleAt: [] }, 1).batch.seqIds); // Int32Array(2) [ 1, 1 ]
 * ```
 */
export function partOf(step: Step, slot: number): Step {
  const { batch } = step;
  const idx: number[] = [];
  for (let i = 0; i < batch.seqIds.length; i++) {
    if (batch.seqIds[i] === slot) idx.push(i);
  }
  return {
    batch: {
      tokens: Int32Array.from(idx, (i) => batch.tokens[i]),
      pos: Int32Array.from(idx, (i) => batch.pos[i]),
      seqIds: Int32Array.from(idx, (i) => batch.seqIds[i]),
      logits: Uint8Array.from(idx, (i) => batch.logits[i]),
    },
    sampleAt: step.sampleAt.filter(([t]) => t.slot === slot)
      .map(([t, i]) => [t, idx.indexOf(i)]),
  };
}

/**
 * Whether a batch's sequence ids include `slot`.
 *
 * @example
 * ```ts
 * import { seqsInclude } from "./_step_batch.ts";
 * console.log(seqsInclude(Int32Array.of(0, 3), 1)); // false
 * ```
 */
export function seqsInclude(seqs: Int32Array, slot: number): boolean {
  for (let i = 0; i < seqs.length; i++) if (seqs[i] === slot) return true;
  return false;
}
