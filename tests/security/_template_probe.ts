/**
 * A child process for template_test.ts: feeds hostile chat templates to a
 * host the way a guest can (a `chat_template` key in set_input(1), a
 * messages prompt in set_input(0), a model loaded from its own bytes whose
 * GGUF template is hostile), through set_input and through runInference with
 * a per-call template, and prints one JSON line per probe:
 * {name, errno, message, ms}. Then it checks that
 * the host still answers a normal chat ({name: "after", text}).
 *
 * Run in a process of its own (with a memory limit): on a host that renders
 * in process, these probes allocate 20+ GB, hang or overflow the stack.
 *
 * usage: deno run -A _template_probe.ts
 */
import { ensureModel } from "../../gguf/mod.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { Errno, WasiNnError } from "../../wasi_nn/errno.ts";
import { renderChat } from "../../wasi_nn/engine/chat.ts";
import { Model } from "../../bindings/mod.ts";
import { tinyModel } from "../_helpers.ts";
import { reportProbe } from "./_probe.ts";

const enc = new TextEncoder();
const text = (t: string) => ({ dims: [1], type: 3, data: enc.encode(t) });
const chat = JSON.stringify([{ role: "user", content: "Hi" }]);

/** The probes: a name and the template. */
export const PROBES: Record<string, string> = {
  huge_string: "{{ 'x' * 2000000000 }}",
  huge_range: "{% for i in range(100000000) %}{{ i }}{% endfor %}",
  nested_loops:
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
  recursive_macro: "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
  deep_parens: "{{ " + "(".repeat(20000) + "1" + ")".repeat(20000) + " }}",
  syntax_error: "{% for",
};

const path = await tinyModel();
const host = await LlamaHost.create({
  registry: {
    resolve: (n: string) => {
      if (n === "default") return path;
      throw new WasiNnError(Errno.NotFound, `no model named '${n}'`);
    },
  },
  log: () => {},
  hostConfig: { chat_template_timeout_ms: 1500 },
});
const graph = await host.loadByName("default");

for (const [name, template] of Object.entries(PROBES)) {
  // the guest's path: set_input(1) with the template, set_input(0) with a chat
  const ctx = host.initExecutionContext(graph);
  let t0 = performance.now();
  try {
    await host.setInput(
      ctx,
      1,
      text(JSON.stringify({ chat_template: template })),
    );
    await host.setInput(ctx, 0, text(chat));
    reportProbe(name, t0, undefined);
  } catch (e) {
    reportProbe(name, t0, e);
  }
  // runInference: the same chat with the template as a per-call config
  t0 = performance.now();
  try {
    await host.runInference(
      host.initExecutionContext(graph),
      JSON.parse(chat),
      {
        chat_template: template,
      },
    );
    reportProbe(`${name}:run_inference`, t0, undefined);
  } catch (e) {
    reportProbe(`${name}:run_inference`, t0, e);
  }
}

// the template inside a model the guest sent as bytes (load), by run_inference
const dir = await Deno.makeTempDir();
const hostile = await ensureModel("tiny", {
  chatTemplate: PROBES.huge_range,
  out: `${dir}/hostile.gguf`,
});
const own = await host.load([await Deno.readFile(hostile.path)], 6, 0);
await Deno.remove(dir, { recursive: true });
let t0 = performance.now();
try {
  await host.runInference(host.initExecutionContext(own), [
    { role: "user", content: "Hi" },
  ]);
  reportProbe("model_template", t0, undefined);
} catch (e) {
  reportProbe("model_template", t0, e);
}

// messages nested far deeper than a chat needs: refused before any native call
const deep = [{
  role: "user",
  content: "x",
  extra: JSON.parse("[".repeat(100000) + "]".repeat(100000)),
}];
t0 = performance.now();
try {
  await host.runInference(host.initExecutionContext(graph), deep);
  reportProbe("deep_messages", t0, undefined);
} catch (e) {
  reportProbe("deep_messages", t0, e);
}
t0 = performance.now();
try {
  using model = await Model.load(path, { vocabOnly: true });
  renderChat(model, deep); // the in-process path (cli generate)
  reportProbe("deep_messages:in_process", t0, undefined);
} catch (e) {
  reportProbe("deep_messages:in_process", t0, e);
}

// the host is still fine
const r = await host.runInference(host.initExecutionContext(graph), [
  { role: "user", content: "Hi" },
], { n_predict: 2, temp: 0 });
console.log(
  JSON.stringify({ name: "after", tokens: r.metadata.output_tokens }),
);
host.close();
