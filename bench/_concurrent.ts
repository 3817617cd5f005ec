/**
 * Aggregate generation throughput with 1, 4, 8 and 16 concurrent sessions,
 * ours against `llama-batched-bench` on the same model, prompt and
 * generation lengths, alternating A B per session count. Ours is measured
 * twice: decode only (a batch of one random token per sequence per step,
 * exactly what batched-bench does) and through the scheduler with sampling.
 * Also the time to the first token of a second chat turn with and without
 * the prompt cache.
 * @module
 */

import { Context, Model, Sampler } from "../bindings/mod.ts";
import type {
  EngineScheduler,
  EngineSchedulerOptions,
} from "../wasi_nn/engine/model_engine.ts";
import { Scheduler } from "../wasi_nn/engine/scheduler.ts";
import { median } from "./_report.ts";

/** One row of the concurrency table. */
export interface ConcurrentRow {
  /** Concurrent sessions (sequences). */
  sessions: number;
  /** llama-batched-bench S_TG (t/s), median. */
  native_tg: number;
  /** Ours, decode only (t/s), median. */
  ours_tg: number;
  /** Ours through the scheduler with greedy sampling (t/s), median. */
  ours_sampled_tg: number;
  /** ours_tg / native_tg. */
  ratio: number;
  /** ours_sampled_tg / native_tg. */
  ratio_sampled: number;
}

/** Time to the first token of a second turn. */
export interface PromptCacheResult {
  /** Prompt tokens of the second turn. */
  prompt_tokens: number;
  /** Of those, reused from the cache. */
  reused_tokens: number;
  /** TTFT with the cache (ms, median). */
  with_cache_ms: number;
  /** TTFT without it (ms, median). */
  without_cache_ms: number;
}

/** Options of `benchConcurrent`. */
export interface ConcurrentOptions {
  /** GGUF model. */
  model: string;
  /** llama-batched-bench binary. */
  batchedBench: string;
  /** Threads (both sides). */
  threads: number;
  /** A B pairs per session count. */
  pairs: number;
  /** Session counts. */
  sessions?: number[];
  /** Prompt tokens per session. */
  pp?: number;
  /** Generated tokens per session. */
  tg?: number;
  /** Progress lines. */
  log?: (msg: string) => void;
}

/**
 * llama-batched-bench's S_TG. Its output goes through llama.cpp's
 * asynchronous log thread, which can lose the last line at exit on a busy
 * machine: run it again until the line is there.
 */
export async function nativeTg(
  o: ConcurrentOptions,
  pl: number,
  pp: number,
  tg: number,
): Promise<number> {
  for (let attempt = 1;; attempt++) {
    try {
      return await nativeTgOnce(o, pl, pp, tg);
    } catch (e) {
      if (attempt >= 10) throw e;
    }
  }
}

async function nativeTgOnce(
  o: ConcurrentOptions,
  pl: number,
  pp: number,
  tg: number,
): Promise<number> {
  const out = await new Deno.Command(o.batchedBench, {
    args: [
      "-m",
      o.model,
      "-c",
      String(pl * (pp + tg)),
      "-b",
      "2048",
      "-ub",
      "512",
      "-npp",
      String(pp),
      "-ntg",
      String(tg),
      "-npl",
      String(pl),
      "-t",
      String(o.threads),
      "--output-format",
      "jsonl",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const line = text.split("\n").find((l) =>
    l.startsWith("{") && l.includes('"speed_tg"')
  );
  if (out.code !== 0 || !line) {
    throw new Error(
      `llama-batched-bench failed: ${
        new TextDecoder().decode(out.stderr).slice(-400)
      }`,
    );
  }
  return JSON.parse(line).speed_tg;
}

/** n random token ids below nVocab. */
export function randomTokens(
  n: number,
  nVocab: number,
  rng: () => number,
): Int32Array<ArrayBuffer> {
  return Int32Array.from({ length: n }, () => Math.floor(rng() * nVocab));
}

/** A small seeded PRNG (0..1). */
export function mulberry32(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Ours, decode only: what batched-bench does, through the bindings' non-blocking decode. */
async function oursTg(
  model: Model,
  o: ConcurrentOptions,
  pl: number,
  pp: number,
  tg: number,
) {
  const ctx = await Context.create(model, {
    nCtx: pl * (pp + tg),
    nSeqMax: pl,
    nBatch: 2048,
    nUbatch: 512,
    nThreads: o.threads,
    nThreadsBatch: o.threads,
    poll: 50,
    kvUnified: false,
  });
  try {
    const rng = mulberry32(pl);
    const nv = model.nVocab;
    await ctx.decode({
      tokens: randomTokens(16, nv, rng),
      pos: Int32Array.from({ length: 16 }, (_, i) => i),
      seqIds: new Int32Array(16),
    });
    ctx.clearMemory();
    // prompts, in batches of at most 2048 tokens
    const all = pl * pp;
    for (let start = 0; start < all; start += 2048) {
      const n = Math.min(2048, all - start);
      const pos = new Int32Array(n),
        seq = new Int32Array(n),
        lg = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const k = start + i;
        pos[i] = k % pp;
        seq[i] = Math.floor(k / pp);
        lg[i] = k % pp === pp - 1 ? 1 : 0;
      }
      await ctx.decode({
        tokens: randomTokens(n, nv, rng),
        pos,
        seqIds: seq,
        logits: lg,
      });
    }
    const seq = Int32Array.from({ length: pl }, (_, j) => j);
    const pos = new Int32Array(pl);
    const lg = new Uint8Array(pl).fill(1);
    const t0 = performance.now();
    for (let i = 0; i < tg; i++) {
      pos.fill(pp + i);
      // Blocking, as the scheduler decodes generation steps.
      ctx.decodeSync({
        tokens: randomTokens(pl, nv, rng),
        pos,
        seqIds: seq,
        logits: lg,
      });
    }
    return (pl * tg * 1000) / (performance.now() - t0);
  } finally {
    ctx.close();
  }
}

/**
 * Aggregate generation tokens/s through a scheduler (in this process or in
 * an engine process): pl sessions of pp random prompt tokens submitted at
 * once, greedy sampling, tg tokens each. Closes the scheduler.
 */
export async function schedulerTg(
  sched: EngineScheduler,
  nVocab: number,
  pl: number,
  pp: number,
  tg: number,
): Promise<number> {
  try {
    const rng = mulberry32(1000 + pl);
    // When each session's tokens came: the generation phase runs from the
    // moment every session has its first token (sampled from its prompt) to
    // the last token, as batched-bench's t_tg does.
    const times: number[][] = Array.from({ length: pl }, () => []);
    await Promise.all(
      times.map((t, j) =>
        sched.submit({
          owner: sched.newOwner(`s${j}`),
          prompt: randomTokens(pp, nVocab, rng),
          sampler: { temp: 0 },
          stop: { nPredict: tg },
          ignoreEos: true,
          onToken: () => t.push(performance.now()),
        }).result
      ),
    );
    const start = Math.max(...times.map((t) => t[0]));
    const end = Math.max(...times.map((t) => t.at(-1)!));
    const tokens = times.reduce(
      (n, t) => n + t.filter((x) => x > start).length,
      0,
    );
    return (tokens * 1000) / (end - start);
  } finally {
    sched.close();
  }
}

/** The scheduler options of the concurrency legs, for pl sessions. */
export function schedulerOptions(
  threads: number,
  pl: number,
  pp: number,
  tg: number,
): EngineSchedulerOptions {
  return {
    nSeq: pl,
    nCtxPerSeq: pp + tg + 8,
    nBatch: 2048,
    nUbatch: 512,
    threads,
    poll: 50,
  };
}

/** Runs the concurrency table. */
export async function benchConcurrent(
  o: ConcurrentOptions,
): Promise<ConcurrentRow[]> {
  const pp = o.pp ?? 128, tg = o.tg ?? 128;
  const model = await Model.load(o.model);
  const rows: ConcurrentRow[] = [];
  try {
    for (const pl of o.sessions ?? [1, 4, 8, 16]) {
      const native: number[] = [], ours: number[] = [], sampled: number[] = [];
      for (let p = 0; p < o.pairs; p++) {
        native.push(await nativeTg(o, pl, pp, tg));
        ours.push(await oursTg(model, o, pl, pp, tg));
        sampled.push(
          await schedulerTg(
            await Scheduler.create(
              model,
              schedulerOptions(o.threads, pl, pp, tg),
            ),
            model.nVocab,
            pl,
            pp,
            tg,
          ),
        );
        o.log?.(
          `concurrent ${pl}: native ${native.at(-1)!.toFixed(1)} t/s, ours ${
            ours.at(-1)!.toFixed(1)
          }, ours+sampling ${sampled.at(-1)!.toFixed(1)}`,
        );
      }
      const n = median(native), d = median(ours), s = median(sampled);
      rows.push({
        sessions: pl,
        native_tg: n,
        ours_tg: d,
        ours_sampled_tg: s,
        ratio: d / n,
        ratio_sampled: s / n,
      });
    }
  } finally {
    model.close();
  }
  return rows;
}

/** Time to the first token of a second turn, with and without the prompt cache. */
export async function benchPromptCache(
  o: {
    model: string;
    threads: number;
    pairs: number;
    turn1?: number;
    added?: number;
  },
): Promise<PromptCacheResult> {
  const model = await Model.load(o.model);
  const sched = await Scheduler.create(model, {
    nSeq: 2,
    nCtxPerSeq: 1024,
    nBatch: 512,
    threads: o.threads,
    poll: 50,
  });
  try {
    const rng = mulberry32(7);
    const withCache: number[] = [], without: number[] = [];
    let reused = 0, promptTokens = 0;
    for (let p = 0; p < o.pairs; p++) {
      const turn1 = randomTokens(o.turn1 ?? 384, model.nVocab, rng);
      const owner = sched.newOwner(`chat${p}`);
      const s1 = Sampler.create(model, { temp: 0 });
      const r1 = await sched.submit({
        owner,
        prompt: turn1,
        sampler: s1,
        stop: { nPredict: 16 },
        ignoreEos: true,
      })
        .result;
      s1.close();
      const turn2 = Int32Array.from([
        ...turn1,
        ...r1.tokens,
        ...randomTokens(o.added ?? 16, model.nVocab, rng),
      ]);
      promptTokens = turn2.length;
      for (const cache of [true, false]) {
        const s = Sampler.create(model, { temp: 0 });
        const target = cache ? owner : sched.newOwner(`fresh${p}`);
        const r = await sched.submit({
          owner: target,
          prompt: turn2,
          sampler: s,
          stop: { nPredict: 1 },
          cachePrompt: cache,
        }).result;
        s.close();
        const ttft = r.timings.queueMs + r.timings.promptMs;
        (cache ? withCache : without).push(ttft);
        if (cache) reused = r.timings.promptReused;
        sched.dropOwner(target);
      }
    }
    return {
      prompt_tokens: promptTokens,
      reused_tokens: reused,
      with_cache_ms: median(withCache),
      without_cache_ms: median(without),
    };
  } finally {
    sched.close();
    model.close();
  }
}
