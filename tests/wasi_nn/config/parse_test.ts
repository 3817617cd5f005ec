/**
 * One config model, many spellings: WasmEdge kebab-case, the original
 * project's flat keys and nested sections, llama.cpp server names; null;
 * unknown keys (warnings, strict errors); errnos; layering rules.
 */
import assert from "node:assert/strict";
import {
  changedScopes,
  ConfigError,
  keyDef,
  mergeConfig,
  parseConfig,
  suggestKey,
  validateValue,
} from "../../../wasi_nn/config/parse.ts";
import { WasiNnError } from "../../../wasi_nn/errno.ts";

Deno.test("mixed spellings normalise to one config", () => {
  const { values, warnings } = parseConfig({
    "ctx-size": 1024, // WasmEdge
    n_gpu_layers: 0, // original flat
    temperature: 0.3, // server
    max_tokens: 12, // server alias
    repeat_last_n: 32, // server
    "reverse-prompt": "User:", // WasmEdge
    "json-schema": '{"type":"object"}', // WasmEdge: a schema as a string
  });
  assert.deepEqual(values, {
    ctx_size: 1024,
    n_gpu_layers: 0,
    temp: 0.3,
    n_predict: 12,
    repeat_last_n: 32,
    reverse_prompt: "User:",
    json_schema: '{"type":"object"}',
  });
  assert.deepEqual(warnings, []);
});

Deno.test("the original project's complete example config parses without unknown keys", () => {
  // docs/USER_GUIDE.md of the original project (apuslabs/wasi_nn_backend)
  const original = {
    backend: {
      max_sessions: 100,
      idle_timeout_ms: 300000,
      auto_cleanup: true,
      max_concurrent: 10,
      queue_size: 500,
      default_task_timeout_ms: 30000,
      priority_scheduling_enabled: true,
      fair_scheduling_enabled: true,
      auto_queue_cleanup: true,
      queue_warning_threshold: 400,
      queue_reject_threshold: 500,
    },
    model: { n_ctx: 4096, n_gpu_layers: 32, batch_size: 512, threads: 8 },
    sampling: {
      temperature: 0.7,
      top_p: 0.9,
      top_k: 40,
      min_p: 0.05,
      typical_p: 1.0,
      repeat_penalty: 1.1,
      presence_penalty: 0.0,
      frequency_penalty: 0.0,
      penalty_last_n: 64,
      seed: -1,
      n_probs: 0,
      min_keep: 1,
      ignore_eos: false,
      grammar: "",
      grammar_lazy: false,
      dry_multiplier: 0.0,
      dry_base: 1.75,
      dry_allowed_length: 2,
      dry_penalty_last_n: -1,
      dry_sequence_breakers: ["\n", ":", '"', "*"],
      dynatemp_range: 0.0,
      dynatemp_exponent: 1.0,
      mirostat: 0,
      mirostat_tau: 5.0,
      mirostat_eta: 0.1,
    },
    stopping: {
      max_tokens: 512,
      ignore_eos: false,
      stop: ["</s>", "[INST]", "[/INST]"],
    },
    memory: {
      context_shifting: true,
      cache_strategy: "lru",
      max_cache_tokens: 100000,
      memory_pressure_threshold: 0.8,
      n_keep_tokens: 128,
      n_discard_tokens: 256,
      enable_partial_cache_deletion: true,
      enable_token_cache_reuse: true,
      cache_deletion_strategy: "lru",
      max_memory_mb: 8192,
    },
    logging: {
      level: "info",
      enable_debug: false,
      timestamps: true,
      colors: true,
      file: "/tmp/x.log",
    },
    performance: { batch_processing: true, batch_size: 512 },
    logit_bias: [[198, -1.0], [628, 0.5]],
  };
  const { values, warnings, notes } = parseConfig(original, { strict: true });
  assert.deepEqual(warnings.filter((w) => !w.includes("both set")), []);
  assert.equal(values.ctx_size, 4096);
  assert.equal(values.temp, 0.7);
  assert.equal(values.repeat_last_n, 64);
  assert.equal(values.dry_penalty_last_n, -1);
  assert.equal(values.n_predict, 512);
  assert.deepEqual(values.stop, ["</s>", "[INST]", "[/INST]"]);
  assert.equal(values.ctx_shift, true);
  assert.equal(values.n_keep, 128);
  assert.equal(values.log_level, "info");
  assert.equal(values.parallel, 10); // backend.max_concurrent
  assert.equal(values.max_queue, 500); // backend.queue_size
  assert.deepEqual(values.logit_bias, [[198, -1.0], [628, 0.5]]);
  // keys the host accepts but does not act on are noted, not warned about
  assert.ok(
    notes.some((n) => n.includes("'memory.cache_strategy' has no effect")),
    notes.join("\n"),
  );
  // batch_size is in two sections and ignore_eos in two: the later one wins, with a warning
  assert.ok(
    warnings.some((w) =>
      w.includes(
        "'model.batch_size' and 'performance.batch_size' both set batch_size",
      )
    ),
  );
});

Deno.test("nested sub-sections: dynatemp, dry, xtc, mirostat (as a section), memory_management", () => {
  const { values } = parseConfig({
    sampling: {
      dynatemp: { range: 0.5, exponent: 2 },
      dry: {
        multiplier: 0.8,
        base: 1.5,
        "allowed-length": 3,
        penalty_last_n: 128,
        sequence_breakers: ["\n"],
      },
      xtc: { probability: 0.5, threshold: 0.2 },
      mirostat: { tau: 4, eta: 0.2 },
    },
    memory_management: { n_keep: 4 },
  });
  assert.deepEqual(values, {
    dynatemp_range: 0.5,
    dynatemp_exponent: 2,
    dry_multiplier: 0.8,
    dry_base: 1.5,
    dry_allowed_length: 3,
    dry_penalty_last_n: 128,
    dry_sequence_breakers: ["\n"],
    xtc_probability: 0.5,
    xtc_threshold: 0.2,
    mirostat_tau: 4,
    mirostat_eta: 0.2,
    n_keep: 4,
  });
  // mirostat as a plain key still works
  assert.equal(parseConfig({ sampling: { mirostat: 2 } }).values.mirostat, 2);
});

Deno.test("null means 'not set here' (a lower layer or the default applies)", () => {
  const { values } = parseConfig(
    '{"temp":null,"n-predict":null,"sampling":{"top_k":null},"seed":5}',
  );
  assert.deepEqual(values, { seed: 5 });
  assert.deepEqual(
    mergeConfig({ temp: 0.2 }, parseConfig({ temp: null }).values),
    { temp: 0.2 },
  );
});

Deno.test("unknown keys warn with a suggestion; WasmEdge's llama3 only warns; strict mode errors", () => {
  const { values, warnings } = parseConfig({
    llama3: false,
    temprature: 0.5,
    "ctx-sise": 5,
    top_k: 3,
  });
  assert.deepEqual(values, { top_k: 3 });
  assert.deepEqual(warnings, [
    "unknown config key 'llama3'",
    "unknown config key 'temprature'; did you mean 'temperature'?",
    "unknown config key 'ctx-sise'; did you mean 'ctx-size'?",
  ]);
  assert.deepEqual(parseConfig({ sampling: { tmp: 1 } }).warnings, [
    "unknown config key 'sampling.tmp'; did you mean 'temp'?",
  ]);
  assert.throws(
    () => parseConfig({ temprature: 0.5 }, { strict: true }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(
        e.message,
        "Field 'temprature': unknown key (did you mean 'temperature'?)",
      );
      assert.equal(e.rule, "unknown_key");
      assert.equal(e.suggestion, "did you mean 'temperature'?");
      assert.equal(e.errno, 1);
      return true;
    },
  );
  assert.equal(suggestKey("max_token"), "max_tokens");
  assert.equal(suggestKey("samplng"), "sampling");
  assert.equal(suggestKey("zzzzzz"), undefined);
});

Deno.test("errnos: malformed JSON and non-objects are InvalidEncoding (2); bad values InvalidArgument (1)", () => {
  for (const bad of ["{", '{"temp": }', "[1,2]", "5", '"x"', "null"]) {
    assert.throws(
      () => parseConfig(bad),
      (e: unknown) => e instanceof WasiNnError && e.errno === 2,
      bad,
    );
  }
  assert.deepEqual(parseConfig("  ").values, {});
  assert.deepEqual(parseConfig(undefined).values, {});
  for (
    const bad of [
      '{"ctx-size": 1.5}',
      '{"temp": "0.5"}',
      '{"ignore-eos": 1}',
      '{"n-predict": -5}',
    ]
  ) {
    assert.throws(
      () => parseConfig(bad),
      (e: unknown) => e instanceof ConfigError && e.errno === 1,
      bad,
    );
  }
  // a section name with a non-object value (an OpenAI request's "model": "name") is ignored, with a warning
  assert.deepEqual(parseConfig({ model: "gpt-4o", sampling: [1], temp: 1 }), {
    values: { temp: 1 },
    warnings: [
      "Field 'model': type must be object (a section of keys), but is string \"gpt-4o\"; ignored",
      "Field 'sampling': type must be object (a section of keys), but is array [1]; ignored",
    ],
    notes: [],
  });
  assert.throws(
    () => parseConfig({ sampling: [1] }, { strict: true }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message ===
        "Field 'sampling': type must be object (a section of keys), but is array [1]",
  );
});

Deno.test("server message shape, with the field as written", () => {
  assert.throws(
    () => parseConfig({ "n-predict": -5 }),
    {
      message:
        "Field 'n-predict': Value must be between -1 <= value <= 2147483647, but got -5",
    },
  );
  assert.throws(
    () => parseConfig({ stopping: { max_tokens: -5 } }),
    {
      message:
        "Field 'stopping.max_tokens': Value must be between -1 <= value <= 2147483647, but got -5",
    },
  );
  assert.throws(
    () => parseConfig({ adaptive_decay: 1 }),
    {
      message:
        "Field 'adaptive_decay': Value must be between 0.000000 <= value <= 0.990000, but got 1.000000",
    },
  );
});

Deno.test("legacy: penalty windows of -1 and dry_base below 1", () => {
  assert.deepEqual(
    parseConfig({ penalty_last_n: -1, dry_penalty_last_n: -1 }).values,
    {
      repeat_last_n: -1,
      dry_penalty_last_n: -1,
    },
  );
  const r = parseConfig({ dry_base: 0.5 });
  assert.deepEqual(r.values, {});
  assert.deepEqual(r.warnings, [
    "Field 'dry_base': 0.5 is below 1.0 and is ignored (the default 1.75 or a lower layer's value applies)",
  ]);
  // ...so a lower layer's value stays
  assert.deepEqual(mergeConfig({ dry_base: 2 }, r.values), { dry_base: 2 });
});

Deno.test("a key given twice: the later spelling wins, with a warning", () => {
  const r = parseConfig({ temp: 0.5, temperature: 0.7 });
  assert.deepEqual(r.values, { temp: 0.7 });
  assert.deepEqual(r.warnings, [
    "'temp' and 'temperature' both set temp; the later one ('temperature') is used",
  ]);
});

Deno.test("grammar and json_schema: exclusive in a layer; a higher layer's one replaces the other", () => {
  assert.throws(
    () =>
      parseConfig({ grammar: 'root ::= "a"', json_schema: { type: "string" } }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.rule, "conflict");
      assert.equal(
        e.message,
        "Field 'json_schema': cannot be combined with 'grammar' in one config (keep one of them: json_schema is turned into a grammar)",
      );
      return true;
    },
  );
  // an empty grammar is "no grammar"
  assert.doesNotThrow(() =>
    parseConfig({ grammar: "", json_schema: { type: "string" } })
  );
  assert.deepEqual(
    mergeConfig({ grammar: "g" }, { json_schema: { type: "string" } }),
    {
      json_schema: { type: "string" },
    },
  );
  assert.deepEqual(
    mergeConfig({ json_schema: "{}" }, { temp: 1 }, { grammar: "g" }),
    { temp: 1, grammar: "g" },
  );
});

Deno.test("keyDef, validateValue and changedScopes", () => {
  assert.equal(keyDef("max_completion_tokens")?.name, "n_predict");
  assert.equal(keyDef("repeat-last-n")?.name, "repeat_last_n");
  assert.equal(keyDef("logging.level"), undefined); // dotted aliases live inside their section
  assert.equal(validateValue("logging.level", "warn"), "warn");
  assert.throws(() => validateValue("n_predict", "x", [], "--n-predict"), {
    message:
      "Field '--n-predict': type must be an integer, but is string \"x\"",
  });
  assert.deepEqual([
    ...changedScopes({ temp: 1, ctx_size: 5 }, { temp: 1, ctx_size: 6 }),
  ], ["context"]);
  assert.deepEqual(
    [...changedScopes({ temp: 1 }, { temp: 2, n_predict: 3 })].sort(),
    ["run", "sampling"],
  );
});
