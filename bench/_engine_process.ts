/**
 * The engine-process legs of the benchmark: what running a model's engine
 * in a child process (`engine: "process"`) costs against running it in the
 * host's process, and both against llama.cpp's own tools, in one
 * alternating run.
 *
 * - guest: the oneshot guest through `runGuest` and `LlamaHost`, one host
 *   per engine kind, runs alternating in_process, process;
 * - concurrent: 1/4/8/16 sessions through the scheduler with greedy
 *   sampling, alternating llama-batched-bench, in_process, process.
 *
 * The ratios are process over in_process (the goal: at least 0.97
 * on every leg), and process over llama.cpp's figure.
 * @module
 */

import { Model } from "../bindings/mod.ts";
import { LocalEngine } from "../wasi_nn/engine/model_engine.ts";
import { EngineProcess } from "../wasi_nn/engine/process/engine_process.ts";
import { median } from "./_report.ts";
import { nativeTg, schedulerOptions, schedulerTg } from "./_concurrent.ts";
import { guestBench } from "./_guest.ts";
import type { OurSettings } from "./_ours.ts";

/** One session count of the engine-process table. */
export interface EngineProcessRow {
  /** Concurrent sessions. */
  sessions: number;
  /** llama-batched-bench S_TG (t/s), median. */
  native_tg: number;
  /** The scheduler in this process (t/s), median. */
  in_process_tg: number;
  /** The scheduler in an engine process (t/s), median. */
  process_tg: number;
  /** process_tg / in_process_tg. */
  ratio: number;
  /** process_tg / native_tg. */
  ratio_native: number;
}

/** What `--json` reports as `engine_process`. */
export interface EngineProcessResult {
  /** Guest tokens/s through an engine process over in-process (median of each); absent when the guest leg was skipped. */
  guest_tg_ratio?: number;
  /** The guest figures (t/s, medians), or why the leg was skipped. */
  guest: { in_process_tg: number; process_tg: number } | { skipped: string };
  /** The concurrency table. */
  concurrent: EngineProcessRow[];
}

/** Options of `benchEngineProcess`. */
export interface EngineProcessOptions {
  /** GGUF model. */
  model: string;
  /** llama-batched-bench binary. */
  batchedBench: string;
  /** Our settings (threads, batch, poll). */
  settings: OurSettings;
  /** Alternating rounds per leg. */
  pairs: number;
  /** Session counts. */
  sessions: number[];
  /** Prompt tokens per session (concurrent legs). */
  pp: number;
  /** Generated tokens per session (concurrent legs). */
  tg: number;
  /** The guest's prompt text, tokens and context size. */
  guest: { prompt: string; nPredict: number; nCtx: number };
  /** Progress lines. */
  log: (msg: string) => void;
}

/** Runs the guest leg: one host per engine kind, alternating runs. */
async function guestLeg(
  o: EngineProcessOptions,
): Promise<Pick<EngineProcessResult, "guest" | "guest_tg_ratio">> {
  const { prompt, nPredict, nCtx } = o.guest;
  const local = await guestBench(o.model, prompt, nPredict, o.settings, nCtx);
  if (!local.available) return { guest: { skipped: local.reason } };
  try {
    const proc = await guestBench(
      o.model,
      prompt,
      nPredict,
      o.settings,
      nCtx,
      "process",
    );
    if (!proc.available) return { guest: { skipped: proc.reason } };
    try {
      const a: number[] = [], b: number[] = [];
      for (let p = 0; p < o.pairs; p++) {
        a.push(await local.run());
        b.push(await proc.run());
        o.log(
          `engine guest: in_process ${a.at(-1)!.toFixed(1)} t/s, process ${
            b.at(-1)!.toFixed(1)
          }`,
        );
      }
      const inProcess = median(a), process = median(b);
      return {
        guest_tg_ratio: process / inProcess,
        guest: { in_process_tg: inProcess, process_tg: process },
      };
    } finally {
      await proc.close();
    }
  } finally {
    await local.close();
  }
}

/** Runs the engine-process legs. */
export async function benchEngineProcess(
  o: EngineProcessOptions,
): Promise<EngineProcessResult> {
  const guest = await guestLeg(o);
  const model = await Model.load(o.model);
  const local = new LocalEngine(model);
  const proc = await EngineProcess.start({ label: "bench" });
  const threads = o.settings.threads;
  const { pp, tg } = o;
  const rows: EngineProcessRow[] = [];
  try {
    await proc.load(o.model, {});
    for (const pl of o.sessions) {
      const native: number[] = [], a: number[] = [], b: number[] = [];
      const opts = schedulerOptions(threads, pl, pp, tg);
      for (let p = 0; p < o.pairs; p++) {
        native.push(
          await nativeTg(
            { model: o.model, batchedBench: o.batchedBench, threads, pairs: 1 },
            pl,
            pp,
            tg,
          ),
        );
        a.push(
          await schedulerTg(
            await local.scheduler(opts),
            model.nVocab,
            pl,
            pp,
            tg,
          ),
        );
        b.push(
          await schedulerTg(
            await proc.scheduler(opts),
            model.nVocab,
            pl,
            pp,
            tg,
          ),
        );
        o.log(
          `engine concurrent ${pl}: native ${
            native.at(-1)!.toFixed(1)
          } t/s, in_process ${a.at(-1)!.toFixed(1)}, process ${
            b.at(-1)!.toFixed(1)
          }`,
        );
      }
      const n = median(native), i = median(a), x = median(b);
      rows.push({
        sessions: pl,
        native_tg: n,
        in_process_tg: i,
        process_tg: x,
        ratio: x / i,
        ratio_native: x / n,
      });
    }
  } finally {
    await proc.close();
    await local.close();
  }
  return { ...guest, concurrent: rows };
}

/** The report's lines for the engine-process legs. */
export function engineProcessLines(
  r: EngineProcessResult | undefined,
): string[] {
  if (!r) return [];
  const f = (x: number) => x.toFixed(1).padStart(10);
  const g = r.guest;
  return [
    "",
    'Engine process (engine: "process") against in-process, generation tokens/s (the scheduler with greedy sampling;',
    "native: llama-batched-bench S_TG)",
    "sessions     native  in_process     process   ratio  ratio/native",
    ...r.concurrent.map((x) =>
      `${String(x.sessions).padStart(8)} ${f(x.native_tg)}  ${
        f(x.in_process_tg)
      }  ${f(x.process_tg)} ${x.ratio.toFixed(3).padStart(7)} ${
        x.ratio_native.toFixed(3).padStart(13)
      }`
    ),
    "skipped" in g
      ? `guest through an engine process: skipped (${g.skipped})`
      : `guest: in_process ${g.in_process_tg.toFixed(1)} t/s, process ${
        g.process_tg.toFixed(1)
      } t/s, ratio ${r.guest_tg_ratio!.toFixed(3)}`,
  ];
}
