/**
 * Plain data types the bindings return.
 * @module
 */

/** What `Model.info` reports (from `wnb_model_info_json`). */
export interface ModelInfo {
  /** `general.architecture`, e.g. "llama". */
  architecture: string;
  /** `general.name`. */
  name: string;
  /** llama.cpp's one-line description (type, size, quantization). */
  description: string;
  /** Parameter count. */
  n_params: number;
  /** Bytes of weights. */
  size: number;
  /** Training context length. */
  n_ctx_train: number;
  /** Embedding width. */
  n_embd: number;
  /** Layers. */
  n_layer: number;
  /** Attention heads. */
  n_head: number;
  /** KV heads. */
  n_head_kv: number;
  /** Vocabulary size. */
  n_vocab: number;
  /** llama.cpp vocab type (1 SPM, 2 BPE, ...). */
  vocab_type: number;
  /** BOS token, -1 if none. */
  bos: number;
  /** EOS token, -1 if none. */
  eos: number;
  /** EOT token, -1 if none. */
  eot: number;
  /** Newline token. */
  nl: number;
  /** Whether tokenizing adds BOS. */
  add_bos: boolean;
  /** Whether tokenizing adds EOS. */
  add_eos: boolean;
  /** All end-of-generation tokens. */
  eog: number[];
  /** Encoder present (T5-like). */
  has_encoder: boolean;
  /** Sliding-window size of the attention (0: none). Old positions leave the window's cache. */
  n_swa: number;
  /** Recurrent memory (Mamba, RWKV): a sequence's tail cannot be removed. */
  is_recurrent: boolean;
  /** Hybrid memory (attention and recurrent layers). */
  is_hybrid: boolean;
  /** Decoder present. */
  has_decoder: boolean;
  /** The model's Jinja chat template, or null. */
  chat_template: string | null;
  /** Every GGUF metadata key, values as strings (arrays abbreviated by llama.cpp). */
  metadata: Record<string, string>;
}

/** Device as reported by ggml. */
export interface DeviceInfo {
  /** e.g. "CPU", "CUDA0". */
  name: string;
  /** e.g. the CPU or GPU model. */
  description: string;
  /** cpu, gpu, igpu, accel, or rpc (a device of an RPC server). */
  type: string;
  /** Free bytes (0 for an RPC device that did not answer). */
  memory_free: number;
  /** Total bytes. */
  memory_total: number;
  /**
   * Whether llama.cpp's default device selection gives a model this local
   * device (GPUs, one per device id, else one backend's integrated GPUs;
   * never the CPU): the local devices that follow the RPC ones in a model's
   * device list. Absent on RPC devices.
   */
  model_device?: boolean;
  /** An RPC device's server, `host:port`. */
  endpoint?: string;
  /** Why an RPC device's memory is unknown: its server did not answer a probe. */
  error?: string;
}

/** What the library reports about itself (`wnb_info_json`). */
export interface BackendInfo {
  /** ABI version of the shim. */
  abi: number;
  /** llama.cpp commit the library was built from. */
  llama_commit: string;
  /** llama.cpp build number. */
  llama_build_number: number;
  /** Whether any GPU backend is compiled in. */
  gpu_offload: boolean;
  /** Whether ggml's RPC backend is compiled in ("RPC" is then among the backends). */
  rpc: boolean;
  /** ggml's feature string (AVX2, ...). */
  system_info: string;
  /** Backends compiled in: "CPU", "CUDA", ... */
  backends: string[];
  /** Devices found at run time. */
  devices: DeviceInfo[];
}

/** One decoded log record from llama.cpp. */
export interface LogRecord {
  /** Its level. */
  level: LogLevel;
  /** The text, without trailing newline. */
  message: string;
}

/**
 * llama.cpp's pooling types, by number: `POOLING_TYPES[n]` is the name of
 * `llama_pooling_type` n (-1 is the model's default).
 *
 * @example
 * ```ts
 * import { POOLING_TYPES } from "./types.ts";
 * console.log(POOLING_TYPES.indexOf("cls")); // 2
 * ```
 */
export const POOLING_TYPES = ["none", "mean", "cls", "last", "rank"] as const;

/** A pooling type's name. */
export type PoolingName = typeof POOLING_TYPES[number];

/**
 * Grammar trigger types, by llama.cpp's number (`common_grammar_trigger_type`).
 *
 * @example
 * ```ts
 * import { GRAMMAR_TRIGGER_TYPES } from "./types.ts";
 * console.log(GRAMMAR_TRIGGER_TYPES.indexOf("pattern")); // 2
 * ```
 */
export const GRAMMAR_TRIGGER_TYPES = [
  "token",
  "word",
  "pattern",
  "pattern_full",
] as const;

/**
 * The log levels, least severe first.
 *
 * @example
 * ```ts
 * import { LOG_LEVELS } from "./types.ts";
 * console.log(LOG_LEVELS.indexOf("warn") > LOG_LEVELS.indexOf("info")); // true
 * ```
 */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

/**
 * One log level.
 *
 * @example
 * ```ts
 * import type { LogLevel } from "./types.ts";
 * const level: LogLevel = "warn";
 * console.log(level);
 * ```
 */
export type LogLevel = typeof LOG_LEVELS[number];
