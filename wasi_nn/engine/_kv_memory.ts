/**
 * The size of a KV cache, from the model's shape and the cache types: what
 * the host's memory check refuses on and what the status view reports.
 *
 * @example
 * ```ts
 * import { kvCacheBytes } from "./_kv_memory.ts";
 * const info = { n_layer: 2, n_embd: 64, n_head: 4, n_head_kv: 4 };
 * console.log(kvCacheBytes(info, 1024)); // 524288 (f16 K and V)
 * ```
 * @module
 */

import { ggmlTypeLayout } from "../../gguf/ggml_type.ts";

/** The model shape a KV cache depends on. */
export interface KvShape {
  /** Layers. */
  n_layer: number;
  /** Embedding width. */
  n_embd: number;
  /** Attention heads. */
  n_head: number;
  /** Key/value heads. */
  n_head_kv: number;
}

/** Bytes of K and V for `nCtx` cells; types are ggml type ids (default f16). */
export function kvCacheBytes(
  info: KvShape,
  nCtx: number,
  typeK = 1,
  typeV = 1,
): number {
  const headDim = info.n_head > 0 ? info.n_embd / info.n_head : info.n_embd;
  const perValue = (type: number) => {
    const l = ggmlTypeLayout(type) ?? { blockSize: 1, typeSize: 2 };
    return l.typeSize / l.blockSize;
  };
  return nCtx * info.n_layer * headDim * info.n_head_kv *
    (perValue(typeK) + perValue(typeV));
}
