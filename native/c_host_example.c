/*
 * c_host_example.c - a C host using libwasi_nn_backend.so through its C ABI
 * (wasi_nn_shim.h) directly: load a model, create a context and a sampler,
 * decode a prompt, generate greedily, print the text.
 *
 *   make c-host && build/c_host_example MODEL.gguf "Once upon a time" 32
 *
 * Every call returns a status and fills a caller-owned wnb_error; every
 * handle is freed by its owner (the caller) exactly once.
 */
#include "wasi_nn_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char * what, const wnb_error * err) {
    fprintf(stderr, "%s failed (status %d): %s\n", what, err->code, err->message);
    return 1;
}

int main(int argc, char ** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT [N_PREDICT]\n", argv[0]);
        return 2;
    }
    const char * path = argv[1];
    const char * prompt = argv[2];
    int n_predict = argc > 3 ? atoi(argv[3]) : 32;

    if (wnb_abi_version() != WNB_ABI_VERSION) {
        fprintf(stderr, "library ABI %d, header ABI %d: rebuild\n", wnb_abi_version(), WNB_ABI_VERSION);
        return 1;
    }
    wnb_init();
    wnb_error err;

    wnb_model_params mp;
    wnb_model_default_params(&mp);
    wnb_model * model = NULL;
    if (wnb_model_load(path, &mp, NULL, &model, &err) != WNB_OK) return die("wnb_model_load", &err);

    wnb_context_params cp;
    wnb_context_default_params(&cp);
    cp.n_ctx = 512;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    wnb_context * ctx = NULL;
    if (wnb_context_new(model, &cp, &ctx, &err) != WNB_OK) {
        wnb_model_free(model);
        return die("wnb_context_new", &err);
    }

    wnb_sampler_params sp;
    wnb_sampler_default_params(&sp);
    sp.temp = 0.0f; /* greedy */
    wnb_sampler * smpl = NULL;
    if (wnb_sampler_new(model, &sp, &smpl, &err) != WNB_OK) {
        wnb_context_free(ctx);
        wnb_model_free(model);
        return die("wnb_sampler_new", &err);
    }

    int32_t tokens[512];
    int32_t n = wnb_tokenize(model, prompt, (int32_t) strlen(prompt), tokens, 512, 1, 1);
    int rc = 0;
    if (n <= 0) {
        fprintf(stderr, "the prompt is empty or longer than 512 tokens\n");
        rc = 1;
    } else if (wnb_decode_prompt(ctx, tokens, n, 0, 0, &err) != WNB_OK) {
        rc = die("wnb_decode_prompt", &err);
    } else {
        for (int32_t i = 0; i < n; i++) wnb_sampler_accept(smpl, tokens[i]);
        char piece[256];
        for (int i = 0; i < n_predict; i++) {
            int32_t tok = -1;
            int32_t st = wnb_generate_step(ctx, smpl, -1, 0, n + i, &tok, &err);
            if (wnb_token_is_eog(model, tok)) break;
            int32_t len = wnb_token_to_piece(model, tok, piece, sizeof(piece), 1);
            if (len > 0 && len <= (int32_t) sizeof(piece)) fwrite(piece, 1, (size_t) len, stdout);
            if (st != WNB_OK) {
                rc = die("wnb_generate_step", &err);
                break;
            }
        }
        fputc('\n', stdout);
    }

    wnb_sampler_free(smpl);
    wnb_context_free(ctx);
    wnb_model_free(model);
    return rc;
}
