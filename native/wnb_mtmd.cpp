// wnb_mtmd.cpp - the multimodal part of wasi_nn_shim.h over llama.cpp's
// tools/mtmd (projectors, bitmaps, chunks). Every exported function catches
// every exception: none crosses the C ABI.

#include "wasi_nn_shim.h"
#include "wnb_internal.h"
#include "wnb_rpc.h"

#include "llama.h"
#include "ggml.h"
#include "mtmd.h"
#include "mtmd-helper.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

// stb_image is compiled into mtmd (mtmd-helper.cpp): only its header reader
// is used here, to refuse huge images before they are decoded.
extern "C" int stbi_info_from_memory(const unsigned char * buffer, int len, int * x, int * y, int * comp);

struct wnb_mtmd {
    mtmd_context *    ctx = nullptr;
    const wnb_model * model = nullptr;
    int32_t           max_image_pixels = 0;
};

struct wnb_mtmd_bitmap {
    mtmd_bitmap * bitmap = nullptr;
};

struct wnb_mtmd_chunks {
    mtmd_input_chunks * chunks = nullptr;
};

namespace {

using wnb::clear_error;
using wnb::copy_out;
using wnb::fail;
using wnb::set_error;


// ---- log: mtmd's records go to the shim's capture (the callback wnb_init
// gave llama.cpp); the first error of a call on this thread is its cause.

ggml_log_callback g_prev_log = nullptr;
void *            g_prev_log_ud = nullptr;
std::once_flag    g_log_once;
thread_local std::string tl_first_error;

void mtmd_log_cb(enum ggml_log_level level, const char * text, void *) {
    if (!text) return;
    if (level == GGML_LOG_LEVEL_ERROR && tl_first_error.empty()) {
        std::string t(text);
        while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
        tl_first_error = t;
    }
    if (g_prev_log) g_prev_log(level, text, g_prev_log_ud);
}

void ensure_init() {
    wnb_init();
    std::call_once(g_log_once, [] {
        llama_log_get(&g_prev_log, &g_prev_log_ud);
        mtmd_helper_log_set(mtmd_log_cb, nullptr);
    });
}

// "<what>: <llama.cpp's first error>" (or just what).
std::string with_cause(const std::string & what) {
    std::string cause = tl_first_error;
    tl_first_error.clear();
    return cause.empty() ? what : what + ": " + cause;
}

int32_t check_projector_file(const char * path, wnb_error * err) {
    if (!path || !*path) return fail(err, WNB_ERR_INVALID_ARGUMENT, "projector path is empty");
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return fail(err, WNB_ERR_FILE_NOT_FOUND, std::string("projector file not found: ") + path);
        }
        return fail(err, WNB_ERR_FILE_UNREADABLE,
                    std::string("cannot stat projector file ") + path + ": " + strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return fail(err, WNB_ERR_FILE_UNREADABLE, std::string("projector path is not a regular file: ") + path);
    }
    FILE * f = fopen(path, "rb");
    if (!f) {
        return fail(err, WNB_ERR_FILE_UNREADABLE,
                    std::string("cannot open projector file ") + path + ": " + strerror(errno));
    }
    unsigned char hdr[4] = {0};
    size_t got = fread(hdr, 1, sizeof(hdr), f);
    fclose(f);
    if (got < 4 || memcmp(hdr, "GGUF", 4) != 0) {
        return fail(err, WNB_ERR_INVALID_MODEL, std::string("not a GGUF projector file (bad magic): ") + path);
    }
    return WNB_OK;
}

const mtmd_input_chunk * chunk_at(const wnb_mtmd_chunks * c, int32_t i) {
    if (!c || !c->chunks || i < 0 || (size_t) i >= mtmd_input_chunks_size(c->chunks)) return nullptr;
    return mtmd_input_chunks_get(c->chunks, (size_t) i);
}

int32_t decode_status(int32_t rc) {
    switch (rc) {
        case 1: return WNB_ERR_NO_KV_SPACE;
        case 2: return WNB_ERR_CANCELLED;
        default: return WNB_ERR_DECODE;
    }
}

}  // namespace

// ---------------------------------------------------------------- params

void wnb_mtmd_default_params(wnb_mtmd_params * out) {
    if (!out) return;
    memset(out, 0, sizeof(*out));
    out->use_gpu = 1;
    out->warmup = 0;
    out->n_threads = 4;
    out->flash_attn = -1;
    out->image_min_tokens = 0;
    out->image_max_tokens = 0;
    out->max_image_pixels = 64 * 1024 * 1024;
    out->media_marker = nullptr;
}

int32_t wnb_sizeof_mtmd_params(void) { return (int32_t) sizeof(wnb_mtmd_params); }

int32_t wnb_mtmd_default_marker(char * buf, int32_t cap) {
    try {
        return copy_out(mtmd_default_marker(), buf, cap);
    } catch (...) {
        return 0;
    }
}

// ---------------------------------------------------------------- projector

int32_t wnb_mtmd_load(const char * path, const wnb_model * model, const wnb_mtmd_params * params, wnb_mtmd ** out,
                      wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!out) return fail(err, WNB_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    const llama_model * lm = wnb_internal_llama_model(model);
    if (!lm) return fail(err, WNB_ERR_INVALID_ARGUMENT, "model is NULL");
    ensure_init();
    int32_t rc = check_projector_file(path, err);
    if (rc != WNB_OK) return rc;
    wnb_mtmd_params p;
    wnb_mtmd_default_params(&p);
    if (params) p = *params;
    if (p.image_min_tokens < 0 || p.image_max_tokens < 0 || p.max_image_pixels < 0) {
        return fail(err, WNB_ERR_INVALID_ARGUMENT, "image_min_tokens, image_max_tokens and max_image_pixels must be >= 0");
    }
    if (p.image_min_tokens > 0 && p.image_max_tokens > 0 && p.image_min_tokens > p.image_max_tokens) {
        return fail(err, WNB_ERR_INVALID_ARGUMENT, "image_min_tokens is above image_max_tokens");
    }

    mtmd_context_params mp = mtmd_context_params_default();
    mp.use_gpu = p.use_gpu != 0;
    if (mp.use_gpu) {
        // Left alone, clip takes the first GPU-type device, which can be an
        // RPC server registered for another model (and one that is gone
        // aborts the process): only a local GPU, else the CPU.
        std::vector<ggml_backend_dev_t> local = wnb_local_devices();
        if (local.empty()) mp.use_gpu = false;
        else mp.device = local[0];
    }
    mp.print_timings = false;
    mp.n_threads = p.n_threads > 0 ? p.n_threads : 4;
    mp.warmup = p.warmup != 0;
    mp.flash_attn_type = p.flash_attn < 0 ? LLAMA_FLASH_ATTN_TYPE_AUTO
                         : p.flash_attn == 0 ? LLAMA_FLASH_ATTN_TYPE_DISABLED
                                             : LLAMA_FLASH_ATTN_TYPE_ENABLED;
    mp.image_min_tokens = p.image_min_tokens > 0 ? p.image_min_tokens : -1;
    mp.image_max_tokens = p.image_max_tokens > 0 ? p.image_max_tokens : -1;
    if (p.media_marker) {
        if (!*p.media_marker) return fail(err, WNB_ERR_INVALID_ARGUMENT, "media_marker is empty");
        mp.media_marker = p.media_marker;  // copied by mtmd_init_from_file
    }

    tl_first_error.clear();
    mtmd_context * ctx = mtmd_init_from_file(path, lm, mp);
    if (!ctx) {
        return fail(err, WNB_ERR_INVALID_MODEL, with_cause(std::string("cannot load projector ") + path));
    }
    tl_first_error.clear();
    auto * h = new (std::nothrow) wnb_mtmd();
    if (!h) {
        mtmd_free(ctx);
        return fail(err, WNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    h->ctx = ctx;
    h->model = model;
    h->max_image_pixels = p.max_image_pixels;
    *out = h;
    return WNB_OK;
    WNB_CATCH(err)
}

void wnb_mtmd_free(wnb_mtmd * m) {
    if (!m) return;
    try {
        mtmd_free(m->ctx);
    } catch (...) {
    }
    delete m;
}

uint8_t wnb_mtmd_support_vision(const wnb_mtmd * m) {
    try {
        return m && mtmd_support_vision(m->ctx) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

uint8_t wnb_mtmd_support_audio(const wnb_mtmd * m) {
    try {
        return m && mtmd_support_audio(m->ctx) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

int32_t wnb_mtmd_audio_sample_rate(const wnb_mtmd * m) {
    try {
        return m ? (int32_t) mtmd_get_audio_sample_rate(m->ctx) : -1;
    } catch (...) {
        return -1;
    }
}

int32_t wnb_mtmd_marker(const wnb_mtmd * m, char * buf, int32_t cap) {
    try {
        if (!m) return 0;
        const char * marker = mtmd_get_marker(m->ctx);
        return copy_out(marker ? marker : "", buf, cap);
    } catch (...) {
        return 0;
    }
}

uint8_t wnb_mtmd_uses_mrope(const wnb_mtmd * m) {
    try {
        return m && mtmd_decode_use_mrope(m->ctx) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

// ---------------------------------------------------------------- bitmaps

int32_t wnb_mtmd_bitmap_from_buf(wnb_mtmd * m, const uint8_t * data, size_t len, wnb_mtmd_bitmap ** out,
                                 wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!out) return fail(err, WNB_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    if (!m) return fail(err, WNB_ERR_INVALID_ARGUMENT, "projector is NULL");
    if (!data || len == 0) return fail(err, WNB_ERR_INVALID_ARGUMENT, "media data is empty");
    if (len > (size_t) INT_MAX) return fail(err, WNB_ERR_INVALID_ARGUMENT, "media data is over 2 GiB");
    int x = 0, y = 0, comp = 0;
    if (stbi_info_from_memory(data, (int) len, &x, &y, &comp)) {
        if (!mtmd_support_vision(m->ctx)) {
            return fail(err, WNB_ERR_INVALID_ARGUMENT, "this projector takes no images");
        }
        if (x <= 0 || y <= 0) {
            return fail(err, WNB_ERR_INVALID_ARGUMENT, "image has no pixels");
        }
        if (m->max_image_pixels > 0 && (int64_t) x * (int64_t) y > (int64_t) m->max_image_pixels) {
            return fail(err, WNB_ERR_INVALID_ARGUMENT,
                        "image is " + std::to_string(x) + "x" + std::to_string(y) + " pixels, over the limit of " +
                            std::to_string(m->max_image_pixels) + " pixels");
        }
    }
    tl_first_error.clear();
    mtmd_helper_bitmap_wrapper w =
        mtmd_helper_bitmap_init_from_buf(m->ctx, data, len, false, mtmd_helper_init_opt_default());
    if (w.video_ctx) {
        // Video is not built in (MTMD_VIDEO off); never leak one if it were.
        if (w.bitmap) mtmd_bitmap_free(w.bitmap);
        tl_first_error.clear();
        return fail(err, WNB_ERR_INVALID_ARGUMENT, "video input is not supported");
    }
    if (!w.bitmap) {
        return fail(err, WNB_ERR_INVALID_ARGUMENT,
                    with_cause("cannot decode the media data (not an image or audio file this build reads)"));
    }
    tl_first_error.clear();
    auto * h = new (std::nothrow) wnb_mtmd_bitmap();
    if (!h) {
        mtmd_bitmap_free(w.bitmap);
        return fail(err, WNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    h->bitmap = w.bitmap;
    *out = h;
    return WNB_OK;
    WNB_CATCH(err)
}

void wnb_mtmd_bitmap_free(wnb_mtmd_bitmap * b) {
    if (!b) return;
    try {
        mtmd_bitmap_free(b->bitmap);
    } catch (...) {
    }
    delete b;
}

uint32_t wnb_mtmd_bitmap_nx(const wnb_mtmd_bitmap * b) {
    try {
        return b ? mtmd_bitmap_get_nx(b->bitmap) : 0;
    } catch (...) {
        return 0;
    }
}

uint32_t wnb_mtmd_bitmap_ny(const wnb_mtmd_bitmap * b) {
    try {
        return b ? mtmd_bitmap_get_ny(b->bitmap) : 0;
    } catch (...) {
        return 0;
    }
}

uint8_t wnb_mtmd_bitmap_is_audio(const wnb_mtmd_bitmap * b) {
    try {
        return b && mtmd_bitmap_is_audio(b->bitmap) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

int32_t wnb_mtmd_bitmap_id(const wnb_mtmd_bitmap * b, char * buf, int32_t cap) {
    try {
        if (!b) return 0;
        const char * id = mtmd_bitmap_get_id(b->bitmap);
        return copy_out(id ? id : "", buf, cap);
    } catch (...) {
        return 0;
    }
}

// ---------------------------------------------------------------- chunks

int32_t wnb_mtmd_tokenize(wnb_mtmd * m, const char * text, int32_t len, const wnb_mtmd_bitmap * const * bitmaps,
                          int32_t n_bitmaps, uint8_t add_special, uint8_t parse_special, wnb_mtmd_chunks ** out,
                          wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!out) return fail(err, WNB_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    if (!m) return fail(err, WNB_ERR_INVALID_ARGUMENT, "projector is NULL");
    if (!text && len != 0) return fail(err, WNB_ERR_INVALID_ARGUMENT, "text is NULL");
    if (n_bitmaps < 0 || (n_bitmaps > 0 && !bitmaps)) {
        return fail(err, WNB_ERR_INVALID_ARGUMENT, "bitmaps is NULL");
    }
    std::string t = text ? (len < 0 ? std::string(text) : std::string(text, (size_t) len)) : std::string();
    std::vector<const mtmd_bitmap *> bms((size_t) n_bitmaps);
    for (int32_t i = 0; i < n_bitmaps; i++) {
        if (!bitmaps[i] || !bitmaps[i]->bitmap) {
            return fail(err, WNB_ERR_INVALID_ARGUMENT, "bitmap " + std::to_string(i) + " is NULL");
        }
        bms[(size_t) i] = bitmaps[i]->bitmap;
    }
    mtmd_input_text in{};
    in.text = t.c_str();
    in.text_len = t.size();
    in.add_special = add_special != 0;
    in.parse_special = parse_special != 0;
    mtmd_input_chunks * chunks = mtmd_input_chunks_init();
    if (!chunks) return fail(err, WNB_ERR_OUT_OF_MEMORY, "out of memory");
    tl_first_error.clear();
    int32_t rc = mtmd_tokenize(m->ctx, chunks, &in, bms.data(), bms.size());
    if (rc != 0) {
        mtmd_input_chunks_free(chunks);
        if (rc == 1) {
            tl_first_error.clear();
            std::string marker = mtmd_get_marker(m->ctx);
            size_t n_markers = 0;
            for (size_t p = t.find(marker); p != std::string::npos; p = t.find(marker, p + marker.size())) n_markers++;
            return fail(err, WNB_ERR_INVALID_ARGUMENT,
                        "the text has " + std::to_string(n_markers) + " media markers (" + marker + ") for " +
                            std::to_string(n_bitmaps) + " bitmaps");
        }
        return fail(err, WNB_ERR_INVALID_ARGUMENT, with_cause("cannot tokenize the prompt with its media"));
    }
    tl_first_error.clear();
    auto * h = new (std::nothrow) wnb_mtmd_chunks();
    if (!h) {
        mtmd_input_chunks_free(chunks);
        return fail(err, WNB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    h->chunks = chunks;
    *out = h;
    return WNB_OK;
    WNB_CATCH(err)
}

void wnb_mtmd_chunks_free(wnb_mtmd_chunks * c) {
    if (!c) return;
    try {
        mtmd_input_chunks_free(c->chunks);
    } catch (...) {
    }
    delete c;
}

int32_t wnb_mtmd_chunks_count(const wnb_mtmd_chunks * c) {
    try {
        return c ? (int32_t) mtmd_input_chunks_size(c->chunks) : 0;
    } catch (...) {
        return 0;
    }
}

int32_t wnb_mtmd_chunks_n_tokens(const wnb_mtmd_chunks * c) {
    try {
        return c ? (int32_t) mtmd_helper_get_n_tokens(c->chunks) : 0;
    } catch (...) {
        return 0;
    }
}

int32_t wnb_mtmd_chunks_n_pos(const wnb_mtmd_chunks * c) {
    try {
        return c ? (int32_t) mtmd_helper_get_n_pos(c->chunks) : 0;
    } catch (...) {
        return 0;
    }
}

int32_t wnb_mtmd_chunk_info_get(const wnb_mtmd_chunks * c, int32_t i, wnb_mtmd_chunk_info * out, wnb_error * err) {
    WNB_TRY
    clear_error(err);
    const mtmd_input_chunk * ch = chunk_at(c, i);
    if (!ch) return fail(err, WNB_ERR_INVALID_ARGUMENT, "chunk index " + std::to_string(i) + " is out of range");
    if (!out) return fail(err, WNB_ERR_INVALID_ARGUMENT, "out is NULL");
    out->type = (int32_t) mtmd_input_chunk_get_type(ch);
    out->n_tokens = (int32_t) mtmd_input_chunk_get_n_tokens(ch);
    out->n_pos = (int32_t) mtmd_input_chunk_get_n_pos(ch);
    return WNB_OK;
    WNB_CATCH(err)
}

int32_t wnb_mtmd_chunk_tokens(const wnb_mtmd_chunks * c, int32_t i, int32_t * tokens, int32_t cap) {
    try {
        const mtmd_input_chunk * ch = chunk_at(c, i);
        if (!ch) return -1;
        if (mtmd_input_chunk_get_type(ch) != MTMD_INPUT_CHUNK_TYPE_TEXT) return 0;
        size_t n = 0;
        const llama_token * t = mtmd_input_chunk_get_tokens_text(ch, &n);
        if (tokens && cap >= 0 && (size_t) cap >= n && t) memcpy(tokens, t, n * sizeof(int32_t));
        return (int32_t) n;
    } catch (...) {
        return -1;
    }
}

int32_t wnb_mtmd_chunk_id(const wnb_mtmd_chunks * c, int32_t i, char * buf, int32_t cap) {
    try {
        const mtmd_input_chunk * ch = chunk_at(c, i);
        if (!ch) return -1;
        if (mtmd_input_chunk_get_type(ch) == MTMD_INPUT_CHUNK_TYPE_TEXT) return 0;
        const char * id = mtmd_input_chunk_get_id(ch);
        return copy_out(id ? id : "", buf, cap);
    } catch (...) {
        return -1;
    }
}

// ---------------------------------------------------------------- evaluation

int32_t wnb_mtmd_eval(wnb_mtmd * m, wnb_context * ctx, const wnb_mtmd_chunks * c, int32_t first, int32_t count,
                      int32_t n_past, int32_t seq_id, int32_t n_batch, uint8_t logits_last, int32_t * new_n_past,
                      wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (new_n_past) *new_n_past = n_past;
    if (!m) return fail(err, WNB_ERR_INVALID_ARGUMENT, "projector is NULL");
    llama_context * lctx = wnb_internal_llama_context(ctx);
    if (!lctx) return fail(err, WNB_ERR_INVALID_ARGUMENT, "context is NULL");
    if (wnb_internal_context_model(ctx) != m->model) {
        return fail(err, WNB_ERR_INVALID_ARGUMENT, "the context is not of the projector's model");
    }
    if (!c || !c->chunks) return fail(err, WNB_ERR_INVALID_ARGUMENT, "chunks is NULL");
    if (n_past < 0) return fail(err, WNB_ERR_INVALID_ARGUMENT, "n_past is negative");
    if (seq_id < 0 || (uint32_t) seq_id >= llama_n_seq_max(lctx)) {
        return fail(err, WNB_ERR_INVALID_ARGUMENT, "seq_id " + std::to_string(seq_id) + " is out of range");
    }
    const int32_t n = (int32_t) mtmd_input_chunks_size(c->chunks);
    if (first < 0 || first > n) return fail(err, WNB_ERR_INVALID_ARGUMENT, "first chunk is out of range");
    const int32_t last = count < 0 ? n : first + count;
    if (last > n || last < first) return fail(err, WNB_ERR_INVALID_ARGUMENT, "chunk range is out of range");
    const int32_t nb = n_batch > 0 ? std::min<int32_t>(n_batch, (int32_t) llama_n_batch(lctx))
                                   : (int32_t) llama_n_batch(lctx);
    llama_pos past = n_past;
    for (int32_t i = first; i < last; i++) {
        const mtmd_input_chunk * ch = mtmd_input_chunks_get(c->chunks, (size_t) i);
        const auto type = mtmd_input_chunk_get_type(ch);
        tl_first_error.clear();
        if (type == MTMD_INPUT_CHUNK_TYPE_TEXT) {
            llama_pos np = past;
            int32_t rc = mtmd_helper_eval_chunk_single(m->ctx, lctx, ch, past, seq_id, nb,
                                                       logits_last != 0 && i == last - 1, &np);
            past = np;  // the helper advances it per decoded batch, also on failure
            if (new_n_past) *new_n_past = past;
            if (rc != 0) {
                return fail(err, decode_status(rc),
                            with_cause("decoding text chunk " + std::to_string(i) + " failed (" + std::to_string(rc) +
                                       ")"));
            }
        } else {
            const char * what = type == MTMD_INPUT_CHUNK_TYPE_AUDIO ? "audio" : "image";
            int32_t rc = mtmd_encode_chunk(m->ctx, ch);
            if (rc != 0) {
                return fail(err, WNB_ERR_INTERNAL,
                            with_cause(std::string("encoding ") + what + " chunk " + std::to_string(i) + " failed"));
            }
            float * embd = mtmd_get_output_embd(m->ctx);
            if (!embd) return fail(err, WNB_ERR_INTERNAL, std::string("the ") + what + " encoder gave no output");
            llama_pos np = past;
            rc = mtmd_helper_decode_image_chunk(m->ctx, lctx, ch, embd, past, seq_id, nb, &np, nullptr, nullptr);
            if (rc != 0) {
                return fail(err, decode_status(rc),
                            with_cause(std::string("decoding ") + what + " chunk " + std::to_string(i) + " failed"));
            }
            past = np;
            if (new_n_past) *new_n_past = past;
        }
    }
    tl_first_error.clear();
    llama_synchronize(lctx);  // as wnb_decode: the compute ends inside this call
    return WNB_OK;
    WNB_CATCH(err)
}
