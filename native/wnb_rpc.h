/*
 * wnb_rpc.h - internal glue for RPC devices between the shim's source files
 * (not part of the ABI: nothing here is exported from libwasi_nn_backend.so).
 *
 * native/wnb_rpc.cpp owns the registered endpoints and the probes;
 * wasi_nn_shim.cpp asks it for the devices and the tensor split of a model
 * (wnb_model_params.rpc_servers, .tensor_split) before llama.cpp sees them.
 */
#ifndef WNB_RPC_H
#define WNB_RPC_H

#include "wasi_nn_shim.h"

#include "ggml-backend.h"
#include "llama.h"

#include <string>
#include <vector>

/* Where a model's weights go: the devices list (NULL-terminated) and the
 * split that llama_model_params point into. Lives as long as the llama.cpp
 * call that reads them. Holding it marks its endpoints as in use by this
 * process (see wnb_rpc_probe); hand the endpoints to the model with
 * release_to() once the model loaded, else the destructor lets them go. */
struct wnb_placement {
    std::vector<ggml_backend_dev_t> devices;
    std::vector<float>              split;
    std::vector<std::string>        endpoints;
    bool                            held = false;

    wnb_placement() = default;
    wnb_placement(const wnb_placement &) = delete;
    wnb_placement & operator=(const wnb_placement &) = delete;
    ~wnb_placement();

    /* Moves the in-use mark of the endpoints to `out` (a model's list). */
    void release_to(std::vector<std::string> & out);
};

/* Fills mp.devices and mp.tensor_split from p (NULL: nothing changes) into
 * pl's storage: probes and registers p->rpc_servers' endpoints, and keeps
 * RPC devices out of a model that names none. Returns WNB_OK, else a
 * wnb_status with the message in *why (llama.cpp not called). */
int32_t wnb_placement_apply(const wnb_model_params * p, llama_model_params & mp, wnb_placement & pl,
                            std::string & why);

/* Ends a loaded model's use of its endpoints (wnb_model_free). */
void wnb_rpc_release(const std::vector<std::string> & endpoints);

/* The "devices" entries of wnb_info_json for RPC devices: whether dev is
 * one, and if so its JSON fields after "name"/"description" (type, endpoint,
 * memory asked only after a probe). */
bool wnb_rpc_device_json(ggml_backend_dev_t dev, std::string & fields);

/* The local devices llama.cpp's default selection picks (GPUs, else
 * integrated GPUs), never an RPC device: for contexts that pick a device
 * themselves (mtmd's clip picks the first GPU-type device, which may be a
 * registered RPC server). Empty on a CPU-only build. */
std::vector<ggml_backend_dev_t> wnb_local_devices();

#endif /* WNB_RPC_H */
