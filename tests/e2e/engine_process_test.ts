/**
 * Engine processes (issue 12) give what in-process engines give, on every
 * model family: greedy text through compute and compute_single, four
 * sessions batched together equal to their solo runs, embeddings of the
 * encoder, save/restore of a session, a hot swap, and status. Through the
 * host API (the scheduler in the child) and the guest imports (JSPI).
 */
import assert from "node:assert/strict";
import {
  ensureFamilyModel,
  MODEL_FAMILIES,
  MODEL_FAMILY_TRAITS,
  type ModelFamily,
} from "../../gguf/mod.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { tinyModel } from "../_helpers.ts";
import { guest } from "../_host_guest.ts";

const CONFIG = '{"n-predict":12,"temp":0,"ignore-eos":true,"ctx-size":512}';
const PROMPTS = ["Once upon a time", "The quick brown fox", "Hello", "1 2 3"];

async function newHost(path: string, engine: "in_process" | "process") {
  return await LlamaHost.create({
    registry: { resolve: () => path },
    hostConfig: { engine },
    log: () => {},
  });
}

/** Greedy text of each prompt, solo, then the same four at once; and a compute_single stream of the first. */
async function run(host: LlamaHost, concurrent: boolean) {
  const g = await host.loadByName("default", CONFIG);
  const one = async (p: string) =>
    (await host.runInference(host.initExecutionContext(g), p)).text;
  const texts = concurrent
    ? await Promise.all(PROMPTS.map(one))
    : await (async () => {
      const out: string[] = [];
      for (const p of PROMPTS) out.push(await one(p));
      return out;
    })();
  const gi = guest(host, "g.wasm");
  const graph = await gi.loadByName(CONFIG);
  const ctx = await gi.context(graph, PROMPTS[0]);
  for (let i = 0; i < 12; i++) assert.equal(await gi.computeSingle(ctx), 0);
  const streamed = gi.output(ctx)[1];
  gi.imports[Symbol.dispose]();
  return { texts, streamed };
}

const generating = MODEL_FAMILIES.filter((f) =>
  MODEL_FAMILY_TRAITS[f].generates
);

for (const family of generating) {
  Deno.test(`${family}: an engine process generates what the in-process engine does, solo and four sessions batched`, async () => {
    const path = (await ensureFamilyModel(family as ModelFamily)).path;
    const inProc = await newHost(path, "in_process");
    const want = await run(inProc, false);
    await inProc.shutdown();
    const proc = await newHost(path, "process");
    try {
      const solo = await run(proc, false);
      assert.deepEqual(solo, want);
      const batched = await run(proc, true);
      assert.deepEqual(batched.texts, want.texts, "batched == solo");
      const st = await proc.statusWithSchedulers();
      assert.equal(st.models[0].engine.kind, "process");
      assert.ok(st.models[0].engine.pid! > 0);
      assert.ok(
        st.models[0].schedulers[0].decoded > 0,
        "counters from the engine",
      );
    } finally {
      await proc.shutdown();
    }
  });
}

for (
  const family of MODEL_FAMILIES.filter((f) =>
    !MODEL_FAMILY_TRAITS[f].generates
  )
) {
  Deno.test(`${family}: embeddings from an engine process equal the in-process ones`, async () => {
    const path = (await ensureFamilyModel(family as ModelFamily)).path;
    const out: string[] = [];
    for (const engine of ["in_process", "process"] as const) {
      const host = await newHost(path, engine);
      const g = await host.loadByName("default", '{"embedding":true}');
      out.push(
        (await host.runInference(host.initExecutionContext(g), "Hello world"))
          .text,
      );
      await host.shutdown();
    }
    assert.match(out[0], /"n_embedding": \d+/);
    assert.equal(out[1], out[0]);
  });
}

Deno.test("engine process: save/restore of a session and a hot swap work as in-process", async () => {
  const tiny = await tinyModel();
  const llama = (await ensureFamilyModel("llama")).path;
  const dir = await Deno.makeTempDir();
  const want: Record<string, string> = {};
  for (const engine of ["in_process", "process"] as const) {
    const host = await newHost(tiny, engine);
    try {
      const g = await host.loadByName("default", CONFIG);
      const a = host.initExecutionContext(g);
      const first = await host.runInference(a, PROMPTS[0]);
      const n = await host.saveSession(a, `${dir}/${engine}.bin`);
      assert.ok(n > 0);
      const b = host.initExecutionContext(g);
      assert.equal(await host.restoreSession(b, `${dir}/${engine}.bin`), n);
      const next = await host.runInference(b, PROMPTS[0] + first.text);
      assert.ok(
        (next.metadata.cached_tokens ?? 0) >= n - 4,
        "restored cache reused",
      );
      // Hot swap: new sessions get the new model; the old one is freed.
      await host.reloadModel("default", llama);
      const swapped = await host.runInference(
        host.initExecutionContext(await host.loadByName("default", CONFIG)),
        PROMPTS[1],
      );
      want[engine] ??= "";
      want[engine] = `${first.text}|${next.text}|${swapped.text}`;
    } finally {
      await host.shutdown();
    }
  }
  assert.equal(want.process, want.in_process);
  await Deno.remove(dir, { recursive: true });
});
