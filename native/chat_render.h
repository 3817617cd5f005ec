// chat_render.h - renders a chat with a Jinja chat template (llama.cpp's
// common_chat_templates, as its server does). One implementation, used in
// process by the shim (wnb_chat_apply, for templates the operator trusts) and
// by the sandbox executable wnb-chat-render (for everything a guest sends).
//
// It needs no model: the template's source, the model's BOS/EOS text and
// whether the tokenizer adds them are all it takes. Internal C++ (no C ABI):
// errors are exceptions, caught by both callers.
#pragma once

#include "chat.h"

#include <memory>
#include <stdexcept>
#include <string>

namespace wnb {

// What a template needs besides the messages.
struct chat_template_spec {
    std::string source;     // Jinja source; "" = llama.cpp's ChatML
    std::string bos_token;  // the BOS token's text ("" = none)
    std::string eos_token;  // the EOS token's text ("" = none)
    bool        add_bos = false;  // the tokenizer adds BOS: a leading BOS text is dropped
    bool        add_eos = false;  // the tokenizer adds EOS: a trailing EOS text is dropped
};

// The messages are not an OpenAI-style array llama.cpp can take.
struct chat_messages_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// A parsed template, ready to render many times. Parsing runs the template
// (llama.cpp probes its capabilities), so it is as costly as a render.
struct chat_renderer {
    chat_template_spec        spec;
    common_chat_templates_ptr templates;
};

// Parses spec.source. Throws what llama.cpp throws on a bad template.
std::unique_ptr<chat_renderer> chat_renderer_init(const chat_template_spec & spec);

// Renders messages (a JSON array of {"role", "content", ...}). Throws
// chat_messages_error for bad messages, other exceptions for template errors.
std::string chat_render(const chat_renderer & r, const common_json & messages, bool add_generation_prompt);

}  // namespace wnb
