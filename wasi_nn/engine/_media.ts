/**
 * Where a prompt's media spans fall, for the scheduler: a cached prefix or
 * a checkpoint never ends inside an image (its embeddings are all in the
 * sequence, or none), a prompt chunk stops where the next image starts, and
 * with M-RoPE the positions after an image run behind the token indexes.
 *
 * @example
 * ```ts
 * import { nextMedia, outsideMedia, posShiftAt } from "./_media.ts";
 * const spans = [{ start: 3, end: 10, nPos: 3 }];
 * console.log(outsideMedia(6, spans)); // 3
 * console.log(outsideMedia(10, spans)); // 10
 * console.log(nextMedia(spans, 2)); // { start: 3, end: 10, nPos: 3 }
 * console.log(posShiftAt(12, spans)); // -4
 * ```
 * @module
 */

import type { MediaSpan } from "./_task.ts";

/** `n`, or the start of the span it falls inside (start < n < end). */
export function outsideMedia(n: number, spans: readonly MediaSpan[]): number {
  for (const s of spans) if (s.start < n && n < s.end) return s.start;
  return n;
}

/** The first span that starts at or after `pos`, if any. */
export function nextMedia(
  spans: readonly MediaSpan[],
  pos: number,
): MediaSpan | undefined {
  return spans.find((s) => s.start >= pos);
}

/** Position minus token index at token `n` (outside spans): what M-RoPE media before it took less. */
export function posShiftAt(n: number, spans: readonly MediaSpan[]): number {
  let shift = 0;
  for (const s of spans) {
    if (s.end <= n) shift += s.nPos - (s.end - s.start);
  }
  return shift;
}
