/**
 * The JSON Schema exported from the key table: a standard validator (Ajv,
 * draft 2020-12) accepts what parseConfig accepts and rejects hard errors.
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import { KEYS, parseConfig } from "../../../wasi_nn/config/parse.ts";
import { configJsonSchema } from "../../../wasi_nn/config/schema.ts";

const ajv = new Ajv2020({ strict: false, allErrors: true });
const validate = ajv.compile(configJsonSchema());
const strict = ajv.compile(configJsonSchema({ strict: true }));

Deno.test("the schema is valid draft 2020-12 and has every key, spelling, default and doc", () => {
  const s = configJsonSchema();
  assert.equal(s.$schema, "https://json-schema.org/draft/2020-12/schema");
  const props = s.$defs.keys.properties;
  for (const k of KEYS) {
    assert.ok(s.$defs[k.name], k.name);
    assert.equal(s.$defs[k.name].description, k.doc);
    if (k.default !== undefined) {
      assert.deepEqual(s.$defs[k.name].default, k.default, k.name);
    }
    const ref = props[k.name].$ref ?? props[k.name].anyOf[0].$ref; // mirostat is also a section
    assert.equal(ref, `#/$defs/${k.name}`);
    assert.ok(props[k.name.replaceAll("_", "-")], `${k.name} in kebab-case`);
    for (const a of k.aliases ?? []) {
      if (!a.includes(".")) assert.ok(props[a], a);
    }
  }
  assert.deepEqual(s.$defs.n_predict.anyOf[0], {
    type: "integer",
    minimum: -1,
    maximum: 2147483647,
  });
  assert.deepEqual(s.$defs.top_p.anyOf[0], {
    type: "number",
    minimum: 0,
    maximum: 1,
    "x-clamped": true,
  });
});

Deno.test("valid configs validate, in every style", () => {
  const configs = [
    {
      "ctx-size": 2048,
      "n-predict": 64,
      temp: 0.2,
      "reverse-prompt": "User:",
      llama3: false,
    },
    {
      temperature: 0.7,
      max_tokens: 32,
      logit_bias: { "15043": false },
      samplers: "kmt",
      stop: ["\n"],
    },
    {
      sampling: { temperature: 0.5, dynatemp: { range: 0.5 } },
      logging: { level: "info" },
      memory: { n_keep_tokens: 8 },
    },
    {
      json_schema: { type: "object" },
      grammar_lazy: false,
      seed: -1,
      n_gpu_layers: "auto",
    },
    { temp: null, top_k: null },
  ];
  for (const c of configs) {
    assert.ok(
      validate(c),
      `${JSON.stringify(c)}: ${JSON.stringify(validate.errors)}`,
    );
    assert.doesNotThrow(() => parseConfig(c));
  }
});

Deno.test("hard errors of parseConfig are schema errors too", () => {
  const bad = [
    { n_predict: -5 },
    { "ctx-size": 1.5 },
    { temp: "0.5" },
    { ignore_eos: 1 },
    { split_mode: "rows" },
    { adaptive_decay: 1 },
    { seed: 4294967296 },
    { logit_bias: [[1, true]] },
    { sampling: { top_k: "3" } },
    { sampling: { dynatemp: { range: "x" } } },
    { dry_sequence_breakers: [] },
  ];
  for (const c of bad) {
    assert.equal(validate(c), false, JSON.stringify(c));
    assert.throws(() => parseConfig(c), JSON.stringify(c));
  }
});

Deno.test("strict: unknown keys are rejected, at the top and in sections", () => {
  assert.equal(strict({ llama3: false }), false);
  assert.equal(strict({ sampling: { temprature: 1 } }), false);
  assert.equal(
    strict({
      sampling: { temperature: 1, dynatemp: { range: 2 } },
      logging: { level: "warn" },
    }),
    true,
  );
  assert.equal(validate({ llama3: false }), true);
});
