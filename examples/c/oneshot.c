/*
 * oneshot.c - one prompt in, one completion out.
 *
 *     oneshot.wasm MODEL PROMPT
 *
 * MODEL is the name the host preloaded (usually "default"). The config comes
 * from the environment variable WASI_NN_CONFIG (a JSON object such as
 * {"n-predict":64,"temp":0.7}); without it the guest asks for 32 tokens with
 * greedy sampling.
 *
 * The generated text goes to stdout; the metadata (token counts, llama.cpp
 * build) goes to stderr, so `oneshot.wasm default "Hi" > answer.txt` keeps
 * only the answer. Exit status: 0 on success, 1 on any error (a truncated
 * answer, ContextFull, still prints what was generated), 2 on bad usage.
 *
 * Build: clang --target=wasm32-wasi -O2 -s -o oneshot.wasm oneshot.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasi_nn.h"

#define DEFAULT_CONFIG "{\"n-predict\":32,\"temp\":0}"

/* Prints what went wrong, with a hint for the errnos a user can act on. */
static void report(const char *call, wasi_nn_errno e, const char *model) {
  fprintf(stderr, "error: %s failed: errno %d (%s)\n", call, (int)e,
          wasi_nn_strerror(e));
  switch (e) {
  case WASI_NN_ERRNO_NOT_FOUND:
    fprintf(stderr, "hint: the host has no model named '%s'; preload one "
                    "under that name\n", model);
    break;
  case WASI_NN_ERRNO_MODEL_NOT_FOUND:
    fprintf(stderr, "hint: the model file for '%s' does not exist\n", model);
    break;
  case WASI_NN_ERRNO_INVALID_ENCODING:
    fprintf(stderr, "hint: WASI_NN_CONFIG is not valid JSON\n");
    break;
  case WASI_NN_ERRNO_PROMPT_TOO_LONG:
    fprintf(stderr, "hint: shorten the prompt or raise \"ctx-size\"\n");
    break;
  case WASI_NN_ERRNO_CONTEXT_FULL:
    fprintf(stderr, "hint: the context filled up; raise \"ctx-size\" or "
                    "lower \"n-predict\"\n");
    break;
  default:
    break;
  }
}

/*
 * Reads output `index` into a malloc'ed, NUL-terminated buffer. Starts with
 * 4 KiB and, when the host answers TooLarge, retries with the size it wrote.
 */
static wasi_nn_errno read_output(wasi_nn_ctx ctx, uint32_t index, char **out,
                                 uint32_t *out_len) {
  uint32_t cap = 4096;
  for (;;) {
    char *buf = malloc(cap + 1);
    if (buf == NULL) return WASI_NN_ERRNO_MISSING_MEMORY;
    uint32_t written = 0;
    wasi_nn_errno e =
        wasi_nn_get_output(ctx, index, (uint8_t *)buf, cap, &written);
    if (e == WASI_NN_ERRNO_TOO_LARGE && written > cap) {
      free(buf); /* the host told us the size it needs: try again */
      cap = written;
      continue;
    }
    if (e != WASI_NN_ERRNO_SUCCESS) {
      free(buf);
      return e;
    }
    if (written > cap) written = cap; /* defensive: never trust a length */
    buf[written] = '\0';
    *out = buf;
    *out_len = written;
    return WASI_NN_ERRNO_SUCCESS;
  }
}

/* Prints the metadata JSON (output index 1) to stderr. */
static int print_metadata(wasi_nn_ctx ctx, const char *when) {
  char *meta;
  uint32_t len;
  wasi_nn_errno e = read_output(ctx, WASI_NN_OUTPUT_METADATA, &meta, &len);
  if (e != WASI_NN_ERRNO_SUCCESS) {
    report("get_output(metadata)", e, "");
    return 1;
  }
  fprintf(stderr, "[metadata %s] %s\n", when, meta);
  free(meta);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL PROMPT\n"
                    "  env WASI_NN_CONFIG: config JSON (default %s)\n",
            argc > 0 ? argv[0] : "oneshot.wasm", DEFAULT_CONFIG);
    return 2;
  }
  const char *model = argv[1];
  const char *prompt = argv[2];
  const char *config = getenv("WASI_NN_CONFIG");
  if (config == NULL || config[0] == '\0') config = DEFAULT_CONFIG;

  /* 1. Load the model by name, with the config. */
  wasi_nn_graph graph;
  wasi_nn_errno e = wasi_nn_load_by_name_with_config(
      model, strlen(model), config, strlen(config), &graph);
  if (e != WASI_NN_ERRNO_SUCCESS) {
    report("load_by_name_with_config", e, model);
    return 1;
  }

  /* 2. An execution context holds the prompt, the sampler and the output. */
  wasi_nn_ctx ctx;
  e = wasi_nn_init_execution_context(graph, &ctx);
  if (e != WASI_NN_ERRNO_SUCCESS) {
    report("init_execution_context", e, model);
    return 1;
  }

  /* 3. The prompt is input 0: a U8 tensor holding the UTF-8 text. */
  uint32_t dims[1];
  wasi_nn_tensor input = wasi_nn_text_tensor(prompt, strlen(prompt), dims);
  e = wasi_nn_set_input(ctx, WASI_NN_INPUT_PROMPT, &input);
  if (e != WASI_NN_ERRNO_SUCCESS) {
    report("set_input", e, model);
    return 1;
  }

  /* 4. Metadata is readable before compute: input_tokens is already known. */
  if (print_metadata(ctx, "before compute") != 0) return 1;

  /* 5. Generate. ContextFull still leaves the partial answer in output 0. */
  wasi_nn_errno compute_errno = wasi_nn_compute(ctx);
  if (compute_errno != WASI_NN_ERRNO_SUCCESS &&
      compute_errno != WASI_NN_ERRNO_CONTEXT_FULL) {
    report("compute", compute_errno, model);
    return 1;
  }

  /* 6. Output 0 is the generated text (not NUL-terminated on the wire). */
  char *text;
  uint32_t text_len;
  e = read_output(ctx, WASI_NN_OUTPUT_TEXT, &text, &text_len);
  if (e != WASI_NN_ERRNO_SUCCESS) {
    report("get_output(text)", e, model);
    return 1;
  }
  fwrite(text, 1, text_len, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  free(text);

  /* 7. After compute, output_tokens says how many tokens were generated. */
  if (print_metadata(ctx, "after compute") != 0) return 1;

  if (compute_errno != WASI_NN_ERRNO_SUCCESS) {
    report("compute", compute_errno, model); /* the answer was cut short */
    return 1;
  }
  return 0;
}
