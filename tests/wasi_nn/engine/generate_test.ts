/** generate(): the same stopping rules as the scheduler, blocking or not. */
import assert from "node:assert/strict";
import { Context, Model, Sampler } from "../../../bindings/mod.ts";
import {
  generate,
  type GenerateOptions,
} from "../../../wasi_nn/engine/generate.ts";
import { Scheduler } from "../../../wasi_nn/engine/scheduler.ts";
import { tinyModel } from "../../_helpers.ts";

const PROMPT = "Once upon a time";

async function run(model: Model, options: GenerateOptions) {
  const ctx = await Context.create(model, { nCtx: 256 });
  using sampler = Sampler.create(model, { temp: 0 });
  try {
    return await generate(ctx, sampler, model.tokenize(PROMPT), options);
  } finally {
    ctx.close();
  }
}

Deno.test("generate(): blocking and non-blocking give the same tokens", async () => {
  using model = await Model.load(await tinyModel());
  const a = await run(model, { nPredict: 16 });
  const b = await run(model, { nPredict: 16, sync: true });
  assert.equal(a.tokens.length, 16);
  assert.equal(a.stopReason, "length");
  assert.deepEqual(b.tokens, a.tokens);
  assert.equal(b.text, a.text);
  assert.deepEqual(a.bytes, new TextEncoder().encode(a.text));
});

Deno.test("generate(): stop tokens, stop strings with and without the match, as the scheduler stops", async () => {
  using model = await Model.load(await tinyModel());
  const base = await run(model, { nPredict: 12 });
  const k = base.tokens.findIndex((t, i) =>
    i >= 2 && base.tokens.indexOf(t) === i
  );
  assert.ok(k >= 2);
  const byToken = await run(model, {
    nPredict: 12,
    stopTokens: [base.tokens[k]],
  });
  assert.equal(byToken.stopReason, "stop_token");
  assert.equal(byToken.stoppedBy, base.tokens[k]);
  assert.deepEqual(byToken.tokens, base.tokens.slice(0, k + 1));

  const stop = ` ${base.text.trim().split(" ")[2]}`;
  const at = base.text.indexOf(stop);
  const kept = await run(model, { nPredict: 12, stop: [stop] });
  assert.equal(kept.stopReason, "stop");
  assert.equal(kept.stoppedBy, stop);
  assert.equal(kept.text, base.text.slice(0, at + stop.length));
  const dropped = await run(model, {
    nPredict: 12,
    stop: [stop],
    includeStop: false,
  });
  assert.equal(dropped.text, base.text.slice(0, at));

  // The scheduler applies the same rules to the same tokens.
  const sched = await Scheduler.create(model, { nSeq: 1, nCtxPerSeq: 256 });
  try {
    using sampler = Sampler.create(model, { temp: 0 });
    const r = await sched.submit({
      owner: sched.newOwner("s"),
      prompt: model.tokenize(PROMPT),
      sampler,
      stop: { nPredict: 12, stop: [stop], includeStop: false },
    }).result;
    assert.equal(r.text, dropped.text);
    assert.deepEqual(r.tokens, dropped.tokens);
  } finally {
    sched.close();
  }
});

Deno.test("generate(): the loop detector and cancellation", async () => {
  using model = await Model.load(await tinyModel());
  const base = await run(model, { nPredict: 2 });
  const ctx = await Context.create(model, { nCtx: 256 });
  try {
    using forced = Sampler.create(model, {
      temp: 0,
      logit_bias: [{ token: base.tokens[0], bias: 100 }],
    });
    const loop = await generate(ctx, forced, model.tokenize(PROMPT), {
      nPredict: 50,
      loop: { maxCycle: 2, repeats: 4 },
    });
    assert.equal(loop.stopReason, "loop");
    assert.equal(loop.tokens.length, 4);
    const ac = new AbortController();
    using s = Sampler.create(model, { temp: 0 });
    const cancelled = await generate(ctx, s, model.tokenize(PROMPT), {
      nPredict: 50,
      signal: ac.signal,
      onToken: () => ac.abort(),
    });
    assert.equal(cancelled.stopReason, "cancelled");
    assert.equal(cancelled.tokens.length, 1);
  } finally {
    ctx.close();
  }
});

Deno.test("generate(): a full context stops, or shifts and goes on with contextShift", async () => {
  using model = await Model.load(await tinyModel());
  const ctx = await Context.create(model, { nCtx: 64 });
  try {
    const nCtx = ctx.nCtx;
    const prompt = model.tokenize(PROMPT);
    const run = async (contextShift: boolean) => {
      using sampler = Sampler.create(model, { temp: 0 });
      return await generate(ctx, sampler, prompt, {
        nPredict: nCtx + 40,
        ignoreEos: true,
        contextShift,
        nKeep: -1,
      });
    };
    const full = await run(false);
    assert.equal(full.stopReason, "context_full");
    assert.equal(full.truncated, false);
    assert.equal(full.tokens.length, nCtx - prompt.length);
    const shifted = await run(true);
    assert.equal(shifted.stopReason, "length");
    assert.equal(shifted.truncated, true);
    assert.equal(shifted.tokens.length, nCtx + 40);
    // Up to the first shift, the same tokens.
    assert.deepEqual(shifted.tokens.slice(0, full.tokens.length), full.tokens);
  } finally {
    ctx.close();
  }
});
