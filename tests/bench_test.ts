// Smoke test of the benchmark's parsers and argument handling. The parsers
// are fed output captured here and now from llama.cpp's own tools (tiny
// model, tiny settings), never hard-coded samples.
import assert from "node:assert/strict";
import {
  completionArgs,
  completionTokensPerSecond,
  llamaBenchArgs,
  parseCompletionPerf,
  ParseError,
  parseLlamaBenchJson,
  runCompletionRaw,
  runTool,
} from "../bench/_native.ts";
import { parseBenchArgs, UsageError } from "../bench/_args.ts";
import { mtmdCliTtft } from "../bench/_mtmd.ts";
import { median, table } from "../bench/_report.ts";
import {
  cpuSnapshot,
  foreignLoad,
  parseProcSelfTicks,
  parseProcStatBusy,
} from "../bench/_load.ts";
import { referenceTool, run, tinyModel } from "./_helpers.ts";
import { isFile } from "../_internal/fs.ts";
import { paths } from "../paths.ts";
import { GENERATING_FAMILIES } from "../bench/_families.ts";
import {
  GNU_TIME,
  parseTimeLine,
  STARTUP_GOAL_RSS_MIB,
  STARTUP_GOAL_WALL_RATIO,
  startupCommands,
  startupLines,
  summarizeStartup,
} from "../bench/_startup.ts";

const llamaBench = referenceTool("llama-bench");
const llamaCompletion = referenceTool("llama-completion");

/** `bench/bench.ts ARGS --json` as a whole process (the CLI itself); asserts it exits 0. */
async function benchCli(
  args: string[],
  timeoutMs: number,
  // deno-lint-ignore no-explicit-any -- the report's shape is what the tests check
): Promise<{ stdout: string; report: Record<string, any> }> {
  const root = new URL("../", import.meta.url).pathname;
  const out = await run(Deno.execPath(), [
    "run",
    "-A",
    "--config",
    `${root}deno.json`,
    `${root}bench/bench.ts`,
    ...args,
    "--json",
  ], { timeoutMs });
  assert.equal(out.code, 0, out.stderr.slice(-2000));
  return { stdout: out.stdout, report: JSON.parse(out.stdout) };
}

Deno.test({
  name: "bench: parseLlamaBenchJson reads llama-bench's json and jsonl output",
  ignore: llamaBench === undefined,
  async fn() {
    const model = await tinyModel();
    const settings = {
      model,
      threads: 2,
      nPrompt: 16,
      nGen: 4,
      batch: 512,
      poll: 50,
    };
    const json = await runTool(llamaBench!, llamaBenchArgs(settings));
    const r = parseLlamaBenchJson(json.stdout);
    assert.equal(r.records.length, 2);
    assert.ok(r.pp! > 0 && Number.isFinite(r.pp), `pp ${r.pp}`);
    assert.ok(r.tg! > 0 && Number.isFinite(r.tg), `tg ${r.tg}`);
    assert.equal(r.records[0].n_threads, 2);
    assert.equal(r.records[0].poll, 50);
    assert.equal(r.records[0].n_batch, 512);

    // jsonl, pp only: one record, no tg.
    const args = llamaBenchArgs({ ...settings, nGen: 0 });
    args[args.indexOf("json")] = "jsonl";
    const jsonl = await runTool(llamaBench!, args);
    const l = parseLlamaBenchJson(jsonl.stdout);
    assert.equal(l.records.length, 1);
    assert.ok(l.pp! > 0);
    assert.equal(l.tg, undefined);

    assert.throws(
      () => parseLlamaBenchJson(json.stderr || "no records"),
      Error,
    );
  },
});

Deno.test({
  name: "bench: parseCompletionPerf reads llama-completion's perf lines",
  ignore: llamaCompletion === undefined,
  async fn() {
    const model = await tinyModel();
    const nPredict = 6;
    // Retries the rare run whose asynchronous log lost its last lines at exit.
    const out = await runCompletionRaw(
      llamaCompletion!,
      {
        model,
        threads: 2,
        prompt: "Once upon a time",
        nPredict,
        nCtx: 128,
        batch: 128,
        poll: 50,
      },
    );
    const p = parseCompletionPerf(out.stderr);
    // -n N with EOS ignored: N tokens sampled, N - 1 of them decoded.
    assert.equal(p.evalRuns, nPredict - 1);
    assert.ok(p.promptTokens >= 4, `prompt tokens ${p.promptTokens}`);
    assert.ok(
      p.evalMs > 0 && p.promptMs > 0 && p.samplingMs >= 0,
      JSON.stringify(p),
    );
    const tps = completionTokensPerSecond(p, nPredict);
    assert.ok(
      tps > 0 && tps < 1000 * p.evalRuns / p.evalMs + 1e-9,
      `tps ${tps}`,
    );
    assert.ok(out.stdout.length > 0, "it printed the generated text");
    assert.throws(() => parseCompletionPerf(out.stdout), ParseError);
  },
});

Deno.test("bench: flags and helpers", () => {
  const d = parseBenchArgs([]);
  assert.equal(d.pairs, 5);
  assert.equal(d.threads, 2);
  assert.equal(d.nPrompt, 512);
  assert.equal(d.nGen, 128);
  const q = parseBenchArgs([
    "--quick",
    "--json",
    "--pairs",
    "3",
    "--threads",
    "1",
  ]);
  assert.deepEqual([q.pairs, q.threads, q.json, q.nPrompt, q.nGen], [
    3,
    1,
    true,
    128,
    32,
  ]);
  assert.throws(() => parseBenchArgs(["--pairs", "0"]), UsageError);
  assert.throws(() => parseBenchArgs(["--bogus"]), UsageError);
  const args = completionArgs({
    model: "m.gguf",
    threads: 2,
    prompt: "p",
    nPredict: 8,
    nCtx: 512,
    batch: 512,
    poll: 50,
  });
  for (
    const f of ["--ignore-eos", "-no-cnv", "--temp", "--poll", "-tb", "-ub"]
  ) {
    assert.ok(args.includes(f), f);
  }
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(
    table([{ a: 1 }], [{ header: "x", cell: (r) => String(r.a) }]),
    "x\n-\n1",
  );
});

Deno.test({
  name: "bench: foreign CPU load from this machine's /proc",
  ignore: Deno.build.os !== "linux",
  async fn() {
    assert.ok(parseProcStatBusy(Deno.readTextFileSync("/proc/stat")) > 0);
    assert.ok(
      parseProcSelfTicks(Deno.readTextFileSync("/proc/self/stat")) >= 0,
    );
    const a = cpuSnapshot();
    await new Promise((r) => setTimeout(r, 50));
    const b = cpuSnapshot();
    const load = foreignLoad(a, b);
    assert.ok(Number.isFinite(load) && load >= 0, `load ${load}`);
    assert.ok(Number.isNaN(foreignLoad(undefined, b)));
  },
});

Deno.test("bench: --families picks the second-turn leg's families", () => {
  assert.deepEqual(parseBenchArgs([]).families, undefined);
  assert.deepEqual(parseBenchArgs(["--families"]).families, [
    ...GENERATING_FAMILIES,
  ]);
  assert.deepEqual(
    parseBenchArgs(["--families", "--pairs", "3"]).families,
    [...GENERATING_FAMILIES],
  );
  assert.deepEqual(
    parseBenchArgs(["--families", "mamba,llama,mamba"]).families,
    ["mamba", "llama"],
  );
  assert.ok(!GENERATING_FAMILIES.includes("bert"));
  assert.throws(() => parseBenchArgs(["--families", "bert"]), UsageError);
  assert.throws(() => parseBenchArgs(["--families", "gpt2"]), UsageError);
});

Deno.test("bench: the startup leg's flags, GNU time's line, its summary and commands", () => {
  assert.equal(parseBenchArgs([]).startup, false);
  assert.equal(parseBenchArgs(["--startup", "--pairs", "3"]).startup, true);
  assert.throws(
    () => parseBenchArgs(["--startup", "--families", "llama"]),
    UsageError,
  );

  assert.deepEqual(parseTimeLine("0.21 91236 0 0.18 0.02\n"), {
    wallS: 0.21,
    maxRssKiB: 91236,
    exit: 0,
    userS: 0.18,
    sysS: 0.02,
  });
  assert.deepEqual(
    parseTimeLine(
      "Command exited with non-zero status 3\n1.50 2048 3 1.20 0.10\n",
    ),
    { wallS: 1.5, maxRssKiB: 2048, exit: 3, userS: 1.2, sysS: 0.1 },
  );
  assert.throws(() => parseTimeLine("garbage"), Error);

  const f = (wall_ms: number, peak_rss_mib: number) => ({
    wall_ms,
    peak_rss_mib,
    cpu_ms: wall_ms / 2,
  });
  const pairs = [
    { native: f(200, 100), guest: f(280, 130), version: f(90, 40) },
    { native: f(210, 100), guest: f(420, 150), version: f(95, 41) },
    { native: f(190, 101), guest: f(250, 131), version: f(100, 42) },
  ].map((p) => ({ ...p, foreign_load: 0 }));
  const s = summarizeStartup(pairs);
  assert.deepEqual(s.native, f(200, 100));
  assert.deepEqual(s.guest, f(280, 131));
  assert.deepEqual(s.version, f(95, 41));
  // Medians of the per-pair ratio (1.4, 2, 1.316) and difference (30, 50, 30).
  assert.equal(s.wall_ratio, 1.4);
  assert.equal(s.rss_diff_mib, 30);
  assert.deepEqual(s.goal, {
    wall_ratio: STARTUP_GOAL_WALL_RATIO,
    rss_diff_mib: STARTUP_GOAL_RSS_MIB,
  });
  assert.equal(s.goal_met, true);
  assert.equal(
    summarizeStartup(pairs.map((p) => ({ ...p, guest: f(400, 130) })))
      .goal_met,
    false,
  );
  assert.equal(
    summarizeStartup(pairs.map((p) => ({ ...p, guest: f(250, 150) })))
      .goal_met,
    false,
  );

  const c = startupCommands(
    {
      model: "m.gguf",
      prompt: "Once",
      threads: 2,
      nCtx: 512,
      batch: 512,
      poll: 50,
      llamaCompletion: "/b/llama-completion",
    },
    "deno",
    "/repo",
  );
  assert.equal(c.native[0], "/b/llama-completion");
  assert.equal(c.native[c.native.indexOf("-n") + 1], "1");
  assert.ok(c.native.includes("-no-cnv"));
  assert.deepEqual(c.guest.slice(0, 4), ["deno", "run", "-A", "/repo/cli.ts"]);
  assert.ok(c.guest.includes("default:GGML:AUTO:m.gguf"));
  assert.deepEqual(c.guest.slice(-3), [
    "/repo/build/guests/oneshot.wasm",
    "default",
    "Once",
  ]);
  const env = c.guest[c.guest.indexOf("--env") + 1];
  assert.ok(env.startsWith("WASI_NN_CONFIG="));
  const config = JSON.parse(env.slice("WASI_NN_CONFIG=".length));
  assert.equal(config["n-predict"], 1);
  assert.equal(config.threads, 2);
  assert.equal(config["ctx-size"], 512);
  assert.deepEqual(c.version, [
    "deno",
    "run",
    "-A",
    "/repo/cli.ts",
    "--version",
  ]);

  const text = startupLines({
    model: "m.gguf",
    threads: 2,
    n_ctx: 512,
    commands: c,
    ...s,
    discarded_pairs: 0,
    per_pair: pairs,
  }).join("\n");
  assert.match(text, /1\.40x, \+30\.0 MiB, met/);
  assert.deepEqual(startupLines({ skipped: "no time" }), [
    "",
    "startup: skipped (no time)",
  ]);
});

Deno.test({
  name:
    "bench: --startup runs llama-completion, the guest and --version as whole processes",
  ignore: llamaCompletion === undefined || !isFile(GNU_TIME) ||
    !isFile(`${paths().root}/build/guests/oneshot.wasm`),
  async fn() {
    const out = await benchCli([
      "--startup",
      "--pairs",
      "1",
      "--model",
      await tinyModel(),
      "--max-foreign-load",
      "1000",
    ], 120_000);
    const s = out.report.startup;
    assert.equal(s.per_pair.length, 1, out.stdout.slice(0, 500));
    for (const k of ["native", "guest", "version"]) {
      for (const f of ["wall_ms", "peak_rss_mib", "cpu_ms"]) {
        assert.ok(Number.isFinite(s[k][f]) && s[k][f] > 0, `${k}.${f}`);
      }
    }
    assert.ok(Number.isFinite(s.wall_ratio) && s.wall_ratio > 0);
    assert.ok(Number.isFinite(s.rss_diff_mib));
    assert.equal(typeof s.goal_met, "boolean");
  },
});

Deno.test("bench: the families leg reports a cached second turn on kv and recurrent memory", async () => {
  const out = await benchCli([
    "--families",
    "llama,mamba",
    "--pairs",
    "1",
    "--max-foreign-load",
    "1000",
  ], 240_000);
  const report = out.report;
  assert.equal(report.pairs, 1);
  assert.ok(Array.isArray(report.families), out.stdout.slice(0, 500));
  assert.deepEqual(
    report.families.map((f: { arch: string }) => f.arch),
    ["llama", "mamba"],
  );
  for (const f of report.families) {
    const what = JSON.stringify({ ...f, per_pair: undefined });
    for (
      const k of [
        "ttft_cached_ms",
        "ttft_full_ms",
        "ttft_new_ms",
        "ratio_to_new",
        "decoded_ratio",
      ]
    ) {
      assert.ok(Number.isFinite(f[k]) && f[k] > 0, `${k}: ${what}`);
    }
    assert.equal(typeof f.goal_met, "boolean");
    assert.equal(f.per_pair.length, 1);
    assert.ok(f.turn1_tokens >= 1000, what);
    const added = f.turn2_tokens - f.turn1_tokens;
    assert.ok(added >= 100 && added <= 200, `second turn adds ${added}`);
    // The cache (kv) or a checkpoint (recurrent) held most of the
    // conversation: only about the new turn was decoded.
    assert.ok(f.cached_tokens > 0, what);
    assert.equal(f.cached_tokens + f.new_tokens, f.turn2_tokens, what);
    assert.ok(f.new_tokens <= 1.2 * added, what);
  }
  assert.equal(report.families[1].memory, "recurrent");
});

Deno.test({
  name:
    "bench: --engine-process runs the guest and the session legs in process and in an engine process",
  ignore: referenceTool("llama-batched-bench") === undefined ||
    !isFile(`${paths().root}/build/guests/oneshot.wasm`),
  async fn() {
    assert.equal(parseBenchArgs([]).engineProcess, false);
    assert.equal(parseBenchArgs(["--engine-process"]).engineProcess, true);
    assert.throws(
      () => parseBenchArgs(["--engine-process", "--startup"]),
      UsageError,
    );
    const out = await benchCli([
      "--engine-process",
      "--quick",
      "--pairs",
      "1",
      "--model",
      await tinyModel(),
    ], 180_000);
    const r = out.report.engine_process;
    assert.deepEqual(
      r.concurrent.map((x: { sessions: number }) => x.sessions),
      [1, 4],
    );
    for (const row of r.concurrent) {
      for (const k of ["native_tg", "in_process_tg", "process_tg", "ratio"]) {
        assert.ok(Number.isFinite(row[k]) && row[k] > 0, `${k}: ${row[k]}`);
      }
    }
    assert.ok(
      Number.isFinite(r.guest_tg_ratio) && r.guest_tg_ratio > 0,
      JSON.stringify(r.guest),
    );
  },
});

Deno.test({
  name:
    "bench: --rpc runs the model split across two loopback rpc-servers, ours and llama-bench --rpc, against local",
  ignore: referenceTool("llama-bench") === undefined ||
    !isFile(paths().rpcServer),
  async fn() {
    assert.equal(parseBenchArgs([]).rpc, false);
    assert.equal(parseBenchArgs(["--rpc"]).rpc, true);
    assert.throws(
      () => parseBenchArgs(["--rpc", "--engine-process"]),
      UsageError,
    );
    const out = await benchCli([
      "--rpc",
      "--quick",
      "--pairs",
      "1",
      "--model",
      await tinyModel(),
    ], 180_000);
    const r = out.report.rpc;
    assert.equal(r.endpoints.length, 2);
    for (const e of r.endpoints) assert.match(e, /^127\.0\.0\.1:\d+$/);
    assert.match(r.native_backends, /RPC/, "llama-bench used the servers");
    for (
      const side of ["ours_rpc", "native_rpc", "ours_local", "native_local"]
    ) {
      for (const k of ["pp", "tg"]) {
        const v = r[side][k];
        assert.ok(Number.isFinite(v) && v > 0, `${side}.${k}: ${v}`);
      }
    }
    for (const k of ["tg_ratio", "pp_ratio", "rpc_vs_local_tg"]) {
      assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${k}: ${r[k]}`);
    }
  },
});

Deno.test({
  name:
    "bench: --mtmd times the first token of a prompt with an image, ours (warm and on a new host) and llama-mtmd-cli's",
  ignore: referenceTool("llama-mtmd-cli") === undefined,
  async fn() {
    assert.equal(parseBenchArgs(["--mtmd"]).mtmd, true);
    assert.throws(() => parseBenchArgs(["--mtmd", "--rpc"]), UsageError);
    assert.equal(
      mtmdCliTtft(
        "I mtmd batch encoding done in 40 ms\nI mtmd batch encoding done in 2 ms\n" +
          "llama_perf_context_print: prompt eval time =     974.13 ms /    74 tokens",
      ),
      1016.13,
    );
    assert.equal(mtmdCliTtft("prompt eval time =     9.5 ms"), undefined);
    assert.equal(mtmdCliTtft("the log lost its tail"), undefined);
    const { report } = await benchCli(["--mtmd", "--pairs", "1"], 180_000);
    const r = report.mtmd;
    for (
      const k of [
        "ours_ttft_ms",
        "ours_cold_ttft_ms",
        "native_ttft_ms",
        "ratio",
        "cold_ratio",
      ]
    ) {
      assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${k}: ${r[k]}`);
    }
    assert.equal(r.per_pair.length, 1);
  },
});
