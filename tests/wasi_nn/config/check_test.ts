/**
 * Cross-parameter checks: lazy grammar needs triggers, grammar vs
 * json_schema, n_keep vs the context, ctx_size vs the training context,
 * batch sizes, threads, mirostat, XTC, token ids vs the vocabulary.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../../wasi_nn/config/parse.ts";
import { checkConfig } from "../../../wasi_nn/config/check.ts";

Deno.test("a lazy grammar needs triggers (the server's rule)", () => {
  assert.throws(
    () => checkConfig({ grammar: 'root ::= "a"', grammar_lazy: true }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.field, "grammar_lazy");
      assert.equal(e.rule, "requires");
      assert.equal(
        e.message,
        "Field 'grammar_lazy': no triggers set for lazy grammar (add grammar_triggers, or set grammar_lazy to false)",
      );
      return true;
    },
  );
  assert.throws(
    () =>
      checkConfig({ grammar: "g", grammar_lazy: true, grammar_triggers: [] }),
    ConfigError,
  );
  const ok = checkConfig({
    grammar: "g",
    grammar_lazy: true,
    grammar_triggers: [{ type: "word", value: "{" }],
  });
  assert.deepEqual(ok.warnings, []);
  assert.deepEqual(
    checkConfig({
      grammar_lazy: true,
      grammar_triggers: [{ type: "word", value: "x" }],
    }).warnings,
    ["grammar_lazy is set but there is no grammar or json_schema to apply"],
  );
  assert.deepEqual(
    checkConfig({
      grammar: "g",
      grammar_triggers: [{ type: "word", value: "x" }],
    }).warnings,
    ["grammar_triggers have no effect unless grammar_lazy is true"],
  );
});

Deno.test("grammar and json_schema together are a conflict", () => {
  assert.throws(() => checkConfig({ grammar: "g", json_schema: {} }), {
    name: "WasiNnError(InvalidArgument)",
  });
  assert.doesNotThrow(() => checkConfig({ grammar: "", json_schema: {} }));
});

Deno.test("context: training context, n_keep, batch sizes, n_predict", () => {
  const r = checkConfig(
    {
      ctx_size: 4096,
      n_keep: 5000,
      batch_size: 8192,
      ubatch_size: 9000,
      n_predict: 5000,
    },
    { nCtxTrain: 2048 },
  );
  assert.deepEqual(r.warnings, [
    "ctx_size 4096 exceeds the model's training context (2048); output quality may degrade beyond 2048 tokens",
    "ubatch_size 9000 exceeds batch_size 8192; llama.cpp uses 8192",
    "batch_size 8192 exceeds the context (4096); llama.cpp uses 4096",
    "n_keep 5000 does not fit the context (4096); 4092 tokens are kept",
    "n_predict 5000 exceeds the context (4096); generation stops when the context is full",
  ]);
  assert.equal(r.values.ubatch_size, 8192);
  assert.equal(r.values.n_keep, 4092);
  // ctx_size 0 = the training context
  assert.deepEqual(
    checkConfig({ ctx_size: 0, n_keep: 2000 }, { nCtxTrain: 2048 }).warnings,
    [],
  );
  assert.equal(
    checkConfig({ ctx_size: 0, n_keep: 2046 }, { nCtxTrain: 2048 }).values
      .n_keep,
    2044,
  );
  // a context shift keeps generating past the context
  assert.deepEqual(
    checkConfig({ ctx_size: 512, n_predict: 1000, ctx_shift: true }).warnings,
    [],
  );
  // the input is not changed
  const input = { ubatch_size: 9, batch_size: 8 };
  checkConfig(input);
  assert.equal(input.ubatch_size, 9);
});

Deno.test("threads beyond the CPU count warn and use the CPU count", () => {
  const r = checkConfig({ threads: 8, threads_batch: 2 }, { cpus: 2 });
  assert.deepEqual(r.warnings, [
    "threads 8 exceeds the 2 CPU cores; using 2 (oversubscribed threads slow llama.cpp down)",
  ]);
  assert.equal(r.values.threads, 2);
  assert.deepEqual(checkConfig({ threads: 2 }, { cpus: 2 }).warnings, []);
});

Deno.test("sampling: mirostat replaces the chain; XTC above 0.5 is off; token ids within the vocabulary", () => {
  assert.deepEqual(
    checkConfig({ mirostat: 2, top_k: 10, top_p: 0.95, min_p: 0.2 }).warnings,
    [
      "mirostat 2 replaces the sampler chain: top_k, min_p have no effect",
    ],
  );
  assert.deepEqual(checkConfig({ mirostat: 0, top_k: 10 }).warnings, []);
  assert.deepEqual(
    checkConfig({ xtc_probability: 0.5, xtc_threshold: 0.6 }).warnings,
    [
      "XTC is off: xtc_threshold 0.6 is above 0.5",
    ],
  );
  assert.throws(
    () => checkConfig({ logit_bias: [[32000, 1]] }, { nVocab: 32000 }),
    {
      message:
        "Field 'logit_bias': token 32000 is outside the vocabulary (0..31999)",
    },
  );
  assert.throws(
    () => checkConfig({ logit_bias: { "40000": false } }, { nVocab: 32000 }),
    ConfigError,
  );
  assert.doesNotThrow(() =>
    checkConfig({ logit_bias: { "hello": false, "31999": 1 } }, {
      nVocab: 32000,
    })
  );
});
