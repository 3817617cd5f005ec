/**
 * Models split across llama.cpp RPC servers through the host (issue 13), on
 * loopback servers this test starts: a guest's greedy stream equals the local
 * run token for token, the model runs in an engine process, an endpoint with
 * nothing listening is a clear error, and `kill -9` of a server mid-generation
 * ends that model's stream with RuntimeError naming the server while the host
 * and another model (one that offloads nothing, so it stays local) serve on;
 * a restarted server serves the next request.
 */
import assert from "node:assert/strict";
import { ensureModel } from "../../gguf/mod.ts";
import { Errno } from "../../wasi_nn/errno.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { modelSplit } from "../../wasi_nn/host/_model_split.ts";
import { guest } from "../_host_guest.ts";
import { freePort, startServer } from "../../bench/_rpc_servers.ts";

const CONFIG = (n: number) =>
  `{"n-predict":${n},"temp":0,"ctx-size":512,"ignore-eos":true}`;

/** A host serving the 4-layer tiny model as "default", with `hostConfig`. */
async function newHost(hostConfig: Record<string, unknown>) {
  const path = (await ensureModel("tiny", { shape: { nLayer: 4 } })).path;
  const logs: string[] = [];
  const host = await LlamaHost.create({
    registry: { resolve: () => path },
    hostConfig,
    log: (_level, msg) => logs.push(msg),
  });
  return { host, logs };
}

/** Streams `n` tokens on a new context of `graph`; errno of the first failure, else the text. */
async function stream(
  g: ReturnType<typeof guest>,
  graph: number,
  n: number,
  each?: (i: number) => Promise<void> | void,
): Promise<string | number> {
  const ctx = await g.context(graph);
  for (let i = 0; i < n; i++) {
    const e = await g.computeSingle(ctx);
    if (e !== 0) return e;
    await each?.(i);
  }
  const text = g.output(ctx)[1];
  g.finalize(ctx);
  return text;
}

Deno.test("a model split across two RPC servers streams the local run's tokens, in an engine process; a dead server fails only its stream", async () => {
  const local = await newHost({});
  const g0 = guest(local.host, "local.wasm");
  const solo = await stream(g0, await g0.loadByName(CONFIG(24)), 24);
  assert.equal(typeof solo, "string");
  g0.imports[Symbol.dispose]();
  await local.host.shutdown();

  const a = await startServer(), b = await startServer();
  try {
    const { host, logs } = await newHost({
      rpc: [a.endpoint, b.endpoint],
      n_gpu_layers: 3,
      tensor_split: [1, 1],
    });
    const g = guest(host, "g.wasm");
    const graph = await g.loadByName(CONFIG(24));
    assert.equal(await stream(g, graph, 24), solo, "split == local");
    assert.equal(host.status().models[0].engine.kind, "process");
    // Another model of the same host that offloads nothing: local, in process.
    const h = guest(host, "h.wasm");
    const other = await h.loadByName(
      `{"n-predict":60,"temp":0,"ctx-size":512,"ignore-eos":true,"n-gpu-layers":0}`,
    );
    assert.equal(host.status().models[1].engine.kind, "in_process");
    const otherSolo = await stream(h, other, 60);

    // kill -9 of one server mid-generation: RuntimeError naming it; the
    // other model's stream, interleaved, is its solo run.
    const port = Number(b.endpoint.split(":")[1]);
    const hc = await h.context(other);
    let hn = 0;
    const r = await stream(g, graph, 24, async (i) => {
      if (i === 3) void b.close(); // SIGKILL
      assert.equal(await h.computeSingle(hc), 0);
      hn++;
    });
    assert.equal(r, Errno.RuntimeError);
    for (; hn < 60; hn++) assert.equal(await h.computeSingle(hc), 0);
    assert.equal(h.output(hc)[1], otherSolo, "the other model's stream");
    h.finalize(hc);
    h.imports[Symbol.dispose]();
    const died = logs.find((l) => /died/.test(l));
    assert.ok(died, logs.join("\n"));
    assert.ok(died.includes(`RPC server ${b.endpoint} does not answer`), died);

    // While it is down, the next request is a clear error; once restarted, it serves.
    const down = await g.context(graph);
    assert.equal(await g.compute(down), Errno.RuntimeError);
    assert.ok(
      logs.some((l) => l.includes(b.endpoint) && /refused|answer/.test(l)),
    );
    const b2 = await startServer({ port });
    try {
      assert.equal(await stream(g, graph, 24), solo, "after the restart");
    } finally {
      g.imports[Symbol.dispose]();
      await host.shutdown();
      await b2.close();
    }
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("an RPC endpoint with nothing listening: the load fails naming it, nothing reaches llama.cpp, the host lives", async () => {
  const nobody = `127.0.0.1:${freePort()}`;
  const { host, logs } = await newHost({ rpc: [nobody], n_gpu_layers: 3 });
  const g = guest(host, "g.wasm");
  await assert.rejects(() => g.loadByName(CONFIG(4)));
  assert.ok(logs.some((l) => l.includes(nobody)), logs.join("\n"));
  assert.deepEqual(host.status().models, []);
  g.imports[Symbol.dispose]();
  await host.shutdown();
});

Deno.test("across the split: four sessions batched equal their solo runs, and a saved session restores with its cache", async () => {
  const a = await startServer(), b = await startServer();
  const dir = await Deno.makeTempDir();
  try {
    const { host } = await newHost({
      rpc: [a.endpoint, b.endpoint],
      n_gpu_layers: 3,
      tensor_split: [1, 1],
    });
    try {
      const g = await host.loadByName(
        "default",
        '{"n-predict":16,"temp":0,"ctx-size":256,"ignore-eos":true,"parallel":4}',
      );
      const prompts = ["Once upon a time", "Hello", "The sky is", "In 1990"];
      const solo: string[] = [];
      for (const p of prompts) {
        solo.push(
          (await host.runInference(host.initExecutionContext(g), p)).text,
        );
      }
      const ctxs = prompts.map(() => host.initExecutionContext(g));
      const batched = await Promise.all(
        ctxs.map((c, i) => host.runInference(c, prompts[i])),
      );
      assert.deepEqual(batched.map((r) => r.text), solo);
      const n = await host.saveSession(ctxs[0], `${dir}/s.bin`);
      assert.ok(n > 0);
      const r = host.initExecutionContext(g);
      assert.equal(await host.restoreSession(r, `${dir}/s.bin`), n);
      const next = await host.runInference(r, prompts[0] + batched[0].text);
      assert.ok(
        (next.metadata.cached_tokens ?? 0) >= n - 4,
        "restored cache reused",
      );
    } finally {
      await host.shutdown();
    }
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with RPC servers only what stays here counts against max_memory_mb (the token embeddings and the layers not offloaded), as llama.cpp places them", async () => {
  const path = (await ensureModel("tiny", { shape: { nLayer: 4 } })).path;
  // llama.cpp offloads the last layers first, then the output layer.
  const server = [{ label: "s", endpoint: "127.0.0.1:1", free: 1 << 30 }];
  const all = await modelSplit(path, { nGpuLayers: 99 }, server);
  const two = await modelSplit(path, { nGpuLayers: 2 }, server);
  const size = Deno.statSync(path).size;
  assert.equal(all.local + all.remote, size);
  assert.ok(all.local > 0 && all.remote > 0, JSON.stringify(all));
  assert.ok(two.remote > 0 && two.remote < all.remote, JSON.stringify(two));
  const none = { local: size, remote: 0, shares: [] };
  assert.deepEqual(await modelSplit(path, { nGpuLayers: 0 }, server), none);
  assert.deepEqual(
    await modelSplit(path, { nGpuLayers: "auto" }, server),
    none,
  );
  assert.deepEqual(await modelSplit(path, { nGpuLayers: 99 }, []), none);
  // A budget between the two: the split model loads, the local one does not.
  const budget = Math.ceil(all.local / 1048576) + 1;
  assert.ok(budget * 1048576 < size, `${budget} MiB < ${size} bytes`);
  const a = await startServer(), b = await startServer();
  try {
    const split = await newHost({
      rpc: [a.endpoint, b.endpoint],
      n_gpu_layers: 99,
      max_memory_mb: budget,
    });
    try {
      const g = await split.host.loadByName("default", '{"ctx-size":64}');
      assert.ok(g >= 0);
    } finally {
      await split.host.shutdown();
    }
    const local = await newHost({ max_memory_mb: budget });
    try {
      await assert.rejects(
        () => local.host.loadByName("default", '{"ctx-size":64}'),
        /does not fit in max_memory_mb/,
      );
    } finally {
      await local.host.shutdown();
    }
  } finally {
    await a.close();
    await b.close();
  }
});
