/**
 * wasi_nn_backend for Deno: run WASI-NN WebAssembly guests on llama.cpp, and
 * use llama.cpp from Deno directly.
 *
 * - `LlamaHost` / `runGuest` / `ModelRegistry` (from `wasi_nn/`): the host
 *   that WasmEdge and WAMR guests run on unchanged.
 * - `Model`, `Context`, `Sampler` (from `bindings/`): llama.cpp itself.
 *
 * Build the native library first: `deno run -A jsr:@wasi-nn/llamacpp/build`
 * (or `deno task build` in a clone).
 *
 * @example
 * ```ts ignore
 * import { LlamaHost, ModelRegistry } from "./mod.ts";
 * const registry = new ModelRegistry();
 * registry.preload("default", "model.gguf");
 * const host = await LlamaHost.create({ registry });
 * const graph = await host.loadByName("default", '{"n-predict":64}');
 * const ctx = host.initExecutionContext(graph);
 * console.log((await host.runInference(ctx, "Once upon a time")).text);
 * host.close();
 * ```
 * @module
 */

export * from "./wasi_nn/mod.ts";
export {
  type BackendInfo,
  backendInfo,
  Context,
  type ContextOptions,
  estimateMemory,
  fitParams,
  LlamaError,
  Model,
  type ModelInfo,
  type ModelLoadOptions,
  Sampler,
  type SamplerParams,
  Status,
} from "./bindings/mod.ts";
