// wnb_rpc.cpp - RPC devices (llama.cpp's rpc-server) for wasi_nn_shim.h:
// endpoint probes, registration as llama.cpp's --rpc does it, per-model
// device lists and tensor splits, remote memory. Every exported function
// catches every exception: none crosses the C ABI.

#include "wasi_nn_shim.h"
#include "wnb_internal.h"
#include "wnb_rpc.h"

#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "llama.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

constexpr int32_t DEFAULT_TIMEOUT_MS = 5000;
// ggml-rpc.cpp's wire format (protocol 6): a command is | cmd (1 byte) |
// size (8 bytes, little-endian) | payload |, a reply | size (8) | payload |.
// HELLO (command 14, fixed for every version) sends the client's transport
// capabilities (RPC_CONN_CAPS_SIZE = 24 bytes; zeros: plain TCP) and gets
// | major | minor | patch | pad | 24 bytes of capabilities |.
constexpr uint8_t RPC_HELLO = 14;
constexpr uint8_t RPC_DEVICE_COUNT = 15;
constexpr uint8_t RPC_GET_DEVICE_MEMORY = 11;
constexpr size_t  CAPS_SIZE = 24;
constexpr size_t  HELLO_RSP_SIZE = 4 + CAPS_SIZE;

using wnb::clear_error;
using wnb::fail;

// Registered endpoints and how many loaded models (or loads under way) of
// this process use each: while one does, its connection is the server's one
// client, so a probe connects but does not expect a HELLO reply.
struct rpc_state {
    std::mutex                                mu;
    std::map<std::string, ggml_backend_reg_t> regs;
    std::map<std::string, int>                in_use;
};

rpc_state & state() {
    static rpc_state * s = new rpc_state();  // never destroyed: safe at exit
    return *s;
}

bool in_use(const std::string & ep) {
    auto & s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.in_use.find(ep);
    return it != s.in_use.end() && it->second > 0;
}

void acquire(const std::vector<std::string> & eps) {
    auto & s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    for (const auto & e : eps) s.in_use[e]++;
}

void release(const std::vector<std::string> & eps) {
    auto & s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    for (const auto & e : eps) {
        auto it = s.in_use.find(e);
        if (it != s.in_use.end() && --it->second <= 0) s.in_use.erase(it);
    }
}

bool is_rpc_device(ggml_backend_dev_t dev) {
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
    return reg && strcmp(ggml_backend_reg_name(reg), "RPC") == 0;
}

// "host:port" as ggml-rpc's parse_endpoint reads it, but strict: one ':', a
// host of letters, digits, '.', '-' and '_', a decimal port 1..65535.
bool parse_endpoint(const std::string & ep, std::string & host, int & port, std::string & why) {
    const std::string quoted = "\"" + ep + "\"";
    size_t colon = ep.find(':');
    if (ep.empty()) {
        why = "empty RPC endpoint (expected host:port)";
        return false;
    }
    if (colon == std::string::npos || ep.find(':', colon + 1) != std::string::npos) {
        why = "RPC endpoint " + quoted + " is not host:port (an IPv4 address or host name, then :port; IPv6 is not supported)";
        return false;
    }
    host = ep.substr(0, colon);
    std::string p = ep.substr(colon + 1);
    if (host.empty()) {
        why = "RPC endpoint " + quoted + " has no host";
        return false;
    }
    for (unsigned char c : host) {
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_')) {
            why = "RPC endpoint " + quoted + ": the host may hold only letters, digits, '.', '-' and '_'";
            return false;
        }
    }
    if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), [](unsigned char c) { return isdigit(c); })) {
        why = "RPC endpoint " + quoted + ": the port must be a number 1..65535";
        return false;
    }
    port = std::stoi(p);
    if (port < 1 || port > 65535) {
        why = "RPC endpoint " + quoted + ": the port must be a number 1..65535";
        return false;
    }
    return true;
}

using clock_type = std::chrono::steady_clock;

int remaining_ms(clock_type::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
    return left > 0 ? (int) left : 0;
}

// Waits for fd to be ready for `events` until the deadline. 1 ready, 0 timed out, -1 error.
int wait_fd(int fd, short events, clock_type::time_point deadline) {
    for (;;) {
        struct pollfd pfd = { fd, events, 0 };
        int r = poll(&pfd, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        return r > 0 ? 1 : 0;
    }
}

struct fd_closer {
    int fd;
    ~fd_closer() {
        if (fd >= 0) close(fd);
    }
};

// One connection of our own to an rpc-server (never through ggml-rpc,
// whose client aborts the process on any failure), with one deadline.
struct rpc_conn {
    std::string             ep;
    std::string             name;  // "RPC server host:port", for messages
    int32_t                 timeout_ms = DEFAULT_TIMEOUT_MS;
    clock_type::time_point  deadline;
    fd_closer               sock{ -1 };

    // TCP connect; with hello also the HELLO and the protocol version.
    int32_t open(const std::string & endpoint, int32_t timeout, bool hello, std::string & why) {
        ep = endpoint;
        name = "RPC server " + ep;
        std::string host;
        int         port = 0;
        if (!parse_endpoint(ep, host, port, why)) return WNB_ERR_INVALID_ARGUMENT;
        timeout_ms = timeout > 0 ? timeout : DEFAULT_TIMEOUT_MS;
        deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);

        // IPv4, as ggml-rpc's client (gethostbyname, AF_INET) resolves it.
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        struct addrinfo * res = nullptr;
        int gai = getaddrinfo(host.c_str(), nullptr, &hints, &res);
        if (gai != 0 || !res) {
            why = name + ": cannot resolve host '" + host + "' to an IPv4 address (" + gai_strerror(gai) + ")";
            return WNB_ERR_UNREACHABLE;
        }
        struct sockaddr_in addr;
        memcpy(&addr, res->ai_addr, sizeof(addr));
        freeaddrinfo(res);
        addr.sin_port = htons((uint16_t) port);

        sock.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (sock.fd < 0) {
            why = name + ": socket() failed: " + strerror(errno);
            return WNB_ERR_UNREACHABLE;
        }
        int rc = connect(sock.fd, (struct sockaddr *) &addr, sizeof(addr));
        if (rc != 0 && errno != EINPROGRESS) return connect_failed(errno, why);
        if (rc != 0) {
            int w = wait_fd(sock.fd, POLLOUT, deadline);
            if (w == 0) {
                why = name + ": no answer within " + std::to_string(timeout_ms) + " ms (connect timed out)";
                return WNB_ERR_UNREACHABLE;
            }
            int       soerr = 0;
            socklen_t len = sizeof(soerr);
            if (w < 0 || getsockopt(sock.fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
                return connect_failed(w < 0 ? errno : soerr, why);
            }
        }
        if (!hello) return WNB_OK;
        uint8_t caps[CAPS_SIZE] = { 0 };
        uint8_t rsp[HELLO_RSP_SIZE];
        int32_t st = call(RPC_HELLO, caps, sizeof(caps), rsp, sizeof(rsp), "HELLO", why);
        if (st != WNB_OK) return st;
        int major = rsp[0], minor = rsp[1], patch = rsp[2];
        if (major != RPC_PROTO_MAJOR_VERSION || minor > RPC_PROTO_MINOR_VERSION) {
            why = name + ": speaks RPC protocol " + std::to_string(major) + "." + std::to_string(minor) + "." +
                  std::to_string(patch) + ", this library " + std::to_string(RPC_PROTO_MAJOR_VERSION) + "." +
                  std::to_string(RPC_PROTO_MINOR_VERSION) + "." + std::to_string(RPC_PROTO_PATCH_VERSION) +
                  " (use the ggml-rpc-server built with this library)";
            return WNB_ERR_UNREACHABLE;
        }
        return WNB_OK;
    }

    int32_t connect_failed(int e, std::string & why) {
        why = name + (e == ECONNREFUSED ? ": connection refused (nothing listens there)"
                                        : std::string(": connect failed: ") + strerror(e));
        return WNB_ERR_UNREACHABLE;
    }

    // Sends | cmd | size | req | and reads | size | rsp | (size must be rsp_size).
    int32_t call(uint8_t cmd, const void * req, uint64_t req_size, void * rsp, uint64_t rsp_size, const char * what,
                 std::string & why) {
        std::vector<uint8_t> out(1 + 8 + req_size);
        out[0] = cmd;
        memcpy(out.data() + 1, &req_size, 8);  // little-endian hosts, as ggml-rpc
        if (req_size) memcpy(out.data() + 9, req, req_size);
        size_t sent = 0;
        while (sent < out.size()) {
            if (wait_fd(sock.fd, POLLOUT, deadline) <= 0) {
                why = name + ": could not send the RPC " + what + " within " + std::to_string(timeout_ms) + " ms";
                return WNB_ERR_UNREACHABLE;
            }
            ssize_t n = send(sock.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n <= 0) {
                why = name + ": the connection broke while sending the RPC " + what + ": " + strerror(errno);
                return WNB_ERR_UNREACHABLE;
            }
            sent += (size_t) n;
        }
        uint64_t size = 0;
        int32_t  st = recv_all(&size, 8, what, why);
        if (st != WNB_OK) return st;
        if (size != rsp_size) {
            why = name + ": the reply to the RPC " + what + " is not ggml-rpc protocol " +
                  std::to_string(RPC_PROTO_MAJOR_VERSION) + " (not an rpc-server, or another version)";
            return WNB_ERR_UNREACHABLE;
        }
        return recv_all(rsp, rsp_size, what, why);
    }

    int32_t recv_all(void * buf, size_t len, const char * what, std::string & why) {
        size_t got = 0;
        while (got < len) {
            int w = wait_fd(sock.fd, POLLIN, deadline);
            if (w == 0) {
                why = name + ": accepted the connection but sent no reply to the RPC " + what + " within " +
                      std::to_string(timeout_ms) +
                      " ms (an rpc-server serves one client at a time: another client may hold it; or it is not an "
                      "rpc-server)";
                return WNB_ERR_UNREACHABLE;
            }
            ssize_t n = w < 0 ? -1 : recv(sock.fd, (uint8_t *) buf + got, len - got, 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n <= 0) {
                why = name + ": closed the connection without a reply to the RPC " + what +
                      " (not an rpc-server, or one of another protocol version: use the ggml-rpc-server built with "
                      "this library)";
                return WNB_ERR_UNREACHABLE;
            }
            got += (size_t) n;
        }
        return WNB_OK;
    }
};

// The probe. WNB_OK, or WNB_ERR_INVALID_ARGUMENT / WNB_ERR_UNREACHABLE with why.
int32_t probe(const std::string & ep, int32_t timeout_ms, bool handshake, std::string & why) {
    rpc_conn c;
    return c.open(ep, timeout_ms, handshake, why);
}

// The probe before llama.cpp talks to ep: the HELLO only while no model of
// this process holds the server (else our probe would wait behind it).
int32_t guard(const std::string & ep, int32_t timeout_ms, std::string & why) {
    return probe(ep, timeout_ms, !in_use(ep), why);
}

// Probes ep (every call: a registered server may have died since), then
// registers it unless it is; *reg gets its registry.
int32_t register_endpoint(const std::string & ep, int32_t timeout_ms, ggml_backend_reg_t * out, std::string & why) {
    int32_t rc = guard(ep, timeout_ms, why);
    if (rc != WNB_OK) return rc;
    auto & s = state();
    {
        std::lock_guard<std::mutex> lock(s.mu);
        auto it = s.regs.find(ep);
        if (it != s.regs.end()) {
            *out = it->second;
            return WNB_OK;
        }
    }
    ggml_backend_reg_t rpc_reg = ggml_backend_reg_by_name("RPC");
    if (!rpc_reg) {
        why = "this library was built without ggml's RPC backend (GGML_RPC=ON)";
        return WNB_ERR_INVALID_ARGUMENT;
    }
    typedef ggml_backend_reg_t (*add_server_t)(const char * endpoint);
    auto add_server = (add_server_t) ggml_backend_reg_get_proc_address(rpc_reg, "ggml_backend_rpc_add_server");
    if (!add_server) {
        why = "ggml's RPC backend has no ggml_backend_rpc_add_server";
        return WNB_ERR_INTERNAL;
    }
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.regs.find(ep);  // another thread may have registered it meanwhile
    if (it != s.regs.end()) {
        *out = it->second;
        return WNB_OK;
    }
    ggml_backend_reg_t reg = add_server(ep.c_str());
    if (!reg) {
        why = "RPC server " + ep + " reports no devices";
        return WNB_ERR_UNREACHABLE;
    }
    ggml_backend_register(reg);
    s.regs[ep] = reg;
    *out = reg;
    return WNB_OK;
}

bool any_registered() {
    auto & s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    return !s.regs.empty();
}

// The local devices llama.cpp's default selection picks (src/llama.cpp,
// llama_model_load_from_file_impl): GPUs (one per device id), else
// integrated GPUs of one backend; never RPC devices, CPUs or accelerators.
std::vector<ggml_backend_dev_t> local_devices() {
    std::vector<ggml_backend_dev_t> gpus, igpus;
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        if (is_rpc_device(dev)) continue;
        switch (ggml_backend_dev_type(dev)) {
            case GGML_BACKEND_DEVICE_TYPE_GPU: {
                ggml_backend_dev_props props;
                ggml_backend_dev_get_props(dev, &props);
                bool dup = std::any_of(gpus.begin(), gpus.end(), [&](ggml_backend_dev_t d) {
                    ggml_backend_dev_props dp;
                    ggml_backend_dev_get_props(d, &dp);
                    return props.device_id && dp.device_id && strcmp(props.device_id, dp.device_id) == 0;
                });
                if (!dup) gpus.push_back(dev);
                break;
            }
            case GGML_BACKEND_DEVICE_TYPE_IGPU:
                if (igpus.empty() || ggml_backend_dev_backend_reg(dev) == ggml_backend_dev_backend_reg(igpus.back())) {
                    igpus.push_back(dev);
                }
                break;
            default:
                break;
        }
    }
    if (gpus.empty()) return igpus;
    return gpus;
}

// A device as the messages name it: "RPC0 (127.0.0.1:50052)", "CUDA0".
std::string device_label(ggml_backend_dev_t dev) {
    std::string name = ggml_backend_dev_name(dev);
    return is_rpc_device(dev) ? name + " (" + ggml_backend_dev_description(dev) + ")" : name;
}

// What llama.cpp checks late or not at all, checked before it loads: with
// split_mode none, main_gpu picks one of the model's devices (a negative one:
// none, the CPU only); split_mode row needs every device to have split buffers (CUDA
// has them; RPC and CPU devices do not, and llama.cpp throws mid-load).
int32_t check_split_mode(const wnb_model_params * p, const std::vector<ggml_backend_dev_t> & devs,
                         std::string & why) {
    auto list = [&]() {
        std::string s;
        for (size_t i = 0; i < devs.size(); i++) {
            s += (i ? ", " : "") + std::to_string(i) + " " + device_label(devs[i]);
        }
        return s;
    };
    if (p->split_mode == LLAMA_SPLIT_MODE_NONE && !devs.empty() && p->main_gpu >= (int32_t) devs.size()) {
        why = "main_gpu " + std::to_string(p->main_gpu) + " is not one of the model's devices (" + list() +
              "); use 0.." + std::to_string(devs.size() - 1);
        return WNB_ERR_INVALID_ARGUMENT;
    }
    if (p->split_mode == LLAMA_SPLIT_MODE_ROW) {
        for (ggml_backend_dev_t dev : devs) {
            ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
            if (!reg || !ggml_backend_reg_get_proc_address(reg, "ggml_backend_split_buffer_type")) {
                why = "split_mode \"row\" needs devices that split a tensor's rows (CUDA GPUs); " +
                      device_label(dev) + " cannot; use split_mode \"layer\"";
                return WNB_ERR_INVALID_ARGUMENT;
            }
        }
    }
    return WNB_OK;
}

std::vector<std::string> split_list(const char * list) {
    std::vector<std::string> out;
    std::string              cur;
    for (const char * c = list; *c; c++) {
        if (*c == ',') {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += *c;
        }
    }
    out.push_back(cur);
    return out;
}

}  // namespace

// ---------------------------------------------------------------- internal (wnb_rpc.h)

wnb_placement::~wnb_placement() {
    if (held) release(endpoints);
}

void wnb_placement::release_to(std::vector<std::string> & out) {
    out = endpoints;
    held = false;
}

int32_t wnb_placement_apply(const wnb_model_params * p, llama_model_params & mp, wnb_placement & pl,
                            std::string & why) {
    if (!p) return WNB_OK;
    if (p->n_tensor_split < 0 || (size_t) p->n_tensor_split > llama_max_devices()) {
        why = "n_tensor_split must be 0.." + std::to_string(llama_max_devices()) + ", got " +
              std::to_string(p->n_tensor_split);
        return WNB_ERR_INVALID_ARGUMENT;
    }
    if (p->n_tensor_split > 0) {
        if (!p->tensor_split) {
            why = "tensor_split is NULL but n_tensor_split is " + std::to_string(p->n_tensor_split);
            return WNB_ERR_INVALID_ARGUMENT;
        }
        pl.split.assign(llama_max_devices(), 0.0f);
        for (int32_t i = 0; i < p->n_tensor_split; i++) {
            float v = p->tensor_split[i];
            if (!std::isfinite(v) || v < 0) {
                why = "tensor_split[" + std::to_string(i) + "] must be a finite number >= 0, got " + std::to_string(v);
                return WNB_ERR_INVALID_ARGUMENT;
            }
            pl.split[i] = v;
        }
        mp.tensor_split = pl.split.data();
    }
    const bool named = p->rpc_servers && p->rpc_servers[0];
    if (!named && !any_registered()) {
        // llama.cpp's default selection has no RPC device to pick.
        return check_split_mode(p, local_devices(), why);
    }
    if (named) {
        for (const std::string & ep : split_list(p->rpc_servers)) {
            std::string host;
            int         port;
            if (!parse_endpoint(ep, host, port, why)) return WNB_ERR_INVALID_ARGUMENT;
            if (std::find(pl.endpoints.begin(), pl.endpoints.end(), ep) != pl.endpoints.end()) {
                why = "RPC endpoint \"" + ep + "\" is listed twice";
                return WNB_ERR_INVALID_ARGUMENT;
            }
            ggml_backend_reg_t reg = nullptr;
            int32_t            rc = register_endpoint(ep, p->rpc_timeout_ms, &reg, why);
            if (rc != WNB_OK) return rc;
            for (size_t i = 0; i < ggml_backend_reg_dev_count(reg); i++) {
                pl.devices.push_back(ggml_backend_reg_dev_get(reg, i));
            }
            pl.endpoints.push_back(ep);
        }
        acquire(pl.endpoints);
        pl.held = true;
    }
    // llama.cpp's order for --rpc: the RPC devices first, then the local GPUs.
    for (ggml_backend_dev_t dev : local_devices()) pl.devices.push_back(dev);
    int32_t rc = check_split_mode(p, pl.devices, why);
    if (rc != WNB_OK) return rc;
    pl.devices.push_back(nullptr);
    mp.devices = pl.devices.data();
    return WNB_OK;
}

std::vector<ggml_backend_dev_t> wnb_local_devices() {
    return local_devices();
}

void wnb_rpc_release(const std::vector<std::string> & endpoints) {
    try {
        release(endpoints);
    } catch (...) {
    }
}

bool wnb_rpc_device_json(ggml_backend_dev_t dev, std::string & fields) {
    if (!is_rpc_device(dev)) return false;
    // ggml-rpc names the device RPC<n> and describes it with its endpoint.
    std::string ep = ggml_backend_dev_description(dev);
    std::string why;
    size_t      free_mem = 0, total_mem = 0;
    bool        answered = guard(ep, 1000, why) == WNB_OK;
    if (answered) ggml_backend_dev_memory(dev, &free_mem, &total_mem);
    std::string ep_json = "\"";
    for (char c : ep) {
        if (c == '"' || c == '\\') ep_json += '\\';
        ep_json += c;
    }
    ep_json += "\"";
    fields = "\"type\":\"rpc\",\"endpoint\":" + ep_json + ",\"memory_free\":" + std::to_string(free_mem) +
             ",\"memory_total\":" + std::to_string(total_mem);
    if (!answered) {
        std::string w;
        for (char c : why) {
            if (c == '"' || c == '\\') w += '\\';
            w += (unsigned char) c < 0x20 ? ' ' : c;
        }
        fields += ",\"error\":\"" + w + "\"";
    }
    return true;
}

// ---------------------------------------------------------------- ABI

extern "C" {

uint8_t wnb_rpc_supported(void) {
    try {
        return llama_supports_rpc() ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

int32_t wnb_rpc_probe(const char * endpoint, int32_t timeout_ms, uint8_t handshake, wnb_error * err) {
    try {
        clear_error(err);
        if (!endpoint) return fail(err, WNB_ERR_INVALID_ARGUMENT, "endpoint is NULL");
        std::string why;
        int32_t     rc = probe(endpoint, timeout_ms, handshake != 0, why);
        return rc == WNB_OK ? WNB_OK : fail(err, rc, why);
    } catch (const std::exception & e) {
        return fail(err, WNB_ERR_INTERNAL, e.what());
    } catch (...) {
        return fail(err, WNB_ERR_INTERNAL, "unknown C++ exception");
    }
}

int32_t wnb_rpc_add_server(const char * endpoint, int32_t timeout_ms, int32_t * n_devices, wnb_error * err) {
    try {
        clear_error(err);
        if (n_devices) *n_devices = 0;
        if (!endpoint) return fail(err, WNB_ERR_INVALID_ARGUMENT, "endpoint is NULL");
        wnb_init();
        std::string        why, host;
        int                port;
        if (!parse_endpoint(endpoint, host, port, why)) return fail(err, WNB_ERR_INVALID_ARGUMENT, why);
        ggml_backend_reg_t reg = nullptr;
        int32_t            rc = register_endpoint(endpoint, timeout_ms, &reg, why);
        if (rc != WNB_OK) return fail(err, rc, why);
        if (n_devices) *n_devices = (int32_t) ggml_backend_reg_dev_count(reg);
        return WNB_OK;
    } catch (const std::exception & e) {
        return fail(err, WNB_ERR_INTERNAL, e.what());
    } catch (...) {
        return fail(err, WNB_ERR_INTERNAL, "unknown C++ exception");
    }
}

int32_t wnb_rpc_server_memory(const char * endpoint, int32_t timeout_ms, uint64_t * free_bytes,
                              uint64_t * total_bytes, int32_t cap, wnb_error * err) {
    try {
        clear_error(err);
        if (!endpoint) return -fail(err, WNB_ERR_INVALID_ARGUMENT, "endpoint is NULL");
        if (cap < 0) return -fail(err, WNB_ERR_INVALID_ARGUMENT, "cap must be >= 0");
        wnb_init();
        std::string                      ep = endpoint;
        std::string                      why;
        std::vector<std::array<uint64_t, 2>> mem;  // free, total per device
        if (!in_use(ep)) {
            // Our own connection: HELLO, the device count, each device's memory.
            rpc_conn c;
            int32_t  rc = c.open(ep, timeout_ms, true, why);
            if (rc != WNB_OK) return -fail(err, rc, why);
            uint32_t n = 0;
            rc = c.call(RPC_DEVICE_COUNT, nullptr, 0, &n, sizeof(n), "DEVICE_COUNT", why);
            if (rc != WNB_OK) return -fail(err, rc, why);
            for (uint32_t d = 0; d < n; d++) {
                uint64_t rsp[2] = { 0, 0 };
                rc = c.call(RPC_GET_DEVICE_MEMORY, &d, sizeof(d), rsp, sizeof(rsp), "GET_DEVICE_MEMORY", why);
                if (rc != WNB_OK) return -fail(err, rc, why);
                mem.push_back({ rsp[0], rsp[1] });
            }
        } else {
            // A model of this process holds the server's one client
            // connection: ask through it (ggml-rpc), after a TCP probe.
            ggml_backend_reg_t reg = nullptr;
            int32_t            rc = register_endpoint(ep, timeout_ms, &reg, why);
            if (rc != WNB_OK) return -fail(err, rc, why);
            for (size_t d = 0; d < ggml_backend_reg_dev_count(reg); d++) {
                size_t f = 0, t = 0;
                ggml_backend_rpc_get_device_memory(endpoint, (uint32_t) d, &f, &t);
                mem.push_back({ (uint64_t) f, (uint64_t) t });
            }
        }
        const int32_t n = (int32_t) mem.size();
        if (cap >= n) {
            for (int32_t d = 0; d < n; d++) {
                if (free_bytes) free_bytes[d] = mem[d][0];
                if (total_bytes) total_bytes[d] = mem[d][1];
            }
        }
        return n;
    } catch (const std::exception & e) {
        return -fail(err, WNB_ERR_INTERNAL, e.what());
    } catch (...) {
        return -fail(err, WNB_ERR_INTERNAL, "unknown C++ exception");
    }
}

}  // extern "C"
