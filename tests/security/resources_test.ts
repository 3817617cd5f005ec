/**
 * Resources held for nobody are given back, and max_memory_mb holds for the
 * whole host: contexts of finished sessions' shapes are freed (but the most
 * recent one, for the next session), and the memory limit counts every model
 * and context this host holds, not each context alone.
 */
import assert from "node:assert/strict";
import { Errno, WasiNnError } from "../../wasi_nn/errno.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { tinyModel } from "../_helpers.ts";

const enc = new TextEncoder();
const text = (t: string) => ({ dims: [1], type: 3, data: enc.encode(t) });

async function newHost(hostConfig?: Record<string, unknown>) {
  const path = await tinyModel();
  return await LlamaHost.create({
    registry: { resolve: () => path },
    hostConfig,
    log: () => {},
  });
}

async function schedulers(h: LlamaHost): Promise<number> {
  const st = await h.statusWithSchedulers();
  return st.models.reduce((n, m) => n + m.schedulers.length, 0);
}

Deno.test("the contexts of finished sessions' shapes are freed, but the most recent", async () => {
  using h = await newHost();
  const g = await h.loadByName("default", '{"n-predict":2,"temp":0}');
  for (let i = 0; i < 8; i++) {
    const c = h.initExecutionContext(g);
    await h.setInput(c, 1, text(JSON.stringify({ "ctx-size": 256 + 64 * i })));
    await h.setInput(c, 0, text("Hello"));
    await h.compute(c);
    h.finalizeExecutionContext(c);
  }
  assert.equal(await schedulers(h), 1);
  // Shapes in use stay: two live sessions of two shapes keep two contexts.
  const a = h.initExecutionContext(g), b = h.initExecutionContext(g);
  await h.setInput(a, 1, text('{"ctx-size":512}'));
  await h.setInput(b, 1, text('{"ctx-size":640}'));
  for (const c of [a, b]) {
    await h.setInput(c, 0, text("Hello"));
    await h.compute(c);
  }
  assert.equal(await schedulers(h), 2);
  h.finalizeExecutionContext(a);
  h.finalizeExecutionContext(b);
  assert.equal(await schedulers(h), 1);
});

Deno.test("max_memory_mb holds for the whole host, not per context", async () => {
  const modelMiB = Deno.statSync(await tinyModel()).size / 1048576;
  // Each context of 4 x 4096 tokens takes ~71 MiB here (8 MiB of KV, the
  // rest compute buffers for a 32000-token vocabulary): room for three.
  const limit = Math.ceil(modelMiB) + 250;
  using h = await newHost({ max_memory_mb: limit });
  const g = await h.loadByName("default", '{"n-predict":1,"temp":0}');
  let refused: WasiNnError | undefined;
  let opened = 0;
  for (let i = 0; i < 10 && !refused; i++) {
    const c = h.initExecutionContext(g);
    // Distinct shapes (each its own context), every session kept open.
    await h.setInput(
      c,
      1,
      text(JSON.stringify({ "ctx-size": 4096 + i, parallel: 4 })),
    );
    await h.setInput(c, 0, text("Hello"));
    try {
      await h.compute(c);
      opened++;
    } catch (e) {
      if (!(e instanceof WasiNnError)) throw e;
      refused = e;
    }
  }
  assert.ok(refused, `all 10 contexts fit in ${limit} MiB`);
  assert.equal(refused.errno, Errno.RuntimeError);
  assert.match(refused.message, new RegExp(`max_memory_mb ${limit}`));
  assert.ok(opened >= 2 && opened <= 4, `${opened} contexts opened`);
  const st = await h.statusWithSchedulers();
  const held = Deno.statSync(await tinyModel()).size +
    st.models.flatMap((m) => m.schedulers).reduce((n, s) => n + s.kvBytes, 0);
  assert.ok(held <= limit * 1048576, `${held} bytes held, limit ${limit} MiB`);
});

Deno.test("max_memory_mb refuses a model that does not fit, naming the limit", async () => {
  using h = await newHost({ max_memory_mb: 1 });
  await assert.rejects(
    h.loadByName("default"),
    (e) =>
      e instanceof WasiNnError && e.errno === Errno.RuntimeError &&
      /max_memory_mb 1\b/.test(e.message),
  );
});
