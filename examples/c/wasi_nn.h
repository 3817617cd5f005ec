/*
 * wasi_nn.h - the guest side of the `wasi_ephemeral_nn` ABI, as spoken by
 * WasmEdge's GGML plugin and WAMR's llama.cpp backend (and by this host).
 *
 * Include it in a C program built with
 *
 *     clang --target=wasm32-wasi -O2 -s -o guest.wasm guest.c
 *
 * and the functions below become imports of the module `wasi_ephemeral_nn`.
 * Everything is 32-bit: pointers, lengths and handles are i32 on the wire,
 * and every function returns an errno (0 = success). Results (handles, byte
 * counts) are written through out-pointers into the guest's memory.
 *
 * The usual text-generation flow:
 *
 *     wasi_nn_graph g;  wasi_nn_ctx c;  uint32_t n, dims[1];
 *     wasi_nn_load_by_name_with_config("default", 7, cfg, strlen(cfg), &g);
 *     wasi_nn_init_execution_context(g, &c);
 *     wasi_nn_tensor t = wasi_nn_text_tensor(prompt, strlen(prompt), dims);
 *     wasi_nn_set_input(c, WASI_NN_INPUT_PROMPT, &t);
 *     wasi_nn_compute(c);
 *     wasi_nn_get_output(c, WASI_NN_OUTPUT_TEXT, buf, sizeof buf, &n);
 *
 * Streaming replaces compute/get_output with a loop of compute_single and
 * get_output_single (one token each) until compute_single returns
 * WASI_NN_ERRNO_END_OF_SEQUENCE, then fini_single.
 *
 * Conventions (see docs/wasi-nn-abi.md):
 *   - Models are found by name (argv[1] of a guest, usually "default"); the
 *     host maps names to GGUF files.
 *   - Input index 0 is the prompt (raw UTF-8), input index 1 is a config JSON
 *     object with kebab-case keys ({"n-predict":32,"temp":0}).
 *   - Output index 0 is the generated text (or embedding JSON), output index 1
 *     the metadata JSON {"input_tokens": N, "output_tokens": M, ...}.
 *   - A too-small output buffer gives WASI_NN_ERRNO_TOO_LARGE and the host
 *     writes the required size to *out_written: grow the buffer and retry.
 */
#ifndef WASI_NN_H
#define WASI_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

/** A graph (a loaded model). Handles are u32 counters from 0, never reused. */
typedef uint32_t wasi_nn_graph;
/** An execution context on a graph (holds the input, output and sampler). */
typedef uint32_t wasi_nn_ctx;
/** The result of every call: 0 on success, see WASI_NN_ERRNO_* below. */
typedef int32_t wasi_nn_errno;

/**
 * The tensor record passed to set_input: 20 bytes, five u32 fields.
 * For text, use type WASI_NN_TYPE_U8, the UTF-8 bytes as data and dims = {1}
 * (hosts ignore dims for text; most prebuilt guests send {1} whatever the
 * length, newer ones send {len}).
 */
typedef struct wasi_nn_tensor {
  const uint32_t *dims;  /* @0  array of dims_len u32 dimensions */
  uint32_t dims_len;     /* @4  number of dimensions */
  uint32_t type;         /* @8  WASI_NN_TYPE_*; hosts read the low byte */
  const uint8_t *data;   /* @12 the bytes */
  uint32_t data_len;     /* @16 their length in bytes */
} wasi_nn_tensor;

/** One entry of the builder array given to `load`: 8 bytes. */
typedef struct wasi_nn_builder {
  const uint8_t *buf; /* @0 */
  uint32_t len;       /* @4 */
} wasi_nn_builder;

_Static_assert(sizeof(wasi_nn_tensor) == 20, "tensor record must be 20 bytes");
_Static_assert(sizeof(wasi_nn_builder) == 8, "builder must be 8 bytes");

/* ------------------------------------------------------------------------ */
/* Constants                                                                */
/* ------------------------------------------------------------------------ */

/* Error numbers (nn_errno). 0-8 are the spec's, 100-103 the GGML extensions
 * shared by WasmEdge and WAMR. */
#define WASI_NN_ERRNO_SUCCESS 0
#define WASI_NN_ERRNO_INVALID_ARGUMENT 1 /* bad handle/pointer/type/order */
#define WASI_NN_ERRNO_INVALID_ENCODING 2 /* malformed JSON, bad encoding */
#define WASI_NN_ERRNO_MISSING_MEMORY 3
#define WASI_NN_ERRNO_BUSY 4
#define WASI_NN_ERRNO_RUNTIME_ERROR 5 /* llama.cpp failed */
#define WASI_NN_ERRNO_UNSUPPORTED_OPERATION 6
#define WASI_NN_ERRNO_TOO_LARGE 7 /* buffer too small (size written) */
#define WASI_NN_ERRNO_NOT_FOUND 8 /* no model preloaded as that name */
#define WASI_NN_ERRNO_END_OF_SEQUENCE 100 /* compute_single: done */
#define WASI_NN_ERRNO_CONTEXT_FULL 101    /* KV cache full (text kept) */
#define WASI_NN_ERRNO_PROMPT_TOO_LONG 102 /* prompt > ctx-size - 4 */
#define WASI_NN_ERRNO_MODEL_NOT_FOUND 103 /* name known, file missing */

/* Tensor types (witx numbering). Text is U8. */
#define WASI_NN_TYPE_F16 0
#define WASI_NN_TYPE_F32 1
#define WASI_NN_TYPE_F64 2
#define WASI_NN_TYPE_U8 3
#define WASI_NN_TYPE_I32 4
#define WASI_NN_TYPE_I64 5

/* Graph encodings for `load`. WasmEdge calls GGML 6, WAMR calls it 5. */
#define WASI_NN_ENCODING_WASMEDGE_GGML 6
#define WASI_NN_ENCODING_WAMR_GGML 5

/* Execution targets for `load` (AUTO is a WasmEdge extension). */
#define WASI_NN_TARGET_CPU 0
#define WASI_NN_TARGET_GPU 1
#define WASI_NN_TARGET_TPU 2
#define WASI_NN_TARGET_AUTO 3

/* Input and output indexes of the GGML backend. */
#define WASI_NN_INPUT_PROMPT 0   /* set_input: UTF-8 prompt */
#define WASI_NN_INPUT_CONFIG 1   /* set_input: config JSON object */
#define WASI_NN_OUTPUT_TEXT 0    /* get_output: text / embedding JSON */
#define WASI_NN_OUTPUT_METADATA 1 /* get_output: metadata JSON */

/* ------------------------------------------------------------------------ */
/* Imports                                                                  */
/* ------------------------------------------------------------------------ */

#define WASI_NN_IMPORT(name) \
  __attribute__((import_module("wasi_ephemeral_nn"), import_name(name)))

/** load: builders[0] = model bytes (or "preload:<path>"), builders[1] =
 *  optional config JSON. Writes the graph handle. */
WASI_NN_IMPORT("load")
wasi_nn_errno wasi_nn_load(const wasi_nn_builder *builders,
                           uint32_t builders_len, uint32_t encoding,
                           uint32_t target, wasi_nn_graph *out_graph);

/** load_by_name: a model the host preloaded under `name` (name_len bytes, no
 *  NUL needed). Unknown name: NOT_FOUND (8); file missing: 103. */
WASI_NN_IMPORT("load_by_name")
wasi_nn_errno wasi_nn_load_by_name(const char *name, uint32_t name_len,
                                   wasi_nn_graph *out_graph);

/** load_by_name_with_config: same, plus a config JSON object. Malformed JSON:
 *  INVALID_ENCODING (2); a key of the wrong type: INVALID_ARGUMENT (1).
 *  Loading a name that is still loaded returns the same handle and ignores
 *  the new config (use set_input index 1 to change settings). */
WASI_NN_IMPORT("load_by_name_with_config")
wasi_nn_errno wasi_nn_load_by_name_with_config(const char *name,
                                               uint32_t name_len,
                                               const char *config,
                                               uint32_t config_len,
                                               wasi_nn_graph *out_graph);

/** init_execution_context: a new context on a graph. */
WASI_NN_IMPORT("init_execution_context")
wasi_nn_errno wasi_nn_init_execution_context(wasi_nn_graph graph,
                                             wasi_nn_ctx *out_ctx);

/** set_input: index 0 = prompt (replaces the previous one; send the whole
 *  conversation every turn), index 1 = config JSON. */
WASI_NN_IMPORT("set_input")
wasi_nn_errno wasi_nn_set_input(wasi_nn_ctx ctx, uint32_t index,
                                const wasi_nn_tensor *tensor);

/** compute: generate up to n-predict tokens (or the embedding). Returns
 *  CONTEXT_FULL (101) when the context filled; the partial text is kept. */
WASI_NN_IMPORT("compute")
wasi_nn_errno wasi_nn_compute(wasi_nn_ctx ctx);

/** get_output: copy output `index` into buf (capacity buf_max_len) and write
 *  its length to *out_written. Too small: TOO_LARGE (7), nothing copied and
 *  the required size written. */
WASI_NN_IMPORT("get_output")
wasi_nn_errno wasi_nn_get_output(wasi_nn_ctx ctx, uint32_t index, uint8_t *buf,
                                 uint32_t buf_max_len, uint32_t *out_written);

/** get_output_single: like get_output; index 0 = the latest token's text. */
WASI_NN_IMPORT("get_output_single")
wasi_nn_errno wasi_nn_get_output_single(wasi_nn_ctx ctx, uint32_t index,
                                        uint8_t *buf, uint32_t buf_max_len,
                                        uint32_t *out_written);

/** compute_single: evaluate the prompt on the first call, then sample exactly
 *  one token per call. END_OF_SEQUENCE (100) when the model ends its answer.
 *  n-predict and reverse-prompt do not apply: the guest decides when to
 *  stop. */
WASI_NN_IMPORT("compute_single")
wasi_nn_errno wasi_nn_compute_single(wasi_nn_ctx ctx);

/** fini_single: end a stream (clears the outputs, resets the sampler). */
WASI_NN_IMPORT("fini_single")
wasi_nn_errno wasi_nn_fini_single(wasi_nn_ctx ctx);

/** unload: forget a graph; the next load_by_name of its name reloads it. */
WASI_NN_IMPORT("unload")
wasi_nn_errno wasi_nn_unload(wasi_nn_graph graph);

/** finalize_execution_context: drop one context. */
WASI_NN_IMPORT("finalize_execution_context")
wasi_nn_errno wasi_nn_finalize_execution_context(wasi_nn_ctx ctx);

#undef WASI_NN_IMPORT

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/** A U8 tensor over `len` bytes of text; `dims` must point to one u32. */
static inline wasi_nn_tensor wasi_nn_text_tensor(const char *text, size_t len,
                                                 uint32_t *dims) {
  dims[0] = 1; /* what the WasmEdge examples send; hosts ignore it for text */
  wasi_nn_tensor t = {dims, 1, WASI_NN_TYPE_U8, (const uint8_t *)text,
                      (uint32_t)len};
  return t;
}

/** The name of an errno, for messages. */
static inline const char *wasi_nn_strerror(wasi_nn_errno e) {
  switch (e) {
  case WASI_NN_ERRNO_SUCCESS: return "Success";
  case WASI_NN_ERRNO_INVALID_ARGUMENT: return "InvalidArgument";
  case WASI_NN_ERRNO_INVALID_ENCODING: return "InvalidEncoding";
  case WASI_NN_ERRNO_MISSING_MEMORY: return "MissingMemory";
  case WASI_NN_ERRNO_BUSY: return "Busy";
  case WASI_NN_ERRNO_RUNTIME_ERROR: return "RuntimeError";
  case WASI_NN_ERRNO_UNSUPPORTED_OPERATION: return "UnsupportedOperation";
  case WASI_NN_ERRNO_TOO_LARGE: return "TooLarge";
  case WASI_NN_ERRNO_NOT_FOUND: return "NotFound";
  case WASI_NN_ERRNO_END_OF_SEQUENCE: return "EndOfSequence";
  case WASI_NN_ERRNO_CONTEXT_FULL: return "ContextFull";
  case WASI_NN_ERRNO_PROMPT_TOO_LONG: return "PromptTooLong";
  case WASI_NN_ERRNO_MODEL_NOT_FOUND: return "ModelNotFound";
  default: return "Unknown";
  }
}

#ifdef __cplusplus
}
#endif

#endif /* WASI_NN_H */
