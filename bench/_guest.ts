/**
 * The guest leg of the benchmark: greedy generation requested by a WASI
 * guest (build/guests/oneshot.wasm) through `runGuest` (JSPI: the guest
 * suspends in `compute` while the host generates) and `LlamaHost` (its
 * scheduler: one awaited non-blocking decode per step, sampling,
 * detokenizing and stop checks). Skipped, with the reason, when the guest is
 * not built.
 *
 * The speed is read from the host's metadata (output index 1) right after
 * the guest's `compute` returns: `output_tokens` over `generation_ms`, which
 * spans the first sample to the last one, i.e. n samples and n - 1 decodes;
 * it is counted as n - 1 tokens, the conservative reading.
 * @module
 */

import { isFile } from "../_internal/fs.ts";
import { closeSync, openSync } from "node:fs";
import { paths } from "../paths.ts";
import { LlamaHost } from "../wasi_nn/host/host.ts";
import type { TensorInput, WasiNnHostApi } from "../wasi_nn/host/api.ts";
import { ModelRegistry } from "../wasi_nn/host/registry.ts";
import { runGuest } from "../wasi_nn/abi/run_guest.ts";
import type { OurSettings } from "./_ours.ts";

/** A guest leg that can run, or the reason it cannot. */
export type GuestBench =
  | {
    /** It can run. */
    available: true;
    /** What runs (for the report). */
    description: string;
    /** One greedy generation; returns generated tokens/s. */
    run: () => Promise<number>;
    /** Frees what it holds; settles when its engines are gone. */
    close: () => Promise<void>;
  }
  | {
    /** It cannot run. */
    available: false;
    /** Why not. */
    reason: string;
    /** Nothing to free. */
    close?: undefined;
  };

/** The metadata fields the benchmark reads. */
interface GuestMetadata {
  output_tokens?: number;
  generation_ms?: number;
}

/** Delegates everything to `host` and records the metadata after each `compute`. */
function recordingHost(host: LlamaHost, seen: GuestMetadata[]): WasiNnHostApi {
  const dec = new TextDecoder();
  return {
    load: (b: Uint8Array[], e: number, t: number) => host.load(b, e, t),
    loadByName: (name: string, config?: string) =>
      host.loadByName(name, config),
    initExecutionContext: (g: number) => host.initExecutionContext(g),
    setInput: (c: number, i: number, t: TensorInput) => host.setInput(c, i, t),
    compute: async (c: number) => {
      await host.compute(c);
      seen.push(JSON.parse(dec.decode(host.getOutput(c, 1))) as GuestMetadata);
    },
    getOutput: (c: number, i: number) => host.getOutput(c, i),
    computeSingle: (c: number) => host.computeSingle(c),
    getOutputSingle: (c: number, i: number) => host.getOutputSingle(c, i),
    finiSingle: (c: number) => host.finiSingle(c),
    unload: (g: number) => host.unload(g),
    finalizeExecutionContext: (c: number) => host.finalizeExecutionContext(c),
  };
}

/**
 * Prepares the guest leg (a host with the model preloaded as "default", and
 * one untimed warmup run), or says why it is skipped.
 */
export async function guestBench(
  model: string,
  prompt: string,
  nPredict: number,
  settings: OurSettings,
  nCtx: number,
  engine: "in_process" | "process" = "in_process",
): Promise<GuestBench> {
  const wasm = `${paths().root}/build/guests/oneshot.wasm`;
  if (!isFile(wasm)) {
    return {
      available: false,
      reason: `${wasm} is not built (deno run -A examples/build.ts)`,
    };
  }
  const config = {
    "n-predict": nPredict,
    "temp": 0,
    "ignore-eos": true,
    "ctx-size": nCtx,
    "batch-size": settings.batch,
    "ubatch-size": settings.batch,
    "threads": settings.threads,
    "threads-batch": settings.threads,
    "poll": settings.poll,
    "parallel": 1,
  };
  const registry = new ModelRegistry({
    preloads: [`default:GGML:AUTO:${model}`],
  });
  const host = await LlamaHost.create({ registry, hostConfig: { engine } });
  const seen: GuestMetadata[] = [];
  const api = recordingHost(host, seen);
  // The guest prints its answer and metadata: keep them off our stdout.
  const logPath = Deno.makeTempFileSync({
    prefix: "wasi_nn_bench_guest_",
    suffix: ".log",
  });
  const fd = openSync(logPath, "w");
  const once = async (): Promise<number> => {
    const n = nPredict;
    seen.length = 0;
    const code = await runGuest({
      wasm,
      args: ["default", prompt],
      env: { WASI_NN_CONFIG: JSON.stringify(config) },
      host: api,
      stdout: fd,
      stderr: fd,
    });
    const meta = seen.at(-1);
    if (code !== 0 || !meta?.output_tokens || !meta.generation_ms) {
      const tail = Deno.readTextFileSync(logPath).split("\n").slice(-10).join(
        "\n",
      );
      throw new Error(
        `oneshot.wasm exited with ${code} (metadata ${
          JSON.stringify(meta)
        }):\n${tail}`,
      );
    }
    if (meta.output_tokens !== n) {
      throw new Error(
        `oneshot.wasm generated ${meta.output_tokens} of ${n} tokens`,
      );
    }
    return ((meta.output_tokens - 1) * 1000) / meta.generation_ms;
  };
  const close = async () => {
    await host.shutdown();
    closeSync(fd);
    try {
      Deno.removeSync(logPath);
    } catch { /* already gone */ }
  };
  try {
    // Warmup: model load, scheduler, first decodes. Same config as the timed
    // runs: the host keeps the config a name was first loaded with.
    await once();
  } catch (e) {
    await close();
    throw e;
  }
  return {
    available: true,
    description:
      `build/guests/oneshot.wasm via runGuest (JSPI) and LlamaHost (engine ${engine}), ${nPredict} tokens`,
    run: once,
    close,
  };
}
