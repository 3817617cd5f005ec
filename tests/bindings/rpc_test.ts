/**
 * Models split across llama.cpp RPC servers (issue 13), on loopback only:
 * each test starts its own `ggml-rpc-server`s (built with the library,
 * `paths().rpcServer`) on free 127.0.0.1 ports and kills them at the end.
 * A model split across the local CPU and two servers gives the local run's
 * greedy tokens; an endpoint with nothing listening is a clear error naming
 * it and the process lives; a malformed list is refused naming the entry;
 * the library reports RPC.
 */
import assert from "node:assert/strict";
import {
  addRpcServer,
  backendInfo,
  checkRpcServers,
  Context,
  drainLog,
  estimateMemory,
  LlamaError,
  Model,
  type ModelLoadOptions,
  parseRpcServers,
  probeRpcServer,
  rpcServerMemory,
  rpcSupported,
  Sampler,
  setLogLevel,
  Status,
} from "../../bindings/mod.ts";
import { symbols } from "../../bindings/_library.ts";
import { cstr, errorBuffer, errorMessage } from "../../bindings/_buffers.ts";
import { generate } from "../../wasi_nn/engine/generate.ts";
import { ensureModel } from "../../gguf/mod.ts";
import { paths } from "../../paths.ts";
import { freePort, startServer } from "../../bench/_rpc_servers.ts";

/** The generated model: the tiny preset with 4 layers, so that some stay on the CPU. */
async function fourLayerModel(): Promise<string> {
  return (await ensureModel("tiny", { shape: { nLayer: 4 } })).path;
}

const PROMPT = "Once upon a time";
const N = 16;

async function greedy(
  path: string,
  options: ModelLoadOptions,
): Promise<number[]> {
  using model = await Model.load(path, options);
  using ctx = await Context.create(model, { nCtx: 256 });
  using sampler = Sampler.create(model, { temp: 0 });
  const prompt = model.tokenize(PROMPT, { addSpecial: true });
  const r = await generate(ctx, sampler, prompt, { nPredict: N });
  return [...r.tokens];
}

Deno.test("the library holds ggml's RPC backend and rpc-server is built beside it", () => {
  assert.equal(rpcSupported(), true);
  const info = backendInfo();
  assert.equal(info.rpc, true);
  assert.ok(info.backends.includes("RPC"), info.backends.join(","));
  const st = Deno.statSync(paths().rpcServer);
  assert.ok(st.isFile && (st.mode! & 0o111) !== 0, paths().rpcServer);
});

Deno.test("a model split across the local CPU and two RPC servers gives the local run's greedy tokens", async () => {
  const path = await fourLayerModel();
  await using a = await startServer();
  await using b = await startServer();
  assert.deepEqual(
    await checkRpcServers(`${a.endpoint},${b.endpoint}`),
    [a.endpoint, b.endpoint],
  );
  const local = await greedy(path, { nGpuLayers: 0 });
  assert.equal(local.length, N);

  setLogLevel("info");
  drainLog();
  // 3 of 5 (4 layers and the output layer): layers 0-1 stay on the CPU,
  // the rest is split between the two servers' devices.
  const split = await greedy(path, {
    rpcServers: [a.endpoint, b.endpoint],
    nGpuLayers: 3,
    tensorSplit: [1, 1],
  });
  const log = drainLog().map((r) => r.message).join("\n");
  setLogLevel("warn");
  assert.deepEqual(split, local);
  assert.match(log, /offloaded 3\/5 layers to GPU/, log);
  for (const ep of [a.endpoint, b.endpoint]) {
    assert.match(
      log,
      new RegExp(`RPC\\d+\\[${ep.replaceAll(".", "\\.")}\\] model buffer size`),
      `no weights on ${ep}:\n${log}`,
    );
  }

  // Registered now: the devices are listed as RPC devices with their memory.
  const devices = backendInfo().devices.filter((d) => d.type === "rpc");
  for (const ep of [a.endpoint, b.endpoint]) {
    const d = devices.find((x) => x.endpoint === ep);
    assert.ok(d, `no rpc device for ${ep}: ${JSON.stringify(devices)}`);
    assert.ok(d.memory_total > 0 && d.error === undefined, JSON.stringify(d));
  }
  // A local model loaded after the registration uses no RPC device.
  setLogLevel("info");
  drainLog();
  const again = await greedy(path, {});
  const log2 = drainLog().map((r) => r.message).join("\n");
  setLogLevel("warn");
  assert.deepEqual(again, local);
  assert.doesNotMatch(log2, /RPC\d+\[/, log2);
});

Deno.test("split_mode none puts the whole model on main_gpu's server, with the local run's greedy tokens; main_gpu past the devices and split_mode row are refused before llama.cpp loads", async () => {
  const path = await fourLayerModel();
  await using a = await startServer();
  await using b = await startServer();
  const local = await greedy(path, { nGpuLayers: 0 });
  const servers = [a.endpoint, b.endpoint];
  setLogLevel("info");
  drainLog();
  const one = await greedy(path, {
    rpcServers: servers,
    splitMode: "none",
    mainGpu: 1,
  });
  const log = drainLog().map((r) => r.message).join("\n");
  setLogLevel("warn");
  assert.deepEqual(one, local);
  const weightsOn = (ep: string) =>
    new RegExp(`RPC\\d+\\[${ep.replaceAll(".", "\\.")}\\] model buffer size`)
      .test(log);
  assert.ok(weightsOn(b.endpoint), log);
  assert.ok(!weightsOn(a.endpoint), log);
  assert.match(log, /offloaded 5\/5 layers to GPU/);

  for (
    const [o, re] of [
      [
        { splitMode: "none", mainGpu: 2 },
        /main_gpu 2 is not one of the model's devices \(0 RPC\d+ \(.*\), 1 RPC\d+ \(.*\)\); use 0\.\.1/,
      ],
      [
        { splitMode: "row" },
        /split_mode "row" needs devices that split a tensor's rows/,
      ],
    ] as const
  ) {
    drainLog();
    await assert.rejects(
      () => Model.load(path, { rpcServers: servers, ...o }),
      (e: unknown) =>
        e instanceof LlamaError && e.code === Status.InvalidArgument &&
        re.test(e.message),
    );
    // Refused before llama.cpp read the model.
    assert.ok(
      !drainLog().some((r) =>
        /llama_model_loader|load_tensors/.test(r.message)
      ),
    );
  }
});

Deno.test("remote memory: free and total of a server's device, also while a model holds the server", async () => {
  const path = await fourLayerModel();
  await using a = await startServer();
  const [before, ...more] = await rpcServerMemory(a.endpoint);
  assert.deepEqual(more, []);
  assert.ok(before.total > 0 && before.free > 0 && before.free <= before.total);
  // A server with two devices reports both.
  await using two = await startServer({ devices: ["CPU", "CPU"] });
  const both = await rpcServerMemory(two.endpoint);
  assert.equal(both.length, 2);
  assert.ok(both.every((d) => d.total === before.total), JSON.stringify(both));
  // The estimate counts the server's device.
  const est = await estimateMemory(path, {
    rpcServers: [a.endpoint],
    nGpuLayers: 5,
    nCtx: 256,
  });
  assert.ok(est.devices.some((d) => d.name.startsWith("RPC") && d.model > 0));

  using model = await Model.load(path, {
    rpcServers: [a.endpoint],
    nGpuLayers: 5,
  });
  // The server's one client connection is the model's: asked through it.
  const [during] = await rpcServerMemory(a.endpoint);
  assert.equal(during.total, before.total);
  assert.equal(await addRpcServer(a.endpoint), 1);
  using ctx = await Context.create(model, { nCtx: 128 });
  using sampler = Sampler.create(model, { temp: 0 });
  const r = await generate(ctx, sampler, model.tokenize(PROMPT), {
    nPredict: 4,
  });
  assert.equal(r.tokens.length, 4);
});

Deno.test("an endpoint with nothing listening: a clear error naming it, no llama.cpp connect, the process lives", async () => {
  const path = await fourLayerModel();
  const dead = `127.0.0.1:${freePort()}`;
  const named = (e: unknown) =>
    e instanceof LlamaError && e.code === Status.Unreachable &&
    e.message.includes(`RPC server ${dead}`) &&
    e.message.includes("connection refused");
  await assert.rejects(() => probeRpcServer(dead, { timeoutMs: 1000 }), named);
  await assert.rejects(() => checkRpcServers([dead]), named);
  await assert.rejects(() => addRpcServer(dead), named);
  await assert.rejects(() => rpcServerMemory(dead), named);
  await assert.rejects(
    () => Model.load(path, { rpcServers: [dead], nGpuLayers: 3 }),
    named,
  );
  await assert.rejects(
    () => estimateMemory(path, { rpcServers: [dead], nGpuLayers: 3 }),
    named,
  );
  // One live and one dead server: the check names the dead one only.
  await using live = await startServer();
  await assert.rejects(
    () => checkRpcServers([live.endpoint, dead]),
    (e: unknown) =>
      named(e) && !(e as Error).message.includes(`RPC server ${live.endpoint}`),
  );
  // Still here, and a local load works.
  assert.equal((await greedy(path, { nGpuLayers: 0 })).length, N);
});

Deno.test("a server that dies after its model was freed: the next load is refused cleanly, a restarted one serves", async () => {
  const path = await fourLayerModel();
  const a = await startServer();
  const tokens = await greedy(path, {
    rpcServers: [a.endpoint],
    nGpuLayers: 3,
  });
  await a.close();
  const gone = (e: unknown) =>
    e instanceof LlamaError && e.code === Status.Unreachable &&
    e.message.includes(a.endpoint);
  await assert.rejects(
    () => Model.load(path, { rpcServers: [a.endpoint], nGpuLayers: 3 }),
    gone,
  );
  // Registered by the load above, yet asked again: it is gone.
  await assert.rejects(() => addRpcServer(a.endpoint), gone);
  // backendInfo asks no server that does not answer (it would abort).
  const d = backendInfo().devices.find((x) => x.endpoint === a.endpoint);
  assert.ok(d && d.memory_total === 0 && d.error?.includes(a.endpoint));
  await using b = await startServer();
  assert.deepEqual(
    await greedy(path, { rpcServers: [b.endpoint], nGpuLayers: 3 }),
    tokens,
  );
});

Deno.test("a malformed endpoint list is refused naming the entry, before anything connects", async () => {
  const bad: [string | string[], RegExp][] = [
    ["127.0.0.1:50052,nohost", /entry 2 "nohost" is not host:port/],
    ["127.0.0.1:50052,,127.0.0.1:50053", /entry 2 "" is empty/],
    ["127.0.0.1:0", /entry 1 "127.0.0.1:0" has no port 1\.\.65535/],
    ["127.0.0.1:99999", /entry 1 "127.0.0.1:99999" has no port/],
    ["[::1]:50052", /entry 1 "\[::1\]:50052" is not host:port .*IPv6/],
    ["host name:1", /entry 1 "host name:1" has a host with characters/],
    [["a:1", "a:1"], /entry 2 "a:1" is listed twice/],
    ["", /is empty \(expected host:port,host:port\)/],
  ];
  for (const [list, re] of bad) {
    for (
      const f of [
        () => parseRpcServers(list),
        () => checkRpcServers(list),
      ]
    ) {
      await assert.rejects(
        async () => await f(),
        (e: unknown) =>
          e instanceof LlamaError && e.code === Status.InvalidArgument &&
          re.test(e.message),
        JSON.stringify(list),
      );
    }
  }
  const path = await fourLayerModel();
  await assert.rejects(
    () => Model.load(path, { rpcServers: ["nohost"] }),
    (e: unknown) =>
      e instanceof LlamaError && e.code === Status.InvalidArgument &&
      e.message.includes('"nohost"'),
  );
  // The shim refuses malformed endpoints by itself too (no TypeScript check).
  for (const ep of ["nohost", "a:1:2", "a:x", ":5", "a:70000"]) {
    const err = errorBuffer();
    const st = await symbols().wnb_rpc_probe(cstr(ep), 1000, 1, err);
    assert.equal(st, Status.InvalidArgument, ep);
    assert.match(errorMessage(err), new RegExp(`"${ep}"`), ep);
  }
});

Deno.test("something that is not an rpc-server: the HELLO check names it, the process lives", async () => {
  // A TCP server that accepts and closes at once.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const ep = `127.0.0.1:${(l.addr as Deno.NetAddr).port}`;
  const serving = (async () => {
    for await (const c of l) c.close();
  })();
  try {
    await assert.rejects(
      () => probeRpcServer(ep, { timeoutMs: 2000 }),
      (e: unknown) =>
        e instanceof LlamaError && e.code === Status.Unreachable &&
        e.message.includes(`RPC server ${ep}`) &&
        e.message.includes("not an rpc-server"),
    );
    // Without the handshake only the TCP connect is checked.
    await probeRpcServer(ep, { handshake: false });
  } finally {
    l.close();
    await serving.catch(() => {});
  }
});
