/**
 * The `--rpc` leg of the benchmark: a model split across two loopback
 * `rpc-server`s (every layer offloaded, `tensor_split` 1:1) against the same
 * model run locally, ours through the bindings and llama.cpp's own
 * `llama-bench --rpc` with the same split, alternating in one run.
 *
 * An rpc-server serves one client at a time, so each side loads the model,
 * runs its pp and tg tests (three timed runs each, averaged) and frees it (closing its connections) before the
 * other side starts. The servers run one thread each (the machine's two
 * cores are shared by both of them and the client).
 * @module
 */

import { Model } from "../bindings/mod.ts";
import { median } from "./_report.ts";
import { type DecodeSettings, runLlamaBench } from "./_native.ts";
import { type OurSettings, oursPp, oursTg } from "./_ours.ts";
import { startServer } from "./_rpc_servers.ts";

/**
 * Timed repetitions of each test on both sides, averaged (llama-bench's
 * `-r`): the loopback split's speed drifts within seconds on a shared
 * machine, and one 128-token run is under a second.
 */
const REPS = 3;

/** Tokens per second of one side: prompt processing and generation. */
export interface RpcRates {
  /** pp tokens/s, median over the pairs. */
  pp: number;
  /** tg tokens/s, median over the pairs. */
  tg: number;
}

/** What `--json` reports as `rpc`. */
export interface RpcResult {
  /** The loopback endpoints the split used. */
  endpoints: string[];
  /** llama-bench's `backends` field in the split runs ("RPC" when it used the servers). */
  native_backends: string;
  /** `tensor_split` over the servers. */
  tensor_split: number[];
  /** Ours, the model split across the servers. */
  ours_rpc: RpcRates;
  /** llama-bench --rpc with the same split. */
  native_rpc: RpcRates;
  /** Ours, the same model on the local CPU. */
  ours_local: RpcRates;
  /** llama-bench on the local CPU. */
  native_local: RpcRates;
  /** Ours over llama-bench --rpc, tg, the median of the pairs' ratios (the issue's goal: at least 0.95). */
  tg_ratio: number;
  /** The same for pp. */
  pp_ratio: number;
  /** What the loopback split costs: ours_rpc.tg / ours_local.tg. */
  rpc_vs_local_tg: number;
}

/** Options of `benchRpc`. */
export interface RpcBenchOptions {
  /** GGUF model. */
  model: string;
  /** The llama-bench binary. */
  llamaBench: string;
  /** Threads, batch and polling on both sides. */
  settings: OurSettings;
  /** Alternating pairs. */
  pairs: number;
  /** Prompt tokens of the pp test. */
  nPrompt: number;
  /** Generated tokens of the tg test. */
  nGen: number;
  /** Progress lines. */
  log: (msg: string) => void;
}

/** Runs the leg: two servers on free ports, then `pairs` rounds of the four sides. */
export async function benchRpc(o: RpcBenchOptions): Promise<RpcResult> {
  await using a = await startServer();
  await using b = await startServer();
  const endpoints = [a.endpoint, b.endpoint];
  const split = [1, 1];
  const decode: DecodeSettings = {
    ...o.settings,
    model: o.model,
    nPrompt: o.nPrompt,
    nGen: o.nGen,
    reps: REPS,
  };
  const sides = {
    oursRpc: [] as [number, number][],
    nativeRpc: [] as [number, number][],
    oursLocal: [] as [number, number][],
    nativeLocal: [] as [number, number][],
  };
  const ours = async (rpc: boolean): Promise<[number, number]> => {
    using model = await Model.load(
      o.model,
      rpc ? { rpcServers: endpoints, nGpuLayers: 99, tensorSplit: split } : {},
    );
    return [
      await oursPp(model, o.settings, o.nPrompt, REPS),
      await oursTg(model, o.settings, o.nGen, true, REPS),
    ];
  };
  let nativeBackends = "";
  const native = async (rpc: boolean): Promise<[number, number]> => {
    const r = await runLlamaBench(
      o.llamaBench,
      rpc ? { ...decode, rpc: endpoints, tensorSplit: split } : decode,
    );
    if (rpc) nativeBackends = String(r.records[0].backends ?? "");
    return [r.pp ?? NaN, r.tg ?? NaN];
  };
  for (let i = 1; i <= o.pairs; i++) {
    // Odd pairs run ours first, even pairs llama-bench first: on two cores
    // shared by the client and both servers, whatever runs second in a pair
    // otherwise gets a systematically different machine.
    const oursFirst = i % 2 === 1;
    for (const rpc of [true, false]) {
      o.log(
        `rpc pair ${i}/${o.pairs}: ${rpc ? "split" : "local"}, ${
          oursFirst ? "ours first" : "llama-bench first"
        }`,
      );
      let a: [number, number], b: [number, number];
      if (oursFirst) {
        a = await ours(rpc);
        b = await native(rpc);
      } else {
        b = await native(rpc);
        a = await ours(rpc);
      }
      (rpc ? sides.oursRpc : sides.oursLocal).push(a);
      (rpc ? sides.nativeRpc : sides.nativeLocal).push(b);
      o.log(
        `  ours pp ${a[0].toFixed(0)} tg ${a[1].toFixed(1)}; llama-bench pp ${
          b[0].toFixed(0)
        } tg ${b[1].toFixed(1)}`,
      );
    }
  }
  const rates = (xs: [number, number][]): RpcRates => ({
    pp: median(xs.map((x) => x[0])),
    tg: median(xs.map((x) => x[1])),
  });
  const r = {
    oursRpc: rates(sides.oursRpc),
    nativeRpc: rates(sides.nativeRpc),
    oursLocal: rates(sides.oursLocal),
    nativeLocal: rates(sides.nativeLocal),
  };
  return {
    endpoints,
    native_backends: nativeBackends,
    tensor_split: split,
    ours_rpc: r.oursRpc,
    native_rpc: r.nativeRpc,
    ours_local: r.oursLocal,
    native_local: r.nativeLocal,
    tg_ratio: median(sides.oursRpc.map((x, i) => x[1] / sides.nativeRpc[i][1])),
    pp_ratio: median(sides.oursRpc.map((x, i) => x[0] / sides.nativeRpc[i][0])),
    rpc_vs_local_tg: r.oursRpc.tg / r.oursLocal.tg,
  };
}

/** The table lines of the leg. */
export function rpcLines(r: RpcResult | undefined): string[] {
  if (!r) return [];
  const f = (x: number) => x.toFixed(1);
  return [
    "",
    `RPC, two loopback servers (split ${r.tensor_split.join(":")}):`,
    `  ours  pp ${f(r.ours_rpc.pp)} t/s, tg ${f(r.ours_rpc.tg)} t/s`,
    `  llama-bench --rpc  pp ${f(r.native_rpc.pp)} t/s, tg ${
      f(r.native_rpc.tg)
    } t/s`,
    `  ratio  pp ${r.pp_ratio.toFixed(2)}, tg ${r.tg_ratio.toFixed(2)}`,
    `  local: ours tg ${f(r.ours_local.tg)} t/s, llama-bench tg ${
      f(r.native_local.tg)
    } t/s; the split costs ${
      ((1 - r.rpc_vs_local_tg) * 100).toFixed(0)
    }% of local tg`,
  ];
}
