import assert from "node:assert/strict";
import { PriorityQueue } from "../../../wasi_nn/engine/_priority_queue.ts";

Deno.test("higher levels first, FIFO within a level", () => {
  const q = new PriorityQueue<string>();
  q.push("a0", 0);
  q.push("b1", 1);
  q.push("c0", 0);
  q.push("d1", 1);
  assert.deepEqual([q.pop(), q.pop(), q.pop(), q.pop(), q.pop()], [
    "b1",
    "d1",
    "a0",
    "c0",
    undefined,
  ]);
});

Deno.test("aging lets a long-waiting low-priority entry overtake", () => {
  let now = 0;
  const q = new PriorityQueue<string>({ agingMs: 100, now: () => now });
  q.push("old-low", 0);
  now = 250; // waited 2.5 levels
  q.push("new-high", 2);
  assert.equal(q.pop(), "old-low");
  assert.equal(q.pop(), "new-high");
  // Without aging the high one wins.
  const r = new PriorityQueue<string>({ now: () => now });
  r.push("old-low", 0);
  now = 10_000;
  r.push("new-high", 2);
  assert.equal(r.pop(), "new-high");
});

Deno.test("remove takes a cancelled entry out", () => {
  const q = new PriorityQueue<number>();
  q.push(1);
  q.push(2);
  assert.ok(q.remove(1));
  assert.ok(!q.remove(1));
  assert.equal(q.size, 1);
  assert.equal(q.pop(), 2);
});
