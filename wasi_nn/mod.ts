/**
 * The WASI-NN host on llama.cpp, as a user sees it: the handle-level API of
 * the original backend ({@linkcode LlamaHost}) with its model registry and
 * sandbox, the `wasi_ephemeral_nn` imports guests call
 * ({@linkcode createWasiNnImports}), the guest runner ({@linkcode runGuest}),
 * the errnos, one generation on a context of its own ({@linkcode generate})
 * with the chat template ({@linkcode tokenizeChat}), and the logger callback
 * type (where lines go is the embedder's choice: the command line writes them
 * with LogTape).
 *
 * The configuration API is the `./config` entry (`wasi_nn/config/mod.ts`);
 * the scheduler, sessions, stopping criteria and the other parts behind the
 * host are internal.
 *
 * @example
 * ```ts
 * import { Context, Model, Sampler } from "../bindings/mod.ts";
 * import { ensureModel } from "../gguf/mod.ts";
 * import { generate, tokenizeChat } from "./mod.ts";
 *
 * using model = await Model.load((await ensureModel("tiny")).path);
 * using ctx = await Context.create(model, { nCtx: 256 });
 * using sampler = Sampler.create(model, { temp: 0 });
 * const { tokens } = tokenizeChat(model, [{ role: "user", content: "Hello" }]);
 * const r = await generate(ctx, sampler, tokens, { nPredict: 8 });
 * console.log(r.tokens.length <= 8); // true
 * ```
 * @module
 */

export {
  type HostStatus,
  type InferenceResult,
  LlamaHost,
  type LlamaHostOptions,
  type Metadata,
  type ModelResolver,
} from "./host/host.ts";
export type { SchedulerStats } from "./engine/scheduler.ts";
export type { TensorInput, WasiNnHostApi } from "./host/api.ts";
export {
  ModelRegistry,
  type ModelRegistryOptions,
  type NnPreload,
  type NnTarget,
} from "./host/registry.ts";
export {
  GuestLinkError,
  PreopenError,
  runGuest,
  type RunGuestOptions,
  TRAP_EXIT_CODE,
} from "./abi/run_guest.ts";
export {
  createWasiNnImports,
  WASI_NN_FUNCTIONS,
  WASI_NN_MODULE,
  type WasiNnFunctionName,
  type WasiNnImports,
  type WasiNnImportsOptions,
} from "./abi/guest_imports.ts";
export { Errno, WasiNnError } from "./errno.ts";
export {
  generate,
  type GenerateOptions,
  type GenerateResult,
  type StopReason,
  type Timings,
} from "./engine/generate.ts";
export type { TokenProb, TokenProbs } from "./engine/token_probs.ts";
export {
  type ChatContentPart,
  type ChatMessage,
  type ChatOptions,
  type ChatTokens,
  type RenderedChat,
  tokenizeChat,
} from "./engine/chat.ts";
export {
  LOG_LEVELS,
  type LogCategory,
  type Logger,
  type LogLevel,
} from "./log.ts";
