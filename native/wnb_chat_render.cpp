// wnb-chat-render - renders chat templates that the host cannot trust.
//
// A chat template is a program (Jinja): a guest's template, or the one inside
// a model a guest sent, can allocate without bound, loop for ever or recurse
// until the stack overflows, and native code cannot be stopped from
// JavaScript. The host runs this executable for every guest prompt: it sets
// its own limits first, renders with the same code as the shim
// (chat_render.cpp), and answers in JSON. One process serves one prompt.
//
// usage: wnb-chat-render --max-memory-mb N --timeout-ms N --max-output-bytes N [REQUEST_FILE]
//
// Request (JSON, in REQUEST_FILE or on stdin):
//   {"template": str, "bos_token": str, "eos_token": str, "add_bos": bool, "add_eos": bool,
//    "renders": [{"messages": [...], "add_generation_prompt": bool}, ...]}
// Answer (JSON on stdout):
//   {"prompts": [str, ...]}                       exit 0
//   {"error": {"kind": K, "message": str}}         exit 1, K one of
//     "request" (bad request), "messages", "template" (llama.cpp's message),
//     "memory" (over --max-memory-mb), "output" (over --max-output-bytes),
//     "time" (over --timeout-ms), "stack" (stack overflow: too deep recursion or nesting)
// Any other end (a signal, no JSON) is a crash.

#include "chat_render.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <new>
#include <sstream>
#include <string>

namespace {

volatile sig_atomic_t g_out_of_memory = 0;
uintptr_t             g_stack_top     = 0;  // an address near the top of the main stack
uintptr_t             g_stack_size    = 0;  // RLIMIT_STACK

// The answers a signal handler writes: preformatted, async-signal-safe.
const char k_time_json[]  = "{\"error\":{\"kind\":\"time\",\"message\":\"the chat template ran past the time limit\"}}\n";
const char k_stack_json[] = "{\"error\":{\"kind\":\"stack\",\"message\":\"the chat template overflowed the stack (too deep recursion or nesting)\"}}\n";

void write_all(const char * s, size_t n) {
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return;
        }
        s += w;
        n -= (size_t) w;
    }
}

void on_alarm(int) {
    write_all(k_time_json, sizeof(k_time_json) - 1);
    _exit(1);
}

void on_segv(int sig, siginfo_t * info, void *) {
    const uintptr_t addr = (uintptr_t) info->si_addr;
    // A fault within (or just below) the main stack's reserved range is a stack overflow.
    const uintptr_t low = g_stack_top > g_stack_size + (1u << 20) ? g_stack_top - g_stack_size - (1u << 20) : 0;
    if (addr >= low && addr <= g_stack_top) {
        write_all(k_stack_json, sizeof(k_stack_json) - 1);
        _exit(1);
    }
    signal(sig, SIG_DFL);  // anything else: die by the signal (a crash)
    raise(sig);
}

void on_new_failure() {
    g_out_of_memory = 1;
    std::set_new_handler(nullptr);
    throw std::bad_alloc();
}

void answer_error(const std::string & kind, const std::string & message) {
    common_json e = common_json::object();
    e["kind"]     = kind;
    e["message"]  = message;
    common_json j = common_json::object();
    j["error"]    = e;
    std::string s = j.dump_safe() + "\n";
    write_all(s.data(), s.size());
}

bool parse_limit(const char * v, long long & out) {
    char * end = nullptr;
    errno      = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || !end || *end || x <= 0) return false;
    out = x;
    return true;
}

int usage(const char * why) {
    fprintf(stderr,
            "wnb-chat-render: %s\nusage: wnb-chat-render --max-memory-mb N --timeout-ms N --max-output-bytes N "
            "[REQUEST_FILE]\n",
            why);
    return 2;
}

// Limits first: everything after this runs under them.
bool set_limits(long long memory_mb, long long timeout_ms) {
    rlimit none{ 0, 0 };
    setrlimit(RLIMIT_CORE, &none);  // no core files from a crash
    rlimit as{ (rlim_t) memory_mb << 20, (rlim_t) memory_mb << 20 };
    if (setrlimit(RLIMIT_AS, &as) != 0) return false;
    // CPU time as a backstop (whole seconds); the wall-clock timer below is the limit.
    rlim_t cpu_s = (rlim_t) (timeout_ms + 999) / 1000 + 1;
    rlimit cpu{ cpu_s, cpu_s + 1 };
    if (setrlimit(RLIMIT_CPU, &cpu) != 0) return false;
    struct sigaction sa{};
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, nullptr);
    itimerval t{};
    t.it_value.tv_sec  = timeout_ms / 1000;
    t.it_value.tv_usec = (timeout_ms % 1000) * 1000;
    return setitimer(ITIMER_REAL, &t, nullptr) == 0;
}

// A stack overflow needs its handler on another stack.
void catch_stack_overflow() {
    static char alt[64 * 1024];
    stack_t     ss{};
    ss.ss_sp    = alt;
    ss.ss_size  = sizeof(alt);
    sigaltstack(&ss, nullptr);
    rlimit st{};
    getrlimit(RLIMIT_STACK, &st);
    g_stack_size = st.rlim_cur == RLIM_INFINITY ? (uintptr_t) 8 << 20 : (uintptr_t) st.rlim_cur;
    struct sigaction sa{};
    sa.sa_sigaction = on_segv;
    sa.sa_flags     = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
}

}  // namespace

int main(int argc, char ** argv) {
    int top_marker = 0;
    g_stack_top    = (uintptr_t) &top_marker;
    long long memory_mb = 0, timeout_ms = 0, max_output = 0;
    const char * request_file = nullptr;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        long long * target = a == "--max-memory-mb" ? &memory_mb : a == "--timeout-ms" ? &timeout_ms
                           : a == "--max-output-bytes" ? &max_output : nullptr;
        if (target) {
            if (i + 1 >= argc || !parse_limit(argv[++i], *target)) return usage(("bad value for " + a).c_str());
        } else if (a.rfind("--", 0) == 0 || request_file) {
            return usage(("unexpected argument " + a).c_str());
        } else {
            request_file = argv[i];
        }
    }
    if (!memory_mb || !timeout_ms || !max_output) return usage("all three limits are required");
    if (!set_limits(memory_mb, timeout_ms)) {
        answer_error("request", std::string("cannot set the limits: ") + strerror(errno));
        return 1;
    }
    catch_stack_overflow();
    std::set_new_handler(on_new_failure);

    std::string kind = "template";
    try {
        std::string text;
        if (request_file) {
            std::ifstream in(request_file, std::ios::binary);
            if (!in) {
                answer_error("request", std::string("cannot read ") + request_file);
                return 1;
            }
            text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        } else {
            text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        }
        kind = "request";
        common_json req = common_json::parse(text);
        text.clear();
        text.shrink_to_fit();
        wnb::chat_template_spec spec;
        spec.source    = req.at("template").get<std::string>();
        spec.bos_token = req.value("bos_token", std::string());
        spec.eos_token = req.value("eos_token", std::string());
        spec.add_bos   = req.value("add_bos", false);
        spec.add_eos   = req.value("add_eos", false);
        const common_json & renders = req.at("renders");
        if (!renders.is_array()) throw std::invalid_argument("renders must be an array");
        kind = "template";
        auto renderer = wnb::chat_renderer_init(spec);
        common_json prompts = common_json::array();
        long long total = 0;
        for (const auto & r : renders) {
            std::string p = wnb::chat_render(*renderer, r.at("messages"), r.value("add_generation_prompt", true));
            total += (long long) p.size();
            if (total > max_output) {
                answer_error("output", "the chat template's output reached " + std::to_string(total) +
                                           " bytes, over the limit of " + std::to_string(max_output) + " bytes");
                return 1;
            }
            prompts.push_back(p);
        }
        common_json answer = common_json::object();
        answer["prompts"]  = prompts;
        std::string s      = answer.dump_safe() + "\n";
        write_all(s.data(), s.size());
        return 0;
    } catch (const std::bad_alloc &) {
        g_out_of_memory = 1;
    } catch (const wnb::chat_messages_error & e) {
        if (!g_out_of_memory) {
            answer_error("messages", e.what());
            return 1;
        }
    } catch (const std::exception & e) {
        if (!g_out_of_memory) {
            answer_error(kind, e.what());
            return 1;
        }
    }
    std::set_new_handler(nullptr);
    answer_error("memory", "the chat template needed more than " + std::to_string(memory_mb) + " MiB of memory");
    return 1;
}
