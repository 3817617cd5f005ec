/**
 * The FFI symbol table: one entry per function of `native/wasi_nn_shim.h`,
 * in the header's order. This file and the header change together; the
 * `WNB_ABI_VERSION` check in `_library.ts` catches a stale library.
 *
 * Heavy calls (model load, context creation, decode, generation steps) are
 * declared twice: `x` (non-blocking, returns a Promise; the event loop stays
 * live) and `x_sync` (a blocking call, for tight loops where a round trip
 * through the thread pool would cost more than the work).
 *
 * @module
 */

/** Declares a non-blocking variant of a symbol under another key. */
function nb<T extends Deno.ForeignFunction>(name: string, def: T) {
  return { ...def, name, nonblocking: true } as const;
}

const modelLoad = {
  parameters: ["buffer", "buffer", "pointer", "buffer", "buffer"],
  result: "i32",
} as const;
const memfileCreate = {
  parameters: ["buffer", "usize", "buffer", "buffer"],
  result: "i32",
} as const;
const contextNew = {
  parameters: ["pointer", "buffer", "buffer", "buffer"],
  result: "i32",
} as const;
const decode = {
  parameters: [
    "pointer",
    "buffer",
    "buffer",
    "buffer",
    "buffer",
    "i32",
    "buffer",
  ],
  result: "i32",
} as const;
const mtmdLoad = {
  parameters: ["buffer", "pointer", "buffer", "buffer", "buffer"],
  result: "i32",
} as const;
const mtmdBitmap = {
  parameters: ["pointer", "buffer", "usize", "buffer", "buffer"],
  result: "i32",
} as const;
const mtmdTokenize = {
  parameters: [
    "pointer",
    "buffer",
    "i32",
    "buffer",
    "i32",
    "u8",
    "u8",
    "buffer",
    "buffer",
  ],
  result: "i32",
} as const;
const mtmdEval = {
  parameters: [
    "pointer",
    "pointer",
    "pointer",
    "i32",
    "i32",
    "i32",
    "i32",
    "i32",
    "u8",
    "buffer",
    "buffer",
  ],
  result: "i32",
} as const;
const rpcProbe = {
  parameters: ["buffer", "i32", "u8", "buffer"],
  result: "i32",
} as const;
const rpcAddServer = {
  parameters: ["buffer", "i32", "buffer", "buffer"],
  result: "i32",
} as const;
const rpcServerMemory = {
  parameters: ["buffer", "i32", "buffer", "buffer", "i32", "buffer"],
  result: "i32",
} as const;
const decodePrompt = {
  parameters: ["pointer", "buffer", "i32", "i32", "i32", "buffer"],
  result: "i32",
} as const;
const generateStep = {
  parameters: ["pointer", "pointer", "i32", "i32", "i32", "buffer", "buffer"],
  result: "i32",
} as const;
const embeddings = {
  parameters: ["pointer", "i32", "buffer", "i32", "i32", "buffer"],
  result: "i32",
} as const;
const stateSave = {
  parameters: ["pointer", "buffer", "i32", "buffer", "i32", "buffer"],
  result: "i32",
} as const;
const stateLoad = {
  parameters: ["pointer", "buffer", "i32", "buffer", "i32", "buffer", "buffer"],
  result: "i32",
} as const;

/** Every symbol of libwasi_nn_backend.so, as `Deno.dlopen` wants them. */
export const SYMBOLS = {
  // library
  wnb_abi_version: { parameters: [], result: "i32" },
  wnb_init: { parameters: [], result: "void" },
  wnb_info_json: { parameters: ["buffer", "i32"], result: "i32" },
  wnb_sizeof_model_params: { parameters: [], result: "i32" },
  wnb_sizeof_context_params: { parameters: [], result: "i32" },
  wnb_sizeof_sampler_params: { parameters: [], result: "i32" },
  // log capture
  wnb_log_set_level: { parameters: ["i32"], result: "void" },
  wnb_log_drain: { parameters: ["buffer", "i32"], result: "i32" },
  // models
  wnb_model_default_params: { parameters: ["buffer"], result: "void" },
  wnb_model_load: nb("wnb_model_load", modelLoad),
  wnb_model_load_sync: { ...modelLoad, name: "wnb_model_load" },
  wnb_model_free: { parameters: ["pointer"], result: "void" },
  wnb_memfile_create: nb("wnb_memfile_create", memfileCreate),
  wnb_memfile_create_sync: { ...memfileCreate, name: "wnb_memfile_create" },
  wnb_memfile_close: { parameters: ["i32"], result: "void" },
  wnb_model_info_json: {
    parameters: ["pointer", "buffer", "i32"],
    result: "i32",
  },
  wnb_model_n_vocab: { parameters: ["pointer"], result: "i32" },
  wnb_model_n_embd: { parameters: ["pointer"], result: "i32" },
  wnb_model_n_ctx_train: { parameters: ["pointer"], result: "i32" },
  wnb_token_is_eog: { parameters: ["pointer", "i32"], result: "u8" },
  wnb_token_attr: { parameters: ["pointer", "i32"], result: "i32" },
  wnb_tokenize: {
    parameters: ["pointer", "buffer", "i32", "buffer", "i32", "u8", "u8"],
    result: "i32",
  },
  wnb_token_to_piece: {
    parameters: ["pointer", "i32", "buffer", "i32", "u8"],
    result: "i32",
  },
  wnb_detokenize: {
    parameters: ["pointer", "buffer", "i32", "buffer", "i32", "u8", "u8"],
    result: "i32",
  },
  wnb_chat_apply: {
    parameters: [
      "pointer",
      "buffer",
      "buffer",
      "u8",
      "buffer",
      "i32",
      "buffer",
    ],
    result: "i32",
  },
  wnb_json_schema_to_grammar: {
    parameters: ["buffer", "buffer", "i32", "buffer"],
    result: "i32",
  },
  // contexts
  wnb_context_default_params: { parameters: ["buffer"], result: "void" },
  wnb_context_new: nb("wnb_context_new", contextNew),
  wnb_context_new_sync: { ...contextNew, name: "wnb_context_new" },
  wnb_context_free: { parameters: ["pointer"], result: "void" },
  wnb_context_n_ctx: { parameters: ["pointer"], result: "u32" },
  wnb_context_n_batch: { parameters: ["pointer"], result: "u32" },
  wnb_context_n_seq_max: { parameters: ["pointer"], result: "u32" },
  wnb_context_pooling_type: { parameters: ["pointer"], result: "i32" },
  wnb_context_set_abort: { parameters: ["pointer", "i32"], result: "void" },
  wnb_decode: nb("wnb_decode", decode),
  wnb_decode_sync: { ...decode, name: "wnb_decode" },
  wnb_decode_prompt: nb("wnb_decode_prompt", decodePrompt),
  wnb_decode_prompt_sync: { ...decodePrompt, name: "wnb_decode_prompt" },
  wnb_logits: { parameters: ["pointer", "i32"], result: "pointer" },
  wnb_embeddings: embeddings,
  wnb_memory_clear: { parameters: ["pointer"], result: "void" },
  wnb_memory_seq_rm: {
    parameters: ["pointer", "i32", "i32", "i32"],
    result: "u8",
  },
  wnb_memory_seq_cp: {
    parameters: ["pointer", "i32", "i32", "i32", "i32"],
    result: "void",
  },
  wnb_memory_seq_keep: { parameters: ["pointer", "i32"], result: "void" },
  wnb_memory_seq_add: {
    parameters: ["pointer", "i32", "i32", "i32", "i32"],
    result: "void",
  },
  wnb_memory_seq_pos_min: { parameters: ["pointer", "i32"], result: "i32" },
  wnb_memory_seq_pos_max: { parameters: ["pointer", "i32"], result: "i32" },
  wnb_memory_can_shift: { parameters: ["pointer"], result: "u8" },
  wnb_state_seq_save: nb("wnb_state_seq_save", stateSave),
  wnb_state_seq_load: nb("wnb_state_seq_load", stateLoad),
  wnb_state_seq_get: {
    parameters: ["pointer", "i32", "u32", "buffer", "i32"],
    result: "i32",
  },
  wnb_state_seq_set: {
    parameters: ["pointer", "i32", "u32", "buffer", "i32", "buffer"],
    result: "i32",
  },
  wnb_perf: { parameters: ["pointer", "buffer"], result: "void" },
  wnb_perf_reset: { parameters: ["pointer"], result: "void" },
  // memory planning
  wnb_estimate_memory: nb(
    "wnb_estimate_memory",
    {
      parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "buffer"],
      result: "i32",
    } as const,
  ),
  wnb_fit_params: nb(
    "wnb_fit_params",
    {
      parameters: ["buffer", "buffer", "buffer", "u32", "buffer"],
      result: "i32",
    } as const,
  ),
  // samplers
  wnb_sampler_default_params: { parameters: ["buffer"], result: "void" },
  wnb_sampler_new: {
    parameters: ["pointer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  wnb_sampler_free: { parameters: ["pointer"], result: "void" },
  wnb_sampler_reset: { parameters: ["pointer"], result: "void" },
  wnb_sampler_accept: { parameters: ["pointer", "i32"], result: "void" },
  wnb_sampler_sample: {
    parameters: ["pointer", "pointer", "i32", "buffer"],
    result: "i32",
  },
  wnb_sampler_probs: {
    parameters: ["pointer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  wnb_sampler_seed: { parameters: ["pointer"], result: "u32" },
  wnb_generate_step: nb("wnb_generate_step", generateStep),
  wnb_generate_step_sync: { ...generateStep, name: "wnb_generate_step" },
  // multimodal (native/wnb_mtmd.cpp): projectors, bitmaps, chunks
  wnb_mtmd_default_params: { parameters: ["buffer"], result: "void" },
  wnb_sizeof_mtmd_params: { parameters: [], result: "i32" },
  wnb_mtmd_default_marker: { parameters: ["buffer", "i32"], result: "i32" },
  wnb_mtmd_load: nb("wnb_mtmd_load", mtmdLoad),
  wnb_mtmd_load_sync: { ...mtmdLoad, name: "wnb_mtmd_load" },
  wnb_mtmd_free: { parameters: ["pointer"], result: "void" },
  wnb_mtmd_support_vision: { parameters: ["pointer"], result: "u8" },
  wnb_mtmd_support_audio: { parameters: ["pointer"], result: "u8" },
  wnb_mtmd_audio_sample_rate: { parameters: ["pointer"], result: "i32" },
  wnb_mtmd_marker: {
    parameters: ["pointer", "buffer", "i32"],
    result: "i32",
  },
  wnb_mtmd_uses_mrope: { parameters: ["pointer"], result: "u8" },
  wnb_mtmd_bitmap_from_buf: nb("wnb_mtmd_bitmap_from_buf", mtmdBitmap),
  wnb_mtmd_bitmap_from_buf_sync: {
    ...mtmdBitmap,
    name: "wnb_mtmd_bitmap_from_buf",
  },
  wnb_mtmd_bitmap_free: { parameters: ["pointer"], result: "void" },
  wnb_mtmd_bitmap_nx: { parameters: ["pointer"], result: "u32" },
  wnb_mtmd_bitmap_ny: { parameters: ["pointer"], result: "u32" },
  wnb_mtmd_bitmap_is_audio: { parameters: ["pointer"], result: "u8" },
  wnb_mtmd_bitmap_id: {
    parameters: ["pointer", "buffer", "i32"],
    result: "i32",
  },
  wnb_mtmd_tokenize: nb("wnb_mtmd_tokenize", mtmdTokenize),
  wnb_mtmd_tokenize_sync: { ...mtmdTokenize, name: "wnb_mtmd_tokenize" },
  wnb_mtmd_chunks_free: { parameters: ["pointer"], result: "void" },
  wnb_mtmd_chunks_count: { parameters: ["pointer"], result: "i32" },
  wnb_mtmd_chunks_n_tokens: { parameters: ["pointer"], result: "i32" },
  wnb_mtmd_chunks_n_pos: { parameters: ["pointer"], result: "i32" },
  wnb_mtmd_chunk_info_get: {
    parameters: ["pointer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  wnb_mtmd_chunk_tokens: {
    parameters: ["pointer", "i32", "buffer", "i32"],
    result: "i32",
  },
  wnb_mtmd_chunk_id: {
    parameters: ["pointer", "i32", "buffer", "i32"],
    result: "i32",
  },
  wnb_mtmd_eval: nb("wnb_mtmd_eval", mtmdEval),
  wnb_mtmd_eval_sync: { ...mtmdEval, name: "wnb_mtmd_eval" },
  // RPC devices (native/wnb_rpc.cpp): probes, registration, remote memory
  wnb_rpc_supported: { parameters: [], result: "u8" },
  wnb_rpc_probe: nb("wnb_rpc_probe", rpcProbe),
  wnb_rpc_add_server: nb("wnb_rpc_add_server", rpcAddServer),
  wnb_rpc_server_memory: nb("wnb_rpc_server_memory", rpcServerMemory),
} as const satisfies Deno.ForeignLibraryInterface;

/** The typed symbol object returned by `Deno.dlopen(path, SYMBOLS)`. */
export type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
