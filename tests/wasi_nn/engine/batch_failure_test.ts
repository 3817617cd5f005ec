/**
 * A decode that fails fails only the session that caused it: the batch is
 * split and each session's part decoded alone, as llama.cpp's server does.
 */
import assert from "node:assert/strict";
import { Model, Sampler } from "../../../bindings/mod.ts";
import { Errno, WasiNnError } from "../../../wasi_nn/errno.ts";
import { Scheduler } from "../../../wasi_nn/engine/scheduler.ts";
import { tinyModel } from "../../_helpers.ts";

Deno.test("a session whose tokens llama.cpp refuses fails alone; the others finish as if alone", async () => {
  using model = await Model.load(await tinyModel());
  const sched = await Scheduler.create(model, { nSeq: 3, nCtxPerSeq: 256 });
  try {
    const greedy = () => Sampler.create(model, { temp: 0 });
    const prompts = ["The cat sat on the mat and", "In a galaxy far away"];
    const alone = [];
    for (const [i, p] of prompts.entries()) {
      alone.push(
        (await sched.submit({
          owner: sched.newOwner(`solo${i}`),
          prompt: model.tokenize(p),
          sampler: greedy(),
          stop: { nPredict: 12 },
          ignoreEos: true,
        }).result).tokens,
      );
    }
    // A token id past the vocabulary: llama.cpp's decode refuses the batch.
    const bad = Int32Array.from([...model.tokenize("Hello"), model.nVocab + 7]);
    const steps0 = sched.stats.steps;
    const tasks = [
      sched.submit({
        owner: sched.newOwner("a"),
        prompt: model.tokenize(prompts[0]),
        sampler: greedy(),
        stop: { nPredict: 12 },
        ignoreEos: true,
      }),
      sched.submit({
        owner: sched.newOwner("bad"),
        prompt: bad,
        sampler: greedy(),
        stop: { nPredict: 12 },
      }),
      sched.submit({
        owner: sched.newOwner("b"),
        prompt: model.tokenize(prompts[1]),
        sampler: greedy(),
        stop: { nPredict: 12 },
        ignoreEos: true,
      }),
    ];
    const [a, b, c] = await Promise.allSettled(tasks.map((t) => t.result));
    assert.equal(b.status, "rejected");
    const err = (b as PromiseRejectedResult).reason;
    assert.ok(err instanceof WasiNnError && err.errno === Errno.RuntimeError);
    assert.equal(
      a.status,
      "fulfilled",
      String((a as PromiseRejectedResult).reason),
    );
    assert.equal(
      c.status,
      "fulfilled",
      String((c as PromiseRejectedResult).reason),
    );
    assert.deepEqual(a.value.tokens, alone[0]);
    assert.deepEqual(c.value.tokens, alone[1]);
    // They were batched together (then split once), not run one by one.
    assert.ok(
      sched.stats.steps - steps0 < 2 * 13,
      `${sched.stats.steps - steps0} steps`,
    );
  } finally {
    sched.close();
  }
});
