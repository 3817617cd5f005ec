/**
 * Config values (canonical names) to the bindings' model and context options:
 * the one place that maps `flash_attn`, `cache_type_k`/`cache_type_v`,
 * `pooling_type`, `no_kv_offload`, RoPE overrides and thread counts.
 *
 * @example
 * ```ts
 * import { contextOptions } from "./options.ts";
 * console.log(contextOptions({ ctx_size: 2048, flash_attn: true, cache_type_k: "q8_0", threads: 2 }));
 * // { nCtx: 2048, nThreads: 2, nThreadsBatch: 2, flashAttn: "on", typeK: 8 }
 * ```
 * @module
 */

import { POOLING_TYPES } from "../../bindings/types.ts";
import type { ContextOptions, ModelLoadOptions } from "../../bindings/mod.ts";
import type { ConfigValues } from "./parse.ts";
import { GGML_CACHE_TYPE } from "./_keys.ts";

/**
 * `flash_attn` as the bindings take it.
 *
 * @example
 * ```ts
 * import { flashAttn } from "./options.ts";
 * console.log(flashAttn(true), flashAttn("disabled"), flashAttn(undefined)); // on off undefined
 * ```
 */
export function flashAttn(v: unknown): "auto" | "on" | "off" | undefined {
  if (v === undefined) return undefined;
  if (v === true || v === "on" || v === "enabled") return "on";
  if (v === false || v === "off" || v === "disabled") return "off";
  return "auto";
}

/**
 * A thread count: the one asked for, at most the CPU count (without OpenMP,
 * more threads than cores cost hundreds of times the time per token); the CPU
 * count when none is asked for.
 *
 * @example
 * ```ts
 * import { cpuThreads } from "./options.ts";
 * console.log(cpuThreads(1), cpuThreads(undefined) === navigator.hardwareConcurrency); // 1 true
 * ```
 */
export function cpuThreads(asked: unknown): number {
  const cpus = navigator.hardwareConcurrency || 4;
  return typeof asked === "number" && asked > 0 ? Math.min(asked, cpus) : cpus;
}

/**
 * Context options from config values; keys that are not set are left out
 * (the bindings then use llama.cpp's defaults). Threads default to the CPU
 * count and are capped at it, `threads_batch` defaults to `threads`.
 *
 * @example
 * ```ts
 * import { contextOptions } from "./options.ts";
 * console.log(contextOptions({ batch_size: 512, no_kv_offload: true }).offloadKqv); // false
 * ```
 */
export function contextOptions(cfg: ConfigValues): ContextOptions {
  const o: ContextOptions = {};
  const n = (k: string) => cfg[k] as number | undefined;
  if (n("ctx_size") !== undefined) o.nCtx = n("ctx_size");
  if (n("batch_size") !== undefined) o.nBatch = n("batch_size");
  if (n("ubatch_size") !== undefined) o.nUbatch = n("ubatch_size");
  const threads = cpuThreads(cfg.threads);
  o.nThreads = threads;
  o.nThreadsBatch = n("threads_batch") !== undefined && n("threads_batch")! > 0
    ? cpuThreads(cfg.threads_batch)
    : threads;
  if (n("poll") !== undefined) o.poll = n("poll");
  const fa = flashAttn(cfg.flash_attn);
  if (fa) o.flashAttn = fa;
  if (typeof cfg.cache_type_k === "string") {
    o.typeK = GGML_CACHE_TYPE[cfg.cache_type_k];
  }
  if (typeof cfg.cache_type_v === "string") {
    o.typeV = GGML_CACHE_TYPE[cfg.cache_type_v];
  }
  const pooling = cfg.pooling_type;
  if (typeof pooling === "number") o.poolingType = pooling;
  else if (typeof pooling === "string") {
    o.poolingType = (POOLING_TYPES as readonly string[]).indexOf(pooling);
  }
  if (n("rope_freq_base") !== undefined && n("rope_freq_base")! > 0) {
    o.ropeFreqBase = n("rope_freq_base");
  }
  if (n("rope_freq_scale") !== undefined && n("rope_freq_scale")! > 0) {
    o.ropeFreqScale = n("rope_freq_scale");
  }
  if (cfg.embedding !== undefined) o.embeddings = Boolean(cfg.embedding);
  if (cfg.no_kv_offload !== undefined) o.offloadKqv = !cfg.no_kv_offload;
  if (cfg.kv_unified !== undefined) o.kvUnified = Boolean(cfg.kv_unified);
  if (cfg.swa_full !== undefined) o.swaFull = Boolean(cfg.swa_full);
  return o;
}

/**
 * Model load options from config values (`n_gpu_layers` "auto" is left to
 * the caller, which needs llama.cpp's fit).
 *
 * @example
 * ```ts
 * import { modelOptions } from "./options.ts";
 * console.log(modelOptions({ n_gpu_layers: 0, use_mmap: false })); // { nGpuLayers: 0, useMmap: false }
 * ```
 */
export function modelOptions(cfg: ConfigValues): ModelLoadOptions {
  const o: ModelLoadOptions = {};
  if (typeof cfg.n_gpu_layers === "number") o.nGpuLayers = cfg.n_gpu_layers;
  // "auto" left unfitted (the host fits it first) means every layer.
  if (cfg.n_gpu_layers === "auto") o.nGpuLayers = -1;
  if (typeof cfg.main_gpu === "number") o.mainGpu = cfg.main_gpu;
  if (typeof cfg.split_mode === "string") {
    o.splitMode = cfg.split_mode as "none" | "layer" | "row";
  }
  if (typeof cfg.use_mmap === "boolean") o.useMmap = cfg.use_mmap;
  if (typeof cfg.use_mlock === "boolean") o.useMlock = cfg.use_mlock;
  if (typeof cfg.check_tensors === "boolean") {
    o.checkTensors = cfg.check_tensors;
  }
  return o;
}
