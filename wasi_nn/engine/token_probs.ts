/**
 * The server's `n_probs` report: the probability of each generated token
 * and the top N candidates after the sampler chain.
 *
 * @example
 * ```ts
 * import type { TokenProbs } from "./token_probs.ts";
 * const p: TokenProbs = { token: 1, piece: "a", prob: 0.5, top: [] };
 * console.log(p.prob);
 * ```
 * @module
 */

import type { Model, Sampler } from "../../bindings/mod.ts";

/**
 * One candidate token and its probability.
 *
 * @example
 * ```ts
 * import type { TokenProb } from "./token_probs.ts";
 * const c: TokenProb = { token: 15043, piece: " Hello", prob: 0.25 };
 * console.log(c.prob);
 * ```
 */
export interface TokenProb {
  /** Token id. */
  token: number;
  /** Its text (special tokens rendered). */
  piece: string;
  /** Probability after the sampler chain (0..1). */
  prob: number;
}

/**
 * A generated token with its probability and the top N candidates (`n_probs`).
 *
 * @example
 * ```ts
 * import type { TokenProbs } from "./token_probs.ts";
 * const p: TokenProbs = { token: 1, piece: "a", prob: 0.5, top: [{ token: 1, piece: "a", prob: 0.5 }] };
 * console.log(p.top.reduce((s, c) => s + c.prob, 0) <= 1); // true
 * ```
 */
export interface TokenProbs extends TokenProb {
  /** The top N candidates, most likely first (their sum is at most 1). */
  top: TokenProb[];
}

/**
 * The `n_probs` report of the token just sampled: its probability and the
 * top `n` candidates after the sampler chain (call right after the sample,
 * before the next one). Every generation loop uses it.
 *
 * @example
 * ```ts
 * import { Context, Model, Sampler } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { tokenProbs } from "./token_probs.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * const ctx = await Context.create(model, { nCtx: 128 });
 * using sampler = Sampler.create(model, { seed: 1, top_k: 4 });
 * const prompt = model.tokenize("Hello");
 * await ctx.decodePrompt(prompt);
 * const { token } = await ctx.step(sampler, { pos: prompt.length });
 * const p = tokenProbs(sampler, model, token, 4);
 * console.log(p.token === token, p.top.length); // true 4
 * ```
 */
export function tokenProbs(
  sampler: Sampler,
  model: Model,
  token: number,
  n: number,
): TokenProbs {
  const withPiece = (c: { token: number; prob: number }): TokenProb => ({
    token: c.token,
    piece: model.tokenToPiece(c.token),
    prob: c.prob,
  });
  const top = sampler.probs(n);
  const chosen = top.find((c) => c.token === token) ??
    sampler.probs(model.nVocab).find((c) => c.token === token) ??
    { token, prob: 0 };
  return { ...withPiece(chosen), top: top.map(withPiece) };
}
