/**
 * Where a model's weights go with RPC servers (issue 13): the host's mirror
 * of llama.cpp's placement (`_model_split.ts`, read before anything loads)
 * against llama.cpp's own (`estimateMemory`, which places the weights
 * without loading them), byte for byte, over split modes, `tensor_split`,
 * `main_gpu`, `n_gpu_layers`, a server with two devices, tied embeddings and
 * several families; and, through the host, a server without room for its
 * part refused naming it before anything loads onto it, and placement keys
 * that llama.cpp cannot honour refused naming the key.
 */
import assert from "node:assert/strict";
import { estimateMemory } from "../../../bindings/mod.ts";
import { ensureFamilyModel, ensureModel } from "../../../gguf/mod.ts";
import { LlamaHost } from "../../../wasi_nn/host/host.ts";
import {
  INPUT_TENSORS,
  layerDevices,
  LFM2_NORM_ARCHS,
  modelSplit,
  OUTPUT_TENSORS,
  splitDevices,
  type SplitOptions,
} from "../../../wasi_nn/host/_model_split.ts";
import { startServer } from "../../../bench/_rpc_servers.ts";
import { startFakeRpcServer } from "../../_fake_rpc_server.ts";
import { guest } from "../../_host_guest.ts";
import { paths } from "../../../paths.ts";

Deno.test("the input and output layers' tensors are llama-arch.cpp's LLM_TENSOR_LAYER_INPUT and _OUTPUT ones, by GGUF name", () => {
  const src = Deno.readTextFileSync(`${paths().llamaCpp}/src/llama-arch.cpp`);
  const names = new Map<string, string>();
  for (const m of src.matchAll(/\{\s*(LLM_TENSOR_\w+),\s*"([^"]+)"\s*\}/g)) {
    names.set(m[1], m[2]);
  }
  const of = (layer: string) =>
    [
      ...src.matchAll(
        new RegExp(
          `\\{(LLM_TENSOR_\\w+),\\s*\\{LLM_TENSOR_LAYER_${layer}`,
          "g",
        ),
      ),
    ].map((m) => m[1]);
  assert.deepEqual(
    new Set(of("INPUT").map((e) => names.get(e)!)),
    INPUT_TENSORS,
  );
  const output = of("OUTPUT");
  assert.ok(output.includes("LLM_TENSOR_OUTPUT_NORM_LFM2"));
  const global = output.filter((e) => e !== "LLM_TENSOR_OUTPUT_NORM_LFM2")
    .map((e) => names.get(e)!);
  assert.deepEqual(new Set(global), OUTPUT_TENSORS);
  // The architectures whose output norm is named token_embd_norm.
  const lfm2 = [...Deno.readDirSync(`${paths().llamaCpp}/src/models`)]
    .filter((f) =>
      Deno.readTextFileSync(`${paths().llamaCpp}/src/models/${f.name}`)
        .includes("LLM_TENSOR_OUTPUT_NORM_LFM2")
    ).map((f) => f.name.replace(/\.cpp$/, ""));
  assert.deepEqual(new Set(lfm2), LFM2_NORM_ARCHS);
});

Deno.test("layerDevices: llama.cpp's split points (float32, upper bound), n_gpu_layers from the end, split_mode none", () => {
  // 4 layers + output, split 1:1: points 0.5, 1; fractions 0, .2, .4, .6, .8.
  assert.deepEqual(layerDevices(4, { weights: [1, 1] }), [0, 0, 0, 1, 1]);
  // The last 3 (layers 2, 3 and the output), split 1:3.
  assert.deepEqual(layerDevices(4, { nGpuLayers: 3, weights: [1, 3] }), [
    -1,
    -1,
    0,
    1,
    1,
  ]);
  assert.deepEqual(
    layerDevices(4, { splitMode: "none", mainGpu: 1, weights: [1, 1] }),
    [1, 1, 1, 1, 1],
  );
  assert.deepEqual(
    layerDevices(4, { splitMode: "none", mainGpu: -1, weights: [1, 1] }),
    [-1, -1, -1, -1, -1],
  );
  // A zero share gets no layer.
  assert.deepEqual(layerDevices(2, { weights: [0, 1, 1] }), [1, 1, 2]);
});

Deno.test("modelSplit puts every byte on the device llama.cpp puts it on: split modes, tensor_split, main_gpu, a two-device server, tied embeddings, several families", async () => {
  await using a = await startServer();
  await using b = await startServer();
  await using c = await startServer({ devices: ["CPU", "CPU"] });
  const models: [string, string][] = [
    ["llama", (await ensureModel("tiny", { shape: { nLayer: 4 } })).path],
    [
      "llama, tied embeddings",
      (await ensureModel("tiny", {
        shape: { nLayer: 4, tieEmbeddings: true },
      })).path,
    ],
    [
      "llama, RoPE factors (copied per device)",
      (await ensureModel("tiny", {
        shape: { nLayer: 4, ropeFreqs: true },
      })).path,
    ],
    ["gemma3 (sliding window)", (await ensureFamilyModel("gemma3")).path],
    ["qwen3moe (MoE)", (await ensureFamilyModel("qwen3moe")).path],
    ["mamba (recurrent)", (await ensureFamilyModel("mamba")).path],
    ["lfm2 (hybrid)", (await ensureFamilyModel("lfm2")).path],
    ["bert (encoder)", (await ensureFamilyModel("bert")).path],
  ];
  const cases: [string[], SplitOptions][] = [
    [[a.endpoint, b.endpoint], { nGpuLayers: 99, tensorSplit: [1, 1] }],
    [[a.endpoint, b.endpoint], { nGpuLayers: 2, tensorSplit: [1, 3] }],
    [[a.endpoint, b.endpoint], {}], // by free memory, every layer
    [[a.endpoint, b.endpoint], { splitMode: "none", mainGpu: 1 }],
    [[a.endpoint, b.endpoint], { splitMode: "none", mainGpu: -1 }],
    [[a.endpoint, c.endpoint], { nGpuLayers: 99, tensorSplit: [1, 1, 2] }],
    [[c.endpoint, a.endpoint], { splitMode: "none", mainGpu: 1 }],
  ];
  for (const [family, path] of models) {
    for (const [endpoints, o] of cases) {
      const what = `${family}, ${endpoints.length} servers, ${
        JSON.stringify(o)
      }`;
      const devices = await splitDevices(endpoints, 3000);
      const ours = await modelSplit(path, o, devices);
      const est = await estimateMemory(path, {
        rpcServers: endpoints,
        nCtx: 64,
        nGpuLayers: typeof o.nGpuLayers === "number" ? o.nGpuLayers : -1,
        splitMode: o.splitMode,
        mainGpu: o.mainGpu,
        tensorSplit: o.tensorSplit,
      });
      // llama.cpp lists the devices the model uses, then the host.
      const theirs = est.devices.slice(0, -1).map((d) => d.model);
      const used = o.splitMode === "none"
        ? (o.mainGpu! < 0 ? [] : [ours.shares[o.mainGpu!].bytes])
        : ours.shares.map((s) => s.bytes);
      assert.deepEqual(used, theirs, what);
      assert.equal(
        ours.remote,
        theirs.reduce((x, y) => x + y, 0),
        what,
      );
      assert.ok(ours.local >= est.devices.at(-1)!.model, what);
    }
  }
});

Deno.test("a server without room for its part: the load is refused naming it and the numbers, and nothing is loaded onto it", async () => {
  const path = (await ensureModel("tiny", { shape: { nLayer: 4 } })).path;
  await using real = await startServer();
  // 64 KiB free: the first server's part of a 1:1 split is 167 KiB.
  await using fake = startFakeRpcServer([{ free: 65536, total: 1 << 30 }]);
  const logs: string[] = [];
  const host = await LlamaHost.create({
    registry: { resolve: () => path },
    hostConfig: {
      rpc: [fake.endpoint, real.endpoint],
      n_gpu_layers: 99,
      tensor_split: [1, 1],
    },
    log: (_level, msg) => logs.push(msg),
  });
  try {
    await assert.rejects(
      () => host.loadByName("default", '{"ctx-size":64}'),
      (e: Error) =>
        e.message.includes(`RPC server ${fake.endpoint}`) &&
        /the 167 KiB of it .* do not fit in its 64 KiB free; offload fewer layers \(n_gpu_layers\), give it a smaller tensor_split share, or add a server/
          .test(e.message),
    );
    assert.deepEqual(host.status().models, []);
    assert.ok(fake.commands.length > 0, "the memory was asked");
    assert.deepEqual(
      [...new Set(fake.commands)].sort(),
      ["DEVICE_COUNT", "GET_DEVICE_MEMORY", "HELLO"],
    );
    // The host serves on: the same model kept here.
    const ok = await host.loadByName(
      "default",
      '{"ctx-size":64,"n-gpu-layers":0}',
    );
    assert.ok(ok >= 0);
    assert.equal(host.status().models[0].engine.kind, "in_process");
  } finally {
    await host.shutdown();
  }
});

Deno.test("placement keys llama.cpp cannot honour are refused naming the key and the devices: main_gpu past the devices, split_mode row on RPC devices", async () => {
  const path = (await ensureModel("tiny", { shape: { nLayer: 4 } })).path;
  await using a = await startServer();
  await using b = await startServer();
  const logs: string[] = [];
  const host = await LlamaHost.create({
    registry: { resolve: () => path },
    hostConfig: { rpc: [a.endpoint, b.endpoint] },
    log: (_level, msg) => logs.push(msg),
  });
  const g = guest(host, "g.wasm");
  try {
    for (
      const [config, re] of [
        [
          '{"split-mode":"none","main-gpu":2}',
          new RegExp(
            `main_gpu 2 is not one of the model's devices \\(0 RPC\\d \\(${a.endpoint}\\), 1 RPC\\d \\(${b.endpoint}\\)\\); use 0\\.\\.1`,
          ),
        ],
        [
          '{"split-mode":"row"}',
          new RegExp(
            `split_mode "row" needs devices that split a tensor's rows \\(CUDA GPUs\\); RPC\\d \\(${a.endpoint}\\) cannot; use split_mode "layer"`,
          ),
        ],
      ] as const
    ) {
      logs.length = 0;
      const [errno] = await g.tryLoadByName(config);
      assert.notEqual(errno, 0, config);
      assert.ok(logs.some((l) => re.test(l)), `${config}:\n${logs.join("\n")}`);
    }
    assert.deepEqual(host.status().models, []);
    // split_mode none with main_gpu 1: the whole model on the second server, and it runs.
    const [errno, graph] = await g.tryLoadByName(
      '{"split-mode":"none","main-gpu":1,"n-predict":4,"ctx-size":64}',
    );
    assert.equal(errno, 0, logs.join("\n"));
    const ctx = await g.context(graph);
    assert.equal(await g.compute(ctx), 0);
  } finally {
    g.imports[Symbol.dispose]();
    await host.shutdown();
  }
});
