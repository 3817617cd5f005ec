/*
 * abi_probe.c - a test guest that drives the wasi_ephemeral_nn ABI one call
 * at a time and prints what the host answered, so a Deno test can assert
 * exact behaviour.
 *
 *     abi_probe.wasm SCENARIO ARGS...
 *
 * Output: one line per host call (flushed at once, so a trap loses nothing):
 *
 *     op=<name> [case=<label>] key=value ...
 *
 * A value is a decimal integer, a bare token without spaces (hex=), or a JSON
 * string (text=, starts with a double quote). Keys, in order:
 *   - inputs: iter= (unload-reload), ctx=, graph=, index=, cap=, bytes=
 *     (set_input data length), encoding=, target=, builders= (load)
 *   - errno=<n> the host's answer
 *   - outputs, read back after the call even on failure: graph= (load*),
 *     ctx= (init_execution_context), written= (get_output*); the guest fills
 *     them with 4294967295 first, so that value means "not written"
 *   - get_output* with errno 0 only: the min(written, cap) bytes received,
 *     as hex=<lowercase hex> (not for index 1, the metadata JSON) and
 *     text=<JSON string; invalid UTF-8 becomes U+FFFD, so compare stream
 *     pieces byte for byte with hex=>
 *   - too-small only: changed=<bytes of buf[0,cap) the host modified>
 *     canary=intact|clobbered (the 64 bytes after buf[cap])
 * The last line is `op=end` when the scenario ran to completion, or
 * `op=abort step=<op> errno=<n>` (exit status 1) when a step the scenario
 * depends on failed. Bad usage exits with 2.
 *
 * Other lines: `op=<call> case=<label> errno=<n>` (bad-pointers: one per
 * malformed call), `op=stream_end run=<r> pieces=<n> errno=<last
 * compute_single errno, 0 if stopped at MAX>`, `op=read_file bytes=<n>`.
 *
 * Scenarios (CONFIG defaults in brackets; CTX defaults to 64):
 *   oneshot NAME PROMPT [CONFIG {"n-predict":16,"temp":0}]
 *       load_by_name_with_config, init, set_input(0), get_output(1)
 *       case=before, compute, get_output(0) case=text, get_output(1)
 *       case=after
 *   stream NAME PROMPT [CONFIG {"temp":0}] [MAX 64]
 *       ... set_input, get_output(1) case=before, then compute_single +
 *       get_output_single per token until compute_single fails (100) or MAX,
 *       stream_end run=1, get_output(1) case=after, get_output(0) case=text;
 *       no fini_single (like WasmEdge's llama-stream)
 *   stream-fini  the same, then fini_single, get_output(1) case=after_fini,
 *       a second loop (stream_end run=2) and fini_single
 *   unload-reload NAME PROMPT [N 5] [CONFIG {"n-predict":8,"temp":0}]
 *       N x (load iter=i, init, set_input, compute, get_output(0), unload)
 *   embedding NAME PROMPT [CONFIG {"embedding":true}]
 *       compute, get_output(0) cap=82048 case=text (case=text_retry with the
 *       written size after TooLarge), get_output(1) case=after
 *   set-input-twice NAME PROMPT [CONFIG {"ctx-size":1024}]
 *       set_input/get_output(1) case=first, then case=second
 *   load-by-name NAME [CONFIG]   one load_by_name (with_config if CONFIG)
 *   load-path PATH               load_by_name(PATH); on success init, unload
 *   load-bytes ENCODING preload:PATH|file:PATH [TARGET 0]
 *            [CONFIG {"n-predict":4,"temp":0}, "-" = no builder 1]
 *       `load` (file: reads the bytes through WASI), op=load encoding=
 *       target= builders= errno= graph=; on success init, set_input("Hello"),
 *       compute, get_output(0), unload
 *   too-small NAME PROMPT CAP [CONFIG]
 *       compute, then with canaries: get_output(0) case=text_cap,
 *       get_output(1) case=meta_cap, case=text_exact (cap = written, after
 *       TooLarge), case=text_zero (cap 0), compute_single,
 *       get_output_single case=single_cap / single_zero, fini_single
 *   bad-pointers NAME    out-of-bounds, straddling and wrapping pointers and
 *       lengths, bad handles, bad encoding/target/type for every function;
 *       then get_output case=still_works (index 0 and 1)
 *   wrong-order NAME     calls out of order (compute before set_input, ...),
 *       finalize then use, unload then use; each line has a case=
 *   prompt-too-long NAME [CTX]   config {"ctx-size":CTX,"n-predict":4},
 *       a 4*CTX-word prompt: set_input, get_output(1), compute,
 *       get_output(0) case=text, compute_single
 *   context-full NAME PROMPT [CTX] [NPREDICT 1000]
 *       config {"ctx-size":CTX,"n-predict":N,"temp":0,"ignore-eos":true}:
 *       compute, get_output(0) case=text (the partial text), get_output(1)
 *       case=after; set_input case=stream, stream loop (MAX 2*CTX+16),
 *       get_output(1) case=stream_after, fini_single
 *   config-index1 NAME PROMPT JSON   load_by_name (no config), init,
 *       set_input(1, JSON) case=config, set_input(0), then as oneshot
 *   bad-config NAME   load_by_name_with_config case=malformed, not_json,
 *       not_object, n_predict_string, temp_string, ctx_size_float,
 *       enable_log_int, valid_unknown_key; set_input(1) case=malformed,
 *       wrong_type, valid ({"n-predict":2}); set_input(0), compute,
 *       get_output(1) case=after; load case=empty_config (config_len 0)
 *   two-contexts NAME PROMPT1 PROMPT2 [CONFIG]   two contexts on one graph
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../examples/c/wasi_nn.h"

#define NOT_WRITTEN 0xFFFFFFFFu
#define OUT_CAP 24576u     /* the WasmEdge examples' output buffer */
#define EMBED_CAP 82048u   /* the WasmEdge embedding example's buffer */

/* Bytes of linear memory right now; anything at or above is out of bounds. */
static uint32_t mem_end(void) {
  return (uint32_t)__builtin_wasm_memory_size(0) * 65536u;
}

/* An integer as a pointer, for the bad-pointer cases. */
#define PTR(x) ((void *)(uintptr_t)(uint32_t)(x))

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

static void out_begin(const char *op, const char *case_label) {
  printf("op=%s", op);
  if (case_label != NULL) printf(" case=%s", case_label);
}

static void out_u(const char *key, uint32_t value) {
  printf(" %s=%u", key, value);
}

static void out_i(const char *key, int32_t value) {
  printf(" %s=%d", key, value);
}

static void out_end(void) {
  putchar('\n');
  fflush(stdout);
}

/* Length of a valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const uint8_t *p, size_t n) {
  uint8_t c = p[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
  if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
  return len;
}

/* [" hex=..."] " text="..."" for n bytes at p. */
static void out_data(const uint8_t *p, uint32_t n, int hex) {
  static const char digits[] = "0123456789abcdef";
  if (hex) {
    fputs(" hex=", stdout);
    for (uint32_t i = 0; i < n; i++) {
      putchar(digits[p[i] >> 4]);
      putchar(digits[p[i] & 15]);
    }
  }
  fputs(" text=\"", stdout);
  for (uint32_t i = 0; i < n;) {
    uint8_t c = p[i];
    if (c == '"' || c == '\\') {
      putchar('\\');
      putchar(c);
      i++;
    } else if (c == '\n') {
      fputs("\\n", stdout), i++;
    } else if (c == '\r') {
      fputs("\\r", stdout), i++;
    } else if (c == '\t') {
      fputs("\\t", stdout), i++;
    } else if (c < 0x20 || c == 0x7F) {
      printf("\\u%04x", c), i++;
    } else {
      size_t len = utf8_len(p + i, n - i);
      if (len == 0) {
        fputs("\\ufffd", stdout), i++;
      } else {
        fwrite(p + i, 1, len, stdout), i += (uint32_t)len;
      }
    }
  }
  putchar('"');
}

/* The last line of an aborted scenario. */
static int abort_at(const char *step, wasi_nn_errno e) {
  out_begin("abort", NULL);
  printf(" step=%s", step);
  out_i("errno", e);
  out_end();
  return 1;
}

static int end_ok(void) {
  out_begin("end", NULL);
  out_end();
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Calls that print one line each                                           */
/* ------------------------------------------------------------------------ */

/* The `iter=` value printed by the next load (0 = none). */
static uint32_t cur_iter = 0;

static wasi_nn_errno p_load_by_name(const char *cs, const char *name,
                                    wasi_nn_graph *graph) {
  *graph = NOT_WRITTEN;
  wasi_nn_errno e = wasi_nn_load_by_name(name, strlen(name), graph);
  out_begin("load_by_name", cs);
  if (cur_iter) out_u("iter", cur_iter);
  out_i("errno", e);
  out_u("graph", *graph);
  out_end();
  return e;
}

static wasi_nn_errno p_load_cfg(const char *cs, const char *name,
                                const char *config, wasi_nn_graph *graph) {
  *graph = NOT_WRITTEN;
  wasi_nn_errno e = wasi_nn_load_by_name_with_config(
      name, strlen(name), config, strlen(config), graph);
  out_begin("load_by_name_with_config", cs);
  if (cur_iter) out_u("iter", cur_iter);
  out_i("errno", e);
  out_u("graph", *graph);
  out_end();
  return e;
}

static wasi_nn_errno p_init(const char *cs, wasi_nn_graph graph,
                            wasi_nn_ctx *ctx) {
  *ctx = NOT_WRITTEN;
  wasi_nn_errno e = wasi_nn_init_execution_context(graph, ctx);
  out_begin("init_execution_context", cs);
  out_u("graph", graph);
  out_i("errno", e);
  out_u("ctx", *ctx);
  out_end();
  return e;
}

static wasi_nn_errno p_set_input_bytes(const char *cs, wasi_nn_ctx ctx,
                                       uint32_t index, const void *data,
                                       uint32_t len) {
  uint32_t dims[1];
  wasi_nn_tensor t = wasi_nn_text_tensor(data, len, dims);
  wasi_nn_errno e = wasi_nn_set_input(ctx, index, &t);
  out_begin("set_input", cs);
  out_u("ctx", ctx);
  out_u("index", index);
  out_u("bytes", len);
  out_i("errno", e);
  out_end();
  return e;
}

static wasi_nn_errno p_set_input(const char *cs, wasi_nn_ctx ctx,
                                 uint32_t index, const char *text) {
  return p_set_input_bytes(cs, ctx, index, text, strlen(text));
}

/* compute, compute_single, fini_single, unload, finalize: (handle) -> errno */
static wasi_nn_errno p_handle_call(const char *op, const char *cs,
                                   const char *key, uint32_t handle,
                                   wasi_nn_errno (*fn)(uint32_t)) {
  wasi_nn_errno e = fn(handle);
  out_begin(op, cs);
  out_u(key, handle);
  out_i("errno", e);
  out_end();
  return e;
}

#define p_compute(cs, c) \
  p_handle_call("compute", cs, "ctx", c, wasi_nn_compute)
#define p_compute_single(cs, c) \
  p_handle_call("compute_single", cs, "ctx", c, wasi_nn_compute_single)
#define p_fini_single(cs, c) \
  p_handle_call("fini_single", cs, "ctx", c, wasi_nn_fini_single)
#define p_unload(cs, g) p_handle_call("unload", cs, "graph", g, wasi_nn_unload)
#define p_finalize(cs, c)                                       \
  p_handle_call("finalize_execution_context", cs, "ctx", c, \
                wasi_nn_finalize_execution_context)

/*
 * get_output or get_output_single into a fresh buffer of `cap` bytes (plus a
 * 64-byte canary). Returns the errno; *written_out gets the written value.
 */
static wasi_nn_errno p_get_output_ex(const char *cs, int single,
                                     wasi_nn_ctx ctx, uint32_t index,
                                     uint32_t cap, int canary,
                                     uint32_t *written_out) {
  uint8_t *buf = malloc((size_t)cap + 64);
  if (buf == NULL) {
    fprintf(stderr, "abi_probe: out of memory\n");
    exit(3);
  }
  memset(buf, 0xAA, (size_t)cap + 64);
  uint32_t written = NOT_WRITTEN;
  wasi_nn_errno e =
      single ? wasi_nn_get_output_single(ctx, index, buf, cap, &written)
             : wasi_nn_get_output(ctx, index, buf, cap, &written);
  out_begin(single ? "get_output_single" : "get_output", cs);
  out_u("ctx", ctx);
  out_u("index", index);
  out_u("cap", cap);
  out_i("errno", e);
  out_u("written", written);
  if (canary) {
    uint32_t changed = 0;
    for (uint32_t i = 0; i < cap; i++) changed += buf[i] != 0xAA;
    int intact = 1;
    for (uint32_t i = cap; i < cap + 64; i++) intact &= buf[i] == 0xAA;
    out_u("changed", changed);
    printf(" canary=%s", intact ? "intact" : "clobbered");
  }
  if (e == WASI_NN_ERRNO_SUCCESS) {
    out_data(buf, written < cap ? written : cap, index != 1);
  }
  out_end();
  free(buf);
  if (written_out != NULL) *written_out = written;
  return e;
}

static wasi_nn_errno p_get_output(const char *cs, wasi_nn_ctx ctx,
                                  uint32_t index, uint32_t cap) {
  return p_get_output_ex(cs, 0, ctx, index, cap, 0, NULL);
}

static wasi_nn_errno p_get_output_single(const char *cs, wasi_nn_ctx ctx,
                                         uint32_t index, uint32_t cap) {
  return p_get_output_ex(cs, 1, ctx, index, cap, 0, NULL);
}

/* A bad-pointer case: `op=<op> case=<label> errno=<n>`. */
#define CASE(op, label, call)                    \
  do {                                           \
    wasi_nn_errno e_ = (call);                   \
    out_begin(op, label);                        \
    out_i("errno", e_);                          \
    out_end();                                   \
  } while (0)

/* Shorthand: stop the scenario when a step it depends on fails. */
#define NEED(step, call)                          \
  do {                                            \
    wasi_nn_errno e_ = (call);                    \
    if (e_ != WASI_NN_ERRNO_SUCCESS) return abort_at(step, e_); \
  } while (0)

/* Loads NAME with CONFIG and creates one context. */
static int setup(const char *name, const char *config, wasi_nn_graph *g,
                 wasi_nn_ctx *c) {
  wasi_nn_errno e = p_load_cfg(NULL, name, config, g);
  if (e != WASI_NN_ERRNO_SUCCESS) {
    return abort_at("load_by_name_with_config", e);
  }
  e = p_init(NULL, *g, c);
  if (e != WASI_NN_ERRNO_SUCCESS) return abort_at("init_execution_context", e);
  return 0;
}

/*
 * compute_single / get_output_single until compute_single returns non-zero
 * or `max` tokens were read, then `op=stream_end run=<r> pieces=<n>
 * errno=<last compute_single errno, 0 when stopped by max>`.
 */
static wasi_nn_errno stream_loop(wasi_nn_ctx c, uint32_t max, uint32_t run) {
  uint32_t pieces = 0;
  wasi_nn_errno e = WASI_NN_ERRNO_SUCCESS;
  while (pieces < max) {
    e = p_compute_single(NULL, c);
    if (e != WASI_NN_ERRNO_SUCCESS) break;
    p_get_output_single(NULL, c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
    pieces++;
  }
  out_begin("stream_end", NULL);
  out_u("run", run);
  out_u("pieces", pieces);
  out_i("errno", e);
  out_end();
  return e;
}

static const char *arg(int argc, char **argv, int i, const char *fallback) {
  return i < argc ? argv[i] : fallback;
}

static uint32_t arg_u(int argc, char **argv, int i, uint32_t fallback) {
  return i < argc ? (uint32_t)strtoul(argv[i], NULL, 0) : fallback;
}

/* ------------------------------------------------------------------------ */
/* Scenarios                                                                */
/* ------------------------------------------------------------------------ */

#define SMALL_CONFIG "{\"n-predict\":16,\"temp\":0}"

/* oneshot NAME PROMPT [CONFIG] */
static int s_oneshot(int argc, char **argv) {
  wasi_nn_graph g;
  wasi_nn_ctx c;
  if (setup(argv[2], arg(argc, argv, 4, SMALL_CONFIG), &g, &c)) return 1;
  NEED("set_input", p_set_input(NULL, c, 0, argv[3]));
  p_get_output("before", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  p_compute(NULL, c);
  p_get_output("text", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  p_get_output("after", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  return end_ok();
}

/* stream / stream-fini NAME PROMPT [CONFIG] [MAX] */
static int s_stream(int argc, char **argv, int fini) {
  wasi_nn_graph g;
  wasi_nn_ctx c;
  uint32_t max = arg_u(argc, argv, 5, 64);
  if (setup(argv[2], arg(argc, argv, 4, "{\"temp\":0}"), &g, &c)) return 1;
  NEED("set_input", p_set_input(NULL, c, 0, argv[3]));
  p_get_output("before", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  stream_loop(c, max, 1);
  p_get_output("after", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  p_get_output("text", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  if (fini) {
    p_fini_single(NULL, c);
    p_get_output("after_fini", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
    /* A second stream on the same input starts again from the prompt. */
    stream_loop(c, max, 2);
    p_fini_single(NULL, c);
  }
  return end_ok();
}

/* unload-reload NAME PROMPT [N] [CONFIG] */
static int s_unload_reload(int argc, char **argv) {
  uint32_t n = arg_u(argc, argv, 4, 5);
  const char *config = arg(argc, argv, 5, "{\"n-predict\":8,\"temp\":0}");
  for (uint32_t i = 1; i <= n; i++) {
    wasi_nn_graph g;
    wasi_nn_ctx c;
    cur_iter = i;
    wasi_nn_errno e = p_load_cfg(NULL, argv[2], config, &g);
    cur_iter = 0;
    if (e) return abort_at("load_by_name_with_config", e);
    NEED("init_execution_context", p_init(NULL, g, &c));
    NEED("set_input", p_set_input(NULL, c, 0, argv[3]));
    p_compute(NULL, c);
    p_get_output("text", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
    NEED("unload", p_unload(NULL, g));
  }
  return end_ok();
}

/* embedding NAME PROMPT [CONFIG] */
static int s_embedding(int argc, char **argv) {
  wasi_nn_graph g;
  wasi_nn_ctx c;
  if (setup(argv[2], arg(argc, argv, 4, "{\"embedding\":true}"), &g, &c)) {
    return 1;
  }
  NEED("set_input", p_set_input(NULL, c, 0, argv[3]));
  p_compute(NULL, c);
  uint32_t written;
  wasi_nn_errno e = p_get_output_ex("text", 0, c, WASI_NN_OUTPUT_TEXT,
                                    EMBED_CAP, 0, &written);
  if (e == WASI_NN_ERRNO_TOO_LARGE && written != NOT_WRITTEN &&
      written < (64u << 20)) {
    p_get_output("text_retry", c, WASI_NN_OUTPUT_TEXT, written);
  }
  p_get_output("after", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  return end_ok();
}

/* set-input-twice NAME PROMPT [CONFIG] */
static int s_set_input_twice(int argc, char **argv) {
  wasi_nn_graph g;
  wasi_nn_ctx c;
  if (setup(argv[2], arg(argc, argv, 4, "{\"ctx-size\":1024}"), &g, &c)) {
    return 1;
  }
  p_set_input("first", c, 0, argv[3]);
  p_get_output("first", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  p_set_input("second", c, 0, argv[3]);
  p_get_output("second", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  return end_ok();
}

/* load-by-name NAME [CONFIG] */
static int s_load_by_name(int argc, char **argv) {
  wasi_nn_graph g;
  if (argc > 3) {
    p_load_cfg(NULL, argv[2], argv[3], &g);
  } else {
    p_load_by_name(NULL, argv[2], &g);
  }
  return end_ok();
}

/* load-path PATH */
static int s_load_path(int argc, char **argv) {
  (void)argc;
  wasi_nn_graph g;
  wasi_nn_ctx c;
  if (p_load_by_name(NULL, argv[2], &g) == WASI_NN_ERRNO_SUCCESS) {
    p_init(NULL, g, &c);
    p_unload(NULL, g);
  }
  return end_ok();
}

/* Reads a whole file through WASI (the host must preopen its folder). */
static uint8_t *read_file(const char *path, uint32_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 1 << 16, n = 0;
  uint8_t *data = malloc(cap);
  for (;;) {
    if (data == NULL) break;
    n += fread(data + n, 1, cap - n, f);
    if (n < cap) break;
    cap *= 2;
    data = realloc(data, cap);
  }
  fclose(f);
  *len = (uint32_t)n;
  return data;
}

/* load-bytes ENCODING SPEC [TARGET] [CONFIG|-] */
static int s_load_bytes(int argc, char **argv) {
  uint32_t encoding = arg_u(argc, argv, 2, WASI_NN_ENCODING_WASMEDGE_GGML);
  const char *spec = arg(argc, argv, 3, "");
  uint32_t target = arg_u(argc, argv, 4, WASI_NN_TARGET_CPU);
  const char *config = arg(argc, argv, 5, "{\"n-predict\":4,\"temp\":0}");

  wasi_nn_builder builders[2];
  uint32_t nbuilders = strcmp(config, "-") == 0 ? 1 : 2;
  if (strncmp(spec, "file:", 5) == 0) {
    uint32_t len = 0;
    uint8_t *data = read_file(spec + 5, &len);
    if (data == NULL) return abort_at("read_file", 0);
    out_begin("read_file", NULL);
    out_u("bytes", len);
    out_end();
    builders[0] = (wasi_nn_builder){data, len};
  } else {
    builders[0] = (wasi_nn_builder){(const uint8_t *)spec, strlen(spec)};
  }
  builders[1] = (wasi_nn_builder){(const uint8_t *)config, strlen(config)};

  wasi_nn_graph g = NOT_WRITTEN;
  wasi_nn_errno e = wasi_nn_load(builders, nbuilders, encoding, target, &g);
  out_begin("load", NULL);
  out_u("encoding", encoding);
  out_u("target", target);
  out_u("builders", nbuilders);
  out_i("errno", e);
  out_u("graph", g);
  out_end();
  if (e == WASI_NN_ERRNO_SUCCESS) {
    wasi_nn_ctx c;
    NEED("init_execution_context", p_init(NULL, g, &c));
    NEED("set_input", p_set_input(NULL, c, 0, "Hello"));
    p_compute(NULL, c);
    p_get_output("text", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
    p_unload(NULL, g);
  }
  return end_ok();
}

/* too-small NAME PROMPT CAP [CONFIG] */
static int s_too_small(int argc, char **argv) {
  wasi_nn_graph g;
  wasi_nn_ctx c;
  uint32_t cap = arg_u(argc, argv, 4, 1);
  if (setup(argv[2], arg(argc, argv, 5, SMALL_CONFIG), &g, &c)) return 1;
  NEED("set_input", p_set_input(NULL, c, 0, argv[3]));
  NEED("compute", p_compute(NULL, c));
  uint32_t written;
  wasi_nn_errno e = p_get_output_ex("text_cap", 0, c, WASI_NN_OUTPUT_TEXT,
                                    cap, 1, &written);
  p_get_output_ex("meta_cap", 0, c, WASI_NN_OUTPUT_METADATA, cap, 1, NULL);
  if (e == WASI_NN_ERRNO_TOO_LARGE && written != NOT_WRITTEN &&
      written < (64u << 20)) {
    /* Exactly the size the host asked for must be enough. */
    p_get_output_ex("text_exact", 0, c, WASI_NN_OUTPUT_TEXT, written, 1, NULL);
  }
  p_get_output_ex("text_zero", 0, c, WASI_NN_OUTPUT_TEXT, 0, 1, NULL);
  /* The same for a streamed piece. */
  if (p_compute_single(NULL, c) == WASI_NN_ERRNO_SUCCESS) {
    p_get_output_ex("single_cap", 1, c, WASI_NN_OUTPUT_TEXT, cap, 1, NULL);
    p_get_output_ex("single_zero", 1, c, WASI_NN_OUTPUT_TEXT, 0, 1, NULL);
  }
  p_fini_single(NULL, c);
  return end_ok();
}

/* bad-pointers NAME */
static int s_bad_pointers(int argc, char **argv) {
  (void)argc;
  const char *name = argv[2];
  uint32_t name_len = strlen(name);
  wasi_nn_graph g, tmp_g;
  wasi_nn_ctx c, tmp_c;
  if (setup(name, "{\"n-predict\":4,\"temp\":0}", &g, &c)) return 1;
  NEED("set_input", p_set_input(NULL, c, 0, "Hello"));
  NEED("compute", p_compute(NULL, c));

  /* load_by_name: name and out-pointer bounds. */
  CASE("load_by_name", "name_oob",
       wasi_nn_load_by_name(PTR(mem_end()), 7, &tmp_g));
  CASE("load_by_name", "name_straddle",
       wasi_nn_load_by_name(PTR(mem_end() - 3), 7, &tmp_g));
  CASE("load_by_name", "name_wrap",
       wasi_nn_load_by_name(PTR(0xFFFFFFF0u), 0x20, &tmp_g));
  CASE("load_by_name", "name_len_huge",
       wasi_nn_load_by_name(name, 0x7FFFFFFFu, &tmp_g));
  CASE("load_by_name", "name_len_max",
       wasi_nn_load_by_name(name, 0xFFFFFFFFu, &tmp_g));
  CASE("load_by_name", "name_empty", wasi_nn_load_by_name(name, 0, &tmp_g));
  CASE("load_by_name", "out_oob",
       wasi_nn_load_by_name(name, name_len, PTR(mem_end())));
  CASE("load_by_name", "out_straddle",
       wasi_nn_load_by_name(name, name_len, PTR(mem_end() - 2)));
  CASE("load_by_name", "out_max",
       wasi_nn_load_by_name(name, name_len, PTR(0xFFFFFFFFu)));

  /* load_by_name_with_config: config bounds. */
  CASE("load_by_name_with_config", "config_oob",
       wasi_nn_load_by_name_with_config(name, name_len, PTR(mem_end()), 10,
                                        &tmp_g));
  CASE("load_by_name_with_config", "config_len_huge",
       wasi_nn_load_by_name_with_config(name, name_len, "{}", 0x7FFFFFFFu,
                                        &tmp_g));
  CASE("load_by_name_with_config", "config_wrap",
       wasi_nn_load_by_name_with_config(name, name_len, PTR(0xFFFFFF00u),
                                        0x200, &tmp_g));
  CASE("load_by_name_with_config", "name_oob",
       wasi_nn_load_by_name_with_config(PTR(mem_end()), 7, "{}", 2, &tmp_g));

  /* load: builder array and builder data bounds, encoding, target. */
  static const char missing[] = "preload:/nonexistent/abi_probe.gguf";
  wasi_nn_builder b[1] = {{(const uint8_t *)missing, sizeof missing - 1}};
  CASE("load", "builders_oob",
       wasi_nn_load(PTR(mem_end()), 1, WASI_NN_ENCODING_WASMEDGE_GGML, 0,
                    &tmp_g));
  CASE("load", "builders_len_huge",
       wasi_nn_load(b, 0x7FFFFFFFu, WASI_NN_ENCODING_WASMEDGE_GGML, 0,
                    &tmp_g));
  CASE("load", "builders_len_wrap", /* 8 * 0x20000000 wraps to 0 in u32 */
       wasi_nn_load(b, 0x20000000u, WASI_NN_ENCODING_WASMEDGE_GGML, 0,
                    &tmp_g));
  CASE("load", "builders_len_zero",
       wasi_nn_load(b, 0, WASI_NN_ENCODING_WASMEDGE_GGML, 0, &tmp_g));
  wasi_nn_builder bad_data[1] = {{PTR(mem_end()), 16}};
  CASE("load", "builder_data_oob",
       wasi_nn_load(bad_data, 1, WASI_NN_ENCODING_WASMEDGE_GGML, 0, &tmp_g));
  wasi_nn_builder wrap_data[1] = {{PTR(0xFFFFFFF0u), 0x20}};
  CASE("load", "builder_data_wrap",
       wasi_nn_load(wrap_data, 1, WASI_NN_ENCODING_WASMEDGE_GGML, 0, &tmp_g));
  CASE("load", "encoding_bad", wasi_nn_load(b, 1, 99, 0, &tmp_g));
  CASE("load", "target_bad",
       wasi_nn_load(b, 1, WASI_NN_ENCODING_WASMEDGE_GGML, 99, &tmp_g));

  /* init_execution_context: handles and out-pointer. */
  CASE("init_execution_context", "graph_bad",
       wasi_nn_init_execution_context(12345, &tmp_c));
  CASE("init_execution_context", "graph_max",
       wasi_nn_init_execution_context(0xFFFFFFFFu, &tmp_c));
  CASE("init_execution_context", "out_oob",
       wasi_nn_init_execution_context(g, PTR(mem_end())));
  CASE("init_execution_context", "out_max",
       wasi_nn_init_execution_context(g, PTR(0xFFFFFFFFu)));

  /* set_input: handle, tensor record, data and dims bounds, type. */
  static const char hello[] = "Hello";
  static uint32_t dims[1] = {1};
  wasi_nn_tensor t = {dims, 1, WASI_NN_TYPE_U8, (const uint8_t *)hello, 5};
  CASE("set_input", "ctx_bad", wasi_nn_set_input(12345, 0, &t));
  CASE("set_input", "ctx_max", wasi_nn_set_input(0xFFFFFFFFu, 0, &t));
  CASE("set_input", "tensor_oob", wasi_nn_set_input(c, 0, PTR(mem_end())));
  CASE("set_input", "tensor_straddle",
       wasi_nn_set_input(c, 0, PTR(mem_end() - 10)));
  CASE("set_input", "tensor_wrap", wasi_nn_set_input(c, 0, PTR(0xFFFFFFF8u)));
  wasi_nn_tensor bad = t;
  bad.data = PTR(mem_end());
  CASE("set_input", "data_oob", wasi_nn_set_input(c, 0, &bad));
  bad = t;
  bad.data_len = 0x7FFFFFFFu;
  CASE("set_input", "data_len_huge", wasi_nn_set_input(c, 0, &bad));
  bad = t;
  bad.data_len = 0xFFFFFFFFu;
  CASE("set_input", "data_len_max", wasi_nn_set_input(c, 0, &bad));
  bad = t;
  bad.data = PTR(0xFFFFFF00u);
  bad.data_len = 0x200;
  CASE("set_input", "data_wrap", wasi_nn_set_input(c, 0, &bad));
  bad = t;
  bad.dims = PTR(mem_end());
  CASE("set_input", "dims_oob", wasi_nn_set_input(c, 0, &bad));
  bad = t;
  bad.dims_len = 0x40000000u; /* 4 * 0x40000000 wraps to 0 in u32 */
  CASE("set_input", "dims_len_wrap", wasi_nn_set_input(c, 0, &bad));
  bad = t;
  bad.type = WASI_NN_TYPE_F64;
  CASE("set_input", "type_f64", wasi_nn_set_input(c, 0, &bad));
  bad = t;
  bad.type = 0x00000103u; /* low byte is U8: hosts read only the low byte */
  CASE("set_input", "type_u8_high_bytes", wasi_nn_set_input(c, 0, &bad));

  /* Restore a valid input and output for the calls below. */
  NEED("set_input", p_set_input("restore", c, 0, "Hello"));
  NEED("compute", p_compute("restore", c));

  /* compute and friends: bad handles. */
  CASE("compute", "ctx_bad", wasi_nn_compute(12345));
  CASE("compute", "ctx_max", wasi_nn_compute(0xFFFFFFFFu));
  CASE("compute_single", "ctx_bad", wasi_nn_compute_single(12345));
  CASE("fini_single", "ctx_bad", wasi_nn_fini_single(12345));
  CASE("unload", "graph_bad", wasi_nn_unload(12345));
  CASE("finalize_execution_context", "ctx_bad",
       wasi_nn_finalize_execution_context(12345));

  /* get_output: handle, buffer and out_written bounds. */
  uint8_t buf[64];
  uint32_t written;
  CASE("get_output", "ctx_bad",
       wasi_nn_get_output(12345, 0, buf, sizeof buf, &written));
  CASE("get_output", "buf_oob",
       wasi_nn_get_output(c, 0, PTR(mem_end()), 16, &written));
  CASE("get_output", "buf_straddle",
       wasi_nn_get_output(c, 0, PTR(mem_end() - 8), 64, &written));
  CASE("get_output", "buf_wrap",
       wasi_nn_get_output(c, 0, PTR(0xFFFFFFF0u), 0x20, &written));
  CASE("get_output", "cap_huge", /* buffer claimed to run past memory */
       wasi_nn_get_output(c, 0, buf, 0x7FFFFFFFu, &written));
  CASE("get_output", "cap_max",
       wasi_nn_get_output(c, 0, buf, 0xFFFFFFFFu, &written));
  CASE("get_output", "written_oob",
       wasi_nn_get_output(c, 0, buf, sizeof buf, PTR(mem_end())));
  CASE("get_output", "written_straddle",
       wasi_nn_get_output(c, 0, buf, sizeof buf, PTR(mem_end() - 2)));
  CASE("get_output", "written_max",
       wasi_nn_get_output(c, 0, buf, sizeof buf, PTR(0xFFFFFFFFu)));
  CASE("get_output_single", "ctx_bad",
       wasi_nn_get_output_single(12345, 0, buf, sizeof buf, &written));
  CASE("get_output_single", "buf_oob",
       wasi_nn_get_output_single(c, 0, PTR(mem_end()), 16, &written));
  CASE("get_output_single", "written_oob",
       wasi_nn_get_output_single(c, 0, buf, sizeof buf, PTR(mem_end())));

  /* Everything above must have left the graph and context usable. */
  p_get_output("still_works", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  p_get_output("still_works", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  return end_ok();
}

/* wrong-order NAME */
static int s_wrong_order(int argc, char **argv) {
  (void)argc;
  wasi_nn_graph g;
  wasi_nn_ctx c;
  if (setup(argv[2], "{\"n-predict\":4,\"temp\":0}", &g, &c)) return 1;
  p_get_output("text_before_input", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  p_get_output("meta_before_input", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  p_compute("before_input", c);
  p_compute_single("before_input", c);
  p_get_output_single("before_input", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  p_fini_single("before_input", c);
  NEED("set_input", p_set_input(NULL, c, 0, "Hello"));
  p_get_output_single("before_compute_single", c, WASI_NN_OUTPUT_TEXT,
                      OUT_CAP);
  p_compute(NULL, c);
  p_get_output_single("after_compute", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  p_compute_single("after_compute", c);
  p_get_output_single("after_compute_single", c, WASI_NN_OUTPUT_TEXT,
                      OUT_CAP);
  p_compute("during_stream", c);
  p_get_output("after_stream_compute", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  p_fini_single("after_compute", c);
  /* A second context to finalize, then use. */
  wasi_nn_ctx c2;
  if (p_init("second", g, &c2) == WASI_NN_ERRNO_SUCCESS) {
    p_finalize(NULL, c2);
    p_set_input("after_finalize", c2, 0, "Hello");
    p_compute("after_finalize", c2);
    p_finalize("again", c2);
  }
  /* Unload the graph, then use it and its context. */
  p_unload(NULL, g);
  p_unload("again", g);
  wasi_nn_ctx c3;
  p_init("after_unload", g, &c3);
  p_compute("after_unload", c);
  p_get_output("after_unload", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  return end_ok();
}

/* prompt-too-long NAME [CTX] */
static int s_prompt_too_long(int argc, char **argv) {
  uint32_t ctx_size = arg_u(argc, argv, 3, 64);
  char config[96];
  snprintf(config, sizeof config, "{\"ctx-size\":%u,\"n-predict\":4}",
           ctx_size);
  wasi_nn_graph g;
  wasi_nn_ctx c;
  if (setup(argv[2], config, &g, &c)) return 1;
  /* About one token per word: 4 * ctx-size words is far too long. */
  static const char word[] = "hello ";
  size_t n = (size_t)ctx_size * 4, wlen = sizeof word - 1;
  char *prompt = malloc(n * wlen + 1);
  for (size_t i = 0; i < n; i++) memcpy(prompt + i * wlen, word, wlen);
  prompt[n * wlen] = '\0';
  NEED("set_input", p_set_input(NULL, c, 0, prompt));
  p_get_output("before", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  p_compute(NULL, c);
  p_get_output("text", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  p_compute_single(NULL, c);
  free(prompt);
  return end_ok();
}

/* context-full NAME PROMPT [CTX] [NPREDICT] */
static int s_context_full(int argc, char **argv) {
  uint32_t ctx_size = arg_u(argc, argv, 4, 64);
  uint32_t n_predict = arg_u(argc, argv, 5, 1000);
  char config[128];
  snprintf(config, sizeof config,
           "{\"ctx-size\":%u,\"n-predict\":%u,\"temp\":0,\"ignore-eos\":true}",
           ctx_size, n_predict);
  wasi_nn_graph g;
  wasi_nn_ctx c;
  if (setup(argv[2], config, &g, &c)) return 1;
  NEED("set_input", p_set_input(NULL, c, 0, argv[3]));
  p_compute(NULL, c);
  p_get_output("text", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  p_get_output("after", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  /* The same in streaming mode: compute_single must end with 101. */
  NEED("set_input", p_set_input("stream", c, 0, argv[3]));
  stream_loop(c, ctx_size * 2 + 16, 1);
  p_get_output("stream_after", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  p_fini_single(NULL, c);
  return end_ok();
}

/* config-index1 NAME PROMPT JSON */
static int s_config_index1(int argc, char **argv) {
  (void)argc;
  wasi_nn_graph g;
  wasi_nn_ctx c;
  NEED("load_by_name", p_load_by_name(NULL, argv[2], &g));
  NEED("init_execution_context", p_init(NULL, g, &c));
  p_set_input("config", c, WASI_NN_INPUT_CONFIG, argv[4]);
  NEED("set_input", p_set_input(NULL, c, WASI_NN_INPUT_PROMPT, argv[3]));
  p_get_output("before", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  p_compute(NULL, c);
  p_get_output("text", c, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  p_get_output("after", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  return end_ok();
}

/* bad-config NAME */
static int s_bad_config(int argc, char **argv) {
  (void)argc;
  const char *name = argv[2];
  wasi_nn_graph g;
  wasi_nn_ctx c;
  /* Bad configs first: a name that is already loaded ignores the config. */
  p_load_cfg("malformed", name, "{\"n-predict\":", &g);
  p_load_cfg("not_json", name, "hello", &g);
  p_load_cfg("not_object", name, "[1,2]", &g);
  p_load_cfg("n_predict_string", name, "{\"n-predict\":\"8\"}", &g);
  p_load_cfg("temp_string", name, "{\"temp\":\"hot\"}", &g);
  p_load_cfg("ctx_size_float", name, "{\"ctx-size\":1.5}", &g);
  p_load_cfg("enable_log_int", name, "{\"enable-log\":1}", &g);
  NEED("load_by_name_with_config",
       p_load_cfg("valid_unknown_key", name,
                  "{\"n-predict\":4,\"temp\":0,\"unknown-key\":true}", &g));
  NEED("init_execution_context", p_init(NULL, g, &c));
  p_set_input("malformed", c, WASI_NN_INPUT_CONFIG, "{\"n-predict\":");
  p_set_input("wrong_type", c, WASI_NN_INPUT_CONFIG, "{\"n-predict\":\"x\"}");
  p_set_input("valid", c, WASI_NN_INPUT_CONFIG, "{\"n-predict\":2}");
  NEED("set_input", p_set_input(NULL, c, WASI_NN_INPUT_PROMPT, "Hello"));
  p_compute(NULL, c);
  p_get_output("after", c, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  p_load_cfg("empty_config", name, "", &g);
  return end_ok();
}

/* two-contexts NAME PROMPT1 PROMPT2 [CONFIG] */
static int s_two_contexts(int argc, char **argv) {
  wasi_nn_graph g;
  wasi_nn_ctx c1, c2;
  if (setup(argv[2], arg(argc, argv, 5, SMALL_CONFIG), &g, &c1)) return 1;
  NEED("init_execution_context", p_init(NULL, g, &c2));
  NEED("set_input", p_set_input(NULL, c1, 0, argv[3]));
  NEED("set_input", p_set_input(NULL, c2, 0, argv[4]));
  p_compute(NULL, c1);
  p_compute(NULL, c2);
  p_get_output("text", c1, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  p_get_output("text", c2, WASI_NN_OUTPUT_TEXT, OUT_CAP);
  p_get_output("after", c1, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  p_get_output("after", c2, WASI_NN_OUTPUT_METADATA, OUT_CAP);
  return end_ok();
}

/* ------------------------------------------------------------------------ */

static const struct {
  const char *name;
  int min_args; /* after the scenario name */
  const char *usage;
} scenarios[] = {
    {"oneshot", 2, "NAME PROMPT [CONFIG]"},
    {"stream", 2, "NAME PROMPT [CONFIG] [MAX=64]"},
    {"stream-fini", 2, "NAME PROMPT [CONFIG] [MAX=64]"},
    {"unload-reload", 2, "NAME PROMPT [N=5] [CONFIG]"},
    {"embedding", 2, "NAME PROMPT [CONFIG]"},
    {"set-input-twice", 2, "NAME PROMPT [CONFIG]"},
    {"load-by-name", 1, "NAME [CONFIG]"},
    {"load-path", 1, "PATH"},
    {"load-bytes", 2, "ENCODING preload:PATH|file:PATH [TARGET=0] [CONFIG|-]"},
    {"too-small", 3, "NAME PROMPT CAP [CONFIG]"},
    {"bad-pointers", 1, "NAME"},
    {"wrong-order", 1, "NAME"},
    {"prompt-too-long", 1, "NAME [CTX=64]"},
    {"context-full", 2, "NAME PROMPT [CTX=64] [NPREDICT=1000]"},
    {"config-index1", 3, "NAME PROMPT JSON"},
    {"bad-config", 1, "NAME"},
    {"two-contexts", 3, "NAME PROMPT1 PROMPT2 [CONFIG]"},
};

static int usage(void) {
  fprintf(stderr, "usage: abi_probe.wasm SCENARIO ARGS...\n");
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
    fprintf(stderr, "  %s %s\n", scenarios[i].name, scenarios[i].usage);
  }
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  const char *s = argv[1];
  size_t i = 0;
  for (; i < sizeof scenarios / sizeof scenarios[0]; i++) {
    if (strcmp(s, scenarios[i].name) == 0) break;
  }
  if (i == sizeof scenarios / sizeof scenarios[0]) return usage();
  if (argc - 2 < scenarios[i].min_args) return usage();

  if (!strcmp(s, "oneshot")) return s_oneshot(argc, argv);
  if (!strcmp(s, "stream")) return s_stream(argc, argv, 0);
  if (!strcmp(s, "stream-fini")) return s_stream(argc, argv, 1);
  if (!strcmp(s, "unload-reload")) return s_unload_reload(argc, argv);
  if (!strcmp(s, "embedding")) return s_embedding(argc, argv);
  if (!strcmp(s, "set-input-twice")) return s_set_input_twice(argc, argv);
  if (!strcmp(s, "load-by-name")) return s_load_by_name(argc, argv);
  if (!strcmp(s, "load-path")) return s_load_path(argc, argv);
  if (!strcmp(s, "load-bytes")) return s_load_bytes(argc, argv);
  if (!strcmp(s, "too-small")) return s_too_small(argc, argv);
  if (!strcmp(s, "bad-pointers")) return s_bad_pointers(argc, argv);
  if (!strcmp(s, "wrong-order")) return s_wrong_order(argc, argv);
  if (!strcmp(s, "prompt-too-long")) return s_prompt_too_long(argc, argv);
  if (!strcmp(s, "context-full")) return s_context_full(argc, argv);
  if (!strcmp(s, "config-index1")) return s_config_index1(argc, argv);
  if (!strcmp(s, "bad-config")) return s_bad_config(argc, argv);
  if (!strcmp(s, "two-contexts")) return s_two_contexts(argc, argv);
  return usage();
}
