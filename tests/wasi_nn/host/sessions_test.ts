import assert from "node:assert/strict";
import { Errno, WasiNnError } from "../../../wasi_nn/errno.ts";
import { SessionStore } from "../../../wasi_nn/host/sessions.ts";

class S {
  closed = false;
  constructor(readonly id: string, public busy = false) {}
  close() {
    this.closed = true;
  }
}

Deno.test("idle sessions expire on sweep (injected clock); busy ones never do", () => {
  let now = 0;
  const evicted: string[] = [];
  const store = new SessionStore<S>({
    idleTimeoutMs: 1000,
    now: () => now,
    timer: false,
    onEvict: (id, why) => evicted.push(`${id}:${why}`),
  });
  const a = new S("a"), b = new S("b", true), c = new S("c");
  store.add(a);
  store.add(b);
  now = 600;
  store.add(c);
  now = 1200;
  assert.deepEqual(store.sweep(), ["a"]);
  assert.ok(a.closed && !b.closed && !c.closed);
  now = 1700;
  assert.deepEqual(store.sweep(), ["c"]);
  assert.deepEqual(evicted, ["a:idle", "c:idle"]);
  assert.equal(store.size, 1);
  store.close();
  assert.ok(b.closed);
});

Deno.test("the sweep runs by itself on a timer", async () => {
  const store = new SessionStore<S>({ idleTimeoutMs: 20, sweepIntervalMs: 10 });
  const a = new S("a");
  store.add(a);
  await new Promise((r) => setTimeout(r, 120));
  assert.ok(a.closed, "expired without any new session arriving");
  store.close();
});

Deno.test("a full store evicts the least recently used idle session, or answers Busy", () => {
  let now = 0;
  const store = new SessionStore<S>({
    maxSessions: 2,
    now: () => now,
    timer: false,
  });
  const a = new S("a"), b = new S("b");
  store.add(a);
  now = 10;
  store.add(b);
  now = 20;
  store.get("a"); // a is now the most recently used
  store.add(new S("c"));
  assert.ok(b.closed && !a.closed);
  a.busy = true;
  store.get("c")!.busy = true;
  assert.throws(
    () => store.add(new S("d")),
    (e) => e instanceof WasiNnError && e.errno === Errno.Busy,
  );
  store.close();
});
