// chat_render.cpp - see chat_render.h.

#include "chat_render.h"

namespace wnb {

std::unique_ptr<chat_renderer> chat_renderer_init(const chat_template_spec & spec) {
    auto r = std::make_unique<chat_renderer>();
    r->spec = spec;
    // Without a model llama.cpp takes the BOS/EOS text from the overrides and
    // never strips them: chat_render does that, as it would with the model.
    const std::string & source = spec.source.empty() ? std::string("chatml") : spec.source;
    try {
        r->templates = common_chat_templates_init(nullptr, source, spec.bos_token, spec.eos_token);
    } catch (const std::exception & e) {
        // llama.cpp rethrows a parse error as a plain std::exception (its
        // message lost): parse again to say what is wrong, and where.
        if (std::string(e.what()) != "std::exception") throw;
        jinja::lexer lexer;
        jinja::parse_from_tokens(lexer.tokenize(source));
        throw std::runtime_error("the chat template failed to initialize");
    }
    return r;
}

std::string chat_render(const chat_renderer & r, const common_json & messages, bool add_generation_prompt) {
    common_chat_templates_inputs inputs;
    try {
        inputs.messages = common_chat_msgs_parse_oaicompat(messages);
    } catch (const std::exception & e) {
        throw chat_messages_error(e.what());
    }
    inputs.add_generation_prompt = add_generation_prompt;
    inputs.use_jinja             = true;
    std::string prompt           = common_chat_templates_apply(r.templates.get(), inputs).prompt;
    // What llama.cpp does when the model's tokenizer adds BOS/EOS itself.
    const std::string & bos = r.spec.bos_token;
    const std::string & eos = r.spec.eos_token;
    if (r.spec.add_bos && !bos.empty() && prompt.compare(0, bos.size(), bos) == 0) {
        prompt.erase(0, bos.size());
    }
    if (r.spec.add_eos && !eos.empty() && prompt.size() >= eos.size() &&
        prompt.compare(prompt.size() - eos.size(), eos.size(), eos) == 0) {
        prompt.erase(prompt.size() - eos.size());
    }
    return prompt;
}

}  // namespace wnb
