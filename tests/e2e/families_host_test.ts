/**
 * A two-turn chat on every model family, the way WasmEdge chat guests send
 * it (the whole conversation on every set_input): the second turn through the
 * prompt cache equals a fresh execution context given the same text. Through
 * the guest imports (a forwarding guest, entered through JSPI) and through the
 * host API those imports reach (the scheduler).
 */
import assert from "node:assert/strict";
import {
  ensureFamilyModel,
  MODEL_FAMILIES,
  MODEL_FAMILY_TRAITS,
} from "../../gguf/mod.ts";
import { createWasiNnImports } from "../../wasi_nn/abi/guest_imports.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { nnCaller } from "../_nn_guest.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const CONFIG = '{"n-predict":8,"temp":0,"ignore-eos":true,"ctx-size":2048}';
const TURN1 = `User: ${
  Array.from({ length: 600 }, (_, i) => `w${(i * 7) % 53}`).join(" ")
}\nAssistant:`;

/** A guest instance: the guest imports over a memory of its own. */
async function guest(host: LlamaHost) {
  const memory = new WebAssembly.Memory({ initial: 4 });
  const call = nnCaller(createWasiNnImports(host, { getMemory: () => memory }));
  const put = (p: number, b: Uint8Array) =>
    new Uint8Array(memory.buffer).set(b, p);
  const u32 = (p: number) => new DataView(memory.buffer).getUint32(p, true);
  const putU32 = (p: number, ...v: number[]) =>
    v.forEach((x, i) =>
      new DataView(memory.buffer).setUint32(p + 4 * i, x, true)
    );
  const ok = (e: number, what: string) =>
    assert.equal(e, 0, `${what}: errno ${e}`);
  put(100, enc.encode("default"));
  put(200, enc.encode(CONFIG));
  ok(
    await call("load_by_name_with_config", 100, 7, 200, CONFIG.length, 96),
    "load",
  );
  const graph = u32(96);
  return {
    async context(): Promise<number> {
      ok(await call("init_execution_context", graph, 92), "init");
      return u32(92);
    },
    /** set_input(prompt), compute, get_output(0) and (1). */
    async turn(
      ctx: number,
      prompt: string,
    ): Promise<{ text: string; meta: Record<string, number> }> {
      const data = enc.encode(prompt);
      putU32(300, 1);
      put(65536, data);
      putU32(320, 300, 1, 3, 65536, data.length);
      ok(await call("set_input", ctx, 0, 320), "set_input");
      ok(await call("compute", ctx), "compute");
      const read = async (index: number) => {
        ok(
          await call("get_output", ctx, index, 131072, 65536, 88),
          "get_output",
        );
        return dec.decode(new Uint8Array(memory.buffer, 131072, u32(88)));
      };
      return { text: await read(0), meta: JSON.parse(await read(1)) };
    },
  };
}

async function newHost(family: (typeof MODEL_FAMILIES)[number]) {
  const path = (await ensureFamilyModel(family)).path;
  return await LlamaHost.create({
    registry: { resolve: () => path },
    log: () => {},
  });
}

for (
  const family of MODEL_FAMILIES.filter((f) => MODEL_FAMILY_TRAITS[f].generates)
) {
  Deno.test(`${family}: a guest's second turn reuses the first and equals a fresh context`, async () => {
    using host = await newHost(family);
    const g = await guest(host);
    const chat = await g.context();
    const r1 = await g.turn(chat, TURN1);
    const turn2 = `${TURN1}${r1.text}\nUser: and then?\nAssistant:`;
    const r2 = await g.turn(chat, turn2);
    const fresh = await g.turn(await g.context(), turn2);
    assert.equal(r2.text, fresh.text);
    assert.equal(fresh.meta.cached_tokens ?? 0, 0);
    // At least the first turn's prompt, less the checkpoint's 4 tokens.
    assert.ok(
      r2.meta.cached_tokens >= r1.meta.input_tokens - 4,
      `${r2.meta.cached_tokens} cached of ${r1.meta.input_tokens}`,
    );
  });

  Deno.test(`${family}: a second turn through the host API (the scheduler) equals a fresh context`, async () => {
    using host = await newHost(family);
    const g = await host.loadByName("default", CONFIG);
    const chat = host.initExecutionContext(g);
    const r1 = await host.runInference(chat, TURN1);
    const turn2 = `${TURN1}${r1.text}\nUser: and then?\nAssistant:`;
    const r2 = await host.runInference(chat, turn2);
    const fresh = await host.runInference(host.initExecutionContext(g), turn2);
    assert.equal(r2.text, fresh.text);
    assert.ok(
      (r2.metadata.cached_tokens ?? 0) >= r1.metadata.input_tokens - 4,
      `${r2.metadata.cached_tokens} cached of ${r1.metadata.input_tokens}`,
    );
  });

  Deno.test(`${family}: a reset session computes as a fresh one`, async () => {
    using host = await newHost(family);
    const g = await host.loadByName("default", CONFIG);
    const chat = host.initExecutionContext(g);
    await host.runInference(chat, TURN1);
    host.resetSession(chat);
    const again = await host.runInference(chat, "Once upon a time");
    const fresh = await host.runInference(
      host.initExecutionContext(g),
      "Once upon a time",
    );
    assert.equal(again.text, fresh.text);
    assert.equal(again.metadata.cached_tokens ?? 0, 0);
  });
}
