/**
 * The WASI-NN host on llama.cpp: the handle-level API of the original backend
 * (`LlamaHost`), the `wasi_ephemeral_nn` imports guests call, the guest
 * runner, the model registry and its sandbox, configuration, scheduling,
 * sessions, stopping criteria, and the logger callback type (where lines go
 * is the embedder's choice: the command line writes them with LogTape).
 *
 * @example
 * ```ts ignore
 * import { LlamaHost, ModelRegistry, runGuest } from "./mod.ts";
 * const registry = new ModelRegistry({ preloads: ["default:GGML:AUTO:model.gguf"] });
 * const host = await LlamaHost.create({ registry });
 * const code = await runGuest({ wasm: "guest.wasm", args: ["default", "Hello"], host });
 * host.close();
 * Deno.exit(code);
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
} from "./host.ts";
export type { TensorInput, WasiNnHostApi } from "./host_api.ts";
export { Errno, errnoName, toWasiNn, WasiNnError } from "./errno.ts";
export {
  createWasiNnImports,
  WASI_NN_FUNCTIONS,
  WASI_NN_MODULE,
  type WasiNnFunctionName,
  type WasiNnImports,
  type WasiNnImportsOptions,
  type WasiNnSyncHostApi,
} from "./guest_imports.ts";
export {
  GuestLinkError,
  PreopenError,
  runGuest,
  type RunGuestOptions,
  TRAP_EXIT_CODE,
} from "./run_guest.ts";
export {
  ModelRegistry,
  type ModelRegistryOptions,
  type NnPreload,
  type NnTarget,
  parseNnPreload,
} from "./registry.ts";
export {
  ConfigError,
  type ConfigRule,
  type ConfigValues,
  type KeyDef,
  KEYS,
  type KeyScope,
  type KeyType,
  mergeConfig,
  parseConfig,
  type ParsedConfig,
  type ParseOptions,
  validateValue,
} from "./config.ts";
export {
  type ConfigLayer,
  defaultConfig,
  explainConfig,
  type ExplainedValue,
  formatExplain,
  LAYER_ORDER,
  type LayerName,
  modelConfig,
  resolveConfig,
  standardLayers,
} from "./config_layers.ts";
export { checkConfig, type CheckFacts } from "./config_check.ts";
export {
  configJsonSchema,
  type JsonSchema,
  type SchemaOptions,
} from "./config_schema.ts";
export {
  type ChatContentPart,
  type ChatMessage,
  CHATML_TEMPLATE,
  type ChatOptions,
  type ChatTokens,
  parseMessages,
  renderChat,
  renderChatIsolated,
  renderChatIsolatedSync,
  type RenderedChat,
  tokenizeChat,
  tokenizeInput,
  tokenizeRendered,
} from "./chat.ts";
export { TEMPLATE_LIMITS, type TemplateLimits } from "./_chat_sandbox.ts";
export {
  checkGrammar,
  checkJsonSchema,
  GRAMMAR_LIMITS,
  type GrammarLimit,
  type GrammarMeasure,
} from "./_grammar_limits.ts";
export {
  generate,
  type GenerateOptions,
  type GenerateResult,
  type Timings,
} from "./generate.ts";
export { type TokenProb, type TokenProbs, tokenProbs } from "./token_probs.ts";
export {
  type RunningTask,
  Scheduler,
  type SchedulerOptions,
  type SchedulerStats,
  type SlotOwner,
  type TaskHandle,
  type TaskResult,
  type TaskSpec,
  type TaskTimings,
  type TokenEvent,
} from "./scheduler.ts";
export type { Checkpoint } from "./_prompt_cache.ts";
export {
  SessionStore,
  type SessionStoreOptions,
  type StoredSession,
} from "./sessions.ts";
export {
  detectLoop,
  StopChecker,
  type StopOptions,
  type StopReason,
  type StopStep,
} from "./stopping.ts";
export { PriorityQueue, type PriorityQueueOptions } from "./priority_queue.ts";
export {
  LOG_LEVELS,
  type LogCategory,
  type Logger,
  type LogLevel,
} from "./log.ts";
