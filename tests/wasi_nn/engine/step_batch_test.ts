import assert from "node:assert/strict";
import { Model, Sampler } from "../../../bindings/mod.ts";
import {
  addNextTokens,
  addPromptChunks,
  firstTokens,
  newBatch,
  partOf,
  seqsInclude,
} from "../../../wasi_nn/engine/_step_batch.ts";
import { Task } from "../../../wasi_nn/engine/_task.ts";
import { tinyModel } from "../../_helpers.ts";

/** A real task in `slot`, at `phase`, with `prompt` (pending from `pos`). */
function task(
  model: Model,
  slot: number,
  phase: "prompt" | "generate",
  prompt: number[],
  pos = 0,
): Task {
  const t = new Task(
    {
      owner: { id: `s${slot}`, cached: [], checkpoints: [], lastUsed: 0 },
      prompt: Int32Array.from(prompt),
      sampler: Sampler.create(model, { temp: 0 }),
    },
    Sampler.create(model, { temp: 0 }),
    model,
    0,
  );
  t.slot = slot;
  t.phase = phase;
  t.pending = t.spec.prompt.subarray(pos);
  t.pos = pos;
  t.spec.owner.cached = prompt.slice(0, pos);
  return t;
}

Deno.test("a step's batch: one token per generating task first, then prompt chunks into the room left", async () => {
  using model = await Model.load(await tinyModel());
  const gen = task(model, 2, "generate", [5, 6, 7], 3);
  gen.lastToken = 42;
  const idle = task(model, 3, "generate", [5], 1);
  idle.demand = 0; // on demand, not asked
  const long = task(model, 0, "prompt", [10, 11, 12, 13, 14, 15]);
  const short = task(model, 1, "prompt", [20, 21]);
  const tasks = [long, gen, short, idle];
  const buf = newBatch(5);
  const sampleAt: [Task, number][] = [];
  let n = addNextTokens(tasks, buf, 5, 64, sampleAt, () => true);
  assert.equal(n, 1);
  n = addPromptChunks(tasks, buf, n, 5, sampleAt);
  assert.equal(n, 5);
  const b = firstTokens(buf, n);
  assert.deepEqual([...b.tokens], [42, 10, 11, 12, 13]);
  assert.deepEqual([...b.pos], [3, 0, 1, 2, 3]);
  assert.deepEqual([...b.seqIds], [2, 0, 0, 0, 0]);
  // Only the generating token wants logits: the long prompt is not done.
  assert.deepEqual([...b.logits], [1, 0, 0, 0, 0]);
  assert.deepEqual(sampleAt.map(([t, i]) => [t.slot, i]), [[2, 0]]);
  assert.deepEqual(gen.spec.owner.cached, [5, 6, 7, 42]);
  assert.equal(long.pendingAt, 4);
  assert.equal(short.pendingAt, 0);

  // The next step: the rest of the long prompt and the short one, each
  // ending with logits.
  const next: [Task, number][] = [];
  gen.demand = 0;
  n = addPromptChunks(tasks, buf, 0, 5, next);
  assert.equal(n, 4);
  const c = firstTokens(buf, n);
  assert.deepEqual([...c.tokens], [14, 15, 20, 21]);
  assert.deepEqual([...c.logits], [0, 1, 0, 1]);
  assert.deepEqual(next.map(([t, i]) => [t.slot, i]), [[0, 1], [1, 3]]);
  assert.deepEqual(long.spec.owner.cached, [10, 11, 12, 13, 14, 15]);
});

Deno.test("a full slot asks roomFor; a chunk stops at the checkpoint and before an image", async () => {
  using model = await Model.load(await tinyModel());
  const full = task(model, 0, "generate", [1, 2, 3, 4], 4);
  const asked: number[] = [];
  const buf = newBatch(8);
  assert.equal(
    addNextTokens([full], buf, 8, 4, [], (t) => (asked.push(t.slot), false)),
    0,
  );
  assert.deepEqual(asked, [0]);

  const cp = task(model, 1, "prompt", [1, 2, 3, 4, 5, 6]);
  cp.checkpointAt = 2;
  const withImage = task(model, 2, "prompt", [7, 8, -1, -1, 9]);
  withImage.spec.media = {
    spans: [{ start: 2, end: 4, nPos: 2 }],
    eval: () => Promise.resolve(),
  };
  const sampleAt: [Task, number][] = [];
  const n = addPromptChunks([cp, withImage], buf, 0, 8, sampleAt);
  assert.deepEqual([...firstTokens(buf, n).tokens], [1, 2, 7, 8]);
  assert.equal(withImage.mediaDue, undefined);
  // At the image: nothing more is added, and the image is due.
  assert.equal(addPromptChunks([withImage], buf, 0, 8, sampleAt), 0);
  assert.deepEqual(withImage.mediaDue, { start: 2, end: 4, nPos: 2 });
  assert.equal(sampleAt.length, 0);
});

Deno.test("partOf: one sequence's tokens of a step, its sampling indexes renumbered", async () => {
  using model = await Model.load(await tinyModel());
  const a = task(model, 0, "generate", [1], 1);
  const b = task(model, 1, "generate", [1], 1);
  const batch = newBatch(4);
  batch.tokens.set([10, 20, 21, 11]);
  batch.pos.set([5, 7, 8, 6]);
  batch.seqIds.set([0, 1, 1, 0]);
  batch.logits.set([0, 0, 1, 1]);
  const part = partOf({ batch, sampleAt: [[b, 2], [a, 3]] }, 0);
  assert.deepEqual([...part.batch.tokens], [10, 11]);
  assert.deepEqual([...part.batch.pos], [5, 6]);
  assert.deepEqual([...part.batch.logits], [0, 1]);
  assert.deepEqual(part.sampleAt, [[a, 1]]);
  assert.ok(seqsInclude(batch.seqIds, 1));
  assert.ok(!seqsInclude(batch.seqIds, 2));
});
