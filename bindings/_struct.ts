/**
 * C struct layouts for the parameter structs of `wasi_nn_shim.h`: fields in
 * declaration order with natural alignment (x86_64 / aarch64 LP64), so the
 * offsets are computed, not hand-written. `_library.ts` checks each total
 * size against the library's `wnb_sizeof_*`.
 * @module
 */

/** A field type of a shim struct. */
export type FieldType = "i32" | "u32" | "f32" | "u8" | "ptr";

const SIZE: Record<FieldType, number> = {
  i32: 4,
  u32: 4,
  f32: 4,
  u8: 1,
  ptr: 8,
};

/** A computed layout. */
export interface Layout<K extends string> {
  /** Total size in bytes, padded to the largest alignment. */
  size: number;
  /** Offset and type of each field. */
  fields: Record<K, { offset: number; type: FieldType }>;
}

/** Computes a layout from `[name, type]` pairs in declaration order. */
export function layout<K extends string>(
  decl: readonly (readonly [K, FieldType])[],
): Layout<K> {
  let offset = 0;
  let maxAlign = 1;
  const fields = {} as Record<K, { offset: number; type: FieldType }>;
  for (const [name, type] of decl) {
    const size = SIZE[type];
    offset = Math.ceil(offset / size) * size;
    fields[name] = { offset, type };
    offset += size;
    maxAlign = Math.max(maxAlign, size);
  }
  return { size: Math.ceil(offset / maxAlign) * maxAlign, fields };
}

/** Reads every field of a struct from bytes into a plain object (pointers as bigint). */
export function readStruct<K extends string>(
  lay: Layout<K>,
  bytes: Uint8Array,
): Record<K, number | bigint> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = {} as Record<K, number | bigint>;
  for (const name of Object.keys(lay.fields) as K[]) {
    const { offset, type } = lay.fields[name];
    out[name] = type === "i32"
      ? view.getInt32(offset, true)
      : type === "u32"
      ? view.getUint32(offset, true)
      : type === "f32"
      ? view.getFloat32(offset, true)
      : type === "u8"
      ? view.getUint8(offset)
      : view.getBigUint64(offset, true);
  }
  return out;
}

/** Writes the given fields into a struct's bytes (other bytes untouched). */
export function writeStruct<K extends string>(
  lay: Layout<K>,
  bytes: Uint8Array,
  values: Partial<Record<K, number | bigint | boolean>>,
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const name of Object.keys(values) as K[]) {
    const v = values[name];
    if (v === undefined) continue;
    const { offset, type } = lay.fields[name];
    switch (type) {
      case "i32":
        view.setInt32(offset, Number(v), true);
        break;
      case "u32":
        view.setUint32(offset, Number(v) >>> 0, true);
        break;
      case "f32":
        view.setFloat32(offset, Number(v), true);
        break;
      case "u8":
        view.setUint8(offset, Number(v));
        break;
      case "ptr":
        view.setBigUint64(offset, BigInt(v), true);
        break;
    }
  }
}

/** wnb_model_params */
export const MODEL_PARAMS = layout(
  [
    ["n_gpu_layers", "i32"],
    ["main_gpu", "i32"],
    ["split_mode", "i32"],
    ["use_mmap", "u8"],
    ["use_mlock", "u8"],
    ["vocab_only", "u8"],
    ["check_tensors", "u8"],
    ["n_tensor_split", "i32"],
    ["rpc_timeout_ms", "i32"],
    ["tensor_split", "ptr"],
    ["rpc_servers", "ptr"],
  ] as const,
);

/** wnb_context_params */
export const CONTEXT_PARAMS = layout(
  [
    ["n_ctx", "u32"],
    ["n_batch", "u32"],
    ["n_ubatch", "u32"],
    ["n_seq_max", "u32"],
    ["n_threads", "i32"],
    ["n_threads_batch", "i32"],
    ["poll", "i32"],
    ["flash_attn", "i32"],
    ["type_k", "i32"],
    ["type_v", "i32"],
    ["pooling_type", "i32"],
    ["rope_freq_base", "f32"],
    ["rope_freq_scale", "f32"],
    ["embeddings", "u8"],
    ["offload_kqv", "u8"],
    ["kv_unified", "u8"],
    ["no_perf", "u8"],
    ["swa_full", "u8"],
  ] as const,
);

/** wnb_sampler_params */
export const SAMPLER_PARAMS = layout(
  [
    ["seed", "u32"],
    ["n_prev", "i32"],
    ["n_probs", "i32"],
    ["min_keep", "i32"],
    ["top_k", "i32"],
    ["top_p", "f32"],
    ["min_p", "f32"],
    ["xtc_probability", "f32"],
    ["xtc_threshold", "f32"],
    ["typ_p", "f32"],
    ["temp", "f32"],
    ["dynatemp_range", "f32"],
    ["dynatemp_exponent", "f32"],
    ["penalty_last_n", "i32"],
    ["penalty_repeat", "f32"],
    ["penalty_freq", "f32"],
    ["penalty_present", "f32"],
    ["dry_multiplier", "f32"],
    ["dry_base", "f32"],
    ["dry_allowed_length", "i32"],
    ["dry_penalty_last_n", "i32"],
    ["mirostat", "i32"],
    ["mirostat_tau", "f32"],
    ["mirostat_eta", "f32"],
    ["top_n_sigma", "f32"],
    ["adaptive_target", "f32"],
    ["adaptive_decay", "f32"],
    ["ignore_eos", "u8"],
    ["grammar_lazy", "u8"],
    ["reserved0", "u8"],
    ["reserved1", "u8"],
    ["n_dry_sequence_breakers", "i32"],
    ["samplers", "ptr"],
    ["dry_sequence_breakers", "ptr"],
    ["grammar", "ptr"],
    ["grammar_triggers", "ptr"],
    ["logit_bias", "ptr"],
    ["n_grammar_triggers", "i32"],
    ["n_logit_bias", "i32"],
  ] as const,
);

/** Size of wnb_error: i32 code + 508 bytes of message. */
export const ERROR_SIZE = 512;

/** wnb_mtmd_params */
export const MTMD_PARAMS = layout(
  [
    ["use_gpu", "u8"],
    ["warmup", "u8"],
    ["reserved0", "u8"],
    ["reserved1", "u8"],
    ["n_threads", "i32"],
    ["flash_attn", "i32"],
    ["image_min_tokens", "i32"],
    ["image_max_tokens", "i32"],
    ["max_image_pixels", "i32"],
    ["media_marker", "ptr"],
  ] as const,
);

/** wnb_mtmd_chunk_info */
export const MTMD_CHUNK_INFO = layout(
  [
    ["type", "i32"],
    ["n_tokens", "i32"],
    ["n_pos", "i32"],
  ] as const,
);
