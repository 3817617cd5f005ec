/*
 * chat_stream.c - a streamed, multi-turn chat.
 *
 *     chat_stream.wasm MODEL            # one turn per line of stdin
 *     chat_stream.wasm MODEL "PROMPT"   # a single turn, then exit
 *
 * Each reply is printed token by token as the host produces it
 * (compute_single / get_output_single), so the user sees it grow.
 *
 * The host keeps no chat state: every turn the guest sends the whole
 * conversation again (system prompt, earlier turns, the new message) as
 * input 0. The conversation is formatted with the ChatML template
 * (<|im_start|>role ... <|im_end|>); a model trained on another template
 * still answers, only less well.
 *
 * Environment:
 *   WASI_NN_CONFIG      config JSON for the load (default {"ctx-size":1024})
 *   WASI_NN_MAX_TOKENS  most tokens per reply (default 128). n-predict does
 *                       not apply to compute_single: the guest decides when
 *                       to stop.
 *   WASI_NN_SYSTEM      system prompt (default "You are a helpful assistant.")
 *
 * Exit status: 0 when stdin ends (or the single turn is done), 1 on an error.
 *
 * Build: clang --target=wasm32-wasi -O2 -s -o chat_stream.wasm chat_stream.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasi_nn.h"

#define DEFAULT_CONFIG "{\"ctx-size\":1024}"
#define DEFAULT_SYSTEM "You are a helpful assistant."
#define STOP "<|im_end|>"

/* ------------------------------------------------------------------------ */
/* A growable string                                                        */
/* ------------------------------------------------------------------------ */

typedef struct {
  char *data;
  size_t len, cap;
} str;

static void str_append(str *s, const char *p, size_t n) {
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + n + 1) cap *= 2;
    char *data = realloc(s->data, cap);
    if (data == NULL) {
      fprintf(stderr, "error: out of memory\n");
      exit(1);
    }
    s->data = data;
    s->cap = cap;
  }
  memcpy(s->data + s->len, p, n);
  s->len += n;
  s->data[s->len] = '\0';
}

static void str_puts(str *s, const char *p) { str_append(s, p, strlen(p)); }

/* ------------------------------------------------------------------------ */
/* Chat                                                                     */
/* ------------------------------------------------------------------------ */

/* The conversation so far, starting with the system message. */
static str history;
static const char *system_prompt = DEFAULT_SYSTEM;

static void reset_history(void) {
  history.len = 0;
  str_puts(&history, "<|im_start|>system\n");
  str_puts(&history, system_prompt);
  str_puts(&history, "<|im_end|>\n");
}

/*
 * How many bytes at the end of `s` could be the start of STOP. Those bytes
 * are held back until the next piece shows whether the stop string follows,
 * so it never appears half-printed.
 */
static size_t stop_prefix_at_end(const char *s, size_t len) {
  size_t stop_len = strlen(STOP);
  for (size_t k = stop_len - 1; k > 0; k--) {
    if (k <= len && memcmp(s + len - k, STOP, k) == 0) return k;
  }
  return 0;
}

/*
 * One turn: send the conversation plus `message`, stream the reply to
 * stdout and add both to the history. Returns the errno that ended the
 * stream: 0 or END_OF_SEQUENCE mean a complete reply.
 */
static wasi_nn_errno chat_turn(wasi_nn_ctx ctx, const char *message,
                               uint32_t max_tokens) {
  size_t turn_start = history.len;
  str_puts(&history, "<|im_start|>user\n");
  str_puts(&history, message);
  str_puts(&history, "<|im_end|>\n<|im_start|>assistant\n");

  uint32_t dims[1];
  wasi_nn_tensor input = wasi_nn_text_tensor(history.data, history.len, dims);
  wasi_nn_errno e = wasi_nn_set_input(ctx, WASI_NN_INPUT_PROMPT, &input);
  if (e != WASI_NN_ERRNO_SUCCESS) {
    history.len = turn_start;
    history.data[turn_start] = '\0';
    return e;
  }

  str reply = {0};
  size_t printed = 0;
  uint8_t piece[256]; /* one token's text is a few bytes */
  for (uint32_t n = 0; n < max_tokens; n++) {
    /* The first call evaluates the prompt; every call samples one token. */
    e = wasi_nn_compute_single(ctx);
    if (e != WASI_NN_ERRNO_SUCCESS) break; /* 100 = the model is done */

    uint32_t written = 0;
    e = wasi_nn_get_output_single(ctx, WASI_NN_OUTPUT_TEXT, piece,
                                  sizeof piece, &written);
    if (e != WASI_NN_ERRNO_SUCCESS) break;
    str_append(&reply, (const char *)piece, written);

    /* A model that writes the end marker as text instead of ending. */
    char *stop = strstr(reply.data, STOP);
    if (stop != NULL) {
      reply.len = (size_t)(stop - reply.data);
      reply.data[reply.len] = '\0';
      e = WASI_NN_ERRNO_END_OF_SEQUENCE;
      break;
    }
    size_t safe = reply.len - stop_prefix_at_end(reply.data, reply.len);
    if (safe > printed) {
      fwrite(reply.data + printed, 1, safe - printed, stdout);
      fflush(stdout); /* show each piece as soon as it arrives */
      printed = safe;
    }
  }
  if (reply.len > printed) fwrite(reply.data + printed, 1, reply.len - printed,
                                  stdout);
  fputc('\n', stdout);
  fflush(stdout);

  /* End the stream: clears the outputs and resets the sampler. */
  wasi_nn_fini_single(ctx);

  if (e == WASI_NN_ERRNO_SUCCESS || e == WASI_NN_ERRNO_END_OF_SEQUENCE) {
    str_append(&history, reply.data ? reply.data : "", reply.len);
    str_puts(&history, "<|im_end|>\n");
  } else {
    history.len = turn_start; /* forget the failed turn */
    history.data[turn_start] = '\0';
  }
  free(reply.data);
  return e;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [PROMPT]\n"
                    "  without PROMPT, each line of stdin is one message\n",
            argc > 0 ? argv[0] : "chat_stream.wasm");
    return 2;
  }
  const char *model = argv[1];
  const char *config = getenv("WASI_NN_CONFIG");
  if (config == NULL || config[0] == '\0') config = DEFAULT_CONFIG;
  const char *max_env = getenv("WASI_NN_MAX_TOKENS");
  uint32_t max_tokens = max_env ? (uint32_t)strtoul(max_env, NULL, 10) : 128;
  const char *system_env = getenv("WASI_NN_SYSTEM");
  if (system_env != NULL) system_prompt = system_env;

  wasi_nn_graph graph;
  wasi_nn_errno e = wasi_nn_load_by_name_with_config(
      model, strlen(model), config, strlen(config), &graph);
  if (e != WASI_NN_ERRNO_SUCCESS) {
    fprintf(stderr, "error: cannot load model '%s': errno %d (%s)\n", model,
            (int)e, wasi_nn_strerror(e));
    return 1;
  }
  wasi_nn_ctx ctx;
  e = wasi_nn_init_execution_context(graph, &ctx);
  if (e != WASI_NN_ERRNO_SUCCESS) {
    fprintf(stderr, "error: init_execution_context: errno %d (%s)\n", (int)e,
            wasi_nn_strerror(e));
    return 1;
  }
  reset_history();

  /* Single turn from the command line. */
  if (argc >= 3) {
    e = chat_turn(ctx, argv[2], max_tokens);
    if (e != WASI_NN_ERRNO_SUCCESS && e != WASI_NN_ERRNO_END_OF_SEQUENCE) {
      fprintf(stderr, "error: errno %d (%s)\n", (int)e, wasi_nn_strerror(e));
      return 1;
    }
    return 0;
  }

  /* Interactive: one message per line until end of input. */
  char *line = NULL;
  size_t line_cap = 0;
  ssize_t n;
  while (fputs("USER: ", stdout), fflush(stdout),
         (n = getline(&line, &line_cap, stdin)) >= 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
      line[--n] = '\0';
    }
    if (n == 0) continue;
    fputs("ASSISTANT: ", stdout);
    fflush(stdout);
    e = chat_turn(ctx, line, max_tokens);
    if (e == WASI_NN_ERRNO_CONTEXT_FULL || e == WASI_NN_ERRNO_PROMPT_TOO_LONG) {
      /* The conversation outgrew the context: start a fresh one. */
      fprintf(stderr, "[%s: the conversation was reset]\n",
              wasi_nn_strerror(e));
      reset_history();
    } else if (e != WASI_NN_ERRNO_SUCCESS &&
               e != WASI_NN_ERRNO_END_OF_SEQUENCE) {
      fprintf(stderr, "error: errno %d (%s)\n", (int)e, wasi_nn_strerror(e));
      free(line);
      return 1;
    }
  }
  fputc('\n', stdout);
  free(line);
  return 0;
}
