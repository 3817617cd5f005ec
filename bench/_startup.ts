/**
 * Start-up and footprint, whole processes: one generated token from a
 * guest through the command line (`deno run -A cli.ts --nn-preload ...
 * build/guests/oneshot.wasm`) against `llama-completion -n 1` on the same
 * model, threads, context and batch, and `cli.ts --version` alone (Deno's
 * start, the module graph and loading the library, without a model).
 *
 * Each pair runs, in this order (A B C, repeated; a pair during which other
 * processes took CPU time is run again, as in the other legs): 1.
 * llama-completion, 2. the guest, 3. `--version`. One untimed run of each
 * comes first (the page cache, Deno's code cache).
 *
 * How a child is measured: its wall time is taken here, from spawn to
 * exit; its peak resident memory (`ru_maxrss`) and CPU time (user +
 * system, reported beside: it moves less than wall time when other
 * processes share the CPUs) come from GNU time (`/usr/bin/time -f
 * "%e %M %x %U %S" -o FILE`; Debian package `time`), which reads them from
 * `wait4` when the child exits. Deno has no API for a child's
 * rusage, and polling `/proc/PID/status` misses a short process's peak.
 *
 * The goal (issue 11): the guest's wall time at most
 * {@linkcode STARTUP_GOAL_WALL_RATIO}x llama-completion's, and its peak RSS
 * at most {@linkcode STARTUP_GOAL_RSS_MIB} MiB above it.
 * @module
 */

import { isFile } from "../_internal/fs.ts";
import { paths } from "../paths.ts";
import { cpuSnapshot, foreignLoad } from "./_load.ts";
import { completionArgs } from "./_native.ts";
import { median, table } from "./_report.ts";

/** The most the guest's wall time may be, as a multiple of llama-completion's. */
export const STARTUP_GOAL_WALL_RATIO = 1.5;
/** The most the guest's peak RSS may exceed llama-completion's, MiB. */
export const STARTUP_GOAL_RSS_MIB = 40;
/** GNU time, for a child's peak resident memory. */
export const GNU_TIME = "/usr/bin/time";

/** One process's figures. */
export interface ProcessFigures {
  /** Wall time from spawn to exit, ms. */
  wall_ms: number;
  /** Peak resident set size, MiB. */
  peak_rss_mib: number;
  /** CPU time, user + system, ms. */
  cpu_ms: number;
}

/** One pair's runs. */
export interface StartupPair {
  /** `llama-completion -n 1`. */
  native: ProcessFigures;
  /** The guest through `cli.ts`, one token. */
  guest: ProcessFigures;
  /** `cli.ts --version`. */
  version: ProcessFigures;
  /** CPUs' worth of other processes' work during the pair (NaN = unknown). */
  foreign_load: number;
}

/** The leg's report (`startup` in the JSON report). */
export interface StartupResult {
  /** GGUF model. */
  model: string;
  /** Threads on both sides. */
  threads: number;
  /** Context size on both sides. */
  n_ctx: number;
  /** The three command lines (model path and prompt as given). */
  commands: { native: string[]; guest: string[]; version: string[] };
  /** Medians over the pairs. */
  native: ProcessFigures;
  /** Medians over the pairs. */
  guest: ProcessFigures;
  /** Medians over the pairs. */
  version: ProcessFigures;
  /** Median of the pairs' guest / native wall time. */
  wall_ratio: number;
  /** Median of the pairs' guest - native peak RSS, MiB. */
  rss_diff_mib: number;
  /** {@linkcode STARTUP_GOAL_WALL_RATIO} and {@linkcode STARTUP_GOAL_RSS_MIB}. */
  goal: { wall_ratio: number; rss_diff_mib: number };
  /** wall_ratio and rss_diff_mib within the goal. */
  goal_met: boolean;
  /** Pairs run again because other processes took CPU time during them. */
  discarded_pairs: number;
  /** Every pair kept. */
  per_pair: StartupPair[];
}

/** The leg could not run. */
export interface StartupSkipped {
  /** Why not. */
  skipped: string;
}

/** Options of {@linkcode benchStartup}. */
export interface StartupOptions {
  /** GGUF model. */
  model: string;
  /** Prompt text (both sides). */
  prompt: string;
  /** Threads. */
  threads: number;
  /** Context size (both sides). */
  nCtx: number;
  /** Logical and physical batch (both sides). */
  batch: number;
  /** Thread-pool polling (both sides). */
  poll: number;
  /** A B C repetitions. */
  pairs: number;
  /** A pair during which other processes used more CPUs than this is run again. */
  maxForeignLoad: number;
  /** llama-completion. */
  llamaCompletion: string;
  /** Progress lines. */
  log?: (msg: string) => void;
}

/** GNU time's `-f "%e %M %x %U %S"` line. */
export interface TimeLine {
  /** Elapsed seconds (centiseconds resolution). */
  wallS: number;
  /** Peak resident set size, KiB. */
  maxRssKiB: number;
  /** The child's exit status. */
  exit: number;
  /** User CPU seconds. */
  userS: number;
  /** System CPU seconds. */
  sysS: number;
}

/**
 * Parses what `/usr/bin/time -f "%e %M %x %U %S" -o FILE` wrote to FILE: its last
 * line (a child that failed puts "Command exited with non-zero status N"
 * before it).
 *
 * @example
 * ```ts
 * import { parseTimeLine } from "./_startup.ts";
 * console.log(parseTimeLine("0.21 91236 0 0.18 0.02\n"));
 * // { wallS: 0.21, maxRssKiB: 91236, exit: 0, userS: 0.18, sysS: 0.02 }
 * ```
 */
export function parseTimeLine(text: string): TimeLine {
  const line = text.trimEnd().split("\n").at(-1) ?? "";
  const s = String.raw`([0-9]+(?:\.[0-9]+)?)`;
  const m = line.match(new RegExp(`^${s} ([0-9]+) ([0-9]+) ${s} ${s}$`));
  if (!m) {
    throw new Error(`unexpected GNU time output: ${JSON.stringify(text)}`);
  }
  return {
    wallS: Number(m[1]),
    maxRssKiB: Number(m[2]),
    exit: Number(m[3]),
    userS: Number(m[4]),
    sysS: Number(m[5]),
  };
}

/**
 * The guest's config (`WASI_NN_CONFIG`): one greedy token, the same
 * settings as llama-completion's.
 *
 * @example
 * ```ts
 * import { startupGuestConfig } from "./_startup.ts";
 * const c = startupGuestConfig({ threads: 2, nCtx: 512, batch: 512, poll: 50 });
 * console.log(c["n-predict"]); // 1
 * ```
 */
export function startupGuestConfig(
  o: Pick<StartupOptions, "threads" | "nCtx" | "batch" | "poll">,
): Record<string, unknown> {
  return {
    "n-predict": 1,
    "temp": 0,
    "ignore-eos": true,
    "ctx-size": o.nCtx,
    "batch-size": o.batch,
    "ubatch-size": o.batch,
    "threads": o.threads,
    "threads-batch": o.threads,
    "poll": o.poll,
    "parallel": 1,
  };
}

/**
 * The three command lines: llama-completion (as the end-to-end leg runs it,
 * `-n 1`), the oneshot guest through `cli.ts` and `cli.ts --version`.
 *
 * @example
 * ```ts
 * import { startupCommands } from "./_startup.ts";
 * const c = startupCommands({
 *   model: "m.gguf", prompt: "Hi", threads: 2, nCtx: 512, batch: 512, poll: 50,
 *   llamaCompletion: "build/bin/llama-completion",
 * }, "deno", "/repo");
 * console.log(c.guest.join(" "));
 * ```
 */
export function startupCommands(
  o: Pick<
    StartupOptions,
    | "model"
    | "prompt"
    | "threads"
    | "nCtx"
    | "batch"
    | "poll"
    | "llamaCompletion"
  >,
  deno: string,
  root: string,
): { native: string[]; guest: string[]; version: string[] } {
  const cli = `${root}/cli.ts`;
  return {
    native: [
      o.llamaCompletion,
      ...completionArgs({
        model: o.model,
        threads: o.threads,
        prompt: o.prompt,
        nPredict: 1,
        nCtx: o.nCtx,
        batch: o.batch,
        poll: o.poll,
      }),
    ],
    guest: [
      deno,
      "run",
      "-A",
      cli,
      "--env",
      `WASI_NN_CONFIG=${JSON.stringify(startupGuestConfig(o))}`,
      "--nn-preload",
      `default:GGML:AUTO:${o.model}`,
      `${root}/build/guests/oneshot.wasm`,
      "default",
      o.prompt,
    ],
    version: [deno, "run", "-A", cli, "--version"],
  };
}

/**
 * Medians, ratio, difference and the goal from the pairs kept.
 *
 * @example
 * ```ts
 * import { summarizeStartup } from "./_startup.ts";
 * const f = (wall_ms: number, peak_rss_mib: number) => ({ wall_ms, peak_rss_mib, cpu_ms: wall_ms });
 * const s = summarizeStartup([
 *   { native: f(200, 100), guest: f(280, 130), version: f(90, 40), foreign_load: 0 },
 * ]);
 * console.log(s.wall_ratio, s.rss_diff_mib, s.goal_met); // 1.4 30 true
 * ```
 */
export function summarizeStartup(
  pairs: readonly StartupPair[],
): Pick<
  StartupResult,
  | "native"
  | "guest"
  | "version"
  | "wall_ratio"
  | "rss_diff_mib"
  | "goal"
  | "goal_met"
> {
  const med = (f: (p: StartupPair) => number) => median(pairs.map(f));
  const figures = (k: "native" | "guest" | "version"): ProcessFigures => ({
    wall_ms: med((p) => p[k].wall_ms),
    peak_rss_mib: med((p) => p[k].peak_rss_mib),
    cpu_ms: med((p) => p[k].cpu_ms),
  });
  const wallRatio = med((p) => p.guest.wall_ms / p.native.wall_ms);
  const rssDiff = med((p) => p.guest.peak_rss_mib - p.native.peak_rss_mib);
  return {
    native: figures("native"),
    guest: figures("guest"),
    version: figures("version"),
    wall_ratio: wallRatio,
    rss_diff_mib: rssDiff,
    goal: {
      wall_ratio: STARTUP_GOAL_WALL_RATIO,
      rss_diff_mib: STARTUP_GOAL_RSS_MIB,
    },
    goal_met: wallRatio <= STARTUP_GOAL_WALL_RATIO &&
      rssDiff <= STARTUP_GOAL_RSS_MIB,
  };
}

/** Runs one command under GNU time: its wall time (ours) and peak RSS (GNU time's). */
async function measure(
  cmd: readonly string[],
  cwd: string,
  check?: (stdout: string, stderr: string) => string | undefined,
): Promise<ProcessFigures> {
  const out = await Deno.makeTempFile({
    prefix: "wasi_nn_bench_time_",
    suffix: ".txt",
  });
  try {
    const t0 = performance.now();
    const r = await new Deno.Command(GNU_TIME, {
      args: ["-f", "%e %M %x %U %S", "-o", out, "--", ...cmd],
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const wall = performance.now() - t0;
    const dec = new TextDecoder();
    const stdout = dec.decode(r.stdout), stderr = dec.decode(r.stderr);
    const fail = (why: string) =>
      new Error(
        `${cmd.join(" ")}: ${why}; its stderr ended:\n${
          stderr.trimEnd().split("\n").slice(-10).join("\n")
        }`,
      );
    if (r.code !== 0) throw fail(`exited with ${r.code}`);
    const t = parseTimeLine(await Deno.readTextFile(out));
    if (t.exit !== 0) throw fail(`exited with ${t.exit}`);
    const bad = check?.(stdout, stderr);
    if (bad !== undefined) throw fail(bad);
    return {
      wall_ms: wall,
      peak_rss_mib: t.maxRssKiB / 1024,
      cpu_ms: (t.userS + t.sysS) * 1000,
    };
  } finally {
    await Deno.remove(out).catch(() => {});
  }
}

/** The oneshot guest prints its metadata on stderr: exactly one token generated. */
function oneToken(_stdout: string, stderr: string): string | undefined {
  const after = stderr.split("\n").find((l) =>
    l.startsWith("[metadata after compute]")
  );
  const m = after?.match(/"output_tokens"\s*:\s*([0-9]+)/);
  if (!m) return "no output_tokens in the guest's metadata";
  return m[1] === "1" ? undefined : `generated ${m[1]} tokens, not 1`;
}

/**
 * Runs the leg, or says why it cannot run (no GNU time, no guest, no
 * llama-completion).
 *
 * @example
 * ```ts ignore
 * import { benchStartup } from "./_startup.ts";
 * const r = await benchStartup({
 *   model: "m.gguf", prompt: "Hi", threads: 2, nCtx: 512, batch: 512, poll: 50,
 *   pairs: 3, maxForeignLoad: 0.15, llamaCompletion: "build/bin/llama-completion",
 * });
 * if (!("skipped" in r)) console.log(r.wall_ratio, r.rss_diff_mib, r.goal_met);
 * ```
 */
export async function benchStartup(
  o: StartupOptions,
): Promise<StartupResult | StartupSkipped> {
  const root = paths().root;
  const wasm = `${root}/build/guests/oneshot.wasm`;
  if (!isFile(GNU_TIME)) {
    return {
      skipped:
        `${GNU_TIME} not found: GNU time measures a child's peak RSS (sudo apt-get install time)`,
    };
  }
  if (!isFile(wasm)) {
    return {
      skipped: `${wasm} is not built (deno run -A examples/build.ts)`,
    };
  }
  if (!isFile(o.llamaCompletion)) {
    return {
      skipped:
        `${o.llamaCompletion} not found: run \`deno task build:reference\``,
    };
  }
  const commands = startupCommands(o, Deno.execPath(), root);
  const runs = {
    native: () => measure(commands.native, root),
    guest: () => measure(commands.guest, root, oneToken),
    version: () => measure(commands.version, root),
  };
  o.log?.("startup: one untimed run of each");
  for (const run of Object.values(runs)) await run();
  const pairs: StartupPair[] = [];
  let discarded = 0;
  const maxAttempts = o.pairs * 3;
  for (
    let attempt = 1;
    pairs.length < o.pairs && attempt <= maxAttempts;
    attempt++
  ) {
    const p = pairs.length + 1;
    const before = cpuSnapshot();
    const native = await runs.native();
    const guest = await runs.guest();
    const version = await runs.version();
    const load = foreignLoad(before, cpuSnapshot());
    const fig = (x: ProcessFigures) =>
      `${x.wall_ms.toFixed(0)} ms ${x.peak_rss_mib.toFixed(1)} MiB (cpu ${
        x.cpu_ms.toFixed(0)
      } ms)`;
    const line = `llama-completion ${fig(native)}, guest ${
      fig(guest)
    }, --version ${fig(version)}; other CPUs ${load.toFixed(2)}`;
    if (load > o.maxForeignLoad && maxAttempts - attempt >= o.pairs - p + 1) {
      discarded++;
      o.log?.(`startup pair ${p}: DISCARDED (${line}); running it again`);
      continue;
    }
    pairs.push({ native, guest, version, foreign_load: load });
    o.log?.(`startup pair ${p}/${o.pairs}: ${line}`);
  }
  return {
    model: o.model,
    threads: o.threads,
    n_ctx: o.nCtx,
    commands,
    ...summarizeStartup(pairs),
    discarded_pairs: discarded,
    per_pair: pairs,
  };
}

/**
 * The text report of the leg.
 *
 * @example
 * ```ts ignore
 * import { benchStartup, startupLines } from "./_startup.ts";
 * const r = await benchStartup({
 *   model: "m.gguf", prompt: "Hi", threads: 2, nCtx: 512, batch: 512, poll: 50,
 *   pairs: 3, maxForeignLoad: 0.15, llamaCompletion: "build/bin/llama-completion",
 * });
 * console.log(startupLines(r).join("\n"));
 * ```
 */
export function startupLines(
  r: StartupResult | StartupSkipped | undefined,
): string[] {
  if (r === undefined) return [];
  if ("skipped" in r) return ["", `startup: skipped (${r.skipped})`];
  const ms = (x: number) => Number.isFinite(x) ? x.toFixed(0) : "-";
  const mib = (x: number) => Number.isFinite(x) ? x.toFixed(1) : "-";
  const rows: { run: string; f: ProcessFigures }[] = [
    { run: "llama-completion -n 1", f: r.native },
    { run: "guest via cli.ts, 1 token", f: r.guest },
    { run: "cli.ts --version", f: r.version },
  ];
  const n = r.per_pair.length;
  return [
    "",
    `Start-up, whole processes (${
      n === 1 ? "1 pair" : `medians of ${n} pairs`
    }; ${r.threads} threads, n_ctx ${r.n_ctx}): one greedy token after the end-to-end prompt`,
    table(rows, [
      { header: "run", cell: (x) => x.run },
      { header: "wall ms", cell: (x) => ms(x.f.wall_ms) },
      { header: "peak RSS MiB", cell: (x) => mib(x.f.peak_rss_mib) },
      { header: "CPU ms", cell: (x) => ms(x.f.cpu_ms) },
    ]),
    `goal: guest/llama-completion wall <= ${r.goal.wall_ratio}x and peak RSS <= +${r.goal.rss_diff_mib} MiB: ` +
    `${r.wall_ratio.toFixed(2)}x, ${r.rss_diff_mib >= 0 ? "+" : ""}${
      mib(r.rss_diff_mib)
    } MiB, ${r.goal_met ? "met" : "MISSED"}` +
    ` (medians of the pair ratios and differences; peak RSS from GNU time; ${r.discarded_pairs} pair(s) run again for other processes' load)`,
  ];
}
