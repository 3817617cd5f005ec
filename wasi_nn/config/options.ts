/**
 * The one adapter from config values (canonical names) to what the layers
 * below take:
 *
 * - the bindings' model and context options ({@linkcode modelOptions},
 *   {@linkcode contextOptions}): `flash_attn`, `cache_type_k`/`cache_type_v`,
 *   `pooling_type`, `no_kv_offload`, RoPE overrides and thread counts;
 * - the sampler chain's parameters ({@linkcode samplerParams}, with
 *   {@linkcode grammarTriggers} and {@linkcode logitBias});
 * - the options of one generation ({@linkcode taskOptions},
 *   {@linkcode singleStop}): stopping, context shift and scheduling;
 * - the engine's chat options ({@linkcode chatOptions}) and the limits of
 *   the chat-template sandbox ({@linkcode templateLimits}).
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
import type { ChatOptions } from "../engine/chat.ts";
import {
  TEMPLATE_LIMITS,
  type TemplateLimits,
} from "../engine/_chat_sandbox.ts";
import type { ProjectorOptions } from "../engine/_media_prompt.ts";
import type { TaskSpec } from "../engine/scheduler.ts";
import type { StopOptions } from "../engine/stopping.ts";
import type { ConfigValues } from "./parse.ts";
import { GGML_CACHE_TYPE } from "./_keys.ts";

export {
  grammarTriggers,
  logitBias,
  samplerParams,
  TRIGGER_LIMITS,
} from "./_sampler_options.ts";

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
 * How a model's projector (`mmproj`) loads: the context's threads (see
 * {@linkcode cpuThreads}); on the GPU when the model offloads layers.
 *
 * @example
 * ```ts
 * import { projectorOptions } from "./options.ts";
 * console.log(projectorOptions({ threads: 1, n_gpu_layers: 0 })); // { nThreads: 1, useGpu: false }
 * ```
 */
export function projectorOptions(cfg: ConfigValues): ProjectorOptions {
  return { nThreads: cpuThreads(cfg.threads), useGpu: cfg.n_gpu_layers !== 0 };
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
  if (cfg.ctx_size !== undefined) o.nCtx = cfg.ctx_size;
  if (cfg.batch_size !== undefined) o.nBatch = cfg.batch_size;
  if (cfg.ubatch_size !== undefined) o.nUbatch = cfg.ubatch_size;
  const threads = cpuThreads(cfg.threads);
  o.nThreads = threads;
  o.nThreadsBatch = cfg.threads_batch !== undefined && cfg.threads_batch > 0
    ? cpuThreads(cfg.threads_batch)
    : threads;
  if (cfg.poll !== undefined) o.poll = cfg.poll;
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
  if (cfg.rope_freq_base !== undefined && cfg.rope_freq_base > 0) {
    o.ropeFreqBase = cfg.rope_freq_base;
  }
  if (cfg.rope_freq_scale !== undefined && cfg.rope_freq_scale > 0) {
    o.ropeFreqScale = cfg.rope_freq_scale;
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
  if (typeof cfg.split_mode === "string") o.splitMode = cfg.split_mode;
  if (Array.isArray(cfg.tensor_split) && cfg.tensor_split.length > 0) {
    o.tensorSplit = cfg.tensor_split;
  }
  if (typeof cfg.use_mmap === "boolean") o.useMmap = cfg.use_mmap;
  if (typeof cfg.use_mlock === "boolean") o.useMlock = cfg.use_mlock;
  if (typeof cfg.check_tensors === "boolean") {
    o.checkTensors = cfg.check_tensors;
  }
  return o;
}

/**
 * Chat options from config values: `chat_template` and `chat_parse_special`.
 *
 * @example
 * ```ts
 * import { chatOptions } from "./options.ts";
 * console.log(chatOptions({ chat_template: "{{ messages[0].content }}", chat_parse_special: true }));
 * // { template: "{{ messages[0].content }}", parseSpecial: true }
 * ```
 */
export function chatOptions(cfg: ConfigValues): ChatOptions {
  const o: ChatOptions = {};
  if (typeof cfg.chat_template === "string" && cfg.chat_template !== "") {
    o.template = cfg.chat_template;
  }
  if (typeof cfg.chat_parse_special === "boolean") {
    o.parseSpecial = cfg.chat_parse_special;
  }
  return o;
}

/**
 * The RPC endpoints (host key `rpc`, llama.cpp's `--rpc`) whose devices a
 * model loaded with `cfg` uses, or undefined. The list is read from the
 * operator's config only, never a guest's: a guest could otherwise make the
 * host connect anywhere. A model that offloads no layer (`n_gpu_layers` 0 in
 * `cfg`) uses no server: it stays local. Pass them as
 * `ModelLoadOptions.rpcServers` after `checkRpcServers`.
 *
 * @example
 * ```ts
 * import { rpcServers } from "./options.ts";
 * const host = { rpc: ["127.0.0.1:50052"] };
 * console.log(rpcServers(host)); // ["127.0.0.1:50052"]
 * console.log(rpcServers(host, { n_gpu_layers: 0 })); // undefined
 * console.log(rpcServers({})); // undefined
 * ```
 */
export function rpcServers(
  hostConfig: ConfigValues,
  cfg: ConfigValues = hostConfig,
): string[] | undefined {
  const list = hostConfig.rpc;
  if (cfg.n_gpu_layers === 0) return undefined;
  return Array.isArray(list) && list.length > 0 ? [...list] : undefined;
}

/**
 * The chat-template sandbox's limits a host config sets (its
 * `chat_template_*` keys), the defaults (`TEMPLATE_LIMITS`) for the rest.
 * Read from the operator's config only, never a guest's.
 *
 * @example
 * ```ts
 * import { templateLimits } from "./options.ts";
 * console.log(templateLimits({ chat_template_timeout_ms: 500 }).timeoutMs); // 500
 * ```
 */
export function templateLimits(hostConfig: ConfigValues): TemplateLimits {
  const n = (v: number | undefined, d: number) => typeof v === "number" ? v : d;
  return {
    timeoutMs: n(
      hostConfig.chat_template_timeout_ms,
      TEMPLATE_LIMITS.timeoutMs,
    ),
    maxMemoryMb: n(
      hostConfig.chat_template_max_memory_mb,
      TEMPLATE_LIMITS.maxMemoryMb,
    ),
    maxOutputBytes: n(
      hostConfig.chat_template_max_output_bytes,
      TEMPLATE_LIMITS.maxOutputBytes,
    ),
  };
}

/**
 * What {@linkcode taskOptions} reads from a config: the config-given part of
 * a scheduler task.
 *
 * @example
 * ```ts
 * import { type TaskOptions, taskOptions } from "./options.ts";
 * const o: TaskOptions = taskOptions({ n_predict: 8 });
 * console.log(o.stop.nPredict, o.ignoreEos); // 8 false
 * ```
 */
export type TaskOptions =
  & Pick<
    TaskSpec,
    | "priority"
    | "maxQueue"
    | "queueTimeoutMs"
    | "cachePrompt"
    | "cacheReuse"
    | "contextShift"
    | "nKeep"
    | "nDiscard"
  >
  & {
    /** Stopping criteria. */
    stop: StopOptions;
    /** Generate past end-of-generation tokens. */
    ignoreEos: boolean;
  };

/**
 * The stopping criteria of `compute_single`: as in WasmEdge, n-predict and
 * stop strings (reverse-prompt) are the guest's to apply, since each piece is
 * handed out as it comes; stop tokens, the time limit and the loop detector
 * still apply.
 *
 * @example
 * ```ts
 * import { singleStop } from "./options.ts";
 * console.log(singleStop({ n_predict: 8, stop: ["x"], stop_token_ids: [2] }));
 * // { nPredict: -1, stopTokens: [ 2 ], tMaxPredictMs: undefined, loop: undefined }
 * ```
 */
export function singleStop(cfg: ConfigValues): StopOptions {
  const { stopTokens, tMaxPredictMs, loop } = taskOptions(cfg).stop;
  return { nPredict: -1, stopTokens, tMaxPredictMs, loop };
}

/**
 * The options of one generation a config asks for: its stopping criteria
 * (`n_predict`, `stop`, `reverse_prompt`, `stop_token_ids`,
 * `t_max_predict_ms`, the loop detector), context shift and scheduling. The
 * host's guest calls and `cli.ts generate` read a config the same way.
 * `reverse_prompt` (WasmEdge) stays in the output; the server's `stop`
 * strings do not.
 *
 * @example
 * ```ts
 * import { taskOptions } from "./options.ts";
 * const o = taskOptions({ n_predict: 8, stop: ["\n"], ctx_shift: true });
 * console.log(o.stop.nPredict, o.stop.includeStop, o.contextShift); // 8 false true
 * ```
 */
export function taskOptions(cfg: ConfigValues): TaskOptions {
  const stop = cfg.stop ?? [];
  const reverse =
    typeof cfg.reverse_prompt === "string" && cfg.reverse_prompt !== ""
      ? [cfg.reverse_prompt]
      : [];
  return {
    stop: {
      nPredict: cfg.n_predict ?? -1,
      // WasmEdge keeps reverse-prompt in the output; the server removes `stop` strings.
      stop: [...reverse, ...stop],
      includeStop: reverse.length > 0 && stop.length === 0,
      stopTokens: cfg.stop_token_ids,
      nIndent: cfg.n_indent,
      tMaxPredictMs: cfg.t_max_predict_ms ?? cfg.default_task_timeout_ms,
      loop: cfg.loop_max_cycle
        ? {
          maxCycle: cfg.loop_max_cycle,
          repeats: cfg.loop_repeats ?? 4,
        }
        : undefined,
    },
    ignoreEos: Boolean(cfg.ignore_eos),
    priority: cfg.priority_scheduling_enabled === false ? 0 : cfg.priority,
    maxQueue: cfg.max_queue === undefined &&
        cfg.queue_reject_threshold === undefined
      ? undefined
      : Math.min(
        cfg.max_queue ?? Infinity,
        cfg.queue_reject_threshold ?? Infinity,
      ),
    queueTimeoutMs: cfg.queue_timeout_ms ?? cfg.default_task_timeout_ms,
    cachePrompt: cfg.cache_prompt ?? cfg.enable_token_cache_reuse,
    cacheReuse: cfg.n_cache_reuse,
    contextShift: cfg.ctx_shift,
    nKeep: cfg.n_keep,
    nDiscard: cfg.n_discard,
  };
}
