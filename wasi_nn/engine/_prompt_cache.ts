/**
 * The prompt cache's memory rules, as llama.cpp's server has them
 * (`tools/server/server-context.cpp`): what of a session's cached tokens a
 * new prompt may reuse, for every kind of memory llama.cpp has.
 *
 * - A plain KV cache drops any tail (`seqRemove` succeeds).
 * - Recurrent memory (Mamba, RWKV) and the recurrent part of hybrid memory
 *   (Qwen3.5, LFM2, Granite 4, Jamba, ...) hold one state per sequence: a tail
 *   cannot be dropped (`seqRemove` says so).
 * - Sliding-window attention (Gemma 2/3, gpt-oss, Cohere2) drops any tail, but
 *   positions older than the window are gone: a prefix is reusable only while
 *   the positions its window needs are still cached.
 *
 * Where a tail cannot be dropped, a context checkpoint (the parts of the
 * sequence state that cannot be rolled back, saved near the end of each
 * prompt) is restored; without one, the prompt is decoded from position 0.
 *
 * @example
 * ```ts
 * import { commonPrefix } from "./_prompt_cache.ts";
 * console.log(commonPrefix([1, 2, 3, 4], Int32Array.from([1, 2, 9]))); // 2
 * ```
 * @module
 */

import type { Context, ModelInfo } from "../../bindings/mod.ts";

/** A saved sequence state: the parts a removal cannot roll back, after `nTokens` tokens. */
export interface Checkpoint {
  /** Tokens the sequence held when it was saved. */
  readonly nTokens: number;
  /** `Context.sequenceState(seq, true)`. */
  readonly data: Uint8Array<ArrayBuffer>;
}

/** Checkpoints kept per session (oldest dropped first), as the server's `--ctx-checkpoints`. */
export const MAX_CHECKPOINTS = 4;

/** Tokens before the end of a prompt where its checkpoint is taken (the server's offset). */
export const CHECKPOINT_OFFSET = 4;

/** What the model's memory can do: decides the rules below. */
export interface MemoryTraits {
  /** Positions can be shifted (context shift, n_cache_reuse). */
  canShift: boolean;
  /** Sliding-window size (0: none). */
  nSwa: number;
  /** Part of the state cannot be rolled back: checkpoints are needed to reuse a prefix. */
  needsCheckpoints: boolean;
}

/**
 * The memory traits of a context's model.
 *
 * @example
 * ```ts ignore
 * import { memoryTraits } from "./_prompt_cache.ts";
 * declare const ctx: import("../../bindings/mod.ts").Context;
 * console.log(memoryTraits(ctx.model.info, ctx.canShift));
 * ```
 */
export function memoryTraits(info: ModelInfo, canShift: boolean): MemoryTraits {
  const nSwa = info.n_swa ?? 0;
  const needsCheckpoints = Boolean(info.is_recurrent || info.is_hybrid) ||
    nSwa > 0;
  return {
    // llama.cpp shifts recurrent positions, but a recurrent state cannot
    // drop the discarded span, and SWA positions leave the window: only a
    // plain KV cache shifts (the context shift, n_cache_reuse).
    canShift: canShift && !needsCheckpoints,
    nSwa,
    needsCheckpoints,
  };
}

/** Length of the common prefix of the cached tokens and a prompt. */
export function commonPrefix(
  cached: readonly number[],
  prompt: Int32Array,
): number {
  const max = Math.min(cached.length, prompt.length);
  let n = 0;
  while (n < max && cached[n] === prompt[n]) n++;
  return n;
}

/** What `reuseChunks` did: where the reused prompt ends, and how many tokens it moved. */
export interface ChunkReuse {
  /** Prompt tokens the sequence holds in place now (prefix and moved chunks). */
  end: number;
  /** Of those, tokens moved into place from later in the cache. */
  moved: number;
}

/**
 * The server's `n_cache_reuse`: after the common prefix (`from`), finds
 * chunks of at least `minChunk` cached tokens that reappear later in the
 * prompt and shifts them into place (sequence positions and `cache`, in
 * place). Only for memory that can shift (`MemoryTraits.canShift`); the
 * prompt's last token is never reused (its logits are needed).
 *
 * @example
 * ```ts ignore
 * import { reuseChunks } from "./_prompt_cache.ts";
 * declare const ctx: import("../../bindings/mod.ts").Context;
 * const cache = [1, 2, 7, 8, 3, 4, 5];
 * const r = reuseChunks(ctx, 0, cache, Int32Array.from([1, 2, 3, 4, 5, 6]), 2, 3);
 * console.log(r); // { end: 5, moved: 3 }
 * ```
 */
export function reuseChunks(
  ctx: Context,
  seq: number,
  cache: number[],
  prompt: Int32Array,
  from: number,
  minChunk: number,
): ChunkReuse {
  let headC = from, headP = from, moved = 0;
  while (headC < cache.length && headP < prompt.length - 1) {
    let m = 0;
    while (
      headC + m < cache.length && headP + m < prompt.length - 1 &&
      cache[headC + m] === prompt[headP + m]
    ) m++;
    if (m >= minChunk) {
      if (headC !== headP) {
        ctx.seqRemove(seq, headP, headC);
        ctx.seqAdd(seq, headC, headC + m, headP - headC);
        for (let i = 0; i < m; i++) cache[headP + i] = cache[headC + i];
      }
      headC += m;
      headP += m;
      moved += m;
    } else {
      headC++;
    }
  }
  return { end: headP, moved };
}

/**
 * How much of the cached tokens a new prompt may keep: their common prefix,
 * but never the whole prompt (its last token is decoded for its logits),
 * and nothing when the prompt cache is off.
 */
export function reusablePrefix(
  cached: readonly number[],
  prompt: Int32Array,
  cachePrompt = true,
): number {
  return cachePrompt
    ? Math.min(commonPrefix(cached, prompt), prompt.length - 1)
    : 0;
}

/**
 * Where to take a prompt's checkpoint ({@linkcode CHECKPOINT_OFFSET} tokens
 * before its end), when the memory needs checkpoints and that position is
 * past what the sequence already holds; -1 otherwise.
 */
export function checkpointPosition(
  promptLength: number,
  kept: number,
  traits: MemoryTraits,
): number {
  const at = promptLength - CHECKPOINT_OFFSET;
  return traits.needsCheckpoints && at > kept ? at : -1;
}

/** Where a session's cache reuse ended: how many tokens it keeps, and how. */
export interface Rollback {
  /** Tokens kept from the cache (the sequence holds exactly these now). */
  kept: number;
  /** "tail" (the tail was dropped), "checkpoint" (one was restored), "reset" (nothing kept), "none" (nothing to drop). */
  how: "none" | "tail" | "checkpoint" | "reset";
}

/**
 * Makes a sequence hold only the first `n` cached tokens, or the longest
 * prefix of them that the memory allows, and says how many it holds.
 * Checkpoints past what is kept are dropped from `checkpoints` (in place).
 * `posOf` maps a token count to the position it ends at (they differ after
 * M-RoPE media; default: the same).
 */
export function rollBack(
  ctx: Context,
  seq: number,
  cachedLength: number,
  n: number,
  traits: MemoryTraits,
  checkpoints: Checkpoint[],
  posOf: (tokens: number) => number = (n) => n,
): Rollback {
  const drop = (kept: number) => {
    for (let i = checkpoints.length - 1; i >= 0; i--) {
      if (checkpoints[i].nTokens > kept) checkpoints.splice(i, 1);
    }
  };
  if (n >= cachedLength) return { kept: cachedLength, how: "none" };
  if (
    n > 0 && ctx.seqRemove(seq, posOf(n), -1) &&
    windowHolds(ctx, seq, posOf(n), traits)
  ) {
    drop(n);
    return { kept: n, how: "tail" };
  }
  // The latest checkpoint at or before n, whose window (if any) is whole.
  for (let i = checkpoints.length - 1; i >= 0; i--) {
    const cp = checkpoints[i];
    if (cp.nTokens > n || cp.nTokens === 0) continue;
    try {
      ctx.setSequenceState(seq, cp.data, true);
    } catch {
      continue; // llama.cpp refused it: try an older one
    }
    if (ctx.seqRemove(seq, posOf(cp.nTokens), -1)) {
      drop(cp.nTokens);
      return { kept: cp.nTokens, how: "checkpoint" };
    }
  }
  ctx.seqRemove(seq, -1, -1);
  checkpoints.length = 0;
  return { kept: 0, how: "reset" };
}

/** With SWA: whether the positions the window needs to go on at `n` are still cached. */
function windowHolds(
  ctx: Context,
  seq: number,
  n: number,
  traits: MemoryTraits,
): boolean {
  if (traits.nSwa <= 0) return true;
  const posMin = ctx.seqPosMin(seq);
  return posMin >= 0 && posMin <= Math.max(0, n - traits.nSwa);
}

/** Keeps a new checkpoint, dropping the oldest beyond MAX_CHECKPOINTS. */
export function addCheckpoint(checkpoints: Checkpoint[], cp: Checkpoint): void {
  if (cp.data.length === 0) return;
  for (let i = checkpoints.length - 1; i >= 0; i--) {
    if (checkpoints[i].nTokens >= cp.nTokens) checkpoints.splice(i, 1);
  }
  checkpoints.push(cp);
  while (checkpoints.length > MAX_CHECKPOINTS) checkpoints.shift();
}
