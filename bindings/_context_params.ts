/**
 * `ContextOptions` and their form as the shim's `wnb_context_params` struct,
 * for every call that takes context parameters (creating a context, planning
 * memory). It imports none of its siblings that use it, so `context.ts` and
 * `memory.ts` both build on it without a cycle.
 * @module
 */

import { symbols } from "./_library.ts";
import { CONTEXT_PARAMS, writeStruct } from "./_struct.ts";

/** Options of `Context.create`. Unset values take llama.cpp's defaults. */
export interface ContextOptions {
  /** Context length in tokens; 0 = the model's training context. */
  nCtx?: number;
  /** Max tokens per decode call. */
  nBatch?: number;
  /** Physical batch. */
  nUbatch?: number;
  /** Sequences (sessions) sharing this context. */
  nSeqMax?: number;
  /** Generation threads. */
  nThreads?: number;
  /** Prompt-processing threads. */
  nThreadsBatch?: number;
  /**
   * ggml thread-pool polling 0..100; default 0. llama.cpp's tools use 50,
   * which pays off with blocking calls from one thread; with non-blocking
   * calls the spinning threads steal the core the next call needs.
   * -1 = no own pool.
   */
  poll?: number;
  /** Flash attention: "auto", "on", "off". */
  flashAttn?: "auto" | "on" | "off";
  /** ggml type of the K cache (e.g. 1 = f16, 8 = q8_0). */
  typeK?: number;
  /** ggml type of the V cache. */
  typeV?: number;
  /** -1 model default, 0 none, 1 mean, 2 cls, 3 last, 4 rank. */
  poolingType?: number;
  /** RoPE base frequency; 0 = from model. */
  ropeFreqBase?: number;
  /** RoPE scale; 0 = from model. */
  ropeFreqScale?: number;
  /** Compute embeddings. */
  embeddings?: boolean;
  /** Keep the KV cache on the GPU. */
  offloadKqv?: boolean;
  /** One KV buffer for all sequences. */
  kvUnified?: boolean;
  /** Skip perf counters. */
  noPerf?: boolean;
  /**
   * A full-size sliding-window cache (default false, as llama.cpp's
   * server): every position stays cached, at the memory cost of a full
   * KV cache for the window layers.
   */
  swaFull?: boolean;
}

const FLASH = { auto: -1, off: 0, on: 1 } as const;

function cpus(): number {
  return navigator.hardwareConcurrency || 1;
}

/** The struct for `options`; unset fields keep llama.cpp's defaults. */
export function contextParams(
  options: ContextOptions,
): Uint8Array<ArrayBuffer> {
  const p = new Uint8Array(CONTEXT_PARAMS.size);
  symbols().wnb_context_default_params(p);
  const b = (x?: boolean) => x === undefined ? undefined : Number(x);
  writeStruct(CONTEXT_PARAMS, p, {
    n_ctx: options.nCtx,
    n_batch: options.nBatch,
    n_ubatch: options.nUbatch,
    n_seq_max: options.nSeqMax,
    // Never more threads than CPUs by default: ggml's pool waits by
    // spinning, and oversubscribed spinning threads stall each other.
    n_threads: options.nThreads ?? cpus(),
    n_threads_batch: options.nThreadsBatch ?? options.nThreads ?? cpus(),
    // Spinning pool threads hold a core while the next call hops threads:
    // poll only when asked (llama.cpp's tools use 50 with blocking calls).
    poll: options.poll ?? 0,
    flash_attn: options.flashAttn === undefined
      ? undefined
      : FLASH[options.flashAttn],
    type_k: options.typeK,
    type_v: options.typeV,
    pooling_type: options.poolingType,
    rope_freq_base: options.ropeFreqBase,
    rope_freq_scale: options.ropeFreqScale,
    embeddings: b(options.embeddings),
    offload_kqv: b(options.offloadKqv),
    kv_unified: b(options.kvUnified),
    no_perf: b(options.noPerf),
    swa_full: b(options.swaFull),
  });
  return p;
}
