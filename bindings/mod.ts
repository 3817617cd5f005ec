/**
 * Deno bindings for libwasi_nn_backend.so (llama.cpp): models, contexts,
 * samplers, tokenizer, chat templates, KV memory and state, embeddings,
 * logs. The only part of this package that knows `Deno.dlopen`.
 *
 * @example
 * ```ts
 * import { Context, Model, Sampler } from "./mod.ts";
 * import { ensureModel } from "../gguf/mod.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * using ctx = await Context.create(model, { nCtx: 256 });
 * using sampler = Sampler.create(model, { temp: 0 });
 * const prompt = model.tokenize("Once upon a time");
 * await ctx.decodePrompt(prompt);
 * let pos = prompt.length;
 * for (let i = 0; i < 8; i++) {
 *   const { token } = await ctx.step(sampler, { pos: pos++ });
 *   if (model.isEog(token)) break;
 *   console.log(model.tokenToPiece(token));
 * }
 * ```
 * @module
 */

export {
  type Child,
  defaultModelParams,
  jsonSchemaToGrammar,
  Model,
  type ModelLoadOptions,
} from "./model.ts";
export {
  type Batch,
  Context,
  type ContextOptions,
  type Perf,
  type StepResult,
} from "./context.ts";
export {
  defaultSamplerParams,
  type GrammarTrigger,
  Sampler,
  type SamplerParams,
  type SamplerScalars,
} from "./sampler.ts";
export {
  backendInfo,
  drainLog,
  loadedLibraryPath,
  setLogLevel,
} from "./backend.ts";
export { LlamaError, Status } from "./errors.ts";
export type { PlacementOptions } from "./_model_params.ts";
export {
  addRpcServer,
  checkRpcServers,
  parseRpcServers,
  probeRpcServer,
  RPC_MAX_SERVERS,
  type RpcCheckOptions,
  type RpcDeviceMemory,
  rpcServerMemory,
  rpcSupported,
} from "./rpc.ts";
export { MemFile } from "./memfile.ts";
export {
  MediaBitmap,
  type MediaChunk,
  MediaChunks,
  Mtmd,
  MtmdEvalError,
  type MtmdEvalOptions,
  type MtmdOptions,
} from "./mtmd.ts";
export {
  type BackendInfo,
  type DeviceInfo,
  GRAMMAR_TRIGGER_TYPES,
  LOG_LEVELS,
  type LogLevel,
  type LogRecord,
  type ModelInfo,
  POOLING_TYPES,
  type PoolingName,
} from "./types.ts";
export { ABI_VERSION } from "./_library.ts";
export { nativeCallsSettled } from "./_lifetime.ts";
export {
  type DeviceEstimate,
  estimateMemory,
  fitParams,
  type MemoryEstimate,
  type PlanOptions,
} from "./memory.ts";
