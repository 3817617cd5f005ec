/*
 * wnb_internal.h - internal glue between the shim's source files (not part
 * of the ABI: nothing here is exported from libwasi_nn_backend.so).
 *
 * The error helpers every source file's ABI functions use (an error comes
 * back as a code plus a message; no exception crosses the ABI), and the
 * llama.cpp objects behind the opaque wnb_model and wnb_context handles,
 * which wasi_nn_shim.cpp defines and native/wnb_mtmd.cpp needs.
 */
#ifndef WNB_INTERNAL_H
#define WNB_INTERNAL_H

#include "wasi_nn_shim.h"

#ifdef __cplusplus
#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace wnb {

/* Sets *err (when not NULL) to code and msg (cut to the buffer). */
inline void set_error(wnb_error * err, int32_t code, const std::string & msg) {
    if (!err) return;
    err->code = code;
    size_t n = std::min(msg.size(), sizeof(err->message) - 1);
    memcpy(err->message, msg.data(), n);
    err->message[n] = '\0';
}

/* Sets *err (when not NULL) to WNB_OK with no message. */
inline void clear_error(wnb_error * err) {
    if (!err) return;
    err->code = WNB_OK;
    err->message[0] = '\0';
}

/* set_error, then returns code. */
inline int32_t fail(wnb_error * err, int32_t code, const std::string & msg) {
    set_error(err, code, msg);
    return code;
}

/* Copies s into buf when it fits (with a NUL when room). Returns s's size. */
inline int32_t copy_out(const std::string & s, char * buf, int32_t cap) {
    if (buf && cap > 0 && (int64_t) s.size() <= cap) {
        memcpy(buf, s.data(), s.size());
        if ((int64_t) s.size() < cap) buf[s.size()] = '\0';
    }
    return (int32_t) s.size();
}

}  // namespace wnb

/* An ABI function's body: WNB_TRY ... WNB_CATCH(err) turns any exception into
 * an error code and message (the function returns int32_t). */
#define WNB_TRY try {
#define WNB_CATCH(err)                                                         \
    }                                                                          \
    catch (const std::bad_alloc &) {                                           \
        return wnb::fail(err, WNB_ERR_OUT_OF_MEMORY, "out of memory");         \
    }                                                                          \
    catch (const std::exception & e) {                                         \
        return wnb::fail(err, WNB_ERR_INTERNAL, e.what());                     \
    }                                                                          \
    catch (...) {                                                              \
        return wnb::fail(err, WNB_ERR_INTERNAL, "unknown C++ exception");      \
    }
#endif

struct llama_model;
struct llama_context;

/* The model's llama_model (borrowed; NULL for NULL). */
const llama_model * wnb_internal_llama_model(const wnb_model * model);
/* The context's llama_context (borrowed; NULL for NULL). */
llama_context * wnb_internal_llama_context(wnb_context * ctx);
/* The model a context was created for (borrowed; NULL for NULL). */
const wnb_model * wnb_internal_context_model(const wnb_context * ctx);

#endif /* WNB_INTERNAL_H */
