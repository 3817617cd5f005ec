/**
 * "Did you mean" for config keys, sampler names and enum values: the closest
 * known spelling within an edit distance that grows with the word's length
 * (1 up to 4 characters, else a quarter of it, at least 2).
 *
 * Cheap by construction: the candidates are indexed by length once, only
 * those whose length is within the allowed distance are compared, and each
 * comparison stops as soon as it cannot beat the best so far. A word much
 * longer than every candidate costs nothing.
 *
 * @example
 * ```ts
 * import { closest, SpellingIndex } from "./_key_suggest.ts";
 * const index = new SpellingIndex(["temperature", "top_k", "top_p"]);
 * console.log(closest("temprature", index), closest("x".repeat(1e6), index)); // temperature undefined
 * ```
 * @module
 */

/**
 * Candidates grouped by length, each with its position in the original list
 * (ties go to the earlier one, as a plain scan in order would).
 *
 * @example
 * ```ts
 * import { SpellingIndex } from "./_key_suggest.ts";
 * console.log(new SpellingIndex(["a", "bb"]).maxLength); // 2
 * ```
 */
export class SpellingIndex {
  /** Candidates by length: [spelling, position]. */
  readonly byLength: ReadonlyMap<number, readonly [string, number][]>;
  /** The longest candidate's length. */
  readonly maxLength: number;

  /** Indexes `candidates` (kept in order for ties). */
  constructor(candidates: Iterable<string>) {
    const by = new Map<number, [string, number][]>();
    let i = 0;
    let max = 0;
    for (const s of candidates) {
      let bucket = by.get(s.length);
      if (!bucket) by.set(s.length, bucket = []);
      bucket.push([s, i++]);
      if (s.length > max) max = s.length;
    }
    this.byLength = by;
    this.maxLength = max;
  }
}

const cache = new WeakMap<readonly string[], SpellingIndex>();

/** The index of a stable candidate array (built once per array). */
function indexOf(candidates: readonly string[]): SpellingIndex {
  let index = cache.get(candidates);
  if (!index) cache.set(candidates, index = new SpellingIndex(candidates));
  return index;
}

/**
 * Levenshtein distance of `a` and `b` if it is at most `bound`, else
 * `bound + 1` (computed no further than needed).
 *
 * @example
 * ```ts
 * import { boundedDistance } from "./_key_suggest.ts";
 * console.log(boundedDistance("kitten", "sitting", 5), boundedDistance("kitten", "sitting", 1)); // 3 2
 * ```
 */
export function boundedDistance(a: string, b: string, bound: number): number {
  if (Math.abs(a.length - b.length) > bound) return bound + 1;
  let prev = new Int32Array(b.length + 1);
  let cur = new Int32Array(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    let rowMin = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(
        prev[j] + 1,
        cur[j - 1] + 1,
        prev[j - 1] + (ca === b.charCodeAt(j - 1) ? 0 : 1),
      );
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > bound) return bound + 1;
    [prev, cur] = [cur, prev];
  }
  return Math.min(prev[b.length], bound + 1);
}

/**
 * The closest candidate to `word` (compared in lower case) within the allowed
 * distance, or undefined. `candidates`: a {@linkcode SpellingIndex}, or a
 * stable array (indexed once and cached).
 *
 * @example
 * ```ts
 * import { closest } from "./_key_suggest.ts";
 * const modes = ["none", "layer", "row"] as const;
 * console.log(closest("nope", modes), closest("zzzzzz", modes)); // none undefined
 * ```
 */
export function closest(
  word: string,
  candidates: SpellingIndex | readonly string[],
): string | undefined {
  const index = candidates instanceof SpellingIndex
    ? candidates
    : indexOf(candidates);
  const limit = word.length <= 4 ? 1 : Math.max(2, Math.floor(word.length / 4));
  if (word.length - limit > index.maxLength) return undefined;
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = limit;
  let bestAt = Infinity;
  const from = Math.max(0, w.length - limit);
  const to = Math.min(index.maxLength, w.length + limit);
  for (let len = from; len <= to; len++) {
    for (const [s, at] of index.byLength.get(len) ?? []) {
      const d = boundedDistance(w, s, bestD);
      if (d < bestD || (d === bestD && at < bestAt)) {
        bestD = d;
        best = s;
        bestAt = at;
      }
    }
  }
  return best;
}
