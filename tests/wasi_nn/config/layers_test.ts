/**
 * The layer stack: llama.cpp's defaults (read from the library), the model's
 * general.sampling.* metadata (from a real GGUF), the host layers, and the
 * explain view.
 */
import assert from "node:assert/strict";
import { defaultSamplerParams, Model } from "../../../bindings/mod.ts";
import { ensureModel } from "../../../gguf/mod.ts";
import {
  type KeyName,
  KEYS,
  parseConfig,
} from "../../../wasi_nn/config/parse.ts";
import {
  defaultConfig,
  explainConfig,
  formatExplain,
  LAYER_ORDER,
  modelConfig,
  resolveConfig,
  standardLayers,
} from "../../../wasi_nn/config/layers.ts";

Deno.test("the default layer is llama.cpp's common_params_sampling, and the table agrees with it", () => {
  const lib = defaultSamplerParams();
  const d = defaultConfig();
  const pairs: [KeyName, number | boolean][] = [
    ["temp", lib.temp],
    ["top_k", lib.top_k],
    ["top_p", lib.top_p],
    ["min_p", lib.min_p],
    ["typical_p", lib.typ_p],
    ["top_n_sigma", lib.top_n_sigma],
    ["xtc_probability", lib.xtc_probability],
    ["xtc_threshold", lib.xtc_threshold],
    ["dynatemp_range", lib.dynatemp_range],
    ["dynatemp_exponent", lib.dynatemp_exponent],
    ["repeat_penalty", lib.penalty_repeat],
    ["repeat_last_n", lib.penalty_last_n],
    ["presence_penalty", lib.penalty_present],
    ["frequency_penalty", lib.penalty_freq],
    ["dry_multiplier", lib.dry_multiplier],
    ["dry_base", lib.dry_base],
    ["dry_allowed_length", lib.dry_allowed_length],
    ["dry_penalty_last_n", lib.dry_penalty_last_n],
    ["mirostat", lib.mirostat],
    ["mirostat_tau", lib.mirostat_tau],
    ["mirostat_eta", lib.mirostat_eta],
    ["adaptive_target", lib.adaptive_target],
    ["adaptive_decay", lib.adaptive_decay],
    ["min_keep", lib.min_keep],
    ["n_probs", lib.n_probs],
    ["ignore_eos", lib.ignore_eos],
  ];
  for (const [key, libValue] of pairs) {
    const table = KEYS.find((k) => k.name === key)!.default as number | boolean;
    if (typeof libValue === "number") {
      assert.equal(
        Math.fround(table as number),
        Math.fround(libValue),
        `table default of ${key}`,
      );
      assert.equal(
        Math.fround(d[key] as number),
        Math.fround(libValue),
        `default layer ${key}`,
      );
    } else {
      assert.equal(table, libValue, key);
      assert.equal(d[key], libValue, key);
    }
  }
  assert.equal(lib.seed, 0xFFFFFFFF);
  assert.equal(d.seed, -1);
  // floats are shown as written in llama.cpp's source, not as float32 noise
  assert.equal(d.top_p, 0.95);
  assert.equal(d.min_p, 0.05);
  assert.equal(d.n_predict, -1);
  assert.equal(d.ctx_size, 0);
});

Deno.test("the model layer reads general.sampling.* from a GGUF as llama.cpp does", async () => {
  const info = await ensureModel("tiny", {
    sampling: {
      sequence: "penalties;top_k;min_p;temperature",
      topK: 20,
      topP: 0.8,
      minP: 0.1,
      temp: 0.6,
      penaltyLastN: 16,
      penaltyRepeat: 1.3,
      mirostatTau: 4.5,
    },
  });
  using model = await Model.load(info.path, { vocabOnly: true });
  const { values, warnings } = modelConfig(model);
  assert.deepEqual(warnings, []);
  assert.deepEqual(values, {
    samplers: ["penalties", "top_k", "min_p", "temperature"],
    top_k: 20,
    top_p: 0.8,
    min_p: 0.1,
    temp: 0.6,
    repeat_last_n: 16,
    repeat_penalty: 1.3,
    mirostat_tau: 4.5,
  });
  // lowest after the defaults: any host layer overrides it
  const cfg = resolveConfig(
    standardLayers({ model, load: parseConfig({ temperature: 0.1 }).values }),
  );
  assert.equal(cfg.temp, 0.1);
  assert.equal(cfg.top_k, 20);
  assert.equal(cfg.typical_p, 1);
  // a model without such metadata adds nothing
  using plain = await Model.load((await ensureModel("tiny")).path, {
    vocabOnly: true,
  });
  assert.deepEqual(modelConfig(plain).values, {});
});

Deno.test("bad model metadata is a warning, never an error", () => {
  const { values, warnings } = modelConfig({
    "general.sampling.temp": "hot",
    "general.sampling.top_p": "7",
    "general.sampling.penalty_repeat": "0",
    "general.sampling.top_k": "12abc", // strtol reads the prefix
    "general.sampling.sequence": "top_k;warp",
  });
  assert.deepEqual(values, { top_k: 12, top_p: 1 });
  assert.equal(warnings.length, 4, warnings.join("\n"));
  assert.ok(
    warnings.some((w) =>
      w.includes("'general.sampling.temp' = \"hot\" is not a number")
    ),
  );
  assert.ok(
    warnings.some((w) =>
      w.includes(
        "'general.sampling.top_p': 7 is outside 0 <= value <= 1; clamped to 1",
      )
    ),
  );
  assert.ok(warnings.some((w) => w.includes("unknown sampler 'warp'")));
});

Deno.test("standard layers are stacked lowest first", () => {
  assert.deepEqual([...LAYER_ORDER], [
    "default",
    "model",
    "backend",
    "load",
    "session",
    "runtime",
  ]);
  const layers = standardLayers({
    runtime: { temp: 0.4 },
    session: { temp: 0.3, seed: 3 },
    load: { temp: 0.2, seed: 2, top_k: 5 },
    backend: { temp: 0.1, seed: 1, top_k: 4, n_predict: 9 },
  });
  assert.deepEqual(layers.map((l) => l.name), [
    "default",
    "backend",
    "load",
    "session",
    "runtime",
  ]);
  const cfg = resolveConfig(layers);
  assert.deepEqual([cfg.temp, cfg.seed, cfg.top_k, cfg.n_predict, cfg.min_p], [
    0.4,
    3,
    5,
    9,
    0.05,
  ]);
});

Deno.test("explain: each value, its layer, and what it overrode", () => {
  const layers = [
    { name: "default", values: { temp: 0.8, top_k: 40, n_predict: -1 } },
    { name: "model", values: { temp: 0.6 } },
    { name: "load", values: { grammar: 'root ::= "a"', n_predict: 64 } },
    { name: "session", values: undefined },
    { name: "runtime", values: { temp: 0.1, json_schema: { type: "string" } } },
  ];
  const e = explainConfig(layers);
  assert.deepEqual(e, [
    {
      key: "temp",
      value: 0.1,
      layer: "runtime",
      scope: "sampling",
      overridden: [{ layer: "model", value: 0.6 }, {
        layer: "default",
        value: 0.8,
      }],
    },
    {
      key: "top_k",
      value: 40,
      layer: "default",
      scope: "sampling",
      overridden: [],
    },
    {
      key: "json_schema",
      value: { type: "string" },
      layer: "runtime",
      scope: "sampling",
      overridden: [],
    },
    {
      key: "n_predict",
      value: 64,
      layer: "load",
      scope: "run",
      overridden: [{ layer: "default", value: -1 }],
    },
  ]);
  assert.equal(
    formatExplain(e),
    [
      "temp = 0.1                        (runtime; overrides model 0.6, default 0.8)",
      "top_k = 40                        (default)",
      'json_schema = {"type":"string"}   (runtime)',
      "n_predict = 64                    (load; overrides default -1)",
    ].join("\n"),
  );
});
