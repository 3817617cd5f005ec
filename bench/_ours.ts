/**
 * Our side of each comparison, through the Deno bindings: llama-bench's
 * decode-only pp/tg tests mirrored step for step, and end-to-end greedy
 * generation through `wasi_nn/generate.ts`.
 *
 * What llama-bench does (tools/llama-bench/llama-bench.cpp, pinned commit),
 * mirrored here:
 * - one context per test with n_ctx = n_prompt + n_gen (512 for pp512, 128
 *   for tg128), its n_batch/n_ubatch, a ggml thread pool with `poll`;
 * - warmup: pp runs the whole prompt test once, tg decodes one token; then
 *   the KV cache is cleared and the timed repetition runs;
 * - `test_prompt`: n_batch-sized batches of random tokens (BOS first when the
 *   model adds one), logits of the last token only;
 * - `test_gen`: BOS (or a random token), then one random token per decode,
 *   never sampling.
 * @module
 */

import {
  Context,
  type ContextOptions,
  type Model,
  Sampler,
} from "../bindings/mod.ts";
import { generate, type GenerateResult } from "../wasi_nn/engine/generate.ts";

/** Context settings shared with the llama.cpp tool being compared. */
export interface OurSettings {
  /** Threads (generation and batch). */
  threads: number;
  /** Logical and physical batch. */
  batch: number;
  /** Thread-pool polling. */
  poll: number;
}

/** llama-bench's `std::rand() % n_vocab` stand-in: a small deterministic LCG. */
export class TokenRng {
  #s: number;
  /** @param seed Any 32-bit integer. */
  constructor(seed = 1) {
    this.#s = seed >>> 0;
  }
  /** A token id in [0, n). */
  next(n: number): number {
    this.#s = (Math.imul(this.#s, 1103515245) + 12345) >>> 0;
    return (this.#s >>> 8) % n;
  }
}

function contextOptions(s: OurSettings, nCtx: number): ContextOptions {
  return {
    nCtx,
    nBatch: s.batch,
    nUbatch: s.batch,
    nThreads: s.threads,
    nThreadsBatch: s.threads,
    poll: s.poll,
    // llama-bench and llama-completion run one sequence in a non-unified cache.
    nSeqMax: 1,
    kvUnified: false,
  };
}

/** A reusable batch for `decodeSync`/`decode` (no allocation per call). */
class BatchBuf {
  tokens: Int32Array<ArrayBuffer>;
  pos: Int32Array<ArrayBuffer>;
  seqIds: Int32Array<ArrayBuffer>;
  constructor(n: number) {
    this.tokens = new Int32Array(n);
    this.pos = new Int32Array(n);
    this.seqIds = new Int32Array(n);
  }
  /** The first n entries as a Batch (views, no copies). */
  view(n: number) {
    return n === this.tokens.length ? this : {
      tokens: this.tokens.subarray(0, n),
      pos: this.pos.subarray(0, n),
      seqIds: this.seqIds.subarray(0, n),
    };
  }
}

function firstToken(model: Model, rng: TokenRng, nVocab: number): number {
  return model.info.add_bos ? model.info.bos : rng.next(nVocab);
}

/** llama-bench's `test_prompt`, with blocking decodes. */
function testPrompt(
  ctx: Context,
  nPrompt: number,
  batch: number,
  rng: TokenRng,
): void {
  const model = ctx.model;
  const nVocab = model.nVocab;
  const buf = new BatchBuf(Math.min(batch, nPrompt));
  let done = 0;
  while (done < nPrompt) {
    const n = Math.min(nPrompt - done, batch);
    buf.tokens[0] = done === 0
      ? firstToken(model, rng, nVocab)
      : rng.next(nVocab);
    for (let i = 1; i < n; i++) buf.tokens[i] = rng.next(nVocab);
    for (let i = 0; i < n; i++) buf.pos[i] = done + i;
    ctx.decodeSync(buf.view(n));
    done += n;
  }
}

/** llama-bench's `test_gen`: one token per decode, no sampling. */
async function testGen(
  ctx: Context,
  nGen: number,
  rng: TokenRng,
  sync: boolean,
): Promise<void> {
  const model = ctx.model;
  const nVocab = model.nVocab;
  const buf = new BatchBuf(1);
  buf.tokens[0] = firstToken(model, rng, nVocab);
  for (let i = 0; i < nGen; i++) {
    buf.pos[0] = i;
    if (sync) ctx.decodeSync(buf);
    else await ctx.decode(buf);
    buf.tokens[0] = rng.next(nVocab);
  }
}

/** The mean of `reps` rates, each timed after `reset()` (llama-bench's `-r`, its avg_ts). */
async function meanRate(
  reps: number,
  n: number,
  reset: () => void,
  run: () => void | Promise<void>,
): Promise<number> {
  let sum = 0;
  for (let r = 0; r < reps; r++) {
    reset();
    const t0 = performance.now();
    await run();
    sum += (n * 1000) / (performance.now() - t0);
  }
  return sum / reps;
}

/**
 * llama-bench's pp test: prompt tokens/s with blocking decodes, after one
 * untimed run; `reps` timed runs averaged (default 1).
 */
export async function oursPp(
  model: Model,
  s: OurSettings,
  nPrompt: number,
  reps = 1,
): Promise<number> {
  const rng = new TokenRng(1);
  const ctx = await Context.create(model, contextOptions(s, nPrompt));
  try {
    ctx.clearMemory();
    testPrompt(ctx, nPrompt, s.batch, rng); // warmup: the whole test once
    return await meanRate(
      reps,
      nPrompt,
      () => ctx.clearMemory(),
      () => testPrompt(ctx, nPrompt, s.batch, rng),
    );
  } finally {
    ctx.close();
  }
}

/**
 * llama-bench's tg test: tokens/s decoding one token at a time, with a
 * blocking `decodeSync` (`sync`) or an awaited non-blocking `decode`, after a
 * one-token warmup; `reps` timed runs averaged (default 1).
 */
export async function oursTg(
  model: Model,
  s: OurSettings,
  nGen: number,
  sync: boolean,
  reps = 1,
): Promise<number> {
  const rng = new TokenRng(2);
  const ctx = await Context.create(model, contextOptions(s, nGen));
  try {
    ctx.clearMemory();
    await testGen(ctx, 1, rng, sync); // warmup: one token
    return await meanRate(
      reps,
      nGen,
      () => ctx.clearMemory(),
      () => testGen(ctx, nGen, rng, sync),
    );
  } finally {
    ctx.close();
  }
}

/** A stop string that never occurs, so the stop check runs on every token. */
export const UNMATCHED_STOP = "\u0001<bench-never-stops>\u0001";

/** One end-to-end generation run of ours. */
export interface OurE2eResult {
  /** Generated tokens/s (sample, decode, detokenize, stop check per token). */
  tokensPerSecond: number;
  /**
   * llama.cpp's own `eval time` per run in this context (decode start to the
   * next sample's synchronize, as in llama-completion's perf line).
   */
  evalMsPerRun: number;
  /** The generation's result (text, tokens, timings). */
  result: GenerateResult;
}

/**
 * Greedy generation of `nPredict` tokens after `prompt` through `generate()`
 * (EOS ignored, one never-matching stop string), in a fresh context warmed up
 * like llama-completion's (decode BOS and EOS, then clear the cache).
 */
export async function oursE2e(
  model: Model,
  s: OurSettings,
  prompt: Int32Array<ArrayBuffer>,
  nPredict: number,
  nCtx: number,
  sync: boolean,
): Promise<OurE2eResult> {
  const ctx = await Context.create(model, contextOptions(s, nCtx));
  const sampler = Sampler.create(model, { temp: 0, ignore_eos: true, seed: 1 });
  try {
    const warm = [model.info.bos, model.info.eos].filter((t) => t >= 0);
    const batch = {
      tokens: Int32Array.from(warm),
      pos: Int32Array.from(warm, (_, i) => i),
      seqIds: new Int32Array(warm.length),
    };
    // Warm up on the path measured: a blocking decode here would put this
    // thread's OpenMP team next to the blocking pool's (see _async_legs.ts).
    if (sync) ctx.decodeSync(batch);
    else await ctx.decode(batch);
    ctx.clearMemory();
    ctx.resetPerf(); // as llama-completion does after its warmup
    const result = await generate(ctx, sampler, prompt, {
      nPredict,
      ignoreEos: true,
      stop: [UNMATCHED_STOP],
      sync,
    });
    if (result.tokens.length !== nPredict) {
      throw new Error(
        `generate() stopped after ${result.tokens.length} of ${nPredict} tokens (${result.stopReason})`,
      );
    }
    const perf = ctx.perf();
    return {
      tokensPerSecond: result.timings.tokensPerSecond,
      evalMsPerRun: perf.nEval > 0 ? perf.tEvalMs / perf.nEval : NaN,
      result,
    };
  } finally {
    sampler.close();
    ctx.close();
  }
}
