import assert from "node:assert/strict";
import {
  Context,
  defaultSamplerParams,
  jsonSchemaToGrammar,
  LlamaError,
  Model,
  Sampler,
  Status,
} from "../../bindings/mod.ts";
import { generate } from "../../wasi_nn/engine/generate.ts";
import { tinyModel } from "../_helpers.ts";

async function greedy(
  ctx: Context,
  model: Model,
  prompt: string,
  n: number,
  seqId = 0,
) {
  const sampler = Sampler.create(model, { temp: 0 });
  try {
    return await generate(ctx, sampler, model.tokenize(prompt), {
      nPredict: n,
      seqId,
    });
  } finally {
    sampler.close();
  }
}

Deno.test("sampler defaults are llama.cpp's", () => {
  const d = defaultSamplerParams();
  assert.equal(d.top_k, 40);
  assert.ok(Math.abs(d.top_p - 0.95) < 1e-6);
  assert.ok(Math.abs(d.temp - 0.8) < 1e-6);
  assert.equal(d.penalty_last_n, 64);
});

Deno.test("a batch over two sequences equals each sequence alone", async () => {
  using model = await Model.load(await tinyModel());
  const a = model.tokenize("The cat sat on");
  const b = model.tokenize("A completely different prompt about ships");
  const solo = await Context.create(model, { nCtx: 256 });
  const ra = await greedy(solo, model, "The cat sat on", 12);
  const rb = await greedy(
    solo,
    model,
    "A completely different prompt about ships",
    12,
  );
  // One context, two sequences, prompts decoded in ONE batch, then stepped in turn.
  const ctx = await Context.create(model, { nCtx: 512, nSeqMax: 2 });
  const n = a.length + b.length;
  const tokens = new Int32Array(n),
    pos = new Int32Array(n),
    seq = new Int32Array(n);
  const logits = new Uint8Array(n);
  a.forEach((t, i) => {
    tokens[i] = t;
    pos[i] = i;
  });
  b.forEach((t, i) => {
    tokens[a.length + i] = t;
    pos[a.length + i] = i;
    seq[a.length + i] = 1;
  });
  logits[a.length - 1] = 1;
  logits[n - 1] = 1;
  await ctx.decode({ tokens, pos, seqIds: seq, logits });
  const sa = Sampler.create(model, { temp: 0 }),
    sb = Sampler.create(model, { temp: 0 });
  const outA = [sa.sample(ctx, a.length - 1)], outB = [sb.sample(ctx, n - 1)];
  for (let i = 1; i < 12; i++) {
    await ctx.decode({
      tokens: Int32Array.of(outA[i - 1], outB[i - 1]),
      pos: Int32Array.of(a.length + i - 1, b.length + i - 1),
      seqIds: Int32Array.of(0, 1),
      logits: Uint8Array.of(1, 1),
    });
    outA.push(sa.sample(ctx, 0));
    outB.push(sb.sample(ctx, 1));
  }
  assert.deepEqual(outA, ra.tokens.slice(0, 12));
  assert.deepEqual(outB, rb.tokens.slice(0, 12));
  assert.equal(ctx.seqPosMax(0), a.length + 10);
  assert.equal(ctx.seqPosMax(1), b.length + 10);
  assert.ok(ctx.seqRemove(1));
  assert.equal(ctx.seqPosMax(1), -1);
  assert.equal(
    ctx.seqPosMax(0),
    a.length + 10,
    "removing seq 1 leaves seq 0 intact",
  );
});

Deno.test("save and restore a sequence continues identically", async () => {
  using model = await Model.load(await tinyModel());
  const ctx = await Context.create(model, { nCtx: 256 });
  const prompt = model.tokenize("State saving test prompt");
  await ctx.decodePrompt(prompt);
  const file = await Deno.makeTempFile({ suffix: ".state" });
  await ctx.saveSequence(file, 0, prompt);
  const s1 = Sampler.create(model, { temp: 0 });
  const first = [];
  for (let i = 0; i < 8; i++) {
    first.push((await ctx.step(s1, { pos: prompt.length + i })).token);
  }
  ctx.clearMemory();
  const ctx2 = await Context.create(model, { nCtx: 256 });
  const restored = await ctx2.loadSequence(file, 0);
  assert.deepEqual([...restored], [...prompt]);
  const s2 = Sampler.create(model, { temp: 0 });
  // The restored KV has no logits: re-decode the last prompt token to sample.
  ctx2.seqRemove(0, prompt.length - 1, -1);
  await ctx2.decode({
    tokens: Int32Array.of(prompt[prompt.length - 1]),
    pos: Int32Array.of(prompt.length - 1),
    seqIds: Int32Array.of(0),
  });
  const second = [];
  for (let i = 0; i < 8; i++) {
    second.push((await ctx2.step(s2, { pos: prompt.length + i })).token);
  }
  assert.deepEqual(second, first);
  await assert.rejects(
    ctx2.loadSequence(`${file}.missing`, 0),
    (e) => e instanceof LlamaError && e.code === Status.FileNotFound,
  );
  await Deno.remove(file);
});

Deno.test("a full context reports NoKvSpace via the step result", async () => {
  using model = await Model.load(await tinyModel());
  const ctx = await Context.create(model, { nCtx: 32 });
  const r = await greedy(ctx, model, "hello", 500);
  assert.equal(r.stopReason, "context_full");
  // llama.cpp pads n_ctx; generation stops when the padded context is full.
  assert.equal(r.tokens.length + model.tokenize("hello").length, ctx.nCtx);
});

Deno.test("embeddings are normalised vectors of n_embd", async () => {
  using model = await Model.load(await tinyModel());
  const ctx = await Context.create(model, { nCtx: 64, embeddings: true });
  await ctx.decodePrompt(model.tokenize("embed me"));
  const v = ctx.embeddings(-1, 2);
  assert.equal(v.length, model.nEmbd);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
});

Deno.test("a JSON-schema grammar constrains output to valid JSON", async () => {
  using model = await Model.load(await tinyModel());
  const grammar = jsonSchemaToGrammar({
    type: "object",
    properties: { n: { type: "integer" } },
    required: ["n"],
  });
  assert.match(grammar, /root ::=/);
  const ctx = await Context.create(model, { nCtx: 512 });
  const sampler = Sampler.create(model, { temp: 0, grammar });
  const r = await generate(ctx, sampler, model.tokenize("JSON:"), {
    nPredict: 60,
  });
  const parsed = JSON.parse(r.text);
  assert.equal(typeof parsed.n, "number");
});

Deno.test("bad sampler input is a clear error", async () => {
  using model = await Model.load(await tinyModel());
  assert.throws(
    () => Sampler.create(model, { grammar: "root ::= (" }),
    (e) => e instanceof LlamaError && e.code === Status.Grammar,
  );
  assert.throws(
    () => Sampler.create(model, { logit_bias: [{ token: 999999, bias: 1 }] }),
    /outside the vocabulary/,
  );
  assert.throws(() => jsonSchemaToGrammar("{not json"), /not valid JSON/);
});

Deno.test("a banned token never appears", async () => {
  using model = await Model.load(await tinyModel());
  const ctx = await Context.create(model, { nCtx: 256 });
  const free = await greedy(ctx, model, "Once upon a time", 16);
  const banned = free.tokens[0];
  const sampler = Sampler.create(model, {
    temp: 0,
    logit_bias: [{ token: banned, bias: -Infinity }],
  });
  const r = await generate(ctx, sampler, model.tokenize("Once upon a time"), {
    nPredict: 16,
  });
  assert.ok(!r.tokens.includes(banned));
});

Deno.test("a second call on a busy context is refused, and close waits for the running one", async () => {
  using model = await Model.load(await tinyModel());
  const ctx = await Context.create(model, { nCtx: 512 });
  const prompt = model.tokenize("word ".repeat(200));
  const running = ctx.decodePrompt(prompt);
  // Both asked before anything awaits: the first may end at the first await.
  const second = ctx.decodePrompt(prompt);
  assert.throws(() => ctx.decodePromptSync(prompt), /busy/);
  await assert.rejects(second, /busy/);
  ctx.close(); // aborts the running decode, frees when it returns
  await running.catch(() => {});
  assert.throws(() => ctx.nCtx, /closed/);
});
