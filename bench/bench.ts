/**
 * `deno task bench`: our bindings and generation loop against llama.cpp's own
 * tools, like for like, alternating ours and theirs (A B A B) in one run.
 *
 * Each pair runs, in this order:
 * 1. ours, blocking FFI calls, in this process: pp (a prompt of random
 *    tokens) and tg (one random token per decode, no sampling) through
 *    `Context.decodeSync`, mirroring llama-bench's test_prompt/test_gen; then
 *    greedy `generate()` with `sync` (sample, decode, detokenize, stop check
 *    per token; EOS ignored);
 * 2. theirs: `llama-bench -p N -n M -r 1` (its avg_ts) and
 *    `llama-completion --temp 0 --ignore-eos` (eval time per run plus
 *    sampling time per token);
 * 3. ours, non-blocking FFI calls, in a child process (see _async_legs.ts
 *    for why): tg with an awaited `Context.decode`, `generate()` without
 *    `sync`, and the oneshot guest through `runGuest` and `LlamaHost`.
 *
 * Both sides use the same model, threads, n_batch = n_ubatch, n_ctx and a
 * ggml thread pool with poll 50. Ratios are ours / theirs per pair; the
 * summary ratio is the median of the per-pair ratios. A pair during which
 * other processes took CPU time is run again (`--max-foreign-load`).
 *
 * Then start-up and footprint, whole processes (_startup.ts; alone with
 * `--startup`): one token from a guest through `cli.ts` against
 * `llama-completion -n 1`, and `cli.ts --version`; the concurrency and
 * prompt-cache legs (_concurrent.ts), the engine-process legs
 * (_engine_process.ts; alone with `--engine-process`), the model split
 * across two loopback RPC servers (_rpc.ts; alone with `--rpc`), the time to
 * the first token of a prompt with an image (_mtmd.ts; alone with `--mtmd`) and the second chat
 * turn on every model family (_families.ts; alone with `--families`).
 *
 * @example
 * ```sh
 * deno task bench                 # 5 pairs, table on stdout
 * deno task bench --quick --json  # smoke test, one JSON object on stdout
 * deno task bench --families      # only the second-turn leg, every family
 * deno task bench --startup --pairs 3  # only the start-up leg
 * deno task bench --engine-process --quick  # only the engine-process legs
 * deno task bench --rpc --pairs 3  # only the RPC leg
 * deno task bench --mtmd  # only the image leg
 * ```
 * @module
 */

import { isFile } from "../_internal/fs.ts";
import {
  benchConcurrent,
  benchPromptCache,
  type ConcurrentRow,
  type PromptCacheResult,
} from "./_concurrent.ts";
import { backendInfo, Model } from "../bindings/mod.ts";
import { ensureModel } from "../gguf/mod.ts";
import { paths } from "../paths.ts";
import {
  type BenchOptions,
  parseBenchArgs,
  USAGE,
  UsageError,
} from "./_args.ts";
import { runCompletion, runLlamaBench } from "./_native.ts";
import {
  benchFamilies,
  familiesLines,
  type FamilyRow,
  GENERATING_FAMILIES,
} from "./_families.ts";
import { oursE2e, oursPp, oursTg } from "./_ours.ts";
import {
  benchStartup,
  startupLines,
  type StartupResult,
  type StartupSkipped,
} from "./_startup.ts";
import { spawnAsyncLegs } from "./_async_legs.ts";
import {
  benchEngineProcess,
  engineProcessLines,
  type EngineProcessResult,
} from "./_engine_process.ts";
import { benchRpc, rpcLines, type RpcResult } from "./_rpc.ts";
import { benchMtmd, mtmdLines, type MtmdResult } from "./_mtmd.ts";
import { cpuSnapshot, foreignLoad } from "./_load.ts";
import { fmtMs, fmtRate, fmtRatio, median, table } from "./_report.ts";

/** The prompt of the end-to-end runs. */
export const E2E_PROMPT =
  "Once upon a time, in a quiet village by the sea, there lived an old fisherman who";

/** One A B pair's measurements, tokens/s. */
export interface PairResult {
  /** Pair number, from 1. */
  pair: number;
  /** llama-bench pp. */
  nativePp: number;
  /** llama-bench tg. */
  nativeTg: number;
  /** Our pp (decodeSync). */
  oursPp: number;
  /** Our tg (decodeSync). */
  oursTg: number;
  /** Our tg (awaited decode). */
  oursTgAsync: number;
  /** llama-completion eval + sampling. */
  nativeE2e: number;
  /** generate(), sync. */
  oursE2e: number;
  /** generate(), async. */
  oursE2eAsync: number;
  /** Guest tokens/s, when a guest ran. */
  guest?: number;
  /** Our llama.cpp eval time per run in generate() sync, ms. */
  oursEvalMs: number;
  /** llama-completion's eval time per run, ms. */
  nativeEvalMs: number;
  /** llama-completion's sampling time per token, ms. */
  nativeSamplingMs: number;
  /** CPUs' worth of other processes' work during the pair (NaN = unknown). */
  foreignLoad: number;
}

const log = (msg: string) => console.error(`[bench] ${msg}`);

function cpuName(): string {
  try {
    const m = Deno.readTextFileSync("/proc/cpuinfo").match(
      /^model name\s*:\s*(.+)$/m,
    );
    if (m) return m[1].trim();
  } catch { /* not Linux */ }
  return "unknown CPU";
}

function deviceName(): string {
  const info = backendInfo();
  const gpus = info.devices.filter((d) => d.type !== "cpu").map((d) =>
    d.description || d.name
  );
  return gpus.length > 0 ? `GPU: ${gpus.join(", ")}` : `CPU: ${cpuName()}`;
}

/** Runs the benchmark and returns its JSON report. */
export async function runBench(
  opts: BenchOptions,
): Promise<Record<string, unknown>> {
  const bin = paths().referenceBin;
  const llamaBench = `${bin}/llama-bench`;
  const llamaCompletion = `${bin}/llama-completion`;
  if (opts.families) return await familiesReport(opts, llamaBench);
  if (opts.startup) return await startupReport(opts, llamaCompletion);
  if (opts.engineProcess) return await engineProcessReport(opts, bin);
  if (opts.rpc) return await rpcReport(opts, llamaBench);
  if (opts.mtmd) return await mtmdReport(opts, bin);
  for (const b of [llamaBench, llamaCompletion]) {
    if (!isFile(b)) {
      throw new Error(`${b} not found: run \`deno task build:reference\``);
    }
  }
  const modelPath = opts.model ?? (await ensureModel("bench")).path;
  log(`model ${modelPath}, ${opts.threads} threads, ${opts.pairs} pairs`);
  using model = await Model.load(modelPath);
  const settings = {
    threads: opts.threads,
    batch: opts.batch,
    poll: opts.poll,
  };
  const decodeSettings = {
    ...settings,
    model: modelPath,
    nPrompt: opts.nPrompt,
    nGen: opts.nGen,
  };
  const nCtx = 512;
  const prompt = new Int32Array(
    model.tokenize(E2E_PROMPT, { addSpecial: true }),
  );
  const completionSettings = {
    ...settings,
    model: modelPath,
    prompt: E2E_PROMPT,
    nPredict: opts.nGen,
    nCtx,
  };
  const asyncInput = {
    model: modelPath,
    settings,
    nGen: opts.nGen,
    nCtx,
    prompt: E2E_PROMPT,
    guest: true,
  };

  const pairs: PairResult[] = [];
  const discarded: { attempt: number; foreignLoad: number }[] = [];
  let sameText: boolean | undefined;
  let guestDescription: string | undefined;
  let guestSkipped: string | undefined;
  const n = opts.pairs;
  for (
    let attempt = 1;
    pairs.length < n && attempt <= opts.maxAttempts;
    attempt++
  ) {
    const i = pairs.length + 1;
    const before = cpuSnapshot();
    // Blocking FFI legs run in this process, which never makes a non-blocking
    // decode (see _async_legs.ts); the others run in a child process.
    log(
      `pair ${i}/${n}: ours, blocking: pp${opts.nPrompt}, tg${opts.nGen}, generate()`,
    );
    const oursPpRate = await oursPp(model, settings, opts.nPrompt);
    const oursTgRate = await oursTg(model, settings, opts.nGen, true);
    const oe = await oursE2e(model, settings, prompt, opts.nGen, nCtx, true);
    log(`pair ${i}/${n}: llama-bench, llama-completion`);
    const nd = await runLlamaBench(llamaBench, decodeSettings);
    const ne = await runCompletion(
      llamaCompletion,
      completionSettings,
      (k) =>
        log(
          `llama-completion lost its perf lines (run ${k}); running it again`,
        ),
    );
    if (ne.perf.promptTokens !== prompt.length) {
      log(
        `note: llama-completion's prompt is ${ne.perf.promptTokens} tokens, ours ${prompt.length}`,
      );
    }
    // llama-completion ends its output with a blank line.
    sameText ??=
      ne.text.replace(/\n+$/, "") === oe.result.text.replace(/\n+$/, "");
    log(
      `pair ${i}/${n}: ours, non-blocking (child process): tg${opts.nGen}, generate(), guest`,
    );
    const oa = await spawnAsyncLegs(asyncInput);
    if (oa.guestSkipped !== undefined && guestSkipped === undefined) {
      log(`guest: skipped (${oa.guestSkipped})`);
    }
    guestSkipped ??= oa.guestSkipped;
    guestDescription ??= oa.guestDescription;
    const foreign = foreignLoad(before, cpuSnapshot());
    const p: PairResult = {
      pair: i,
      nativePp: nd.pp ?? NaN,
      nativeTg: nd.tg ?? NaN,
      oursPp: oursPpRate,
      oursTg: oursTgRate,
      oursTgAsync: oa.tgAsync,
      nativeE2e: ne.tokensPerSecond,
      oursE2e: oe.tokensPerSecond,
      oursE2eAsync: oa.e2eAsync,
      guest: oa.guest,
      oursEvalMs: oe.evalMsPerRun,
      nativeEvalMs: ne.perf.evalMs / ne.perf.evalRuns,
      nativeSamplingMs: ne.perf.samplingMs / opts.nGen,
      foreignLoad: foreign,
    };
    const ratios = `pp ${fmtRatio(p.oursPp / p.nativePp)}  tg ${
      fmtRatio(p.oursTg / p.nativeTg)
    } (async ${fmtRatio(p.oursTgAsync / p.nativeTg)})  e2e ${
      fmtRatio(p.oursE2e / p.nativeE2e)
    } (async ${fmtRatio(p.oursE2eAsync / p.nativeE2e)}${
      p.guest === undefined ? "" : `, guest ${fmtRatio(p.guest / p.nativeE2e)}`
    })`;
    const left = opts.maxAttempts - attempt;
    if (foreign > opts.maxForeignLoad && left >= n - pairs.length) {
      discarded.push({ attempt, foreignLoad: foreign });
      log(
        `pair ${i}: DISCARDED, other processes used ${
          foreign.toFixed(2)
        } CPUs ` +
          `(> ${opts.maxForeignLoad}); running it again (ratios were ${ratios})`,
      );
      continue;
    }
    pairs.push(p);
    log(`pair ${i}: foreign load ${foreign.toFixed(2)} CPUs; ratios ${ratios}`);
  }
  if (sameText === false) {
    log("note: greedy text differs between generate() and llama-completion");
  }
  const hasGuest = pairs.every((p) => p.guest !== undefined);

  const med = (f: (p: PairResult) => number | undefined) =>
    median(pairs.map(f).filter((x): x is number => x !== undefined));
  const report: Record<string, unknown> = {
    device: deviceName(),
    // OpenMP builds of ggml use an OpenMP team per calling thread instead of
    // the attached thread pool (so `poll` does not apply); see _async_legs.ts.
    openmp: /OPENMP = 1/.test(backendInfo().system_info),
    model: modelPath,
    threads: opts.threads,
    pairs: pairs.length,
    quick: opts.quick,
    max_foreign_load: opts.maxForeignLoad,
    discarded_pairs: discarded,
    settings: {
      n_prompt: opts.nPrompt,
      n_gen: opts.nGen,
      n_batch: opts.batch,
      n_ubatch: opts.batch,
      poll: opts.poll,
      e2e_prompt_tokens: prompt.length,
      e2e_n_ctx: nCtx,
    },
    native: { pp: med((p) => p.nativePp), tg: med((p) => p.nativeTg) },
    ours: {
      pp: med((p) => p.oursPp),
      tg: med((p) => p.oursTg),
      tg_async: med((p) => p.oursTgAsync),
    },
    e2e: {
      native_tg: med((p) => p.nativeE2e),
      ours_tg: med((p) => p.oursE2e),
      ours_tg_async: med((p) => p.oursE2eAsync),
      same_text: sameText,
      // Per token, ms: where the time goes (medians over the pairs).
      ours_ms_per_token: med((p) => 1000 / p.oursE2e),
      ours_eval_ms_per_run: med((p) => p.oursEvalMs),
      native_ms_per_token: med((p) => 1000 / p.nativeE2e),
      native_eval_ms_per_run: med((p) => p.nativeEvalMs),
      native_sampling_ms_per_token: med((p) => p.nativeSamplingMs),
    },
    ratio: {
      pp: med((p) => p.oursPp / p.nativePp),
      tg: med((p) => p.oursTg / p.nativeTg),
      tg_async: med((p) => p.oursTgAsync / p.nativeTg),
      e2e_tg: med((p) => p.oursE2e / p.nativeE2e),
      e2e_tg_async: med((p) => p.oursE2eAsync / p.nativeE2e),
      ...(hasGuest ? { guest_tg: med((p) => p.guest! / p.nativeE2e) } : {}),
    },
    guest: hasGuest
      ? { tg: med((p) => p.guest), path: guestDescription }
      : { skipped: guestSkipped ?? "the guest leg failed" },
    per_pair: pairs,
  };
  model[Symbol.dispose]();
  log(
    "startup: whole processes, one token: the guest via cli.ts vs llama-completion -n 1",
  );
  const startup = await benchStartup({
    ...settings,
    model: modelPath,
    prompt: E2E_PROMPT,
    nCtx,
    pairs: opts.pairs,
    maxForeignLoad: opts.maxForeignLoad,
    llamaCompletion,
    log,
  });
  if ("skipped" in startup) log(`startup: skipped (${startup.skipped})`);
  report.startup = startup;
  // Concurrent sessions through the scheduler against llama-batched-bench.
  log(
    "concurrent sessions: ours (decode only, and scheduler with sampling) vs llama-batched-bench",
  );
  const concurrent = await benchConcurrent({
    model: modelPath,
    batchedBench: `${bin}/llama-batched-bench`,
    threads: opts.threads,
    pairs: Math.max(1, Math.min(3, opts.pairs)),
    sessions: opts.quick ? [1, 4] : [1, 4, 8, 16],
    pp: opts.quick ? 32 : 128,
    tg: opts.quick ? 16 : 128,
    log,
  });
  report.concurrent = concurrent;
  report.engine_process = await engineProcessLegs(opts, modelPath, bin);
  report.rpc = await rpcLeg(opts, modelPath, llamaBench);
  report.mtmd = await mtmdLeg(opts, bin);
  log("prompt cache: time to the first token of a second turn");
  report.prompt_cache = await benchPromptCache({
    model: modelPath,
    threads: opts.threads,
    pairs: Math.max(1, Math.min(3, opts.pairs)),
  });
  log("families: time to the first token of a second chat turn");
  report.families = await benchFamilies({
    families: GENERATING_FAMILIES,
    threads: opts.threads,
    // About 25 s for all families at 3 pairs on 2 cores; `--families`
    // alone runs --pairs of them.
    pairs: Math.max(1, Math.min(3, opts.pairs)),
    maxForeignLoad: opts.maxForeignLoad,
    llamaBench,
    log,
  });
  return report;
}

/** The engine-process legs (engine: "process" against in-process). */
function engineProcessLegs(
  opts: BenchOptions,
  modelPath: string,
  bin: string,
): Promise<EngineProcessResult> {
  log(
    "engine process: the guest and concurrent sessions, process vs in_process vs llama-batched-bench",
  );
  return benchEngineProcess({
    model: modelPath,
    batchedBench: `${bin}/llama-batched-bench`,
    settings: { threads: opts.threads, batch: opts.batch, poll: opts.poll },
    pairs: Math.max(1, Math.min(3, opts.pairs)),
    sessions: opts.quick ? [1, 4] : [1, 4, 8, 16],
    pp: opts.quick ? 32 : 128,
    tg: opts.quick ? 16 : 128,
    guest: { prompt: E2E_PROMPT, nPredict: opts.nGen, nCtx: 512 },
    log,
  });
}

/**
 * A report of one leg alone: the tools it needs must be built; `leg` runs on
 * the model (`--model`, or the generated bench model), its result under `key`.
 */
async function oneLegReport(
  opts: BenchOptions,
  tools: string[],
  key: string,
  leg: (modelPath: string) => Promise<unknown>,
): Promise<Record<string, unknown>> {
  for (const b of tools) {
    if (!isFile(b)) {
      throw new Error(`${b} not found: run \`deno task build:reference\``);
    }
  }
  const modelPath = opts.model ?? (await ensureModel("bench")).path;
  return {
    device: deviceName(),
    threads: opts.threads,
    pairs: opts.pairs,
    quick: opts.quick,
    [key]: await leg(modelPath),
  };
}

/** `--engine-process`: the engine-process legs alone. */
function engineProcessReport(
  opts: BenchOptions,
  bin: string,
): Promise<Record<string, unknown>> {
  return oneLegReport(
    opts,
    [`${bin}/llama-batched-bench`],
    "engine_process",
    (m) => engineProcessLegs(opts, m, bin),
  );
}

/** The RPC leg (two loopback rpc-servers against local). */
function rpcLeg(
  opts: BenchOptions,
  modelPath: string,
  llamaBench: string,
  pairs = Math.max(1, Math.min(3, opts.pairs)),
): Promise<RpcResult> {
  log(
    "rpc: the model split across two loopback servers vs local, ours vs llama-bench --rpc",
  );
  return benchRpc({
    model: modelPath,
    llamaBench,
    settings: { threads: opts.threads, batch: opts.batch, poll: opts.poll },
    pairs,
    nPrompt: opts.nPrompt,
    nGen: opts.nGen,
    log,
  });
}

/** The image leg: time to first token against llama-mtmd-cli. */
function mtmdLeg(
  opts: BenchOptions,
  bin: string,
  pairs = Math.max(1, Math.min(3, opts.pairs)),
): Promise<MtmdResult> {
  log("mtmd: time to first token of a prompt with one image vs llama-mtmd-cli");
  return benchMtmd({
    cli: `${bin}/llama-mtmd-cli`,
    threads: opts.threads,
    poll: opts.poll,
    pairs,
    log,
  });
}

/** `--mtmd`: the image leg alone (its own synthetic model and projector). */
function mtmdReport(
  opts: BenchOptions,
  bin: string,
): Promise<Record<string, unknown>> {
  return oneLegReport(
    opts,
    [`${bin}/llama-mtmd-cli`],
    "mtmd",
    () => mtmdLeg(opts, bin, opts.pairs),
  );
}

/** `--rpc`: the RPC leg alone. */
function rpcReport(
  opts: BenchOptions,
  llamaBench: string,
): Promise<Record<string, unknown>> {
  return oneLegReport(
    opts,
    [llamaBench, paths().rpcServer],
    "rpc",
    (m) => rpcLeg(opts, m, llamaBench, opts.pairs),
  );
}

/** `--families`: the second-turn leg alone (llama-bench optional). */
async function familiesReport(
  opts: BenchOptions,
  llamaBench: string,
): Promise<Record<string, unknown>> {
  const haveBench = isFile(llamaBench);
  if (!haveBench) {
    log(
      `${llamaBench} not found: no llama.cpp reference times (\`deno task build:reference\`)`,
    );
  }
  log(
    `families ${
      opts.families!.join(", ")
    }: ${opts.threads} threads, ${opts.pairs} pairs`,
  );
  return {
    device: deviceName(),
    threads: opts.threads,
    pairs: opts.pairs,
    quick: opts.quick,
    max_foreign_load: opts.maxForeignLoad,
    families: await benchFamilies({
      families: opts.families,
      threads: opts.threads,
      pairs: opts.pairs,
      maxForeignLoad: opts.maxForeignLoad,
      llamaBench: haveBench ? llamaBench : undefined,
      log,
    }),
  };
}

/** `--startup`: the start-up leg alone (llama-bench not needed). */
async function startupReport(
  opts: BenchOptions,
  llamaCompletion: string,
): Promise<Record<string, unknown>> {
  const modelPath = opts.model ?? (await ensureModel("bench")).path;
  log(
    `startup: model ${modelPath}, ${opts.threads} threads, ${opts.pairs} pairs`,
  );
  const startup = await benchStartup({
    model: modelPath,
    prompt: E2E_PROMPT,
    threads: opts.threads,
    nCtx: 512,
    batch: opts.batch,
    poll: opts.poll,
    pairs: opts.pairs,
    maxForeignLoad: opts.maxForeignLoad,
    llamaCompletion,
    log,
  });
  if ("skipped" in startup) {
    throw new Error(`the startup leg cannot run: ${startup.skipped}`);
  }
  return {
    device: deviceName(),
    threads: opts.threads,
    pairs: opts.pairs,
    quick: opts.quick,
    max_foreign_load: opts.maxForeignLoad,
    startup,
  };
}

/** The human-readable report. */
export function renderTable(
  r: Record<string, unknown>,
  pairs: PairResult[],
): string {
  const s = r.settings as Record<string, number>;
  const ratio = r.ratio as Record<string, number>;
  const guest = r.guest as { tg?: number; skipped?: string; path?: string };
  type Row = PairResult | "median";
  const rows: Row[] = [...pairs, "median"];
  const val = (
    row: Row,
    f: (p: PairResult) => number | undefined,
    medKey?: number,
  ) => row === "median" ? medKey : f(row);
  const n = r.native as Record<string, number>;
  const o = r.ours as Record<string, number>;
  const e = r.e2e as Record<string, number>;
  const pp = `pp${s.n_prompt}`;
  const tg = `tg${s.n_gen}`;
  const decode = table<Row>(rows, [
    { header: "pair", cell: (x) => x === "median" ? "median" : String(x.pair) },
    {
      header: `${pp} ours`,
      cell: (x) => fmtRate(val(x, (p) => p.oursPp, o.pp)),
    },
    {
      header: `${pp} llama-bench`,
      cell: (x) => fmtRate(val(x, (p) => p.nativePp, n.pp)),
    },
    {
      header: "ratio",
      cell: (x) => fmtRatio(val(x, (p) => p.oursPp / p.nativePp, ratio.pp)),
    },
    {
      header: `${tg} ours sync`,
      cell: (x) => fmtRate(val(x, (p) => p.oursTg, o.tg)),
    },
    {
      header: `${tg} llama-bench`,
      cell: (x) => fmtRate(val(x, (p) => p.nativeTg, n.tg)),
    },
    {
      header: "ratio",
      cell: (x) => fmtRatio(val(x, (p) => p.oursTg / p.nativeTg, ratio.tg)),
    },
    {
      header: `${tg} ours async`,
      cell: (x) => fmtRate(val(x, (p) => p.oursTgAsync, o.tg_async)),
    },
    {
      header: "ratio",
      cell: (x) =>
        fmtRatio(val(x, (p) => p.oursTgAsync / p.nativeTg, ratio.tg_async)),
    },
  ]);
  const hasGuest = guest.tg !== undefined;
  const discarded = (r.discarded_pairs as unknown[] | undefined)?.length ?? 0;
  const e2e = table<Row>(rows, [
    { header: "pair", cell: (x) => x === "median" ? "median" : String(x.pair) },
    {
      header: "generate() sync",
      cell: (x) => fmtRate(val(x, (p) => p.oursE2e, e.ours_tg)),
    },
    {
      header: "generate() async",
      cell: (x) => fmtRate(val(x, (p) => p.oursE2eAsync, e.ours_tg_async)),
    },
    {
      header: "llama-completion",
      cell: (x) => fmtRate(val(x, (p) => p.nativeE2e, e.native_tg)),
    },
    {
      header: "ratio sync",
      cell: (x) =>
        fmtRatio(val(x, (p) => p.oursE2e / p.nativeE2e, ratio.e2e_tg)),
    },
    {
      header: "ratio async",
      cell: (x) =>
        fmtRatio(
          val(x, (p) => p.oursE2eAsync / p.nativeE2e, ratio.e2e_tg_async),
        ),
    },
    ...(hasGuest
      ? [
        {
          header: "guest",
          cell: (x: Row) => fmtRate(val(x, (p) => p.guest, guest.tg)),
        },
        {
          header: "ratio guest",
          cell: (x: Row) =>
            fmtRatio(val(x, (p) => p.guest! / p.nativeE2e, ratio.guest_tg)),
        },
      ]
      : []),
    {
      header: "other CPUs",
      cell: (x) =>
        x === "median"
          ? ""
          : Number.isFinite(x.foreignLoad)
          ? x.foreignLoad.toFixed(2)
          : "?",
    },
  ]);
  return [
    `device ${r.device}; model ${r.model}; ${r.threads} threads; ${r.pairs} pairs; ` +
    `n_batch = n_ubatch = ${s.n_batch}; poll ${s.poll}; ggml built with${
      r.openmp ? "" : "out"
    } OpenMP`,
    "",
    `Decode only, tokens/s (ours: Context.decodeSync / awaited decode; theirs: llama-bench -r 1)`,
    decode,
    "",
    `End to end, greedy ${s.n_gen} tokens after a ${s.e2e_prompt_tokens}-token prompt, tokens/s ` +
    `(ours: generate(); theirs: llama-completion eval + sampling time)`,
    e2e,
    "",
    `per token (medians): generate() sync ${
      fmtMs(e.ours_ms_per_token)
    } ms, of which llama.cpp ` +
    `eval ${fmtMs(e.ours_eval_ms_per_run)} ms; llama-completion ${
      fmtMs(e.native_ms_per_token)
    } ms = ` +
    `eval ${fmtMs(e.native_eval_ms_per_run)} + sampling ${
      fmtMs(e.native_sampling_ms_per_token)
    } ms ` +
    `(llama.cpp's eval runs from a decode's start to the next sample)`,
    hasGuest ? `guest: ${guest.path}` : `guest: skipped (${guest.skipped})`,
    `ratios are ours / theirs per pair; the median row's ratio is the median of the pair ratios`,
    `other CPUs: other processes' load during the pair; ${discarded} pair(s) above ${r.max_foreign_load} were discarded and run again`,
    ...startupLines(r.startup as StartupResult | StartupSkipped | undefined),
    ...concurrentLines(r),
    ...engineProcessLines(r.engine_process as EngineProcessResult | undefined),
    ...rpcLines(r.rpc as RpcResult | undefined),
    ...mtmdLines(r.mtmd as MtmdResult | undefined),
    ...familiesLines((r.families as FamilyRow[] | undefined) ?? []),
  ].join("\n");
}

function concurrentLines(r: Record<string, unknown>): string[] {
  const rows = r.concurrent as ConcurrentRow[] | undefined;
  if (!rows) return [];
  const pc = r.prompt_cache as PromptCacheResult | undefined;
  const f = (x: number) => x.toFixed(1).padStart(9);
  return [
    "",
    "Concurrent sessions, aggregate generation tokens/s (theirs: llama-batched-bench S_TG; ours: the same batches through",
    "the bindings, and the scheduler with greedy sampling)",
    "sessions    native      ours  ours+smpl   ratio  ratio+smpl",
    ...rows.map((x) =>
      `${String(x.sessions).padStart(8)} ${f(x.native_tg)} ${f(x.ours_tg)} ${
        f(x.ours_sampled_tg)
      } ${x.ratio.toFixed(3).padStart(7)} ${
        x.ratio_sampled.toFixed(3).padStart(11)
      }`
    ),
    ...(pc
      ? [
        "",
        `second turn of ${pc.prompt_tokens} prompt tokens: time to first token ${
          pc.with_cache_ms.toFixed(1)
        } ms with the prompt cache (${pc.reused_tokens} reused), ${
          pc.without_cache_ms.toFixed(1)
        } ms without`,
      ]
      : []),
  ];
}

if (import.meta.main) {
  let opts: BenchOptions;
  try {
    opts = parseBenchArgs(Deno.args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (opts.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const report = await runBench(opts);
  if (opts.json) console.log(JSON.stringify(report, null, 2));
  else if (opts.families) {
    console.log(
      [
        `device ${report.device}; ${report.threads} threads`,
        ...familiesLines(report.families as FamilyRow[]),
      ].join("\n"),
    );
  } else if (opts.startup) {
    console.log(
      [
        `device ${report.device}; ${report.threads} threads`,
        ...startupLines(report.startup as StartupResult),
      ].join("\n"),
    );
  } else if (opts.engineProcess) {
    console.log(
      [
        `device ${report.device}; ${report.threads} threads`,
        ...engineProcessLines(report.engine_process as EngineProcessResult),
      ].join("\n"),
    );
  } else if (opts.mtmd) {
    console.log(
      [
        `device ${report.device}; ${report.threads} threads`,
        ...mtmdLines(report.mtmd as MtmdResult),
      ].join("\n"),
    );
  } else if (opts.rpc) {
    console.log(
      [
        `device ${report.device}; ${report.threads} threads`,
        ...rpcLines(report.rpc as RpcResult),
      ].join("\n"),
    );
  } else console.log(renderTable(report, report.per_pair as PairResult[]));
}
