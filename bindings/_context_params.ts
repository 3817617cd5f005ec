/**
 * `ContextOptions` as the shim's `wnb_context_params` struct, for every call
 * that takes context parameters (creating a context, planning memory).
 * @module
 */

import { symbols } from "./_library.ts";
import { CONTEXT_PARAMS, writeStruct } from "./_struct.ts";
import type { ContextOptions } from "./context.ts";

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
