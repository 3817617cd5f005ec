/*
 * wasi_nn_shim.h - the one C ABI of libwasi_nn_backend.so.
 *
 * A thin, flat layer over llama.cpp (llama.h) and llama.cpp's common library
 * (the server's sampler chain, chat templates, JSON-schema grammars). Deno's
 * bindings (bindings/_symbols.ts) mirror this file symbol for symbol; a C host
 * can use it too (native/c_host_example.c).
 *
 * Conventions (read these once):
 *  - Every fallible function returns an int32_t status (WNB_OK = 0) and fills
 *    a caller-owned `wnb_error` (may be NULL) with the code and a message. No
 *    C++ exception ever crosses this ABI.
 *  - Handles (wnb_model, wnb_context, wnb_sampler) are created by the _new and _load calls
 *    and owned by the caller, who frees each exactly once with its *_free.
 *    A context and a sampler borrow their model: free them before the model.
 *  - Strings in are NUL-terminated UTF-8 unless a length is given. Strings and
 *    arrays out go into caller buffers: the function returns the full size it
 *    needs; when that exceeds the capacity nothing useful is written, so call
 *    again with a bigger buffer.
 *  - One handle is used by one thread at a time. Different handles may be used
 *    on different threads at once (Deno's non-blocking FFI calls do that).
 *  - llama.cpp's log is captured into a bounded in-memory queue; nothing calls
 *    back into the host. Drain it with wnb_log_drain().
 */
#ifndef WASI_NN_SHIM_H
#define WASI_NN_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef WNB_BUILD
#define WNB_API __attribute__((visibility("default")))
#else
#define WNB_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version: bumped whenever a struct layout or a signature changes. */
#define WNB_ABI_VERSION 4

/* ---- status and errors ------------------------------------------------- */

enum wnb_status {
    WNB_OK                   = 0,
    WNB_ERR_INVALID_ARGUMENT = 1,  /* a parameter is out of range or NULL */
    WNB_ERR_FILE_NOT_FOUND   = 2,  /* no such file */
    WNB_ERR_FILE_UNREADABLE  = 3,  /* a directory, no permission, or an I/O error */
    WNB_ERR_INVALID_MODEL    = 4,  /* not a GGUF file, truncated, or unsupported */
    WNB_ERR_OUT_OF_MEMORY    = 5,  /* an allocation or a context creation failed */
    WNB_ERR_DECODE           = 6,  /* llama_decode failed */
    WNB_ERR_NO_KV_SPACE      = 7,  /* the KV cache has no room for the batch */
    WNB_ERR_CANCELLED        = 8,  /* cancelled through the load progress or the abort flag */
    WNB_ERR_GRAMMAR          = 9,  /* a grammar or JSON schema did not parse */
    WNB_ERR_TEMPLATE         = 10, /* a chat template failed to apply */
    WNB_ERR_STATE            = 11, /* a session state file could not be saved or restored */
    WNB_ERR_INTERNAL         = 12, /* anything else (the message says what) */
    WNB_ERR_UNREACHABLE      = 13  /* an RPC endpoint does not answer (the message names it) */
};

/* Filled by every fallible call when non-NULL. Caller-owned; 512 bytes. */
typedef struct wnb_error {
    int32_t code;          /* a wnb_status */
    char    message[508];  /* NUL-terminated, truncated if longer */
} wnb_error;

/* ---- library ------------------------------------------------------------ */

/* WNB_ABI_VERSION of the built library; the bindings refuse a mismatch. */
WNB_API int32_t wnb_abi_version(void);

/* Initialises llama.cpp's backends and the log capture. Idempotent, thread-safe. */
WNB_API void wnb_init(void);

/* JSON: {"abi":1,"llama_commit":"..","llama_build_number":N,"backends":["CPU",..],
 * "gpu_offload":bool,"rpc":bool,"system_info":"..","devices":[{"name","description","type",
 * "memory_free","memory_total","model_device"}]}. "model_device": llama.cpp's
 * default selection gives models this local device (GPUs, one per device id,
 * else one backend's integrated GPUs; never the CPU): the local devices that
 * follow the RPC ones in a model's device list. "rpc": the library holds ggml's RPC backend
 * (then "RPC" is among the backends). Devices of registered RPC endpoints have
 * type "rpc" and an "endpoint"; their memory is asked only after the endpoint
 * answered a probe (1 s), else it reads 0 and "error" says why. Returns the
 * size needed (see conventions). */
WNB_API int32_t wnb_info_json(char * buf, int32_t cap);

/* sizeof of the parameter structs, so bindings can check their layouts. */
WNB_API int32_t wnb_sizeof_model_params(void);
WNB_API int32_t wnb_sizeof_context_params(void);
WNB_API int32_t wnb_sizeof_sampler_params(void);

/* ---- log capture -------------------------------------------------------- */

/* Minimum level kept: 1 debug, 2 info, 3 warn, 4 error (ggml's numbering). Default 3. */
WNB_API void wnb_log_set_level(int32_t min_level);

/* Moves complete records into buf, each "L<level> <text>\n" (text without its
 * trailing newline). Returns bytes written (whole records only); 0 when empty.
 * At most 4096 records are kept; older ones are dropped and counted in a
 * record "L3 [wasi_nn] N log records dropped". */
WNB_API int32_t wnb_log_drain(char * buf, int32_t cap);

/* ---- models ------------------------------------------------------------- */

typedef struct wnb_model_params {
    int32_t n_gpu_layers;  /* -1 = all layers, 0 = CPU only */
    int32_t main_gpu;      /* device index for split_mode 0 */
    int32_t split_mode;    /* 0 none, 1 layer, 2 row */
    uint8_t use_mmap;      /* 1 = map the file (default) */
    uint8_t use_mlock;     /* 1 = lock it in RAM */
    uint8_t vocab_only;    /* 1 = tokenizer only, no weights */
    uint8_t check_tensors; /* 1 = validate tensor data while loading */
    int32_t n_tensor_split;  /* floats in tensor_split; 0 = llama.cpp's split (by free memory) */
    int32_t rpc_timeout_ms;  /* the endpoint probe's limit (see the RPC section); <= 0 = 5000 */
    float * tensor_split;    /* caller-owned: the share of each device, in the model's device
                              * order (the rpc_servers' devices first, then local GPUs); at most
                              * 16. Read by the load and the estimate; wnb_fit_params writes its
                              * chosen split back when n_tensor_split covers every device. */
    const char * rpc_servers; /* caller-owned, read during the call: "host:port,host:port" whose
                               * devices this model uses (registered on first use, see
                               * wnb_rpc_add_server). NULL or "" = none: then no RPC device is
                               * used, even when endpoints are registered. */
} wnb_model_params;

/* Shared between a loading thread and an observer: the loader writes progress
 * (0..1); the observer sets cancel = 1 to abort the load (WNB_ERR_CANCELLED). */
typedef struct wnb_load_progress {
    volatile float   progress;
    volatile int32_t cancel;
} wnb_load_progress;

WNB_API void wnb_model_default_params(wnb_model_params * out);

typedef struct wnb_model wnb_model;

/* Loads a GGUF file. Checks the file first (exists, regular, readable, GGUF
 * magic and version) so errors name the cause. progress may be NULL.
 * On success *out owns the model: free it with wnb_model_free. */
WNB_API int32_t wnb_model_load(const char * path, const wnb_model_params * params,
                               wnb_load_progress * progress, wnb_model ** out, wnb_error * err);
WNB_API void    wnb_model_free(wnb_model * model);

/* Model bytes held in memory, never on disk (Linux memfd_create, MFD_CLOEXEC):
 * copies len bytes of data into a new anonymous file, seals it read-only
 * (no write, grow or shrink after this call) and puts its descriptor in
 * *out_fd. Load it through the path "/proc/self/fd/<fd>" with wnb_model_load.
 * The caller owns the descriptor and closes it exactly once with
 * wnb_memfile_close, as soon as the load has finished or failed: a loaded
 * model keeps its own mapping or copy, and the pages are freed when the last
 * user goes. Nothing is left behind if the process dies. data is only read
 * during the call. WNB_ERR_OUT_OF_MEMORY when the memory for the copy is
 * missing; WNB_ERR_INTERNAL (with errno's text) for other failures. */
WNB_API int32_t wnb_memfile_create(const uint8_t * data, size_t len, int32_t * out_fd, wnb_error * err);
/* Closes a descriptor from wnb_memfile_create. Negative fds are ignored. */
WNB_API void    wnb_memfile_close(int32_t fd);

/* JSON: {"architecture","name","description","n_params","size","n_ctx_train","n_embd",
 * "n_layer","n_head","n_head_kv","n_vocab","vocab_type","bos","eos","eot","nl",
 * "add_bos","add_eos","eog":[..],"n_swa","is_recurrent","is_hybrid","has_encoder","has_decoder","chat_template":str|null,
 * "metadata":{key:value-as-string,..}} */
WNB_API int32_t wnb_model_info_json(const wnb_model * model, char * buf, int32_t cap);
WNB_API int32_t wnb_model_n_vocab(const wnb_model * model);
WNB_API int32_t wnb_model_n_embd(const wnb_model * model);
WNB_API int32_t wnb_model_n_ctx_train(const wnb_model * model);
WNB_API uint8_t wnb_token_is_eog(const wnb_model * model, int32_t token);
/* The token's attributes (llama_token_attr bits: 1<<7 LSTRIP and 1<<8 RSTRIP
 * drop the whitespace before / after it when text is tokenized with special
 * tokens parsed); 0 for an unknown token. */
WNB_API int32_t wnb_token_attr(const wnb_model * model, int32_t token);

/* Tokenizes len bytes of text. Returns the token count, or -(count) when cap is
 * too small (nothing useful written). add_special: add BOS/EOS as the model
 * wants; parse_special: turn "<|im_start|>"-like text into special tokens. */
WNB_API int32_t wnb_tokenize(const wnb_model * model, const char * text, int32_t len,
                             int32_t * tokens, int32_t cap, uint8_t add_special, uint8_t parse_special);
/* The piece of one token; returns its byte length (may exceed cap: call again). */
WNB_API int32_t wnb_token_to_piece(const wnb_model * model, int32_t token, char * buf, int32_t cap,
                                   uint8_t special);
/* Tokens back to text; returns the byte length (may exceed cap: call again). */
WNB_API int32_t wnb_detokenize(const wnb_model * model, const int32_t * tokens, int32_t n,
                               char * buf, int32_t cap, uint8_t remove_special, uint8_t unparse_special);

/* Renders a chat with the model's template (Jinja, as llama.cpp's server does),
 * or tmpl_override when non-NULL and non-empty. messages_json is an
 * OpenAI-style array [{"role":"user","content":".."},..]. Returns the prompt's
 * byte length (call again if > cap) or a negative wnb_status with err set.
 * A template runs unbounded in this process: use it for templates the caller
 * trusts; wnb-chat-render (the same renderer, chat_render.cpp) runs the rest
 * in a process of its own, with limits. */
WNB_API int32_t wnb_chat_apply(const wnb_model * model, const char * tmpl_override,
                               const char * messages_json, uint8_t add_generation_prompt,
                               char * buf, int32_t cap, wnb_error * err);

/* Converts a JSON schema to GBNF (llama.cpp's converter). Returns the grammar's
 * byte length (call again if > cap) or a negative wnb_status with err set. */
WNB_API int32_t wnb_json_schema_to_grammar(const char * schema_json, char * buf, int32_t cap,
                                           wnb_error * err);

/* ---- contexts ----------------------------------------------------------- */

typedef struct wnb_context_params {
    uint32_t n_ctx;           /* 0 = the model's training context */
    uint32_t n_batch;         /* logical batch (max tokens per decode call) */
    uint32_t n_ubatch;        /* physical batch */
    uint32_t n_seq_max;       /* sequences (sessions) sharing this context */
    int32_t  n_threads;       /* generation threads; <= 0 = llama.cpp's default */
    int32_t  n_threads_batch; /* prompt threads; <= 0 = n_threads */
    int32_t  poll;            /* ggml thread pool polling 0..100 (llama.cpp tools: 50); -1 = no own pool */
    int32_t  flash_attn;      /* -1 auto, 0 off, 1 on */
    int32_t  type_k;          /* ggml_type of the K cache; -1 = f16 */
    int32_t  type_v;          /* ggml_type of the V cache; -1 = f16 */
    int32_t  pooling_type;    /* -1 model default, 0 none, 1 mean, 2 cls, 3 last, 4 rank */
    float    rope_freq_base;  /* 0 = from model */
    float    rope_freq_scale; /* 0 = from model */
    uint8_t  embeddings;      /* 1 = compute embeddings */
    uint8_t  offload_kqv;     /* 1 = KV cache on the GPU (default) */
    uint8_t  kv_unified;      /* 1 = one KV buffer for all sequences */
    uint8_t  no_perf;         /* 1 = skip perf counters */
    uint8_t  swa_full;        /* 1 = full-size sliding-window cache (keeps every position; more memory) */
} wnb_context_params;

WNB_API void wnb_context_default_params(wnb_context_params * out);

typedef struct wnb_context wnb_context;

/* Creates a context (KV cache) for a model. *out owns it: wnb_context_free. */
WNB_API int32_t wnb_context_new(wnb_model * model, const wnb_context_params * params,
                                wnb_context ** out, wnb_error * err);
WNB_API void     wnb_context_free(wnb_context * ctx);
WNB_API uint32_t wnb_context_n_ctx(const wnb_context * ctx);
WNB_API uint32_t wnb_context_n_batch(const wnb_context * ctx);
WNB_API uint32_t wnb_context_n_seq_max(const wnb_context * ctx);
/* The pooling in effect (the params' choice, or the model's default):
 * 0 none, 1 mean, 2 cls, 3 last, 4 rank. With 0, wnb_embeddings takes a batch
 * index; otherwise a sequence id. */
WNB_API int32_t  wnb_context_pooling_type(const wnb_context * ctx);

/* While set to 1 (from any thread), decoding aborts with WNB_ERR_CANCELLED. */
WNB_API void wnb_context_set_abort(wnb_context * ctx, int32_t abort);

/* Decodes n tokens (n <= n_batch). Arrays of n: token ids, positions, sequence
 * ids and logits flags (1 = keep this token's logits for sampling; its batch
 * index is then its position in these arrays). logits may be NULL = last only.
 * WNB_ERR_NO_KV_SPACE: nothing of the batch is kept. Returns once the
 * backends have finished (llama_synchronize), also asynchronous ones (RPC,
 * CUDA), so reading the logits afterwards does not wait. */
WNB_API int32_t wnb_decode(wnb_context * ctx, const int32_t * tokens, const int32_t * pos,
                           const int32_t * seq_ids, const uint8_t * logits, int32_t n, wnb_error * err);

/* Decodes a prompt of any length for one sequence, in n_batch chunks, from
 * position pos0, keeping the logits of the last token only (batch index -1). */
WNB_API int32_t wnb_decode_prompt(wnb_context * ctx, const int32_t * tokens, int32_t n, int32_t pos0,
                                  int32_t seq_id, wnb_error * err);

/* The logits row of batch index idx (-1 = last), or NULL. Valid until the next decode. */
WNB_API const float * wnb_logits(wnb_context * ctx, int32_t idx);

/* Embedding of batch index idx (pooling none) or of a sequence (pooled), optionally
 * normalised (-1 none, 0 max-abs, 1 taxicab, 2 euclidean, >2 p-norm), into the
 * caller's out (cap floats; written only when cap is enough). Returns the value
 * count (n_embd_out; with rank pooling, the model's n_cls_out scores), or a
 * negative wnb_status. */
WNB_API int32_t wnb_embeddings(wnb_context * ctx, int32_t idx_or_seq, float * out, int32_t cap,
                               int32_t normalize, wnb_error * err);

/* KV memory (llama_memory_*). p0/p1 < 0 mean "from the start" / "to the end". */
WNB_API void    wnb_memory_clear(wnb_context * ctx);
WNB_API uint8_t wnb_memory_seq_rm(wnb_context * ctx, int32_t seq, int32_t p0, int32_t p1);
WNB_API void    wnb_memory_seq_cp(wnb_context * ctx, int32_t src, int32_t dst, int32_t p0, int32_t p1);
WNB_API void    wnb_memory_seq_keep(wnb_context * ctx, int32_t seq);
WNB_API void    wnb_memory_seq_add(wnb_context * ctx, int32_t seq, int32_t p0, int32_t p1, int32_t delta);
WNB_API int32_t wnb_memory_seq_pos_min(wnb_context * ctx, int32_t seq);
WNB_API int32_t wnb_memory_seq_pos_max(wnb_context * ctx, int32_t seq);
WNB_API uint8_t wnb_memory_can_shift(wnb_context * ctx);

/* Saves one sequence's KV state plus its tokens to a file. */
WNB_API int32_t wnb_state_seq_save(wnb_context * ctx, const char * path, int32_t seq,
                                   const int32_t * tokens, int32_t n_tokens, wnb_error * err);
/* Restores a sequence from a file written by wnb_state_seq_save; writes its
 * tokens (up to cap) and their count to *n_out. */
WNB_API int32_t wnb_state_seq_load(wnb_context * ctx, const char * path, int32_t seq,
                                   int32_t * tokens, int32_t cap, int32_t * n_out, wnb_error * err);

/* One sequence's state in memory (llama_state_seq_get_data_ext), for context
 * checkpoints. flags 1 (LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY) keeps only what a
 * sequence removal cannot roll back: the recurrent state, the sliding-window
 * cells. Writes the state into buf (caller-owned, cap bytes) and returns its
 * size; when cap is too small, writes nothing and returns the size needed
 * (see conventions). 0 means there is nothing to save. */
WNB_API int32_t wnb_state_seq_get(wnb_context * ctx, int32_t seq, uint32_t flags, uint8_t * buf, int32_t cap);
/* Restores a sequence from bytes that wnb_state_seq_get gave with the same
 * flags (data is only read during the call). The sequence's previous content
 * for those parts is replaced. WNB_ERR_STATE when llama.cpp refuses the data. */
WNB_API int32_t wnb_state_seq_set(wnb_context * ctx, int32_t seq, uint32_t flags, const uint8_t * data,
                                  int32_t len, wnb_error * err);

/* Perf counters: out[0..5] = t_load_ms, t_p_eval_ms, t_eval_ms, n_p_eval, n_eval, n_reused. */
WNB_API void wnb_perf(const wnb_context * ctx, double * out6);
WNB_API void wnb_perf_reset(wnb_context * ctx);

/* ---- memory planning ------------------------------------------------ */

/* Estimates, without loading weights, the memory a model and a context need on
 * each device (llama.cpp's common_get_device_memory_data). JSON:
 * {"n_layer":N,"n_ctx_train":N,"devices":[{"name","free","total","model",
 * "context","compute"}]} (bytes; the last device is the host). Returns the
 * size needed, or a negative wnb_status with err set. */
WNB_API int32_t wnb_estimate_memory(const char * path, const wnb_model_params * mparams,
                                    const wnb_context_params * cparams, char * buf, int32_t cap,
                                    wnb_error * err);

/* Fits n_gpu_layers (set it to -2 for "choose") and, if n_ctx is 0, n_ctx to
 * the free device memory, as llama.cpp's --fit does (common_fit_params).
 * Writes the chosen values back into *mparams and *cparams. WNB_OK when a
 * fitting allocation was found; WNB_ERR_OUT_OF_MEMORY (with numbers) when not. */
WNB_API int32_t wnb_fit_params(const char * path, wnb_model_params * mparams, wnb_context_params * cparams,
                               uint32_t n_ctx_min, wnb_error * err);

/* ---- samplers (llama.cpp's common sampler: the server's chain) ----------- */

typedef struct wnb_logit_bias {
    int32_t token;
    float   bias; /* -INFINITY bans the token */
} wnb_logit_bias;

typedef struct wnb_grammar_trigger {
    int32_t      type;  /* 0 token, 1 word, 2 pattern, 3 pattern_full */
    int32_t      token; /* for type 0 */
    const char * value; /* for types 1..3 */
} wnb_grammar_trigger;

typedef struct wnb_sampler_params {
    uint32_t seed;               /* 0xFFFFFFFF = random */
    int32_t  n_prev;
    int32_t  n_probs;
    int32_t  min_keep;
    int32_t  top_k;
    float    top_p;
    float    min_p;
    float    xtc_probability;
    float    xtc_threshold;
    float    typ_p;
    float    temp;
    float    dynatemp_range;
    float    dynatemp_exponent;
    int32_t  penalty_last_n;
    float    penalty_repeat;
    float    penalty_freq;
    float    penalty_present;
    float    dry_multiplier;
    float    dry_base;
    int32_t  dry_allowed_length;
    int32_t  dry_penalty_last_n;
    int32_t  mirostat;
    float    mirostat_tau;
    float    mirostat_eta;
    float    top_n_sigma;
    float    adaptive_target;
    float    adaptive_decay;
    uint8_t  ignore_eos;
    uint8_t  grammar_lazy;
    uint8_t  reserved[2];
    int32_t  n_dry_sequence_breakers; /* -1 = llama.cpp's default list */
    const char *                samplers;              /* ';'-separated names, NULL = default order */
    const char * const *        dry_sequence_breakers;
    const char *                grammar;               /* GBNF, NULL or "" = none */
    const wnb_grammar_trigger * grammar_triggers;
    const wnb_logit_bias *      logit_bias;
    int32_t                     n_grammar_triggers;
    int32_t                     n_logit_bias;
} wnb_sampler_params;

WNB_API void wnb_sampler_default_params(wnb_sampler_params * out);

typedef struct wnb_sampler wnb_sampler;

/* Builds the chain. The params (and every string and array they point to) are
 * copied: the caller may free them after the call. *out: wnb_sampler_free. */
WNB_API int32_t wnb_sampler_new(const wnb_model * model, const wnb_sampler_params * params,
                                wnb_sampler ** out, wnb_error * err);
WNB_API void    wnb_sampler_free(wnb_sampler * smpl);
WNB_API void    wnb_sampler_reset(wnb_sampler * smpl);
/* Feeds a token the sampler did not pick (e.g. the prompt) into its history. */
WNB_API void    wnb_sampler_accept(wnb_sampler * smpl, int32_t token);
/* Samples from batch index idx (-1 = last) and accepts the token. Returns the
 * token, or -1 when the grammar has no valid continuation (err says why). */
WNB_API int32_t wnb_sampler_sample(wnb_sampler * smpl, wnb_context * ctx, int32_t idx, wnb_error * err);
/* After a sample: the top n candidates' tokens and probabilities (n_probs).
 * Returns how many were written. */
WNB_API int32_t wnb_sampler_probs(wnb_sampler * smpl, int32_t * tokens, float * probs, int32_t n);
WNB_API uint32_t wnb_sampler_seed(const wnb_sampler * smpl);

/* One generation step for one sequence, fused to save FFI round trips:
 * sample from batch index idx (-1 = last) and accept; if the token is not an
 * end-of-generation token (or ignore_eos is set), decode it at pos in seq_id.
 * *token_out gets the token. Returns WNB_OK, or the decode's status (the token
 * is still reported). For EOG tokens no decode happens. */
WNB_API int32_t wnb_generate_step(wnb_context * ctx, wnb_sampler * smpl, int32_t idx, int32_t seq_id,
                                  int32_t pos, int32_t * token_out, wnb_error * err);

/* ---- multimodal: images and audio into the prompt (native/wnb_mtmd.cpp) --
 * llama.cpp's tools/mtmd. A projector ("mmproj" GGUF) is loaded for a loaded
 * model; media files become bitmaps; text holding the media marker(s) plus
 * N bitmaps is tokenized into chunks (text runs and media runs); the chunks
 * are evaluated into one sequence of a context. Media chunks can use more
 * (or, with M-RoPE, fewer) positions than tokens: track n_past with the
 * positions these calls report, never with token counts. */

typedef struct wnb_mtmd_params {
    uint8_t use_gpu;          /* 1 = the projector on the GPU when there is one (default 1) */
    uint8_t warmup;           /* 1 = run one encode at load to size buffers (default 0) */
    uint8_t reserved[2];
    int32_t n_threads;        /* encoder threads; <= 0 = 4 */
    int32_t flash_attn;       /* -1 auto (default), 0 off, 1 on */
    int32_t image_min_tokens; /* dynamic-resolution projectors only; 0 = the projector's */
    int32_t image_max_tokens; /* dynamic-resolution projectors only; 0 = the projector's */
    int32_t max_image_pixels; /* width*height above this is refused before decoding; 0 = no limit.
                               * Default 67108864 (64 Mi pixels) */
    const char * media_marker; /* the text that stands for one bitmap; NULL = the default
                                * ("<__media__>"; WasmEdge's GGML plugin uses "<image>").
                                * Copied during wnb_mtmd_load. */
} wnb_mtmd_params;

WNB_API void    wnb_mtmd_default_params(wnb_mtmd_params * out);
WNB_API int32_t wnb_sizeof_mtmd_params(void);

/* The media marker text that wnb_mtmd_tokenize replaces with a bitmap
 * ("<__media__>"). Returns its size (see conventions). */
WNB_API int32_t wnb_mtmd_default_marker(char * buf, int32_t cap);

typedef struct wnb_mtmd        wnb_mtmd;
typedef struct wnb_mtmd_bitmap wnb_mtmd_bitmap;
typedef struct wnb_mtmd_chunks wnb_mtmd_chunks;

/* Loads a projector GGUF for a loaded model (the model is borrowed: free the
 * projector first). Checks the file first (exists, regular, GGUF magic);
 * a projector that llama.cpp refuses (unknown type, missing tensor,
 * truncated, embedding width unlike the model's) is WNB_ERR_INVALID_MODEL
 * with llama.cpp's reason. params may be NULL (defaults). Timings are never
 * printed. *out owns the projector: wnb_mtmd_free. */
WNB_API int32_t wnb_mtmd_load(const char * path, const wnb_model * model, const wnb_mtmd_params * params,
                              wnb_mtmd ** out, wnb_error * err);
WNB_API void    wnb_mtmd_free(wnb_mtmd * mtmd);
WNB_API uint8_t wnb_mtmd_support_vision(const wnb_mtmd * mtmd);
WNB_API uint8_t wnb_mtmd_support_audio(const wnb_mtmd * mtmd);
/* Audio sample rate the projector wants, or -1 without audio. */
WNB_API int32_t wnb_mtmd_audio_sample_rate(const wnb_mtmd * mtmd);
/* The projector's media marker (params.media_marker or the default). Returns its size (see conventions). */
WNB_API int32_t wnb_mtmd_marker(const wnb_mtmd * mtmd, char * buf, int32_t cap);
/* 1 when the model uses M-RoPE (qwen2vl...): media positions != media tokens. */
WNB_API uint8_t wnb_mtmd_uses_mrope(const wnb_mtmd * mtmd);

/* Decodes an encoded file in memory (JPEG, PNG, BMP, GIF, ... via stb_image;
 * WAV, MP3, FLAC via miniaudio when the projector takes audio) into a
 * bitmap. data is only read during the call. Undecodable bytes, audio for a
 * projector without audio, or an image over max_image_pixels are
 * WNB_ERR_INVALID_ARGUMENT. The bitmap's id is the SHA-256 (hex) of the
 * bytes. *out owns the bitmap: wnb_mtmd_bitmap_free (any time after
 * wnb_mtmd_tokenize, which copies what it needs). */
WNB_API int32_t wnb_mtmd_bitmap_from_buf(wnb_mtmd * mtmd, const uint8_t * data, size_t len,
                                         wnb_mtmd_bitmap ** out, wnb_error * err);
WNB_API void    wnb_mtmd_bitmap_free(wnb_mtmd_bitmap * bitmap);
/* Width and height in pixels (audio: samples and 1); 1 for audio. */
WNB_API uint32_t wnb_mtmd_bitmap_nx(const wnb_mtmd_bitmap * bitmap);
WNB_API uint32_t wnb_mtmd_bitmap_ny(const wnb_mtmd_bitmap * bitmap);
WNB_API uint8_t  wnb_mtmd_bitmap_is_audio(const wnb_mtmd_bitmap * bitmap);
/* The id (SHA-256 hex of the file bytes). Returns its size (see conventions). */
WNB_API int32_t  wnb_mtmd_bitmap_id(const wnb_mtmd_bitmap * bitmap, char * buf, int32_t cap);

/* Tokenizes len bytes of text (len < 0: NUL-terminated) in which each media
 * marker (wnb_mtmd_marker) stands for the next of n_bitmaps bitmaps,
 * in order; the counts must match (else WNB_ERR_INVALID_ARGUMENT). The
 * projector's own image begin/end tokens are added around each image.
 * add_special: add BOS etc. (as at the start of a conversation);
 * parse_special: special tokens in the text are parsed. The bitmaps are only
 * read. *out owns the chunks: wnb_mtmd_chunks_free. */
WNB_API int32_t wnb_mtmd_tokenize(wnb_mtmd * mtmd, const char * text, int32_t len,
                                  const wnb_mtmd_bitmap * const * bitmaps, int32_t n_bitmaps,
                                  uint8_t add_special, uint8_t parse_special,
                                  wnb_mtmd_chunks ** out, wnb_error * err);
WNB_API void    wnb_mtmd_chunks_free(wnb_mtmd_chunks * chunks);
WNB_API int32_t wnb_mtmd_chunks_count(const wnb_mtmd_chunks * chunks);
/* Tokens (KV cells) and positions all chunks use. */
WNB_API int32_t wnb_mtmd_chunks_n_tokens(const wnb_mtmd_chunks * chunks);
WNB_API int32_t wnb_mtmd_chunks_n_pos(const wnb_mtmd_chunks * chunks);

typedef struct wnb_mtmd_chunk_info {
    int32_t type;     /* 0 text, 1 image, 2 audio */
    int32_t n_tokens; /* tokens (KV cells) */
    int32_t n_pos;    /* positions */
} wnb_mtmd_chunk_info;

/* Chunk i's type and sizes. WNB_ERR_INVALID_ARGUMENT when i is out of range. */
WNB_API int32_t wnb_mtmd_chunk_info_get(const wnb_mtmd_chunks * chunks, int32_t i, wnb_mtmd_chunk_info * out,
                                        wnb_error * err);
/* Text chunk i's token ids into tokens[cap]. Returns the count (see
 * conventions); 0 for a media chunk; -1 when i is out of range. */
WNB_API int32_t wnb_mtmd_chunk_tokens(const wnb_mtmd_chunks * chunks, int32_t i, int32_t * tokens, int32_t cap);
/* Media chunk i's id (its bitmap's id: the same bytes give the same id), for
 * caches. Returns its size (see conventions); 0 for text; -1 out of range. */
WNB_API int32_t wnb_mtmd_chunk_id(const wnb_mtmd_chunks * chunks, int32_t i, char * buf, int32_t cap);

/* Evaluates chunks [first, first + count) (count < 0: to the end) into
 * sequence seq_id of ctx, from position n_past: text is decoded in n_batch
 * pieces (<= 0: the context's n_batch), each media chunk is encoded by the
 * projector and its embeddings decoded. With logits_last the last token of
 * the range keeps its logits (batch index -1), when the range ends with
 * text. *new_n_past gets the position after the chunks fully evaluated,
 * also on failure: then remove positions >= *new_n_past from the sequence
 * (part of a failed chunk may be in the cache). Errors:
 * WNB_ERR_NO_KV_SPACE, WNB_ERR_CANCELLED (the context's abort flag),
 * WNB_ERR_DECODE, WNB_ERR_INTERNAL (the encode failed). One thread at a
 * time per projector and per context. ctx must be of the projector's model. */
WNB_API int32_t wnb_mtmd_eval(wnb_mtmd * mtmd, wnb_context * ctx, const wnb_mtmd_chunks * chunks, int32_t first,
                              int32_t count, int32_t n_past, int32_t seq_id, int32_t n_batch, uint8_t logits_last,
                              int32_t * new_n_past, wnb_error * err);

/* ---- RPC: devices of other machines (llama.cpp's rpc-server; native/wnb_rpc.cpp) --
 * An endpoint is "host:port": an IPv4 address or a host name (llama.cpp's
 * client resolves IPv4 only) and a port 1..65535. ggml-rpc aborts the whole
 * process when an endpoint it talks to does not answer or breaks
 * (GGML_ABORT "Failed to connect", RPC_STATUS_ASSERT). So every call here
 * that makes llama.cpp talk to an endpoint (these, and wnb_model_load,
 * wnb_estimate_memory, wnb_fit_params with rpc_servers) first probes it:
 * a TCP connect within the timeout, plus the RPC HELLO and its protocol
 * version while no model of this process holds a connection to it (an
 * rpc-server serves one client at a time, so a second connection waits).
 * A failed probe is WNB_ERR_UNREACHABLE naming the endpoint, and llama.cpp
 * is not called. A server that dies while a model uses it still aborts the
 * process: run such models in a process of their own. Registered endpoints
 * stay registered for the life of the process. */

/* 1 when the library holds ggml's RPC backend (built with GGML_RPC=ON). */
WNB_API uint8_t wnb_rpc_supported(void);

/* Checks that endpoint answers within timeout_ms (<= 0: 5000): a TCP
 * connect; with handshake = 1 also the RPC HELLO and the protocol version.
 * Talks to the endpoint itself, never through llama.cpp. WNB_OK;
 * WNB_ERR_INVALID_ARGUMENT for a malformed endpoint; WNB_ERR_UNREACHABLE
 * (refused, no answer in time, a host that does not resolve, not an
 * rpc-server or another protocol version; the message names the endpoint
 * and says which). */
WNB_API int32_t wnb_rpc_probe(const char * endpoint, int32_t timeout_ms, uint8_t handshake, wnb_error * err);

/* Registers an endpoint's devices with ggml, as llama.cpp's --rpc does
 * (common/arg.cpp: the RPC registry's ggml_backend_rpc_add_server through
 * its proc address, then ggml_backend_register), after the probe above.
 * Idempotent: a registered endpoint is not registered again, but it is
 * probed on every call (a registered server may have died since), so a dead
 * one is WNB_ERR_UNREACHABLE here as it is on first use.
 * *n_devices (may be NULL) gets the endpoint's device count. Models use the
 * devices only when their rpc_servers name the endpoint. */
WNB_API int32_t wnb_rpc_add_server(const char * endpoint, int32_t timeout_ms, int32_t * n_devices, wnb_error * err);

/* Free and total memory of every device of an endpoint, in bytes
 * (ggml_backend_rpc_get_device_memory), after the probe above, into the
 * caller's arrays of cap entries (either may be NULL). Returns the device
 * count, writing the arrays only when cap is enough (see conventions), or a
 * negative wnb_status. Does not register the endpoint. */
WNB_API int32_t wnb_rpc_server_memory(const char * endpoint, int32_t timeout_ms, uint64_t * free_bytes,
                                      uint64_t * total_bytes, int32_t cap, wnb_error * err);

#ifdef __cplusplus
}
#endif

#endif /* WASI_NN_SHIM_H */
