// Saving or restoring a session waits for the scheduler's loop to go idle
// (Scheduler.#exclusive): no sequence file is read or written while a decode
// may be in flight, and the wait ends as soon as the loop is idle.
import assert from "node:assert/strict";
import { Model, Sampler } from "../../../bindings/mod.ts";
import { Scheduler } from "../../../wasi_nn/engine/scheduler.ts";
import { tinyModel } from "../../_helpers.ts";

async function setup() {
  const model = await Model.load(await tinyModel());
  const sched = await Scheduler.create(model, {
    nSeq: 2,
    nCtxPerSeq: 256,
    threads: 2,
  });
  return { model, sched };
}

Deno.test("saveOwner while another session generates waits for its end, then saves", async () => {
  const { model, sched } = await setup();
  const file = await Deno.makeTempFile();
  try {
    const a = sched.newOwner("a");
    await sched.submit({
      owner: a,
      prompt: model.tokenize("Once upon a time"),
      sampler: Sampler.create(model, { temp: 0 }),
      stop: { nPredict: 4 },
    }).result;
    const order: string[] = [];
    // Its first token says it runs (polling the stats could miss a run
    // that ends between two timer turns, and then wait forever).
    const started = Promise.withResolvers<void>();
    const other = sched.submit({
      owner: sched.newOwner("b"),
      prompt: model.tokenize("The quick brown fox"),
      sampler: Sampler.create(model, { temp: 0 }),
      stop: { nPredict: 48 },
      ignoreEos: true,
      onToken: () => started.resolve(),
    }).result.then((r) => {
      order.push("generated");
      return r;
    });
    await started.promise;
    assert.ok(sched.stats.running > 0, "the other session runs");
    const saved = sched.saveOwner(a, file).then((n) => {
      order.push("saved");
      return n;
    });
    const [r, n] = await Promise.all([other, saved]);
    assert.equal(r.tokens.length, 48);
    assert.deepEqual(order, ["generated", "saved"]);
    assert.equal(n, a.cached.length);
    const tokens = [...a.cached];
    // A third session takes the least recently used slot (a's) and the file.
    const c = sched.newOwner("c");
    assert.equal(await sched.restoreOwner(c, file), n);
    assert.deepEqual(c.cached, tokens);
  } finally {
    await Deno.remove(file);
    sched.close();
    model.close();
  }
});

Deno.test("saveOwner waits while an on-demand stream is open, and goes on once it is cancelled", async () => {
  const { model, sched } = await setup();
  const file = await Deno.makeTempFile();
  try {
    const a = sched.newOwner("a");
    await sched.submit({
      owner: a,
      prompt: model.tokenize("In a galaxy far away"),
      sampler: Sampler.create(model, { temp: 0 }),
      stop: { nPredict: 4 },
    }).result;
    const stream = sched.submit({
      owner: sched.newOwner("s"),
      prompt: model.tokenize("Recipe for a simple bread:"),
      sampler: Sampler.create(model, { temp: 0 }),
      stop: { nPredict: 64 },
      onDemand: true,
    });
    assert.ok(await stream.next(), "a first token");
    let saved = false;
    const save = sched.saveOwner(a, file).then((n) => {
      saved = true;
      return n;
    });
    // The stream holds the loop (waiting for demand): the save must wait.
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(saved, false, "saved while a stream was open");
    stream.cancel();
    assert.equal((await stream.result).stopReason, "cancelled");
    assert.equal(await save, a.cached.length);
  } finally {
    await Deno.remove(file);
    sched.close();
    model.close();
  }
});
