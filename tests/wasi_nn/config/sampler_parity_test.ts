/**
 * Parity with llama.cpp's own `llama-completion`: the same model, prompt,
 * seed and non-greedy parameter set give exactly the same text. Our side
 * goes through the whole config path: parseConfig (server spellings) ->
 * layers (llama.cpp's defaults, the model's general.sampling.* metadata) ->
 * samplerParams -> the shim's common sampler -> generate().
 */
import assert from "node:assert/strict";
import { Context, Model, Sampler } from "../../../bindings/mod.ts";
import { ensureModel } from "../../../gguf/mod.ts";
import { parseConfig } from "../../../wasi_nn/config/parse.ts";
import {
  resolveConfig,
  standardLayers,
} from "../../../wasi_nn/config/layers.ts";
import { generate } from "../../../wasi_nn/engine/generate.ts";
import { samplerParams } from "../../../wasi_nn/config/_sampler_options.ts";
import { completionText, referenceTool, tinyModel } from "../../_helpers.ts";

const completion = referenceTool("llama-completion");
const PROMPT = "Once upon a time";
const N = 40;

/** llama-completion's text for PROMPT with these sampling flags. */
function reference(path: string, flags: string[]): Promise<string> {
  return completionText(path, PROMPT, N, flags);
}

async function ours(
  path: string,
  config: Record<string, unknown>,
): Promise<string> {
  using model = await Model.load(path);
  const layers = standardLayers({
    model,
    load: parseConfig({ ...config, n_predict: N, ignore_eos: true }, {
      strict: true,
    }).values,
  });
  const cfg = resolveConfig(layers);
  const ctx = await Context.create(model, {
    nCtx: 512,
    nThreads: 2,
    nThreadsBatch: 2,
  });
  using sampler = Sampler.create(model, samplerParams(model, cfg, ctx.nCtx));
  const prompt = model.tokenize(PROMPT, {
    addSpecial: true,
    parseSpecial: true,
  });
  const r = await generate(ctx, sampler, prompt, {
    nPredict: cfg.n_predict as number,
    ignoreEos: cfg.ignore_eos as boolean,
  });
  assert.equal(r.tokens.length, N);
  return r.text;
}

const SETS: {
  name: string;
  config: Record<string, unknown>;
  flags: string[];
}[] = [
  {
    name: "temperature, top_k, top_p, min_p, penalties with a window, DRY",
    config: {
      seed: 42,
      temperature: 0.9,
      top_k: 30,
      top_p: 0.9,
      min_p: 0.02,
      repeat_penalty: 1.2,
      repeat_last_n: 32,
      presence_penalty: 0.3,
      frequency_penalty: 0.2,
      dry_multiplier: 0.8,
      dry_base: 1.5,
      dry_allowed_length: 3,
      dry_penalty_last_n: 48,
    },
    flags: [
      "--seed",
      "42",
      "--temp",
      "0.9",
      "--top-k",
      "30",
      "--top-p",
      "0.9",
      "--min-p",
      "0.02",
      "--repeat-penalty",
      "1.2",
      "--repeat-last-n",
      "32",
      "--presence-penalty",
      "0.3",
      "--frequency-penalty",
      "0.2",
      "--dry-multiplier",
      "0.8",
      "--dry-base",
      "1.5",
      "--dry-allowed-length",
      "3",
      "--dry-penalty-last-n",
      "48",
    ],
  },
  {
    name:
      "sampler order, typical_p, XTC, dynatemp, DRY sequence breakers (nested sections)",
    config: {
      sampling: {
        seed: 3,
        samplers: ["dry", "top_k", "typ_p", "xtc", "temperature"],
        top_k: 50,
        typical_p: 0.9,
        xtc: { probability: 0.5, threshold: 0.05 },
        temperature: 1.1,
        dynatemp: { range: 0.3, exponent: 1.5 },
        dry: { multiplier: 1.0, sequence_breakers: ["\n", "a"] },
      },
    },
    flags: [
      "--seed",
      "3",
      "--samplers",
      "dry;top_k;typ_p;xtc;temperature",
      "--top-k",
      "50",
      "--typical",
      "0.9",
      "--xtc-probability",
      "0.5",
      "--xtc-threshold",
      "0.05",
      "--temp",
      "1.1",
      "--dynatemp-range",
      "0.3",
      "--dynatemp-exp",
      "1.5",
      "--dry-multiplier",
      "1.0",
      "--dry-sequence-breaker",
      "\n",
      "--dry-sequence-breaker",
      "a",
    ],
  },
  {
    name: "mirostat 2 (WasmEdge spellings)",
    config: {
      seed: 7,
      mirostat: 2,
      "mirostat-tau": 4,
      "mirostat-eta": 0.2,
      temp: 0.7,
    },
    flags: [
      "--seed",
      "7",
      "--mirostat",
      "2",
      "--mirostat-ent",
      "4",
      "--mirostat-lr",
      "0.2",
      "--temp",
      "0.7",
    ],
  },
  {
    name: "mirostat 1",
    config: { seed: 11, mirostat: 1, mirostat_tau: 6, temp: 1.0 },
    flags: [
      "--seed",
      "11",
      "--mirostat",
      "1",
      "--mirostat-ent",
      "6",
      "--temp",
      "1.0",
    ],
  },
  {
    name: "top_n_sigma without top_k, top_p, min_p",
    config: {
      seed: 5,
      top_n_sigma: 1.5,
      top_k: 0,
      top_p: 1,
      min_p: 0,
      temp: 1.2,
    },
    flags: [
      "--seed",
      "5",
      "--top-nsigma",
      "1.5",
      "--top-k",
      "0",
      "--top-p",
      "1",
      "--min-p",
      "0",
      "--temp",
      "1.2",
    ],
  },
];

for (const set of SETS) {
  Deno.test({
    name: `same text as llama-completion: ${set.name}`,
    ignore: completion === undefined, // built by `deno task build:reference`
    fn: async () => {
      const path = await tinyModel();
      const [want, got] = [
        await reference(path, set.flags),
        await ours(path, set.config),
      ];
      assert.equal(got, want);
      assert.ok(got.length > 0);
    },
  });
}

Deno.test({
  name:
    "same text as llama-completion with the model's general.sampling.* defaults",
  ignore: completion === undefined,
  fn: async () => {
    const info = await ensureModel("tiny", {
      sampling: {
        sequence: "penalties;top_k;min_p;temperature",
        topK: 12,
        minP: 0.01,
        temp: 1.3,
        penaltyRepeat: 1.4,
      },
    });
    const want = await reference(info.path, ["--seed", "9"]);
    const got = await ours(info.path, { seed: 9 });
    assert.equal(got, want);
    // and the metadata matters: without it the text differs
    assert.notEqual(await ours(await tinyModel(), { seed: 9 }), got);
  },
});

Deno.test({
  name:
    "a different seed gives different text (the parity above is not vacuous)",
  ignore: completion === undefined,
  fn: async () => {
    const path = await tinyModel();
    const a = await ours(path, { ...SETS[0].config });
    const b = await ours(path, { ...SETS[0].config, seed: 43 });
    assert.notEqual(a, b);
  },
});
