/**
 * Sampling parameters, checked on what llama.cpp generates: json_schema
 * output parses and validates, GBNF and lazy grammars constrain the text, a
 * banned token never appears, ignore_eos never samples an end token, n_probs
 * reports probabilities that sum to at most 1 and contain the chosen token;
 * and the config -> sampler parameter mapping.
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import { Context, Model, Sampler } from "../../../bindings/mod.ts";
import {
  ConfigError,
  type ConfigValues,
  parseConfig,
} from "../../../wasi_nn/config/parse.ts";
import {
  generate,
  type GenerateResult,
} from "../../../wasi_nn/engine/generate.ts";
import {
  grammarTriggers,
  samplerParams,
} from "../../../wasi_nn/config/_sampler_options.ts";
import { tinyModel } from "../../_helpers.ts";

const PROMPT = "Once upon a time";

async function withModel(
  fn: (model: Model, ctx: Context) => Promise<void>,
): Promise<void> {
  using model = await Model.load(await tinyModel());
  const ctx = await Context.create(model, { nCtx: 512, nThreads: 2 });
  await fn(model, ctx);
}

async function gen(
  model: Model,
  ctx: Context,
  config: Record<string, unknown>,
): Promise<GenerateResult> {
  const cfg: ConfigValues = parseConfig(config, { strict: true }).values;
  using sampler = Sampler.create(model, samplerParams(model, cfg, ctx.nCtx));
  return await generate(
    ctx,
    sampler,
    model.tokenize(PROMPT, { addSpecial: true, parseSpecial: true }),
    {
      nPredict: (cfg.n_predict as number | undefined) ?? 32,
      ignoreEos: Boolean(cfg.ignore_eos),
      nProbs: (cfg.n_probs as number | undefined) ?? 0,
      sync: true,
    },
  );
}

Deno.test("json_schema constrains the output to JSON that parses and validates", async () => {
  const schema = {
    type: "object",
    properties: {
      name: { type: "string", maxLength: 6 },
      n: { type: "integer", minimum: 0, maximum: 99 },
      ok: { type: "boolean" },
      tags: { type: "array", items: { enum: ["a", "b"] }, maxItems: 3 },
    },
    required: ["name", "n", "ok", "tags"],
    additionalProperties: false,
  };
  const validate = new Ajv2020({ strict: false }).compile(schema);
  await withModel(async (model, ctx) => {
    for (const seed of [1, 2, 3]) {
      // WasmEdge guests send the schema as a string under json-schema
      const r = await gen(model, ctx, {
        "json-schema": JSON.stringify(schema),
        seed,
        temp: 1.0,
        n_predict: 200,
      });
      assert.equal(r.stopReason, "eos", r.text);
      const value = JSON.parse(r.text);
      assert.ok(
        validate(value),
        `${r.text}: ${JSON.stringify(validate.errors)}`,
      );
    }
    // OpenAI's response_format does the same
    const rf = await gen(model, ctx, {
      response_format: {
        type: "json_schema",
        json_schema: { name: "x", schema },
      },
      seed: 4,
      n_predict: 200,
    });
    assert.ok(validate(JSON.parse(rf.text)), rf.text);
    const any = await gen(model, ctx, {
      response_format: { type: "json_object" },
      seed: 4,
      n_predict: 24,
    });
    if (any.stopReason === "eos") JSON.parse(any.text); // complete JSON when it finished
    assert.match(any.text, /^\s*[[{"\d\-tfn]/); // starts as JSON
    // without the schema the same seed is not JSON
    const free = await gen(model, ctx, { seed: 1, temp: 1.0, n_predict: 40 });
    assert.throws(() => JSON.parse(free.text));
  });
});

Deno.test("a GBNF grammar constrains the output", async () => {
  await withModel(async (model, ctx) => {
    const seen = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const r = await gen(model, ctx, {
        grammar: 'root ::= "yes" | "no" | "maybe"',
        seed,
        temp: 1.5,
        top_k: 0,
      });
      assert.equal(r.stopReason, "eos");
      assert.match(r.text, /^(yes|no|maybe)$/);
      seen.add(r.text);
    }
    assert.ok(seen.size >= 2, [...seen].join(","));
  });
});

Deno.test("a lazy grammar applies only after its trigger", async () => {
  await withModel(async (model, ctx) => {
    const brace = model.tokenize("{", { addSpecial: false }); // one token, " {" (SPM adds the space)
    assert.equal(brace.length, 1);
    assert.ok(model.tokenToPiece(brace[0]).endsWith("{"));
    const r = await gen(model, ctx, {
      grammar: 'root ::= "{" [a-z]{1,4} "}"',
      grammar_lazy: true,
      grammar_triggers: ["{"],
      logit_bias: [[brace[0], 6]],
      seed: 4,
      n_predict: 200,
    });
    assert.equal(r.stopReason, "eos", r.text);
    assert.match(r.text, /^[^{]*\{[a-z]{1,4}\}$/s);
    assert.ok(
      r.text.indexOf("{") > 0,
      `free text before the trigger: ${JSON.stringify(r.text)}`,
    );
    // lazy without triggers is refused before anything runs
    assert.throws(
      () =>
        samplerParams(
          model,
          { grammar: 'root ::= "a"', grammar_lazy: true },
          512,
        ),
      (e: unknown) => e instanceof ConfigError && e.field === "grammar_lazy",
    );
  });
});

Deno.test("a banned token never appears (by id and by string, false or -inf)", async () => {
  await withModel(async (model, ctx) => {
    const greedy = await gen(model, ctx, {
      temp: 0,
      n_predict: 24,
      ignore_eos: true,
    });
    const seen = [...new Set(greedy.tokens)];
    assert.ok(seen.length > 3);
    const bias: Record<string, unknown> = Object.fromEntries(
      seen.map((t) => [String(t), false]),
    );
    const banned = await gen(model, ctx, {
      temp: 0,
      n_predict: 24,
      ignore_eos: true,
      logit_bias: bias,
    });
    assert.equal(banned.tokens.length, 24);
    for (const t of banned.tokens) {
      assert.ok(!seen.includes(t), `token ${t} was banned`);
    }
    // sampling with a flat distribution, banning by string
    const word = model.tokenToPiece(seen[0]);
    const ids = [...model.tokenize(word, { addSpecial: false })];
    const sampled = await gen(model, ctx, {
      temp: 2,
      top_k: 0,
      min_p: 0,
      top_p: 1,
      seed: 1,
      n_predict: 64,
      ignore_eos: true,
      logit_bias: [[word, false], [seen[1], -1e30]],
    });
    for (const t of sampled.tokens) {
      assert.ok(!ids.includes(t) && t !== seen[1], `token ${t}`);
    }
  });
});

Deno.test("ignore_eos: end-of-generation tokens are never sampled (as llama.cpp does)", async () => {
  await withModel(async (model, ctx) => {
    const eos = model.info.eos;
    const stops = await gen(model, ctx, {
      logit_bias: { [eos]: 100 },
      seed: 1,
    });
    assert.deepEqual([stops.stopReason, stops.tokens], ["eos", [eos]]);
    const goes = await gen(model, ctx, {
      logit_bias: { [eos]: 100 },
      seed: 1,
      ignore_eos: true,
      n_predict: 24,
    });
    assert.equal(goes.stopReason, "length");
    assert.equal(goes.tokens.length, 24);
    for (const t of goes.tokens) assert.ok(!model.isEog(t));
  });
});

Deno.test("n_probs: top-N probabilities per token, sum <= 1, the chosen token included", async () => {
  await withModel(async (model, ctx) => {
    const r = await gen(model, ctx, {
      n_probs: 5,
      top_k: 5,
      seed: 3,
      n_predict: 16,
    });
    assert.equal(r.probs!.length, r.tokens.length);
    r.probs!.forEach((p, i) => {
      assert.equal(p.token, r.tokens[i]);
      assert.equal(p.piece, model.tokenToPiece(p.token));
      assert.ok(p.top.length > 0 && p.top.length <= 5);
      const sum = p.top.reduce((s, c) => s + c.prob, 0);
      assert.ok(sum <= 1 + 1e-5, `sum ${sum}`);
      assert.ok(
        sum > 0.99,
        `top_k 5 keeps 5 candidates: all of the mass, got ${sum}`,
      );
      for (let j = 1; j < p.top.length; j++) {
        assert.ok(p.top[j - 1].prob >= p.top[j].prob);
      }
      const chosen = p.top.find((c) => c.token === p.token);
      assert.ok(chosen, `token ${p.token} is among the top ${p.top.length}`);
      assert.equal(chosen.prob, p.prob);
      assert.ok(p.prob > 0);
    });
    // more candidates than n_probs: the chosen one still has its probability
    const wide = await gen(model, ctx, {
      n_probs: 2,
      top_k: 40,
      seed: 3,
      n_predict: 16,
      temp: 1.5,
    });
    for (const p of wide.probs!) {
      assert.ok(p.top.length === 2);
      assert.ok(p.top.reduce((s, c) => s + c.prob, 0) <= 1 + 1e-5);
      assert.ok(p.prob > 0 && p.prob <= p.top[0].prob);
    }
    // off by default
    assert.equal((await gen(model, ctx, { n_predict: 2 })).probs, undefined);
  });
});

Deno.test("config -> sampler parameters: names, -1 windows, seed, letters, biases, triggers, schema", async () => {
  using model = await Model.load(await tinyModel(), { vocabOnly: true });
  const cfg = parseConfig({
    temperature: 0.5,
    typical_p: 0.9,
    repeat_penalty: 1.1,
    presence_penalty: 0.2,
    frequency_penalty: 0.3,
    repeat_last_n: -1,
    dry_penalty_last_n: -1,
    seed: -1,
    samplers: "ekt",
    logit_bias: [[2, false], ["Hello", 2]],
    ignore_eos: true,
    adaptive_target: 0.5,
    adaptive_decay: 0.5,
    min_keep: 2,
    n_probs: 3,
    json_schema: { type: "integer" },
  }).values;
  const p = samplerParams(model, cfg, 300);
  assert.equal(p.temp, 0.5);
  assert.equal(p.typ_p, 0.9);
  assert.equal(p.penalty_repeat, 1.1);
  assert.equal(p.penalty_present, 0.2);
  assert.equal(p.penalty_freq, 0.3);
  assert.equal(p.penalty_last_n, 300);
  assert.equal(p.n_prev, 300);
  assert.equal(p.dry_penalty_last_n, 300);
  assert.equal(p.seed, 0xFFFFFFFF);
  assert.deepEqual(p.samplers, ["penalties", "top_k", "temperature"]);
  assert.deepEqual(p.logit_bias, [
    { token: 2, bias: -Infinity },
    { token: 15043, bias: 2 },
    ...model.info.eog.map((t) => ({ token: t, bias: -Infinity })),
  ]);
  assert.equal(p.ignore_eos, true);
  assert.deepEqual(
    [p.adaptive_target, p.adaptive_decay, p.min_keep, p.n_probs],
    [0.5, 0.5, 2, 3],
  );
  assert.match(p.grammar!, /^root ::= /m);
  // samplers as names given straight (not through parseConfig) are normalised too
  assert.deepEqual(samplerParams(model, { samplers: "km" }, 8).samplers, [
    "top_k",
    "min_p",
  ]);
  // a word trigger that is exactly one control token becomes a token trigger
  assert.deepEqual(
    grammarTriggers(model, ["</s>", "word", {
      type: "pattern_full",
      value: "a+",
    }]),
    [
      { type: "token", token: 2, value: "</s>" },
      { type: "word", value: "word" },
      { type: "pattern_full", value: "a+" },
    ],
  );
  assert.throws(() => samplerParams(model, { logit_bias: [[32000, 1]] }, 8), {
    message:
      "Field 'logit_bias': token 32000 is outside the vocabulary (0..31999)",
  });
  assert.throws(
    () =>
      samplerParams(model, {
        json_schema: {
          type: "object",
          properties: { a: { $ref: "#/nowhere" } },
        },
      }, 8),
    (e: unknown) =>
      e instanceof ConfigError && e.field === "json_schema" &&
      e.rule === "format",
  );
  // every sampling key the sampler takes builds a sampler
  using s = Sampler.create(model, samplerParams(model, cfg, 300));
  assert.equal(typeof s.seed, "number");
});
