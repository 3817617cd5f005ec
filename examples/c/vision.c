/*
 * vision.c - a prompt with an image, the way WasmEdge's multimodal GGML
 * guests (llava, llava-base64-stream, gemma-3, qwen2vl) call WASI-NN.
 *
 *     vision.wasm [--base64] [--stream] MODEL MMPROJ IMAGE PROMPT
 *
 * MODEL is the preloaded name of the text model, MMPROJ the projector (a
 * preloaded name, or a file in a folder the host allows), IMAGE a file in a
 * folder this guest was given (--dir). PROMPT holds "<image>" where the
 * image goes (in front when it has none).
 *
 * - default (llava, gemma-3, qwen2vl): the config names "mmproj" and
 *   "image", and compute returns the whole answer;
 * - --base64 (llava-base64, gemma-3-base64): the guest reads the image
 *   itself and sends it inline, <img src="data:image/...;base64,...">, in
 *   place of the marker;
 * - --stream (llava-base64-stream): compute_single and get_output_single,
 *   one token at a time, until EndOfSequence.
 *
 * env N_PREDICT: tokens to generate (default 32; greedy). The answer goes to
 * stdout, errors to stderr. Exit status: 0 on success, 1 on an error, 2 on
 * bad usage.
 *
 * Build: clang --target=wasm32-wasi -O2 -s -o vision.wasm vision.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasi_nn.h"

#define MARKER "<image>"

static int fail(const char *call, wasi_nn_errno e) {
  fprintf(stderr, "error: %s failed: errno %d (%s)\n", call, (int)e,
          wasi_nn_strerror(e));
  return 1;
}

/* The whole file at `path` (malloc'ed), its size in *len; NULL on error. */
static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 1 << 16, n = 0;
  unsigned char *buf = malloc(cap);
  for (;;) {
    if (buf == NULL) break;
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    cap *= 2;
    buf = realloc(buf, cap);
  }
  fclose(f);
  *len = n;
  return buf;
}

/* Standard base64 of `data` (malloc'ed, NUL-terminated). */
static char *base64(const unsigned char *data, size_t len) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
  if (out == NULL) return NULL;
  for (size_t i = 0; i < len; i += 3) {
    unsigned v = data[i] << 16;
    if (i + 1 < len) v |= data[i + 1] << 8;
    if (i + 2 < len) v |= data[i + 2];
    *o++ = tab[(v >> 18) & 63];
    *o++ = tab[(v >> 12) & 63];
    *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
    *o++ = i + 2 < len ? tab[v & 63] : '=';
  }
  *o = '\0';
  return out;
}

/* PROMPT with the image inline in place of its marker (or in front). */
static char *inline_prompt(const char *prompt, const char *image) {
  size_t len;
  unsigned char *bytes = read_file(image, &len);
  if (bytes == NULL) {
    fprintf(stderr, "error: cannot read %s (is its folder given with --dir?)\n",
            image);
    return NULL;
  }
  char *b64 = base64(bytes, len);
  free(bytes);
  if (b64 == NULL) return NULL;
  const char *type = strstr(image, ".png") ? "png" : "jpeg";
  const char *at = strstr(prompt, MARKER);
  size_t head = at ? (size_t)(at - prompt) : 0;
  const char *tail = at ? at + strlen(MARKER) : prompt;
  size_t n = strlen(prompt) + strlen(b64) + 64;
  char *out = malloc(n);
  if (out != NULL) {
    snprintf(out, n, "%.*s<img src=\"data:image/%s;base64,%s\">%s", (int)head,
             prompt, type, b64, tail);
  }
  free(b64);
  return out;
}

int main(int argc, char **argv) {
  int b64 = 0, stream = 0, a = 1;
  for (; a < argc && strncmp(argv[a], "--", 2) == 0; a++) {
    if (strcmp(argv[a], "--base64") == 0) b64 = 1;
    else if (strcmp(argv[a], "--stream") == 0) stream = 1;
    else break;
  }
  if (argc - a != 4) {
    fprintf(stderr,
            "usage: %s [--base64] [--stream] MODEL MMPROJ IMAGE PROMPT\n",
            argv[0]);
    return 2;
  }
  const char *model = argv[a], *mmproj = argv[a + 1], *image = argv[a + 2];
  const char *prompt = argv[a + 3];
  const char *np = getenv("N_PREDICT");
  char config[1024];
  snprintf(config, sizeof config,
           "{\"mmproj\":\"%s\",%s%s%s\"n-predict\":%s,\"temp\":0,"
           "\"ctx-size\":2048,\"batch-size\":2048}",
           mmproj, b64 ? "" : "\"image\":\"", b64 ? "" : image,
           b64 ? "" : "\",", np ? np : "32");

  wasi_nn_graph graph;
  wasi_nn_errno e = wasi_nn_load_by_name_with_config(
      model, strlen(model), config, strlen(config), &graph);
  if (e != WASI_NN_ERRNO_SUCCESS) return fail("load_by_name_with_config", e);
  wasi_nn_ctx ctx;
  e = wasi_nn_init_execution_context(graph, &ctx);
  if (e != WASI_NN_ERRNO_SUCCESS) return fail("init_execution_context", e);

  char *text = b64 ? inline_prompt(prompt, image) : strdup(prompt);
  if (text == NULL) return 1;
  uint32_t dims[1];
  wasi_nn_tensor input = wasi_nn_text_tensor(text, strlen(text), dims);
  e = wasi_nn_set_input(ctx, WASI_NN_INPUT_PROMPT, &input);
  free(text);
  if (e != WASI_NN_ERRNO_SUCCESS) return fail("set_input", e);

  static uint8_t out[1 << 16];
  uint32_t n = 0;
  if (stream) {
    /* As in WasmEdge, n-predict is the streaming guest's to apply. */
    for (long i = 0, max = np ? atol(np) : 32; i < max; i++) {
      e = wasi_nn_compute_single(ctx);
      if (e == WASI_NN_ERRNO_END_OF_SEQUENCE) break;
      if (e != WASI_NN_ERRNO_SUCCESS) return fail("compute_single", e);
      e = wasi_nn_get_output_single(ctx, 0, out, sizeof out, &n);
      if (e != WASI_NN_ERRNO_SUCCESS) return fail("get_output_single", e);
      fwrite(out, 1, n, stdout);
      fflush(stdout);
    }
    wasi_nn_fini_single(ctx);
  } else {
    e = wasi_nn_compute(ctx);
    if (e != WASI_NN_ERRNO_SUCCESS) return fail("compute", e);
    e = wasi_nn_get_output(ctx, 0, out, sizeof out, &n);
    if (e != WASI_NN_ERRNO_SUCCESS) return fail("get_output", e);
    fwrite(out, 1, n, stdout);
  }
  fputc('\n', stdout);
  return 0;
}
