/**
 * Memory planning before a load: what a model and a context need on each
 * device, and llama.cpp's own fitting of GPU layers and context size to the
 * free memory (`--fit`).
 *
 * @example
 * ```ts ignore
 * import { estimateMemory } from "./memory.ts";
 * const est = await estimateMemory(".cache/models/tiny.gguf", { nCtx: 2048 });
 * for (const d of est.devices) console.log(d.name, d.model + d.context + d.compute);
 * ```
 * @module
 */

import { symbols } from "./_library.ts";
import { check, cstr, errorBuffer, utf8 } from "./_buffers.ts";
import { CONTEXT_PARAMS, MODEL_PARAMS, readStruct } from "./_struct.ts";
import { type ContextOptions, contextParams } from "./_context_params.ts";
import { type PlacementOptions, placementParams } from "./_model_params.ts";

/** Per-device memory estimate, in bytes. */
export interface DeviceEstimate {
  /** Device name; "Host" is system RAM. */
  name: string;
  /** Free memory now. */
  free: number;
  /** Total memory. */
  total: number;
  /** Weights placed on this device. */
  model: number;
  /** KV cache and other context buffers. */
  context: number;
  /** Compute buffers. */
  compute: number;
}

/** Result of `estimateMemory`. */
export interface MemoryEstimate {
  /** Layers of the model. */
  n_layer: number;
  /** Training context. */
  n_ctx_train: number;
  /** One entry per device; the last one is the host. */
  devices: DeviceEstimate[];
}

/**
 * Model and context settings for planning. The placement (`nGpuLayers`, -1
 * all; `mainGpu`, `splitMode`, `tensorSplit`, `rpcServers`) is the load's:
 * RPC devices count with their servers' free memory.
 */
export interface PlanOptions extends PlacementOptions {
  /** Context length (0 = training context). */
  nCtx?: number;
  /** Logical batch. */
  nBatch?: number;
  /** Sequences. */
  nSeqMax?: number;
  /** The context's other options (KV cache types, flash attention, KV offload, ...). */
  context?: ContextOptions;
}

function params(
  opts: PlanOptions,
): [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>, Float32Array?] {
  const { params: mp, tensorSplit } = placementParams(opts);
  const cp = contextParams({
    ...opts.context,
    nCtx: opts.nCtx,
    nBatch: opts.nBatch,
    nSeqMax: opts.nSeqMax,
  });
  return [mp, cp, tensorSplit];
}

/** Estimates memory per device without loading the weights. */
export async function estimateMemory(
  path: string,
  opts: PlanOptions = {},
): Promise<MemoryEstimate> {
  const [mp, cp] = params(opts);
  const err = errorBuffer();
  // The estimate is a non-blocking call: the buffer is sized once, generously.
  const buf = new Uint8Array(1 << 16);
  const n = await symbols().wnb_estimate_memory(
    cstr(path),
    mp,
    cp,
    buf,
    buf.length,
    err,
  );
  if (n < 0) check(-n, err, "estimating memory");
  return JSON.parse(utf8(buf.subarray(0, Math.min(n, buf.length))));
}

/**
 * Chooses GPU layers (and the context size when nCtx is 0) that fit the free
 * memory, as llama.cpp's `--fit` does. Throws LlamaError(OutOfMemory) with
 * the reason when nothing fits.
 */
export async function fitParams(
  path: string,
  opts: PlanOptions & { nCtxMin?: number } = {},
): Promise<{ nGpuLayers: number; nCtx: number; tensorSplit?: number[] }> {
  // A zero split (llama.cpp: none given) for the fit to write its own into.
  const [mp, cp, split] = params({
    ...opts,
    nGpuLayers: opts.nGpuLayers ?? -2,
    tensorSplit: opts.tensorSplit ?? [0],
  });
  const err = errorBuffer();
  const st = await symbols().wnb_fit_params(
    cstr(path),
    mp,
    cp,
    opts.nCtxMin ?? 0,
    err,
  );
  check(st, err, "fitting the model to memory");
  const last = split ? split.findLastIndex((v) => v > 0) : -1;
  const chosen = last >= 0 ? [...split!.subarray(0, last + 1)] : undefined;
  return {
    nGpuLayers: Number(readStruct(MODEL_PARAMS, mp).n_gpu_layers),
    nCtx: Number(readStruct(CONTEXT_PARAMS, cp).n_ctx),
    ...(chosen ? { tensorSplit: chosen } : {}),
  };
}
