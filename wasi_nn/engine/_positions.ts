/**
 * Internal: how many positions a model can take at all. Most models encode
 * positions with RoPE or ALiBi and run (with less quality) past their
 * training context; a few have a learned table of absolute positions
 * (`position_embd.weight`, `n_ctx_train` rows) and llama.cpp aborts the
 * process (`GGML_ASSERT(i01 >= 0 && i01 < ne01)` in ggml's get_rows) on a
 * position past its end.
 * @module
 */

/**
 * The architectures whose llama.cpp loader (`src/models/<arch>.cpp` of the
 * pinned checkout) reads a learned position table of `n_ctx_train` rows.
 * (MPT's is optional; without it MPT uses ALiBi, but the table cannot be
 * seen through llama.cpp's API, so MPT is held to it too.)
 *
 * @example
 * ```ts
 * import { LEARNED_POSITION_ARCHS } from "./_positions.ts";
 * console.log(LEARNED_POSITION_ARCHS.includes("bert")); // true
 * ```
 */
export const LEARNED_POSITION_ARCHS: readonly string[] = [
  "bert",
  "jina-bert-v3",
  "gpt2",
  "starcoder",
  "mpt",
];

/**
 * The most positions a model takes (its training context) when it has a
 * learned position table, else `undefined` (no hard limit).
 *
 * @example
 * ```ts
 * import { maxPositions } from "./_positions.ts";
 * console.log(maxPositions("bert", 512), maxPositions("llama", 4096)); // 512 undefined
 * ```
 */
export function maxPositions(
  arch: string,
  nCtxTrain: number,
): number | undefined {
  return LEARNED_POSITION_ARCHS.includes(arch) && nCtxTrain > 0
    ? nCtxTrain
    : undefined;
}
