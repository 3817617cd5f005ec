/**
 * wasi_nn_backend for Deno: run WASI-NN WebAssembly guests on llama.cpp, and
 * use llama.cpp from Deno directly.
 *
 * This entry holds what a user of the host needs: {@linkcode LlamaHost} (the
 * host that WasmEdge and WAMR guests run on unchanged) with its
 * {@linkcode ModelRegistry}, {@linkcode runGuest}, the imports guests call
 * ({@linkcode createWasiNnImports}), the errnos ({@linkcode Errno},
 * {@linkcode WasiNnError}), {@linkcode generate} with
 * {@linkcode tokenizeChat}, the {@linkcode Logger} type, and the llama.cpp
 * objects those take ({@linkcode Model}, {@linkcode Context},
 * {@linkcode Sampler}, {@linkcode backendInfo}). Each layer has its own
 * entry besides:
 *
 * - `./bindings`: llama.cpp itself (models, contexts, samplers, tokenizer,
 *   KV memory, state, embeddings, memory estimates).
 * - `./config`: the configuration every guest and host sends, parsed,
 *   layered, checked and described as a JSON Schema.
 * - `./gguf`: the GGUF reader, writer and validator, and synthetic models.
 * - `./build`: fetching llama.cpp and building the native library.
 * - `./cli`: the command line.
 *
 * Build the native library first: `deno run -A jsr:@wasi-nn/llamacpp/build`
 * (or `deno task build` in a clone).
 *
 * @example
 * ```ts
 * import { LlamaHost, ModelRegistry } from "./mod.ts";
 * import { ensureModel } from "./gguf/mod.ts";
 *
 * const registry = new ModelRegistry();
 * registry.preload("default", (await ensureModel("tiny")).path);
 * const host = await LlamaHost.create({ registry });
 * const graph = await host.loadByName("default", '{"n-predict":8,"temp":0}');
 * const ctx = host.initExecutionContext(graph);
 * const { metadata } = await host.runInference(ctx, "Once upon a time");
 * console.log(metadata.output_tokens <= 8); // true
 * host.close();
 * ```
 * @module
 */

export * from "./wasi_nn/mod.ts";
export { backendInfo, Context, Model, Sampler } from "./bindings/mod.ts";
