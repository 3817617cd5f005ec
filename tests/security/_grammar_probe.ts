/**
 * A child process for grammar_test.ts: sends hostile grammars and JSON
 * schemas to a host the way a guest can (the config of run_inference, or of
 * set_input(1) before compute), on both paths, and prints one JSON line per
 * probe: {name, errno, message, ms}. Then it checks that a normal
 * grammar still constrains the output ({name: "after", text}).
 *
 * Run it in a process of its own: on a host without the limits, the first
 * probe overflows the stack in llama.cpp's grammar parser and ends the
 * process, and the others take seconds to minutes per token.
 *
 * usage: deno run -A _grammar_probe.ts
 */
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { Errno, WasiNnError } from "../../wasi_nn/errno.ts";
import { tinyModel } from "../_helpers.ts";
import { reportProbe } from "./_probe.ts";

const enc = new TextEncoder();
const text = (t: string) => ({ dims: [1], type: 3, data: enc.encode(t) });

/** The probes: a name and the config a guest sends. */
export const PROBES: Record<string, Record<string, unknown>> = {
  // 40 KB: overflows the stack of llama.cpp's parser (about 4,640 levels on a worker thread, 18,660 on the main thread)
  deep_grammar: {
    grammar: "root ::= " + "(".repeat(20000) + '"a"' + ")".repeat(20000),
  },
  // about 12 s of sampling per token
  wide_grammar: {
    grammar: "root ::= " +
      Array.from({ length: 40000 }, (_, i) => `"w${i}"`).join(" | "),
  },
  // 64 identical alternatives in a loop: about 5 s per token
  ambiguous_grammar: {
    grammar: `root ::= (${Array(64).fill('"a"').join(" | ")})*`,
  },
  // ran past 120 s
  wide_schema: {
    json_schema: {
      anyOf: Array.from({ length: 100000 }, (_, i) => ({ const: `v${i}` })),
    },
  },
  // 10,000 alternatives in 110 KB: within the size limit, 1-1.5 s per token
  many_alternatives: {
    grammar: "root ::= " +
      Array.from({ length: 10000 }, (_, i) => `"w${i}"`).join(" | "),
  },
  deep_schema: {
    json_schema: JSON.parse(
      '{"type":"array","items":'.repeat(1000) + '{"type":"string"}' +
        "}".repeat(1000),
    ),
  },
  // nested 20,000 deep in 40 KB: llama.cpp's JSON parser overflows at 17,500
  deep_schema_text: {
    json_schema: "[".repeat(20000) + "]".repeat(20000),
  },
  response_format: {
    response_format: {
      type: "json_schema",
      json_schema: {
        schema: { enum: Array.from({ length: 5000 }, (_, i) => `v${i}`) },
      },
    },
  },
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
});
const graph = await host.loadByName("default", '{"n_predict":2}');

for (const [name, cfg] of Object.entries(PROBES)) {
  let t0 = performance.now();
  try {
    await host.runInference(host.initExecutionContext(graph), "Hi", cfg);
    reportProbe(name, t0, undefined);
  } catch (e) {
    reportProbe(name, t0, e);
  }
  // the guest's path: set_input(1) with the config, set_input(0), compute
  const c = host.initExecutionContext(graph);
  t0 = performance.now();
  try {
    await host.setInput(c, 1, text(JSON.stringify(cfg)));
    await host.setInput(c, 0, text("Hi"));
    await host.compute(c);
    reportProbe(`${name}:set_input`, t0, undefined);
  } catch (e) {
    reportProbe(`${name}:set_input`, t0, e);
  }
}

// a grammar within the limits still constrains the output
const r = await host.runInference(host.initExecutionContext(graph), "Hi", {
  grammar: 'root ::= "yes" | "no"',
  n_predict: 4,
});
console.log(JSON.stringify({ name: "after", text: r.text }));
host.close();
