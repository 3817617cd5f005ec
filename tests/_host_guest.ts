/**
 * Test helper: one guest instance on a host, as a wasm guest would be — the
 * guest imports over a memory of its own, entered through JSPI (a forwarding
 * guest, `_nn_guest.ts`) — with one method per WASI-NN call it makes, and the
 * prompt and config it sends.
 * @module
 */
import assert from "node:assert/strict";
import { createWasiNnImports } from "../wasi_nn/abi/guest_imports.ts";
import type { LlamaHost } from "../wasi_nn/host/host.ts";
import { nnCaller } from "./_nn_guest.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
/** The prompt `context()` sets by default. */
export const PROMPT = "Once upon a time";

type Fn = (...args: number[]) => number;

/** Where `load`'s model bytes go in guest memory. */
export const MODEL_AT = 1 << 20;

/** One guest instance named `name`: its imports over a memory of its own. */
export function guest(
  host: LlamaHost,
  name: string,
  pages = 2,
  preopens?: Record<string, string>,
) {
  const memory = new WebAssembly.Memory({ initial: pages });
  const imports = createWasiNnImports(host, {
    getMemory: () => memory,
    guest: name,
    preopens,
  });
  const nn = imports.wasi_ephemeral_nn as unknown as Record<string, Fn>;
  const call = nnCaller(imports);
  const bytes = () => new Uint8Array(memory.buffer);
  const u32 = (p: number) => new DataView(memory.buffer).getUint32(p, true);
  const put = (p: number, b: Uint8Array) => bytes().set(b, p);
  const putU32 = (p: number, ...v: number[]) =>
    v.forEach((x, i) =>
      new DataView(memory.buffer).setUint32(p + 4 * i, x, true)
    );
  const g = {
    imports,
    /**
     * `load_by_name_with_config` of `model` (default "default"), or
     * `load_by_name` when `config` is undefined: [errno, graph].
     */
    async tryLoadByName(
      config: string | undefined,
      model = "default",
    ): Promise<[number, number]> {
      const nameBytes = enc.encode(model);
      put(100, nameBytes);
      if (config === undefined) {
        const e = await call("load_by_name", 100, nameBytes.length, 96);
        return [e, u32(96)];
      }
      const configBytes = enc.encode(config);
      put(4096, configBytes);
      const e = await call(
        "load_by_name_with_config",
        100,
        nameBytes.length,
        4096,
        configBytes.length,
        96,
      );
      return [e, u32(96)];
    },
    /** `load_by_name_with_config` of `model` (default "default"); asserts errno 0. */
    async loadByName(config: string, model = "default"): Promise<number> {
      const [e, graph] = await g.tryLoadByName(config, model);
      assert.equal(e, 0, `${name}: load_by_name`);
      return graph;
    },
    /** `load` of GGUF bytes (needs a memory of more than 1 MiB + the model). */
    async load(model: Uint8Array): Promise<[number, number]> {
      put(MODEL_AT, model);
      putU32(400, MODEL_AT, model.length);
      const e = await call("load", 400, 1, 6, 0, 96);
      return [e, u32(96)];
    },
    init(graph: number): [number, number] {
      const e = nn.init_execution_context(graph, 92);
      return [e, u32(92)];
    },
    setInput(ctx: number, index: number, text: string): Promise<number> {
      const data = enc.encode(text);
      putU32(200, 1); // dims [1]
      put(8192, data);
      putU32(300, 200, 1, 3, 8192, data.length);
      return call("set_input", ctx, index, 300);
    },
    compute: (ctx: number) => call("compute", ctx),
    computeSingle: (ctx: number) => call("compute_single", ctx),
    output(ctx: number, index = 0): [number, string] {
      const e = nn.get_output(ctx, index, 20000, 40000, 88);
      return [
        e,
        e === 0 ? dec.decode(bytes().subarray(20000, 20000 + u32(88))) : "",
      ];
    },
    outputTokens(ctx: number): number {
      const [e, meta] = g.output(ctx, 1);
      assert.equal(e, 0);
      return JSON.parse(meta).output_tokens;
    },
    finalize: (ctx: number) => nn.finalize_execution_context(ctx),
    unload: (graph: number) => nn.unload(graph),
    /** A context of `graph` with the prompt set. */
    async context(graph: number, prompt = PROMPT): Promise<number> {
      const [e, ctx] = g.init(graph);
      assert.equal(e, 0, `${name}: init_execution_context`);
      assert.equal(await g.setInput(ctx, 0, prompt), 0, `${name}: set_input`);
      return ctx;
    },
  };
  return g;
}
