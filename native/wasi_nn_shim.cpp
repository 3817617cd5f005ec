// wasi_nn_shim.cpp - implementation of wasi_nn_shim.h over llama.cpp.
// Every exported function catches every exception: none crosses the C ABI.

#include "wasi_nn_shim.h"
#include "wnb_internal.h"
#include "wnb_rpc.h"

#include "llama.h"
#include "ggml.h"
#include "ggml-cpu.h"
#include "ggml-backend.h"

#include "build-info.h"
#include "chat.h"
#include "chat_render.h"
#include "common.h"
#include "fit.h"
#include "json-schema-to-grammar.h"
#include "json.h"
#include "sampling.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// ---------------------------------------------------------------- helpers

namespace {

using wnb::clear_error;
using wnb::copy_out;
using wnb::fail;
using wnb::set_error;

std::string json_str(const std::string & s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"':  out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char tmp[8];
                    snprintf(tmp, sizeof(tmp), "\\u%04x", c);
                    out += tmp;
                } else {
                    out += (char) c;
                }
        }
    }
    return out + "\"";
}


// ---------------------------------------------------------------- log capture

struct log_queue {
    std::mutex              mu;
    std::deque<std::string> records;
    std::string             partial;       // text of an unfinished line
    int32_t                 partial_level = 2;
    uint64_t                dropped = 0;
    std::atomic<int32_t>    min_level{3};
};

log_queue & logs() {
    static log_queue * q = new log_queue();  // never destroyed: safe at exit
    return *q;
}

// The latest error-level message of this thread: model loading reports its
// reason only through the log, so wnb_model_load quotes it.
thread_local std::string tl_last_log_error;

constexpr size_t MAX_LOG_RECORDS = 4096;

void push_record(log_queue & q, int32_t level, const std::string & text) {
    if (q.records.size() >= MAX_LOG_RECORDS) {
        q.records.pop_front();
        q.dropped++;
    }
    q.records.push_back("L" + std::to_string(level) + " " + text);
}

void log_callback(enum ggml_log_level level, const char * text, void *) {
    if (!text) return;
    log_queue & q = logs();
    int32_t lvl = (int32_t) level;
    if (level == GGML_LOG_LEVEL_ERROR) {
        std::string t(text);
        while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
        if (!t.empty() && tl_last_log_error.empty()) tl_last_log_error = t;  // the first error is the cause
    }
    std::lock_guard<std::mutex> lock(q.mu);
    if (level == GGML_LOG_LEVEL_CONT) {
        lvl = q.partial_level;
    } else if (!q.partial.empty()) {
        if (q.partial_level >= q.min_level.load()) push_record(q, q.partial_level, q.partial);
        q.partial.clear();
    }
    if (level == GGML_LOG_LEVEL_NONE) lvl = 2;
    q.partial_level = lvl;
    q.partial += text;
    size_t nl;
    while ((nl = q.partial.find('\n')) != std::string::npos) {
        std::string line = q.partial.substr(0, nl);
        q.partial.erase(0, nl + 1);
        if (lvl >= q.min_level.load() && !line.empty()) push_record(q, lvl, line);
    }
}

std::once_flag g_init_once;

// ---------------------------------------------------------------- file checks

int32_t check_model_file(const char * path, wnb_error * err) {
    if (!path || !*path) return fail(err, WNB_ERR_INVALID_ARGUMENT, "model path is empty");
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return fail(err, WNB_ERR_FILE_NOT_FOUND, std::string("model file not found: ") + path);
        }
        return fail(err, WNB_ERR_FILE_UNREADABLE,
                    std::string("cannot stat model file ") + path + ": " + strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        return fail(err, WNB_ERR_FILE_UNREADABLE,
                    std::string("model path is a directory, not a GGUF file: ") + path);
    }
    if (!S_ISREG(st.st_mode)) {
        return fail(err, WNB_ERR_FILE_UNREADABLE, std::string("model path is not a regular file: ") + path);
    }
    FILE * f = fopen(path, "rb");
    if (!f) {
        return fail(err, WNB_ERR_FILE_UNREADABLE,
                    std::string("cannot open model file ") + path + ": " + strerror(errno));
    }
    unsigned char hdr[8] = {0};
    size_t got = fread(hdr, 1, sizeof(hdr), f);
    fclose(f);
    if (st.st_size == 0) {
        return fail(err, WNB_ERR_INVALID_MODEL, std::string("model file is empty (0 bytes): ") + path);
    }
    if (got < 8 || memcmp(hdr, "GGUF", 4) != 0) {
        return fail(err, WNB_ERR_INVALID_MODEL,
                    std::string("not a GGUF file (bad magic; expected \"GGUF\"): ") + path);
    }
    uint32_t version = (uint32_t) hdr[4] | ((uint32_t) hdr[5] << 8) | ((uint32_t) hdr[6] << 16) |
                       ((uint32_t) hdr[7] << 24);
    if (version < 2 || version > 3) {
        return fail(err, WNB_ERR_INVALID_MODEL,
                    "unsupported GGUF version " + std::to_string(version) + " (llama.cpp reads 2 and 3): " + path);
    }
    return WNB_OK;
}

bool progress_cb(float p, void * ud) {
    auto * lp = (wnb_load_progress *) ud;
    lp->progress = p;
    return lp->cancel == 0;
}

}  // namespace

// ---------------------------------------------------------------- handles

struct wnb_model {
    llama_model *                 model = nullptr;
    const llama_vocab *           vocab = nullptr;
    std::unique_ptr<wnb::chat_renderer> templates;  // the model's own, lazily created
    std::mutex                    templates_mu;
    std::vector<std::string>      rpc_endpoints;  // in use by this model (wnb_rpc.h)
};

struct wnb_context {
    wnb_model *          owner = nullptr;
    llama_context *      ctx = nullptr;
    ggml_threadpool *    threadpool = nullptr;
    ggml_threadpool *    threadpool_batch = nullptr;
    std::atomic<int32_t> abort{0};
    llama_batch          batch{};
    int32_t              batch_cap = 0;
};

struct wnb_sampler {
    const wnb_model * owner = nullptr;
    common_sampler *  smpl = nullptr;
    bool              ignore_eos = false;
};

// Internal accessors for the other source files (wnb_internal.h); hidden.
const llama_model * wnb_internal_llama_model(const wnb_model * m) { return m ? m->model : nullptr; }
llama_context * wnb_internal_llama_context(wnb_context * c) { return c ? c->ctx : nullptr; }
const wnb_model * wnb_internal_context_model(const wnb_context * c) { return c ? c->owner : nullptr; }

namespace {

bool abort_cb(void * ud) {
    return ((wnb_context *) ud)->abort.load() != 0;
}

void free_threadpools(wnb_context * c) {
    auto * reg = ggml_backend_dev_backend_reg(ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU));
    auto * free_fn = reg ? (decltype(ggml_threadpool_free) *) ggml_backend_reg_get_proc_address(
                               reg, "ggml_threadpool_free")
                         : nullptr;
    if (free_fn) {
        if (c->threadpool) free_fn(c->threadpool);
        if (c->threadpool_batch && c->threadpool_batch != c->threadpool) free_fn(c->threadpool_batch);
    }
    c->threadpool = c->threadpool_batch = nullptr;
}

// Sets up a ggml thread pool like llama.cpp's tools do (common_threadpools).
void attach_threadpools(wnb_context * c, int32_t n_threads, int32_t n_threads_batch, int32_t poll) {
    auto * dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    auto * reg = dev ? ggml_backend_dev_backend_reg(dev) : nullptr;
    if (!reg) return;
    auto * new_fn = (decltype(ggml_threadpool_new) *) ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
    if (!new_fn) return;
    ggml_threadpool_params tpp = ggml_threadpool_params_default(n_threads);
    tpp.poll = (uint32_t) poll;
    c->threadpool = new_fn(&tpp);
    if (n_threads_batch != n_threads) {
        ggml_threadpool_params tpb = ggml_threadpool_params_default(n_threads_batch);
        tpb.poll = (uint32_t) poll;
        c->threadpool_batch = new_fn(&tpb);
    } else {
        c->threadpool_batch = nullptr;
    }
    if (c->threadpool) llama_attach_threadpool(c->ctx, c->threadpool, c->threadpool_batch);
}

void ensure_batch(wnb_context * c, int32_t n) {
    if (n <= c->batch_cap) return;
    if (c->batch_cap > 0) llama_batch_free(c->batch);
    c->batch = llama_batch_init(n, 0, 1);
    c->batch_cap = n;
}

int32_t decode_status(int32_t rc, wnb_error * err) {
    if (rc == 0) return WNB_OK;
    if (rc == 1) return fail(err, WNB_ERR_NO_KV_SPACE, "no KV cache slot for the batch (context full)");
    if (rc == 2) return fail(err, WNB_ERR_CANCELLED, "decoding was cancelled");
    return fail(err, WNB_ERR_DECODE, "llama_decode failed with code " + std::to_string(rc));
}

// Decodes the context's batch and waits for it. llama_decode may return while
// an asynchronous backend (RPC servers, CUDA) still computes; the wait keeps
// that time inside this call (a worker thread's, for the non-blocking FFI
// symbols) instead of the caller's next logits read, and makes a decode's
// duration its compute's, as llama.cpp's tools measure it.
int32_t decode_batch(wnb_context * c, wnb_error * err) {
    const int32_t rc = llama_decode(c->ctx, c->batch);
    if (rc == 0) llama_synchronize(c->ctx);
    return decode_status(rc, err);
}

}  // namespace

extern "C" {

// ---------------------------------------------------------------- library

int32_t wnb_abi_version(void) { return WNB_ABI_VERSION; }

// llama_log_set is wrapped at link time (-Wl,--wrap=llama_log_set, see
// CMakeLists.txt). llama.cpp's common/fit.cpp installs a logger of its own
// for the length of a memory estimate or fit, with its user data on its
// stack: a thread that logs meanwhile (another session loading a model,
// creating a context, decoding) would call that logger after the estimate
// returned, through a dangling pointer. The process-wide logger is set once,
// here, and stays ours; records below the chosen level are dropped by
// log_callback anyway.
void __real_llama_log_set(ggml_log_callback log_callback, void * user_data);
void __wrap_llama_log_set(ggml_log_callback, void *) {}

void wnb_init(void) {
    try {
        std::call_once(g_init_once, [] {
            __real_llama_log_set(log_callback, nullptr);
            llama_backend_init();
            ggml_backend_load_all();
        });
    } catch (...) {
    }
}

int32_t wnb_info_json(char * buf, int32_t cap) {
    try {
        wnb_init();
        std::string j = "{\"abi\":" + std::to_string(WNB_ABI_VERSION);
        j += ",\"llama_commit\":" + json_str(llama_commit());
        j += ",\"llama_build_number\":" + std::to_string(llama_build_number());
        j += ",\"gpu_offload\":" + std::string(llama_supports_gpu_offload() ? "true" : "false");
        j += ",\"rpc\":" + std::string(llama_supports_rpc() ? "true" : "false");
        j += ",\"system_info\":" + json_str(llama_print_system_info());
        j += ",\"backends\":[";
        for (size_t i = 0; i < ggml_backend_reg_count(); i++) {
            if (i) j += ",";
            j += json_str(ggml_backend_reg_name(ggml_backend_reg_get(i)));
        }
        j += "],\"devices\":[";
        const std::vector<ggml_backend_dev_t> local = wnb_local_devices();
        for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
            ggml_backend_dev_t dev = ggml_backend_dev_get(i);
            std::string rpc_fields;
            if (wnb_rpc_device_json(dev, rpc_fields)) {  // never asks a server that does not answer
                if (i) j += ",";
                j += "{\"name\":" + json_str(ggml_backend_dev_name(dev)) +
                     ",\"description\":" + json_str(ggml_backend_dev_description(dev)) + "," + rpc_fields + "}";
                continue;
            }
            size_t free_mem = 0, total_mem = 0;
            ggml_backend_dev_memory(dev, &free_mem, &total_mem);
            const char * type = "cpu";
            switch (ggml_backend_dev_type(dev)) {
                case GGML_BACKEND_DEVICE_TYPE_GPU: type = "gpu"; break;
                case GGML_BACKEND_DEVICE_TYPE_IGPU: type = "igpu"; break;
                case GGML_BACKEND_DEVICE_TYPE_ACCEL: type = "accel"; break;
                default: break;
            }
            if (i) j += ",";
            j += "{\"name\":" + json_str(ggml_backend_dev_name(dev)) +
                 ",\"description\":" + json_str(ggml_backend_dev_description(dev)) +
                 ",\"type\":\"" + type + "\",\"memory_free\":" + std::to_string(free_mem) +
                 ",\"memory_total\":" + std::to_string(total_mem) + ",\"model_device\":" +
                 (std::find(local.begin(), local.end(), dev) != local.end() ? "true" : "false") + "}";
        }
        j += "]}";
        return copy_out(j, buf, cap);
    } catch (...) {
        return copy_out("{}", buf, cap);
    }
}

int32_t wnb_sizeof_model_params(void) { return (int32_t) sizeof(wnb_model_params); }
int32_t wnb_sizeof_context_params(void) { return (int32_t) sizeof(wnb_context_params); }
int32_t wnb_sizeof_sampler_params(void) { return (int32_t) sizeof(wnb_sampler_params); }

// ---------------------------------------------------------------- log

void wnb_log_set_level(int32_t min_level) { logs().min_level.store(min_level); }

int32_t wnb_log_drain(char * buf, int32_t cap) {
    if (!buf || cap <= 0) return 0;
    try {
        log_queue & q = logs();
        std::lock_guard<std::mutex> lock(q.mu);
        int32_t used = 0;
        if (q.dropped > 0) {
            std::string rec = "L3 [wasi_nn] " + std::to_string(q.dropped) + " log records dropped\n";
            if ((int32_t) rec.size() <= cap) {
                memcpy(buf, rec.data(), rec.size());
                used += (int32_t) rec.size();
                q.dropped = 0;
            }
        }
        while (!q.records.empty()) {
            const std::string & r = q.records.front();
            if (used + (int32_t) r.size() + 1 > cap) break;
            memcpy(buf + used, r.data(), r.size());
            used += (int32_t) r.size();
            buf[used++] = '\n';
            q.records.pop_front();
        }
        return used;
    } catch (...) {
        return 0;
    }
}

// ---------------------------------------------------------------- models

void wnb_model_default_params(wnb_model_params * out) {
    if (!out) return;
    llama_model_params d = llama_model_default_params();
    memset(out, 0, sizeof(*out));  // no tensor split, no RPC servers
    out->n_gpu_layers = d.n_gpu_layers;
    out->main_gpu = d.main_gpu;
    out->split_mode = (int32_t) d.split_mode;
    out->use_mmap = 1;
    out->use_mlock = 0;
    out->vocab_only = d.vocab_only ? 1 : 0;
    out->check_tensors = d.check_tensors ? 1 : 0;
}

int32_t wnb_model_load(const char * path, const wnb_model_params * params, wnb_load_progress * progress,
                       wnb_model ** out, wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!out) return fail(err, WNB_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    wnb_init();
    int32_t rc = check_model_file(path, err);
    if (rc != WNB_OK) return rc;

    llama_model_params mp = llama_model_default_params();
    if (params) {
        mp.n_gpu_layers = params->n_gpu_layers;
        mp.main_gpu = params->main_gpu;
        if (params->split_mode < 0 || params->split_mode > 2) {
            return fail(err, WNB_ERR_INVALID_ARGUMENT,
                        "split_mode must be 0 (none), 1 (layer) or 2 (row), got " +
                            std::to_string(params->split_mode));
        }
        mp.split_mode = (llama_split_mode) params->split_mode;
        if (params->use_mlock) {
            mp.load_mode = params->use_mmap ? LLAMA_LOAD_MODE_MMAP_MLOCK : LLAMA_LOAD_MODE_MLOCK;
        } else {
            mp.load_mode = params->use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
        }
        mp.vocab_only = params->vocab_only != 0;
        mp.check_tensors = params->check_tensors != 0;
    }
    wnb_placement placement;  // devices, tensor split: alive until the load returns
    {
        std::string why;
        int32_t prc = wnb_placement_apply(params, mp, placement, why);
        if (prc != WNB_OK) return fail(err, prc, why);
    }
    if (progress) {
        progress->progress = 0.0f;
        mp.progress_callback = progress_cb;
        mp.progress_callback_user_data = progress;
    }
    tl_last_log_error.clear();
    llama_model * m = llama_model_load_from_file(path, mp);
    if (!m) {
        if (progress && progress->cancel) return fail(err, WNB_ERR_CANCELLED, "model load cancelled");
        std::string why = tl_last_log_error.empty() ? "llama.cpp could not load it" : tl_last_log_error;
        return fail(err, WNB_ERR_INVALID_MODEL, std::string("failed to load model ") + path + ": " + why);
    }
    auto * wm = new wnb_model();
    wm->model = m;
    wm->vocab = llama_model_get_vocab(m);
    placement.release_to(wm->rpc_endpoints);
    *out = wm;
    return WNB_OK;
    WNB_CATCH(err)
}

void wnb_model_free(wnb_model * model) {
    if (!model) return;
    try {
        model->templates.reset();
        llama_model_free(model->model);
        wnb_rpc_release(model->rpc_endpoints);
        delete model;
    } catch (...) {
    }
}

int32_t wnb_memfile_create(const uint8_t * data, size_t len, int32_t * out_fd, wnb_error * err) {
    clear_error(err);
    if (!out_fd) return fail(err, WNB_ERR_INVALID_ARGUMENT, "out_fd is NULL");
    *out_fd = -1;
    if (!data && len > 0) return fail(err, WNB_ERR_INVALID_ARGUMENT, "data is NULL");
    int fd = memfd_create("wasi-nn-guest-model", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        return fail(err, WNB_ERR_INTERNAL, std::string("memfd_create failed: ") + strerror(errno));
    }
    size_t done = 0;
    while (done < len) {
        // write() moves at most about 2 GiB per call.
        size_t chunk = std::min<size_t>(len - done, (size_t) 1 << 30);
        ssize_t n = write(fd, data + done, chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            std::string why = "writing " + std::to_string(len) + " bytes of model into memory failed after " +
                              std::to_string(done) + ": " + strerror(e);
            return fail(err, e == ENOMEM || e == ENOSPC ? WNB_ERR_OUT_OF_MEMORY : WNB_ERR_INTERNAL, why);
        }
        done += (size_t) n;
    }
    // The bytes checked before the load are the bytes llama.cpp reads.
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        int e = errno;
        close(fd);
        return fail(err, WNB_ERR_INTERNAL, std::string("sealing the model memory file failed: ") + strerror(e));
    }
    *out_fd = fd;
    return WNB_OK;
}

void wnb_memfile_close(int32_t fd) {
    if (fd >= 0) close(fd);
}

int32_t wnb_model_info_json(const wnb_model * wm, char * buf, int32_t cap) {
    if (!wm) return copy_out("null", buf, cap);
    try {
        const llama_model * m = wm->model;
        const llama_vocab * v = wm->vocab;
        auto meta = [&](const char * key) -> std::string {
            char tmp[512];
            int32_t n = llama_model_meta_val_str(m, key, tmp, sizeof(tmp));
            return n < 0 ? std::string() : std::string(tmp);
        };
        char desc[256];
        llama_model_desc(m, desc, sizeof(desc));
        std::string j = "{\"architecture\":" + json_str(meta("general.architecture"));
        j += ",\"name\":" + json_str(meta("general.name"));
        j += ",\"description\":" + json_str(desc);
        j += ",\"n_params\":" + std::to_string(llama_model_n_params(m));
        j += ",\"size\":" + std::to_string(llama_model_size(m));
        j += ",\"n_ctx_train\":" + std::to_string(llama_model_n_ctx_train(m));
        j += ",\"n_embd\":" + std::to_string(llama_model_n_embd(m));
        j += ",\"n_layer\":" + std::to_string(llama_model_n_layer(m));
        // n_head asserts on a model without layers (vocab-only): guard it.
        const bool has_layers = llama_model_n_layer(m) > 0;
        j += ",\"n_head\":" + std::to_string(has_layers ? llama_model_n_head(m) : 0);
        j += ",\"n_head_kv\":" + std::to_string(has_layers ? llama_model_n_head_kv(m) : 0);
        j += ",\"n_vocab\":" + std::to_string(llama_vocab_n_tokens(v));
        j += ",\"vocab_type\":" + std::to_string((int) llama_vocab_type(v));
        j += ",\"bos\":" + std::to_string(llama_vocab_bos(v));
        j += ",\"eos\":" + std::to_string(llama_vocab_eos(v));
        j += ",\"eot\":" + std::to_string(llama_vocab_eot(v));
        j += ",\"nl\":" + std::to_string(llama_vocab_nl(v));
        j += ",\"add_bos\":" + std::string(llama_vocab_get_add_bos(v) ? "true" : "false");
        j += ",\"add_eos\":" + std::string(llama_vocab_get_add_eos(v) ? "true" : "false");
        j += ",\"n_swa\":" + std::to_string(has_layers ? llama_model_n_swa(m) : 0);
        j += ",\"is_recurrent\":" + std::string(llama_model_is_recurrent(m) ? "true" : "false");
        j += ",\"is_hybrid\":" + std::string(llama_model_is_hybrid(m) ? "true" : "false");
        j += ",\"has_encoder\":" + std::string(llama_model_has_encoder(m) ? "true" : "false");
        j += ",\"has_decoder\":" + std::string(llama_model_has_decoder(m) ? "true" : "false");
        j += ",\"eog\":[";
        bool first = true;
        const int32_t n_vocab = llama_vocab_n_tokens(v);
        for (int32_t t = 0; t < n_vocab; t++) {
            if (llama_vocab_is_eog(v, t)) {
                if (!first) j += ",";
                j += std::to_string(t);
                first = false;
            }
        }
        j += "]";
        const char * tmpl = llama_model_chat_template(m, nullptr);
        j += ",\"chat_template\":" + (tmpl ? json_str(tmpl) : std::string("null"));
        j += ",\"metadata\":{";
        const int32_t n_meta = llama_model_meta_count(m);
        std::vector<char> val(1 << 16);
        for (int32_t i = 0; i < n_meta; i++) {
            char key[256];
            if (llama_model_meta_key_by_index(m, i, key, sizeof(key)) < 0) continue;
            int32_t n = llama_model_meta_val_str_by_index(m, i, val.data(), (size_t) val.size());
            if (n < 0) continue;
            if (i) j += ",";
            j += json_str(key) + ":" + json_str(std::string(val.data()));
        }
        j += "}}";
        return copy_out(j, buf, cap);
    } catch (...) {
        return copy_out("null", buf, cap);
    }
}

int32_t wnb_model_n_vocab(const wnb_model * m) { return m ? llama_vocab_n_tokens(m->vocab) : 0; }
int32_t wnb_model_n_embd(const wnb_model * m) { return m ? llama_model_n_embd(m->model) : 0; }
int32_t wnb_model_n_ctx_train(const wnb_model * m) { return m ? llama_model_n_ctx_train(m->model) : 0; }
uint8_t wnb_token_is_eog(const wnb_model * m, int32_t token) {
    return m && llama_vocab_is_eog(m->vocab, token) ? 1 : 0;
}

int32_t wnb_token_attr(const wnb_model * m, int32_t token) {
    if (!m || token < 0 || token >= llama_vocab_n_tokens(m->vocab)) return 0;
    return (int32_t) llama_vocab_get_attr(m->vocab, token);
}

int32_t wnb_tokenize(const wnb_model * m, const char * text, int32_t len, int32_t * tokens, int32_t cap,
                     uint8_t add_special, uint8_t parse_special) {
    if (!m || (!text && len > 0) || len < 0) return 0;
    try {
        return llama_tokenize(m->vocab, text ? text : "", len, tokens, tokens ? cap : 0, add_special != 0,
                              parse_special != 0);
    } catch (...) {
        return 0;
    }
}

int32_t wnb_token_to_piece(const wnb_model * m, int32_t token, char * buf, int32_t cap, uint8_t special) {
    if (!m) return 0;
    try {
        if (token < 0 || token >= llama_vocab_n_tokens(m->vocab)) return 0;
        char small[64];
        int32_t n = llama_token_to_piece(m->vocab, token, small, sizeof(small), 0, special != 0);
        if (n < 0) {
            std::vector<char> big(-n);
            n = llama_token_to_piece(m->vocab, token, big.data(), (int32_t) big.size(), 0, special != 0);
            if (n < 0) return 0;
            if (buf && n <= cap) memcpy(buf, big.data(), n);
            return n;
        }
        if (buf && n <= cap) memcpy(buf, small, n);
        return n;
    } catch (...) {
        return 0;
    }
}

int32_t wnb_detokenize(const wnb_model * m, const int32_t * tokens, int32_t n, char * buf, int32_t cap,
                       uint8_t remove_special, uint8_t unparse_special) {
    if (!m || n < 0 || (!tokens && n > 0)) return 0;
    try {
        const int32_t n_vocab = llama_vocab_n_tokens(m->vocab);
        for (int32_t i = 0; i < n; i++) {
            if (tokens[i] < 0 || tokens[i] >= n_vocab) return 0;
        }
        int32_t r = llama_detokenize(m->vocab, tokens, n, buf, buf ? cap : 0, remove_special != 0,
                                     unparse_special != 0);
        return r < 0 ? -r : r;
    } catch (...) {
        return 0;
    }
}

namespace {

// What a chat template of this model needs: tmpl (or the model's own, as
// common_chat_templates_init picks it) and the model's BOS/EOS.
wnb::chat_template_spec model_chat_spec(const wnb_model * m, const char * tmpl) {
    wnb::chat_template_spec spec;
    if (tmpl) {
        spec.source = tmpl;
    } else {
        const char * own = llama_model_chat_template(m->model, nullptr);
        const char * tool_use = llama_model_chat_template(m->model, "tool_use");
        spec.source = own && *own ? own : tool_use ? tool_use : "";
    }
    const llama_token bos = llama_vocab_bos(m->vocab);
    const llama_token eos = llama_vocab_eos(m->vocab);
    if (bos != LLAMA_TOKEN_NULL) spec.bos_token = common_token_to_piece(m->vocab, bos, true);
    if (eos != LLAMA_TOKEN_NULL) spec.eos_token = common_token_to_piece(m->vocab, eos, true);
    spec.add_bos = llama_vocab_get_add_bos(m->vocab);
    spec.add_eos = llama_vocab_get_add_eos(m->vocab);
    return spec;
}

}  // namespace

int32_t wnb_chat_apply(const wnb_model * cm, const char * tmpl_override, const char * messages_json,
                       uint8_t add_generation_prompt, char * buf, int32_t cap, wnb_error * err) {
    WNB_TRY
    clear_error(err);
    auto * m = const_cast<wnb_model *>(cm);
    if (!m) return -fail(err, WNB_ERR_INVALID_ARGUMENT, "model is NULL");
    if (!messages_json) return -fail(err, WNB_ERR_INVALID_ARGUMENT, "messages are NULL");
    common_json msgs;
    try {
        msgs = common_json::parse(messages_json);
    } catch (const std::exception & e) {
        return -fail(err, WNB_ERR_INVALID_ARGUMENT, std::string("messages are not valid JSON: ") + e.what());
    }
    std::string prompt;
    try {
        // The same renderer as the sandbox (wnb-chat-render): chat_render.cpp.
        if (tmpl_override && *tmpl_override) {
            auto r = wnb::chat_renderer_init(model_chat_spec(m, tmpl_override));
            prompt = wnb::chat_render(*r, msgs, add_generation_prompt != 0);
        } else {
            std::lock_guard<std::mutex> lock(m->templates_mu);
            if (!m->templates) m->templates = wnb::chat_renderer_init(model_chat_spec(m, nullptr));
            prompt = wnb::chat_render(*m->templates, msgs, add_generation_prompt != 0);
        }
    } catch (const wnb::chat_messages_error & e) {
        return -fail(err, WNB_ERR_INVALID_ARGUMENT, std::string("bad messages: ") + e.what());
    } catch (const std::bad_alloc &) {
        return -fail(err, WNB_ERR_OUT_OF_MEMORY, "out of memory rendering the chat template");
    } catch (const std::exception & e) {
        return -fail(err, WNB_ERR_TEMPLATE, std::string("chat template failed: ") + e.what());
    }
    return copy_out(prompt, buf, cap);
    }
    catch (const std::exception & e) {
        return -fail(err, WNB_ERR_INTERNAL, e.what());
    }
    catch (...) {
        return -fail(err, WNB_ERR_INTERNAL, "unknown C++ exception");
    }
}

int32_t wnb_json_schema_to_grammar(const char * schema_json, char * buf, int32_t cap, wnb_error * err) {
    try {
        clear_error(err);
        if (!schema_json) return -fail(err, WNB_ERR_INVALID_ARGUMENT, "schema is NULL");
        common_json schema;
        try {
            schema = common_json::parse(schema_json);
        } catch (const std::exception & e) {
            return -fail(err, WNB_ERR_GRAMMAR, std::string("json_schema is not valid JSON: ") + e.what());
        }
        std::string g;
        try {
            g = json_schema_to_grammar(schema);
        } catch (const std::exception & e) {
            return -fail(err, WNB_ERR_GRAMMAR, std::string("json_schema could not be converted: ") + e.what());
        }
        return copy_out(g, buf, cap);
    } catch (const std::exception & e) {
        return -fail(err, WNB_ERR_INTERNAL, e.what());
    } catch (...) {
        return -fail(err, WNB_ERR_INTERNAL, "unknown C++ exception");
    }
}

// ---------------------------------------------------------------- contexts

void wnb_context_default_params(wnb_context_params * out) {
    if (!out) return;
    llama_context_params d = llama_context_default_params();
    out->n_ctx = d.n_ctx;
    out->n_batch = d.n_batch;
    out->n_ubatch = d.n_ubatch;
    out->n_seq_max = 1;
    // Never more threads than CPUs: ggml's own pool (no OpenMP) waits by
    // spinning, and oversubscribed spinning threads stall each other.
    const int32_t cpus = (int32_t) std::max(1u, std::thread::hardware_concurrency());
    out->n_threads = std::min<int32_t>(d.n_threads, cpus);
    out->n_threads_batch = std::min<int32_t>(d.n_threads_batch, cpus);
    out->poll = 50;
    out->flash_attn = (int32_t) d.flash_attn_type;
    out->type_k = -1;
    out->type_v = -1;
    out->pooling_type = -1;
    out->rope_freq_base = 0.0f;
    out->rope_freq_scale = 0.0f;
    out->embeddings = 0;
    out->offload_kqv = d.offload_kqv ? 1 : 0;
    out->kv_unified = 1;
    out->no_perf = 0;
    out->swa_full = 0;
}

int32_t wnb_context_new(wnb_model * model, const wnb_context_params * params, wnb_context ** out,
                        wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!out) return fail(err, WNB_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    if (!model) return fail(err, WNB_ERR_INVALID_ARGUMENT, "model is NULL");
    wnb_context_params p;
    wnb_context_default_params(&p);
    if (params) p = *params;
    if (p.n_seq_max < 1 || p.n_seq_max > (uint32_t) llama_max_parallel_sequences()) {
        return fail(err, WNB_ERR_INVALID_ARGUMENT,
                    "n_seq_max must be between 1 and " + std::to_string(llama_max_parallel_sequences()) + ", got " +
                        std::to_string(p.n_seq_max));
    }
    if (p.poll > 100) return fail(err, WNB_ERR_INVALID_ARGUMENT, "poll must be -1..100");
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = p.n_ctx;
    cp.n_batch = p.n_batch;
    cp.n_ubatch = std::min(p.n_ubatch, p.n_batch);
    cp.n_seq_max = p.n_seq_max;
    if (p.n_threads > 0) cp.n_threads = p.n_threads;
    cp.n_threads_batch = p.n_threads_batch > 0 ? p.n_threads_batch : cp.n_threads;
    cp.flash_attn_type = (llama_flash_attn_type) p.flash_attn;
    if (p.type_k >= 0) cp.type_k = (ggml_type) p.type_k;
    if (p.type_v >= 0) cp.type_v = (ggml_type) p.type_v;
    cp.pooling_type = (enum llama_pooling_type) p.pooling_type;
    cp.rope_freq_base = p.rope_freq_base;
    cp.rope_freq_scale = p.rope_freq_scale;
    cp.embeddings = p.embeddings != 0;
    cp.offload_kqv = p.offload_kqv != 0;
    cp.kv_unified = p.kv_unified != 0;
    cp.no_perf = p.no_perf != 0;
    cp.swa_full = p.swa_full != 0;

    auto * c = new wnb_context();
    c->owner = model;
    cp.abort_callback = abort_cb;
    cp.abort_callback_data = c;
    tl_last_log_error.clear();
    c->ctx = llama_init_from_model(model->model, cp);
    if (!c->ctx) {
        delete c;
        std::string why = tl_last_log_error.empty() ? "llama_init_from_model failed" : tl_last_log_error;
        return fail(err, WNB_ERR_OUT_OF_MEMORY,
                    "could not create a context (n_ctx " + std::to_string(p.n_ctx) + ", n_batch " +
                        std::to_string(p.n_batch) + "): " + why);
    }
    if (p.poll >= 0) attach_threadpools(c, cp.n_threads, cp.n_threads_batch, p.poll);
    ensure_batch(c, (int32_t) llama_n_batch(c->ctx));
    *out = c;
    return WNB_OK;
    WNB_CATCH(err)
}

void wnb_context_free(wnb_context * c) {
    if (!c) return;
    try {
        if (c->batch_cap > 0) llama_batch_free(c->batch);
        llama_free(c->ctx);
        free_threadpools(c);
        delete c;
    } catch (...) {
    }
}

uint32_t wnb_context_n_ctx(const wnb_context * c) { return c ? llama_n_ctx(c->ctx) : 0; }
uint32_t wnb_context_n_batch(const wnb_context * c) { return c ? llama_n_batch(c->ctx) : 0; }
uint32_t wnb_context_n_seq_max(const wnb_context * c) { return c ? llama_n_seq_max(c->ctx) : 0; }
int32_t wnb_context_pooling_type(const wnb_context * c) { return c ? (int32_t) llama_pooling_type(c->ctx) : 0; }
void wnb_context_set_abort(wnb_context * c, int32_t abort) {
    if (c) c->abort.store(abort);
}

int32_t wnb_decode(wnb_context * c, const int32_t * tokens, const int32_t * pos, const int32_t * seq_ids,
                   const uint8_t * logits, int32_t n, wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!c) return fail(err, WNB_ERR_INVALID_ARGUMENT, "context is NULL");
    if (n <= 0 || !tokens || !pos || !seq_ids) return fail(err, WNB_ERR_INVALID_ARGUMENT, "empty batch");
    const int32_t n_batch = (int32_t) llama_n_batch(c->ctx);
    if (n > n_batch) {
        return fail(err, WNB_ERR_INVALID_ARGUMENT,
                    "batch of " + std::to_string(n) + " tokens exceeds n_batch " + std::to_string(n_batch));
    }
    const int32_t n_vocab = llama_vocab_n_tokens(c->owner->vocab);
    const int32_t n_seq = (int32_t) llama_n_seq_max(c->ctx);
    ensure_batch(c, n);
    llama_batch & b = c->batch;
    b.n_tokens = n;
    for (int32_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            return fail(err, WNB_ERR_INVALID_ARGUMENT,
                        "token " + std::to_string(tokens[i]) + " at batch index " + std::to_string(i) +
                            " is outside the vocabulary (0.." + std::to_string(n_vocab - 1) + ")");
        }
        if (seq_ids[i] < 0 || seq_ids[i] >= n_seq) {
            return fail(err, WNB_ERR_INVALID_ARGUMENT,
                        "sequence id " + std::to_string(seq_ids[i]) + " is outside 0.." + std::to_string(n_seq - 1));
        }
        b.token[i] = tokens[i];
        b.pos[i] = pos[i];
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = seq_ids[i];
        b.logits[i] = logits ? (logits[i] != 0) : (i == n - 1);
    }
    return decode_batch(c, err);
    WNB_CATCH(err)
}

int32_t wnb_decode_prompt(wnb_context * c, const int32_t * tokens, int32_t n, int32_t pos0, int32_t seq_id,
                          wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!c) return fail(err, WNB_ERR_INVALID_ARGUMENT, "context is NULL");
    if (n <= 0 || !tokens) return fail(err, WNB_ERR_INVALID_ARGUMENT, "empty prompt");
    const int32_t n_batch = (int32_t) llama_n_batch(c->ctx);
    std::vector<int32_t> pos(std::min(n, n_batch)), seq(std::min(n, n_batch), seq_id);
    std::vector<uint8_t> lg(std::min(n, n_batch), 0);
    for (int32_t start = 0; start < n; start += n_batch) {
        const int32_t m = std::min(n_batch, n - start);
        for (int32_t i = 0; i < m; i++) {
            pos[i] = pos0 + start + i;
            lg[i] = (start + i == n - 1) ? 1 : 0;
        }
        int32_t rc = wnb_decode(c, tokens + start, pos.data(), seq.data(), lg.data(), m, err);
        if (rc != WNB_OK) return rc;
    }
    return WNB_OK;
    WNB_CATCH(err)
}

const float * wnb_logits(wnb_context * c, int32_t idx) {
    if (!c) return nullptr;
    try {
        return llama_get_logits_ith(c->ctx, idx);
    } catch (...) {
        return nullptr;
    }
}

int32_t wnb_embeddings(wnb_context * c, int32_t idx_or_seq, float * out, int32_t cap, int32_t normalize,
                       wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!c) return -fail(err, WNB_ERR_INVALID_ARGUMENT, "context is NULL");
    const enum llama_pooling_type pooling = llama_pooling_type(c->ctx);
    // Rank pooling keeps n_cls_out scores per sequence, not n_embd_out values:
    // reading n_embd_out of them would read past llama.cpp's vector.
    const int32_t n_embd = pooling == LLAMA_POOLING_TYPE_RANK ? (int32_t) llama_model_n_cls_out(c->owner->model)
                                                              : llama_model_n_embd_out(c->owner->model);
    const float * e = nullptr;
    if (pooling == LLAMA_POOLING_TYPE_NONE) {
        e = llama_get_embeddings_ith(c->ctx, idx_or_seq);
    } else {
        e = llama_get_embeddings_seq(c->ctx, idx_or_seq);
    }
    if (!e) {
        return -fail(err, WNB_ERR_INVALID_ARGUMENT,
                     "no embeddings available (was the context created with embeddings = 1, and was the "
                     "token/sequence decoded?)");
    }
    if (out && cap >= n_embd) common_embd_normalize(e, out, n_embd, normalize);
    return n_embd;
    }
    catch (const std::exception & ex) {
        return -fail(err, WNB_ERR_INTERNAL, ex.what());
    }
    catch (...) {
        return -fail(err, WNB_ERR_INTERNAL, "unknown C++ exception");
    }
}

void wnb_memory_clear(wnb_context * c) {
    if (c) llama_memory_clear(llama_get_memory(c->ctx), true);
}
uint8_t wnb_memory_seq_rm(wnb_context * c, int32_t seq, int32_t p0, int32_t p1) {
    return c && llama_memory_seq_rm(llama_get_memory(c->ctx), seq, p0, p1) ? 1 : 0;
}
void wnb_memory_seq_cp(wnb_context * c, int32_t src, int32_t dst, int32_t p0, int32_t p1) {
    if (c) llama_memory_seq_cp(llama_get_memory(c->ctx), src, dst, p0, p1);
}
void wnb_memory_seq_keep(wnb_context * c, int32_t seq) {
    if (c) llama_memory_seq_keep(llama_get_memory(c->ctx), seq);
}
void wnb_memory_seq_add(wnb_context * c, int32_t seq, int32_t p0, int32_t p1, int32_t delta) {
    if (c) llama_memory_seq_add(llama_get_memory(c->ctx), seq, p0, p1, delta);
}
int32_t wnb_memory_seq_pos_min(wnb_context * c, int32_t seq) {
    return c ? llama_memory_seq_pos_min(llama_get_memory(c->ctx), seq) : -1;
}
int32_t wnb_memory_seq_pos_max(wnb_context * c, int32_t seq) {
    return c ? llama_memory_seq_pos_max(llama_get_memory(c->ctx), seq) : -1;
}
uint8_t wnb_memory_can_shift(wnb_context * c) {
    return c && llama_memory_can_shift(llama_get_memory(c->ctx)) ? 1 : 0;
}

int32_t wnb_state_seq_save(wnb_context * c, const char * path, int32_t seq, const int32_t * tokens,
                           int32_t n_tokens, wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!c || !path) return fail(err, WNB_ERR_INVALID_ARGUMENT, "context or path is NULL");
    size_t n = llama_state_seq_save_file(c->ctx, path, seq, tokens, (size_t) std::max(0, n_tokens));
    if (n == 0) return fail(err, WNB_ERR_STATE, std::string("could not save session state to ") + path);
    return WNB_OK;
    WNB_CATCH(err)
}

int32_t wnb_state_seq_load(wnb_context * c, const char * path, int32_t seq, int32_t * tokens, int32_t cap,
                           int32_t * n_out, wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!c || !path || !n_out) return fail(err, WNB_ERR_INVALID_ARGUMENT, "context, path or n_out is NULL");
    struct stat st;
    if (stat(path, &st) != 0) return fail(err, WNB_ERR_FILE_NOT_FOUND, std::string("no state file ") + path);
    size_t count = 0;
    size_t n = llama_state_seq_load_file(c->ctx, path, seq, tokens, (size_t) std::max(0, cap), &count);
    if (n == 0) {
        return fail(err, WNB_ERR_STATE,
                    std::string("could not restore session state from ") + path +
                        " (wrong model or context, corrupt file, or more tokens than the buffer holds)");
    }
    *n_out = (int32_t) count;
    return WNB_OK;
    WNB_CATCH(err)
}

int32_t wnb_state_seq_get(wnb_context * c, int32_t seq, uint32_t flags, uint8_t * buf, int32_t cap) {
    if (!c) return 0;
    try {
        const size_t need = llama_state_seq_get_size_ext(c->ctx, seq, flags);
        if (need > (size_t) INT32_MAX) return 0;
        if (!buf || cap < (int32_t) need) return (int32_t) need;
        return (int32_t) llama_state_seq_get_data_ext(c->ctx, buf, (size_t) cap, seq, flags);
    } catch (...) {
        return 0;
    }
}

int32_t wnb_state_seq_set(wnb_context * c, int32_t seq, uint32_t flags, const uint8_t * data, int32_t len,
                          wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!c || !data || len <= 0) return fail(err, WNB_ERR_INVALID_ARGUMENT, "context or data is NULL or empty");
    size_t n = llama_state_seq_set_data_ext(c->ctx, data, (size_t) len, seq, flags);
    if (n == 0) return fail(err, WNB_ERR_STATE, "llama.cpp refused the sequence state (another model or context?)");
    return WNB_OK;
    WNB_CATCH(err)
}

void wnb_perf(const wnb_context * c, double * out) {
    if (!c || !out) return;
    llama_perf_context_data d = llama_perf_context(c->ctx);
    out[0] = d.t_load_ms;
    out[1] = d.t_p_eval_ms;
    out[2] = d.t_eval_ms;
    out[3] = d.n_p_eval;
    out[4] = d.n_eval;
    out[5] = d.n_reused;
}
void wnb_perf_reset(wnb_context * c) {
    if (c) llama_perf_context_reset(c->ctx);
}

// ---------------------------------------------------------------- samplers

void wnb_sampler_default_params(wnb_sampler_params * out) {
    if (!out) return;
    common_params_sampling d;
    memset(out, 0, sizeof(*out));
    out->seed = d.seed;
    out->n_prev = d.n_prev;
    out->n_probs = d.n_probs;
    out->min_keep = d.min_keep;
    out->top_k = d.top_k;
    out->top_p = d.top_p;
    out->min_p = d.min_p;
    out->xtc_probability = d.xtc_probability;
    out->xtc_threshold = d.xtc_threshold;
    out->typ_p = d.typ_p;
    out->temp = d.temp;
    out->dynatemp_range = d.dynatemp_range;
    out->dynatemp_exponent = d.dynatemp_exponent;
    out->penalty_last_n = d.penalty_last_n;
    out->penalty_repeat = d.penalty_repeat;
    out->penalty_freq = d.penalty_freq;
    out->penalty_present = d.penalty_present;
    out->dry_multiplier = d.dry_multiplier;
    out->dry_base = d.dry_base;
    out->dry_allowed_length = d.dry_allowed_length;
    out->dry_penalty_last_n = d.dry_penalty_last_n;
    out->mirostat = d.mirostat;
    out->mirostat_tau = d.mirostat_tau;
    out->mirostat_eta = d.mirostat_eta;
    out->top_n_sigma = d.top_n_sigma;
    out->adaptive_target = d.adaptive_target;
    out->adaptive_decay = d.adaptive_decay;
    out->ignore_eos = d.ignore_eos ? 1 : 0;
    out->grammar_lazy = 0;
    out->n_dry_sequence_breakers = -1;
}

int32_t wnb_sampler_new(const wnb_model * model, const wnb_sampler_params * p, wnb_sampler ** out,
                        wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!out) return fail(err, WNB_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    if (!model || !p) return fail(err, WNB_ERR_INVALID_ARGUMENT, "model or params is NULL");
    common_params_sampling s;
    s.seed = p->seed;
    s.n_prev = p->n_prev;
    s.n_probs = p->n_probs;
    s.min_keep = p->min_keep;
    s.top_k = p->top_k;
    s.top_p = p->top_p;
    s.min_p = p->min_p;
    s.xtc_probability = p->xtc_probability;
    s.xtc_threshold = p->xtc_threshold;
    s.typ_p = p->typ_p;
    s.temp = p->temp;
    s.dynatemp_range = p->dynatemp_range;
    s.dynatemp_exponent = p->dynatemp_exponent;
    s.penalty_last_n = p->penalty_last_n;
    s.penalty_repeat = p->penalty_repeat;
    s.penalty_freq = p->penalty_freq;
    s.penalty_present = p->penalty_present;
    s.dry_multiplier = p->dry_multiplier;
    s.dry_base = p->dry_base;
    s.dry_allowed_length = p->dry_allowed_length;
    s.dry_penalty_last_n = p->dry_penalty_last_n;
    s.mirostat = p->mirostat;
    s.mirostat_tau = p->mirostat_tau;
    s.mirostat_eta = p->mirostat_eta;
    s.top_n_sigma = p->top_n_sigma;
    s.adaptive_target = p->adaptive_target;
    s.adaptive_decay = p->adaptive_decay;
    s.ignore_eos = p->ignore_eos != 0;
    s.grammar_lazy = p->grammar_lazy != 0;
    if (p->samplers && *p->samplers) {
        std::vector<std::string> names;
        std::string cur;
        for (const char * q = p->samplers;; q++) {
            if (*q == ';' || *q == '\0') {
                if (!cur.empty()) names.push_back(cur);
                cur.clear();
                if (*q == '\0') break;
            } else {
                cur += *q;
            }
        }
        s.samplers = common_sampler_types_from_names(names);
    }
    if (p->n_dry_sequence_breakers >= 0) {
        s.dry_sequence_breakers.clear();
        for (int32_t i = 0; i < p->n_dry_sequence_breakers; i++) {
            if (p->dry_sequence_breakers && p->dry_sequence_breakers[i]) {
                s.dry_sequence_breakers.emplace_back(p->dry_sequence_breakers[i]);
            }
        }
    }
    if (p->grammar && *p->grammar) s.grammar = common_grammar(COMMON_GRAMMAR_TYPE_USER, p->grammar);
    for (int32_t i = 0; i < p->n_grammar_triggers; i++) {
        const wnb_grammar_trigger & t = p->grammar_triggers[i];
        if (t.type < 0 || t.type > 3) {
            return fail(err, WNB_ERR_INVALID_ARGUMENT, "grammar trigger type must be 0..3");
        }
        common_grammar_trigger ct;
        ct.type = (common_grammar_trigger_type) t.type;
        ct.token = t.type == 0 ? t.token : LLAMA_TOKEN_NULL;
        ct.value = t.value ? t.value : "";
        s.grammar_triggers.push_back(ct);
    }
    const int32_t n_vocab = llama_vocab_n_tokens(model->vocab);
    for (int32_t i = 0; i < p->n_logit_bias; i++) {
        const wnb_logit_bias & lb = p->logit_bias[i];
        if (lb.token < 0 || lb.token >= n_vocab) {
            return fail(err, WNB_ERR_INVALID_ARGUMENT,
                        "logit_bias token " + std::to_string(lb.token) + " is outside the vocabulary (0.." +
                            std::to_string(n_vocab - 1) + ")");
        }
        s.logit_bias.push_back({lb.token, lb.bias});
    }
    if (s.ignore_eos) {
        // common_sampler_init reads only logit_bias: ban the end-of-generation
        // tokens there, as common_init_from_params does for --ignore-eos.
        for (int32_t t = 0; t < n_vocab; t++) {
            if (llama_vocab_is_eog(model->vocab, t)) {
                s.logit_bias_eog.push_back({t, -INFINITY});
                s.logit_bias.push_back({t, -INFINITY});
            }
        }
    }
    tl_last_log_error.clear();
    common_sampler * cs = nullptr;
    try {
        cs = common_sampler_init(model->model, s);
    } catch (const std::invalid_argument & e) {
        return fail(err, WNB_ERR_INVALID_ARGUMENT, e.what());
    } catch (const std::exception & e) {
        const bool has_grammar = p->grammar && *p->grammar;
        return fail(err, has_grammar ? WNB_ERR_GRAMMAR : WNB_ERR_INVALID_ARGUMENT,
                    std::string(has_grammar ? "grammar: " : "") + e.what() +
                        (tl_last_log_error.empty() ? "" : " (" + tl_last_log_error + ")"));
    }
    if (!cs) {
        std::string why = tl_last_log_error.empty() ? "the grammar did not parse" : tl_last_log_error;
        return fail(err, WNB_ERR_GRAMMAR, "could not build the sampler: " + why);
    }
    auto * ws = new wnb_sampler();
    ws->owner = model;
    ws->smpl = cs;
    ws->ignore_eos = s.ignore_eos;
    *out = ws;
    return WNB_OK;
    WNB_CATCH(err)
}

void wnb_sampler_free(wnb_sampler * s) {
    if (!s) return;
    try {
        common_sampler_free(s->smpl);
        delete s;
    } catch (...) {
    }
}

void wnb_sampler_reset(wnb_sampler * s) {
    if (s) common_sampler_reset(s->smpl);
}

void wnb_sampler_accept(wnb_sampler * s, int32_t token) {
    if (!s) return;
    try {
        common_sampler_accept(s->smpl, token, false);
    } catch (...) {
    }
}

int32_t wnb_sampler_sample(wnb_sampler * s, wnb_context * c, int32_t idx, wnb_error * err) {
    try {
        if (!s || !c) {
            fail(err, WNB_ERR_INVALID_ARGUMENT, "sampler or context is NULL");
            return -1;
        }
        llama_token t = common_sampler_sample(s->smpl, c->ctx, idx);
        common_sampler_accept(s->smpl, t, true);
        return t;
    } catch (const std::exception & e) {
        fail(err, WNB_ERR_GRAMMAR, std::string("sampling failed: ") + e.what());
        return -1;
    } catch (...) {
        fail(err, WNB_ERR_INTERNAL, "sampling failed");
        return -1;
    }
}

int32_t wnb_sampler_probs(wnb_sampler * s, int32_t * tokens, float * probs, int32_t n) {
    if (!s || n <= 0) return 0;
    try {
        llama_token_data_array * cur = common_sampler_get_candidates(s->smpl, true);
        if (!cur) return 0;
        int32_t m = std::min<int32_t>(n, (int32_t) cur->size);
        for (int32_t i = 0; i < m; i++) {
            if (tokens) tokens[i] = cur->data[i].id;
            if (probs) probs[i] = cur->data[i].p;
        }
        return m;
    } catch (...) {
        return 0;
    }
}

uint32_t wnb_sampler_seed(const wnb_sampler * s) { return s ? common_sampler_get_seed(s->smpl) : 0; }

int32_t wnb_generate_step(wnb_context * c, wnb_sampler * s, int32_t idx, int32_t seq_id, int32_t pos,
                          int32_t * token_out, wnb_error * err) {
    WNB_TRY
    clear_error(err);
    if (!c || !s || !token_out) return fail(err, WNB_ERR_INVALID_ARGUMENT, "context, sampler or token_out is NULL");
    llama_token t = common_sampler_sample(s->smpl, c->ctx, idx);
    common_sampler_accept(s->smpl, t, true);
    *token_out = t;
    if (llama_vocab_is_eog(c->owner->vocab, t) && !s->ignore_eos) return WNB_OK;
    ensure_batch(c, 1);
    llama_batch & b = c->batch;
    b.n_tokens = 1;
    b.token[0] = t;
    b.pos[0] = pos;
    b.n_seq_id[0] = 1;
    b.seq_id[0][0] = seq_id;
    b.logits[0] = 1;
    return decode_batch(c, err);
    WNB_CATCH(err)
}

}  // extern "C"

namespace {

llama_model_params to_llama_mparams(const wnb_model_params * p) {
    llama_model_params mp = llama_model_default_params();
    if (p) {
        mp.n_gpu_layers = p->n_gpu_layers;
        mp.main_gpu = p->main_gpu;
        mp.split_mode = (llama_split_mode) std::clamp(p->split_mode, 0, 2);
        mp.vocab_only = p->vocab_only != 0;
    }
    return mp;
}

llama_context_params to_llama_cparams(const wnb_context_params * p) {
    llama_context_params cp = llama_context_default_params();
    if (p) {
        cp.n_ctx = p->n_ctx;
        cp.n_batch = p->n_batch;
        cp.n_ubatch = std::min(p->n_ubatch, p->n_batch);
        cp.n_seq_max = std::max<uint32_t>(1, p->n_seq_max);
        if (p->n_threads > 0) cp.n_threads = p->n_threads;
        cp.flash_attn_type = (llama_flash_attn_type) p->flash_attn;
        if (p->type_k >= 0) cp.type_k = (ggml_type) p->type_k;
        if (p->type_v >= 0) cp.type_v = (ggml_type) p->type_v;
        cp.embeddings = p->embeddings != 0;
        cp.offload_kqv = p->offload_kqv != 0;
        cp.kv_unified = p->kv_unified != 0;
        cp.swa_full = p->swa_full != 0;
    }
    return cp;
}

}  // namespace

extern "C" {

int32_t wnb_estimate_memory(const char * path, const wnb_model_params * mparams, const wnb_context_params * cparams,
                            char * buf, int32_t cap, wnb_error * err) {
    try {
        clear_error(err);
        wnb_init();
        int32_t rc = check_model_file(path, err);
        if (rc != WNB_OK) return -rc;
        llama_model_params mp = to_llama_mparams(mparams);
        llama_context_params cp = to_llama_cparams(cparams);
        wnb_placement placement;
        {
            std::string why;
            int32_t prc = wnb_placement_apply(mparams, mp, placement, why);
            if (prc != WNB_OK) return -fail(err, prc, why);
        }
        std::vector<ggml_backend_dev_t> devs;
        uint32_t n_layer = 0, n_ctx_train = 0, n_expert = 0;
        tl_last_log_error.clear();
        auto data = common_get_device_memory_data(path, &mp, &cp, devs, n_layer, n_ctx_train, n_expert,
                                                  GGML_LOG_LEVEL_ERROR);
        std::string j = "{\"n_layer\":" + std::to_string(n_layer) + ",\"n_ctx_train\":" + std::to_string(n_ctx_train) +
                        ",\"devices\":[";
        for (size_t i = 0; i < data.size(); i++) {
            const char * name = i < devs.size() ? ggml_backend_dev_name(devs[i]) : "Host";
            if (i) j += ",";
            j += "{\"name\":" + json_str(name) + ",\"free\":" + std::to_string(data[i].free) +
                 ",\"total\":" + std::to_string(data[i].total) + ",\"model\":" + std::to_string(data[i].model) +
                 ",\"context\":" + std::to_string(data[i].context) + ",\"compute\":" +
                 std::to_string(data[i].compute) + "}";
        }
        j += "]}";
        return copy_out(j, buf, cap);
    } catch (const std::exception & e) {
        std::string why = tl_last_log_error.empty() ? e.what() : tl_last_log_error;
        return -fail(err, WNB_ERR_INVALID_MODEL, std::string("cannot estimate memory for ") + (path ? path : "") + ": " + why);
    } catch (...) {
        return -fail(err, WNB_ERR_INTERNAL, "unknown C++ exception");
    }
}

int32_t wnb_fit_params(const char * path, wnb_model_params * mparams, wnb_context_params * cparams, uint32_t n_ctx_min,
                       wnb_error * err) {
    WNB_TRY
    clear_error(err);
    wnb_init();
    if (!mparams || !cparams) return fail(err, WNB_ERR_INVALID_ARGUMENT, "params are NULL");
    int32_t rc = check_model_file(path, err);
    if (rc != WNB_OK) return rc;
    llama_model_params mp = to_llama_mparams(mparams);
    llama_context_params cp = to_llama_cparams(cparams);
    if (mparams->n_gpu_layers == -2) mp.n_gpu_layers = -1;  // let the fit choose
    wnb_placement placement;
    {
        std::string why;
        int32_t prc = wnb_placement_apply(mparams, mp, placement, why);
        if (prc != WNB_OK) return fail(err, prc, why);
    }
    std::vector<float> split(llama_max_devices(), 0.0f);
    std::vector<llama_model_tensor_buft_override> overrides(llama_max_tensor_buft_overrides());
    std::vector<size_t> margins(llama_max_devices() + 1, (size_t) 1024 * 1024 * 1024);
    tl_last_log_error.clear();
    common_params_fit_status st = common_fit_params(path, &mp, &cp, split.data(), overrides.data(), margins.data(),
                                                    n_ctx_min, nullptr, GGML_LOG_LEVEL_ERROR);
    mparams->n_gpu_layers = mp.n_gpu_layers;
    cparams->n_ctx = cp.n_ctx;
    // With more than one device the fit chose a split (layers per device): hand it back.
    if (mp.tensor_split == split.data() && mparams->tensor_split && mparams->n_tensor_split > 0) {
        size_t n = std::min<size_t>((size_t) mparams->n_tensor_split, split.size());
        std::copy(split.begin(), split.begin() + n, mparams->tensor_split);
    }
    if (st == COMMON_PARAMS_FIT_STATUS_SUCCESS) return WNB_OK;
    std::string why = tl_last_log_error.empty() ? "no allocation fits the free memory" : tl_last_log_error;
    return fail(err, st == COMMON_PARAMS_FIT_STATUS_FAILURE ? WNB_ERR_OUT_OF_MEMORY : WNB_ERR_INVALID_MODEL,
                std::string("cannot fit ") + path + ": " + why);
    WNB_CATCH(err)
}

}  // extern "C"
