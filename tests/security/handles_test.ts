/**
 * Guests sharing one host cannot see or touch each other: every guest
 * instance has its own graph and context handles (as in wasmtime and
 * WasmEdge), and TypeScript callers' chosen session ids never resume another
 * caller's unnamed session. On the real llama.cpp, through the guest imports
 * (a forwarding guest over a memory of its own, entered through JSPI).
 */
import assert from "node:assert/strict";
import { Errno, WasiNnError } from "../../wasi_nn/errno.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { tinyModel } from "../_helpers.ts";
import { guest } from "../_host_guest.ts";

async function newHost(): Promise<LlamaHost> {
  const path = await tinyModel();
  return await LlamaHost.create({
    registry: {
      resolve: (n: string) => {
        if (n === "default") return path;
        throw new WasiNnError(Errno.NotFound, `no model named '${n}'`);
      },
    },
    log: () => {},
  });
}

Deno.test("a second guest cannot read, replace, finalize or unload the first guest's handles", async () => {
  using host = await newHost();
  const a = guest(host, "a.wasm"), b = guest(host, "b.wasm");
  const [e1, ga] = await a.tryLoadByName(
    '{"n-predict":6,"temp":0,"ctx-size":256}',
  );
  assert.equal(e1, 0);
  const [e2, ca] = a.init(ga);
  assert.equal(e2, 0);
  assert.equal(await a.setInput(ca, 0, "Once upon a time"), 0);
  assert.equal(await a.compute(ca), 0);
  const [e3, victim] = a.output(ca);
  assert.equal(e3, 0);
  assert.ok(victim.length > 0);

  // B holds nothing yet: A's handles do not exist for B.
  assert.equal(b.output(ca)[0], Errno.InvalidArgument);
  assert.equal(b.output(ca, 1)[0], Errno.InvalidArgument);
  assert.equal(
    await b.setInput(ca, 0, "intruder prompt"),
    Errno.InvalidArgument,
  );
  assert.equal(
    await b.setInput(ca, 1, '{"n-predict":1}'),
    Errno.InvalidArgument,
  );
  assert.equal(await b.compute(ca), Errno.InvalidArgument);
  assert.equal(b.init(ga)[0], Errno.InvalidArgument);
  assert.equal(b.finalize(ca), Errno.InvalidArgument);
  assert.equal(b.unload(ga), Errno.InvalidArgument);

  // B's own handles start at 0 too, and are B's alone.
  const [, gb] = await b.tryLoadByName(
    '{"n-predict":3,"temp":0,"ctx-size":256}',
  );
  const [, cb] = b.init(gb);
  assert.equal(gb, ga);
  assert.equal(cb, ca);
  assert.equal(await b.setInput(cb, 0, "intruder prompt"), 0);
  assert.equal(await b.compute(cb), 0);
  assert.equal(b.finalize(cb), 0);
  assert.equal(b.unload(gb), 0);

  // A is untouched: same output, its context and graph still work.
  assert.equal(a.output(ca)[1], victim);
  assert.equal(await a.compute(ca), 0);
  assert.equal(
    a.output(ca)[1],
    victim,
    "greedy: the same prompt gives the same text",
  );
  const meta = JSON.parse(a.output(ca, 1)[1]);
  assert.equal(meta.output_tokens, 6);
  assert.equal(a.finalize(ca), 0);
  assert.equal(a.unload(ga), 0);
});

Deno.test("each guest's load_by_name cache is its own; ending a guest frees what it held", async () => {
  using host = await newHost();
  const a = guest(host, "a.wasm"), b = guest(host, "b.wasm");
  const [, ga] = await a.tryLoadByName('{"n-predict":2}');
  assert.deepEqual(
    await a.tryLoadByName(undefined),
    [0, ga],
    "A's second load: the same handle",
  );
  const [, gb] = await b.tryLoadByName('{"n-predict":5,"temp":0}');
  const [, cb] = b.init(gb);
  assert.equal(await b.setInput(cb, 0, "Hello"), 0);
  assert.equal(await b.compute(cb), 0);
  // B's config is B's: A's n-predict 2 did not leak into it.
  assert.equal(JSON.parse(b.output(cb, 1)[1]).output_tokens, 5);
  a.init(ga);
  assert.equal(host.status().sessions.length, 2);
  a.imports[Symbol.dispose]();
  b.imports[Symbol.dispose]();
  b.imports[Symbol.dispose](); // twice is fine
  assert.equal(host.status().sessions.length, 0);
  // The model stays loaded (warm) for the next guest.
  assert.equal(host.status().models.length, 1);
  assert.equal(host.status().models[0].users, 0);
});

Deno.test("a chosen session id never resumes another caller's unnamed session", async () => {
  using host = await newHost();
  const g = await host.loadByName("default");
  const unnamed = host.initExecutionContext(g);
  const named = host.initExecutionContext(g, `ctx-${unnamed}`);
  assert.notEqual(named, unnamed);
  assert.equal(
    host.initExecutionContext(g, `ctx-${unnamed}`),
    named,
    "resumes its own",
  );
  const ids = host.status().sessions.map((s) => s.id).sort();
  assert.deepEqual(ids, [`ctx-${unnamed}`, `ctx-${unnamed}`]);
});
