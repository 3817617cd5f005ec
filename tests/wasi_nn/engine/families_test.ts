/**
 * Every model family llama.cpp treats differently, served right by the
 * scheduler: the prompt cache on plain KV, sliding-window, recurrent and
 * hybrid memory (tail removal, the SWA window, checkpoints), interleaved
 * sessions, context full and context shift, session save and restore. Each
 * cached run is compared with a fresh session given the same prompt.
 */
import assert from "node:assert/strict";
import { Model, Sampler } from "../../../bindings/mod.ts";
import {
  ensureFamilyModel,
  MODEL_FAMILIES,
  MODEL_FAMILY_TRAITS,
  type ModelFamily,
} from "../../../gguf/mod.ts";
import {
  Scheduler,
  type SlotOwner,
} from "../../../wasi_nn/engine/scheduler.ts";

const GENERATING = MODEL_FAMILIES.filter((f) =>
  MODEL_FAMILY_TRAITS[f].generates
);

/** A first prompt longer than a sliding-window cache (64-token window + 512 batch, padded: 768 cells). */
function longPrompt(model: Model): Int32Array<ArrayBuffer> {
  const words = Array.from({ length: 700 }, (_, i) => `w${(i * 7) % 53}`);
  return model.tokenize(`User: ${words.join(" ")}\nAssistant:`);
}

function tokens(model: Model, text: string): number[] {
  return [...model.tokenize(text, { addSpecial: false })];
}

async function withScheduler(
  family: ModelFamily,
  f: (model: Model, sched: Scheduler) => Promise<void>,
  nCtxPerSeq = 2048,
) {
  const model = await Model.load((await ensureFamilyModel(family)).path);
  const sched = await Scheduler.create(model, { nSeq: 3, nCtxPerSeq });
  try {
    await f(model, sched);
  } finally {
    sched.close();
    model.close();
  }
}

function run(
  sched: Scheduler,
  model: Model,
  owner: SlotOwner,
  prompt: Int32Array<ArrayBuffer>,
  extra: { cachePrompt?: boolean; nPredict?: number } = {},
) {
  return sched.submit({
    owner,
    prompt,
    sampler: Sampler.create(model, { temp: 0 }),
    stop: { nPredict: extra.nPredict ?? 8 },
    ignoreEos: true,
    cachePrompt: extra.cachePrompt,
  }).result;
}

/** The same prompt in a fresh session, without the cache. */
async function fresh(
  sched: Scheduler,
  model: Model,
  prompt: Int32Array<ArrayBuffer>,
  nPredict = 8,
): Promise<number[]> {
  const owner = sched.newOwner(`fresh-${Math.random()}`);
  try {
    return (await run(sched, model, owner, prompt, {
      cachePrompt: false,
      nPredict,
    })).tokens;
  } finally {
    sched.dropOwner(owner);
  }
}

const needsCheckpoint = (f: ModelFamily) =>
  MODEL_FAMILY_TRAITS[f].memory !== "kv";

for (const family of GENERATING) {
  Deno.test(`${family}: a second turn reuses the first and equals a fresh session`, async () => {
    await withScheduler(family, async (model, sched) => {
      const owner = sched.newOwner("chat");
      const p1 = longPrompt(model);
      const r1 = await run(sched, model, owner, p1);
      // The guest sends the whole conversation again.
      const p2 = Int32Array.from([
        ...p1,
        ...r1.tokens,
        ...tokens(model, "\nUser: and then?\nAssistant:"),
      ]);
      const r2 = await run(sched, model, owner, p2);
      assert.ok(
        r2.timings.promptReused >= p1.length,
        JSON.stringify(r2.timings),
      );
      assert.deepEqual(r2.tokens, await fresh(sched, model, p2));
    });
  });

  Deno.test(`${family}: a turn that differs after the last prompt rolls back (tail or checkpoint)`, async () => {
    await withScheduler(family, async (model, sched) => {
      const owner = sched.newOwner("chat");
      const p1 = longPrompt(model);
      await run(sched, model, owner, p1);
      // The assistant text is not what was generated (a template that
      // re-renders it): the cache holds tokens past the common prefix.
      const p2 = Int32Array.from([
        ...p1,
        ...tokens(model, " something else entirely\nUser: ok\nAssistant:"),
      ]);
      const r2 = await run(sched, model, owner, p2);
      // Plain KV drops the tail; other memory restores the checkpoint taken
      // 4 tokens before the end of the first prompt.
      const min = needsCheckpoint(family) ? p1.length - 4 : p1.length;
      assert.ok(
        r2.timings.promptReused >= min,
        `${r2.timings.promptReused} reused, expected at least ${min}`,
      );
      assert.deepEqual(r2.tokens, await fresh(sched, model, p2));
    });
  });

  Deno.test(`${family}: an edit early in the conversation gives what a fresh session gives`, async () => {
    await withScheduler(family, async (model, sched) => {
      const owner = sched.newOwner("chat");
      const p1 = longPrompt(model);
      await run(sched, model, owner, p1);
      const p2 = Int32Array.from([
        ...p1.slice(0, 300),
        ...tokens(model, " an edited sentence"),
        ...p1.slice(300),
      ]);
      const r2 = await run(sched, model, owner, p2);
      const memory = MODEL_FAMILY_TRAITS[family].memory;
      // Plain KV keeps the first 300; a recurrent state or a window that
      // has moved on cannot, and no checkpoint is that old: from 0.
      assert.equal(r2.timings.promptReused, memory === "kv" ? 300 : 0);
      assert.deepEqual(r2.tokens, await fresh(sched, model, p2));
    });
  });

  Deno.test(`${family}: two interleaved sessions equal their solo runs`, async () => {
    await withScheduler(family, async (model, sched) => {
      // 8 tokens: a batch of two sequences takes other matrix kernels than
      // one, so a near tie of random weights may flip a later token; a
      // session that saw the other's state would differ from the first.
      const prompts = [longPrompt(model), model.tokenize("Once upon a time")];
      const solo = [];
      for (const p of prompts) solo.push(await fresh(sched, model, p, 8));
      const a = sched.newOwner("a"), b = sched.newOwner("b");
      const together = await Promise.all([
        run(sched, model, a, prompts[0], { nPredict: 8 }),
        run(sched, model, b, prompts[1], { nPredict: 8 }),
      ]);
      assert.deepEqual(together.map((r) => r.tokens), solo);
    });
  });

  Deno.test(`${family}: a full context shifts where the memory can, and stops where it cannot`, async () => {
    await withScheduler(family, async (model, sched) => {
      const r = await sched.submit({
        owner: sched.newOwner("long"),
        prompt: model.tokenize("Once upon a time"),
        sampler: Sampler.create(model, { temp: 0 }),
        stop: { nPredict: 200 },
        ignoreEos: true,
        contextShift: true,
      }).result;
      if (MODEL_FAMILY_TRAITS[family].memory === "kv") {
        assert.equal(r.stopReason, "length");
        assert.equal(r.tokens.length, 200);
        assert.equal(r.truncated, true);
      } else {
        assert.equal(r.stopReason, "context_full");
        assert.ok(r.tokens.length < 200);
      }
    }, 128);
  });

  Deno.test(`${family}: a session saved and restored goes on as the original`, async () => {
    await withScheduler(family, async (model, sched) => {
      const file = await Deno.makeTempFile({ suffix: ".session" });
      try {
        const a = sched.newOwner("a");
        const p1 = model.tokenize(
          "The quick brown fox jumps over the lazy dog.",
        );
        const r1 = await run(sched, model, a, p1);
        const n = await sched.saveOwner(a, file);
        assert.equal(n, a.cached.length);
        const b = sched.newOwner("b");
        assert.equal(await sched.restoreOwner(b, file), n);
        const p2 = Int32Array.from([
          ...p1,
          ...r1.tokens,
          ...tokens(model, " Then"),
        ]);
        const ra = await run(sched, model, a, p2);
        const rb = await run(sched, model, b, p2);
        assert.deepEqual(rb.tokens, ra.tokens);
        assert.ok(rb.timings.promptReused >= n, JSON.stringify(rb.timings));
      } finally {
        await Deno.remove(file);
      }
    });
  });
}
