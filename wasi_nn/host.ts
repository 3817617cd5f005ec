/**
 * `LlamaHost`: the WASI-NN host on llama.cpp. It implements the handle-level
 * API guests reach (`WasiNnHostApi`, the original C++ backend's operations)
 * with WasmEdge GGML semantics, and adds what the original API promised:
 * `runInference` for a one-shot call, sessions with ids, a status view,
 * session save/restore and model hot swap.
 *
 * Original name -> here: `init_backend` -> `LlamaHost.create`,
 * `load_by_name_with_config` -> `loadByName(name, config)`,
 * `init_execution_context` -> `initExecutionContext(graph, sessionId?)`,
 * `set_input` / `compute` / `get_output` -> same names, `run_inference` ->
 * `runInference`, `deinit_backend` -> `close`.
 *
 * Every execution context is a session: its own KV sequence in a context
 * shared by the sessions of one model (see `scheduler.ts`), so sessions are
 * isolated yet decoded together in one batch. A session's next turn reuses
 * the longest common prefix of what it already holds.
 *
 * @example
 * ```ts ignore
 * import { LlamaHost } from "./host.ts";
 * import { ModelRegistry } from "./registry.ts";
 * const registry = new ModelRegistry();
 * registry.preload("default", ".cache/models/tiny.gguf");
 * const host = await LlamaHost.create({ registry });
 * const graph = await host.loadByName("default", '{"n-predict":16,"temp":0}');
 * const ctx = host.initExecutionContext(graph);
 * const r = await host.runInference(ctx, "Once upon a time");
 * console.log(r.text, r.metadata.output_tokens);
 * host.close();
 * ```
 * @module
 */

import {
  backendInfo,
  Context,
  type ContextOptions,
  drainLog,
  estimateMemory,
  fitParams,
  LlamaError,
  Model,
  type ModelLoadOptions,
  Sampler,
  setLogLevel,
  Status,
} from "../bindings/mod.ts";
import { type ConfigValues, mergeConfig, parseConfig } from "./config.ts";
import { checkConfig } from "./config_check.ts";
import { contextOptions } from "./_config_context.ts";
import { singleStop, taskOptions } from "./_config_run.ts";
import { specOf } from "./_config_keys.ts";
import { kvCacheBytes } from "./_kv_memory.ts";
import { modelConfig } from "./config_layers.ts";
import {
  type ChatMessage,
  chatOptions,
  promptInput,
  renderChatIsolated,
  renderChatIsolatedSync,
  tokenizeInput,
  tokenizeRendered,
} from "./chat.ts";
import type { TokenProbs } from "./token_probs.ts";
import { type TemplateLimits, templateLimits } from "./_chat_sandbox.ts";
import { Errno, toWasiNn, WasiNnError } from "./errno.ts";
import { evalPrompt } from "./generate.ts";
import { maxPositions } from "./_positions.ts";
import type { TensorInput, WasiNnHostApi } from "./host_api.ts";
import {
  Scheduler,
  type SchedulerStats,
  type SlotOwner,
  type TaskHandle,
} from "./scheduler.ts";
import { SessionStore } from "./sessions.ts";
import {
  addCheckpoint,
  type Checkpoint,
  CHECKPOINT_OFFSET,
  commonPrefix,
  memoryTraits,
  rollBack,
} from "./_prompt_cache.ts";
import type { StopReason } from "./stopping.ts";
import {
  checkPromptFits,
  Generation,
  type GenerationStop,
} from "./_generation.ts";
import { samplerParams } from "./_sampling.ts";
import { escapingLog } from "./_log_escape.ts";
import {
  checkGuestModelSize,
  checkModelFile,
  checkModelFileSync,
  type GuestModel,
  openGuestModel,
  openGuestModelSync,
} from "./_model_source.ts";

/**
 * Log sink: level and message. Each message is one line: the host shows
 * control characters as escapes (`\n`, `\x1b`) and calls the sink once per
 * line of llama.cpp's log.
 */
export type HostLog = (
  level: "debug" | "info" | "warn" | "error",
  msg: string,
  /**
   * "llama": llama.cpp's own log and per-request timings, sent only when a
   * config's `enable_log` / `enable_debug_log` asks for them (errors always),
   * so a logger should show them whatever its level. Default "host".
   */
  category?: "host" | "llama",
) => void;

/** Resolves a guest-given model name (or allowed path) to a file. Throws WasiNnError(NotFound). */
export interface ModelResolver {
  /** Returns the model's path (or an object with it). */
  resolve(nameOrPath: string): string | { path: string };
}

/** Options of `LlamaHost.create`. */
export interface LlamaHostOptions {
  /** Name -> model file mapping and the sandbox for paths. */
  registry: ModelResolver;
  /** Host defaults beneath whatever a guest sends (any key style). */
  hostConfig?: Record<string, unknown> | string;
  /** Where host messages go (default: stderr for warn and error). */
  log?: HostLog;
  /** Model load progress, 0..1. */
  onLoadProgress?: (name: string, fraction: number) => void;
  /** Where stream-stdout prints (default: the process's stdout). */
  stdout?: (bytes: Uint8Array) => void;
  /** Session limits: max sessions (100), idle timeout (300000 ms). */
  sessions?: {
    maxSessions?: number;
    idleTimeoutMs?: number;
    now?: () => number;
    timer?: boolean;
  };
}

/** The metadata JSON of get_output index 1, plus our additions. */
export interface Metadata {
  /** Prompt tokens of the last set_input. */
  input_tokens: number;
  /** Tokens generated by the last compute or compute_single run. */
  output_tokens: number;
  /** llama.cpp build number. */
  llama_build_number: number;
  /** llama.cpp commit. */
  llama_commit: string;
  /** Why the last compute stopped. */
  stop_reason?: StopReason;
  /** The stop string or token that matched. */
  stopped_by?: string | number;
  /** Whether a context shift dropped tokens. */
  truncated?: boolean;
  /** Prompt tokens reused from the session's cache. */
  cached_tokens?: number;
  /** Time waiting for a slot (ms). */
  queue_ms?: number;
  /** Prompt processing time (ms). */
  prompt_ms?: number;
  /** Generation time (ms). */
  generation_ms?: number;
  /** Generated tokens per second. */
  tokens_per_second?: number;
  /** With n_probs: each generated token's probability and the top candidates. */
  probs?: TokenProbs[];
}

/** llama_pooling_type's RANK: the output is the model's classifier scores. */
const POOLING_RANK = 4;

/** Result of `runInference`. */
export interface InferenceResult {
  /** Generated text (or the embedding JSON in embedding mode). */
  text: string;
  /** Token counts, timings and stop reason. */
  metadata: Metadata;
}

/** What `status()` reports. */
export interface HostStatus {
  /** Sessions (execution contexts). */
  sessions: {
    handle: number;
    id: string;
    graph: number;
    model: string;
    busy: boolean;
    cachedTokens: number;
    idleMs: number;
  }[];
  /** Loaded models and their schedulers. */
  models: {
    label: string;
    path: string;
    users: number;
    /** Each scheduler's shape, KV cache size and counters. */
    schedulers: (SchedulerStats & {
      nSeq: number;
      nCtxPerSeq: number;
      /** Bytes of its KV cache. */
      kvBytes: number;
    })[];
  }[];
  /** Limits. */
  limits: { maxSessions: number; idleTimeoutMs: number };
  /** Resident memory of the process (bytes). */
  rss: number;
}

interface ModelEntry {
  key: string;
  path: string;
  label: string;
  model: Model;
  refs: number;
  /** The model's recommended sampling (`general.sampling.*`): the lowest config layer. */
  defaults: ConfigValues;
  /** Bytes of the model file: what its weights take (for max_memory_mb). */
  bytes: number;
  /** Loaded by name: kept loaded for idle_timeout_ms after its last user, for the next guest. */
  keepWarm: boolean;
  /** Frees a warm model that stayed unused. */
  idleTimer?: ReturnType<typeof setTimeout>;
  /** One scheduler per context shape, least recently used first. */
  schedulers: Map<string, SchedulerEntry>;
  /** The model's embedding context (one, replaced when the options change). */
  embed?: { key: string; ctx: Context; bytes: number };
  /** Embeddings run one at a time per model: the last one queued. */
  embedLock?: Promise<unknown>;
  /** An embedding is decoding now. */
  embedBusy?: boolean;
}

/** A scheduler being made or made, and the memory counted for it. */
interface SchedulerEntry {
  ready: Promise<Scheduler>;
  /** Set once made. */
  value?: Scheduler;
  /** Bytes counted against max_memory_mb: llama.cpp's estimate of its context and compute buffers. */
  bytes: number;
}

interface Graph {
  handle: number;
  name?: string;
  path: string;
  config: ConfigValues;
  model: ModelEntry;
  unloaded: boolean;
}

class Session {
  readonly handle: number;
  /** The session store's key: `name:<id>` when the caller chose the id, `#<handle>` otherwise. */
  readonly id: string;
  /** The id as callers see it (`ctx-<handle>` when none was chosen). */
  readonly name: string;
  graph: Graph;
  /** Pinned at creation: a hot swap gives new sessions the new model. */
  model: ModelEntry;
  config: ConfigValues = {};
  prompt?: Int32Array<ArrayBuffer>;
  promptText = "";
  inputTokens = 0;
  output: Uint8Array = new Uint8Array(0);
  outputTokens = 0;
  lastPiece: Uint8Array = new Uint8Array(0);
  meta: Partial<Metadata> = {};
  running = 0;
  stream?: { task: TaskHandle; sampler: Sampler };
  sched?: Scheduler;
  owner?: SlotOwner;
  /** Guests without JSPI: a context of this session's own, driven by blocking calls. */
  sync?: {
    key: string;
    ctx: Context;
    /** Its KV cache bytes (for max_memory_mb). */
    bytes: number;
    /** The context length asked for (llama.cpp may round the context up). */
    nCtx: number;
    /** Tokens the context holds for sequence 0, position by position. */
    cached: number[];
    /** Its context checkpoints (memory that cannot drop a tail, or SWA). */
    checkpoints: Checkpoint[];
    stream?: {
      sampler: Sampler;
      gen: Generation;
      pos: number;
      /** Set when the last piece ended the stream (a stop token). */
      ended?: GenerationStop;
    };
  };
  abort = new AbortController();
  closed = false;

  constructor(
    handle: number,
    chosen: string | undefined,
    graph: Graph,
    model: ModelEntry,
  ) {
    this.handle = handle;
    this.id = sessionKey(handle, chosen);
    this.name = chosen ?? `ctx-${handle}`;
    this.graph = graph;
    this.model = model;
  }

  get busy(): boolean {
    return this.running > 0 || this.stream !== undefined;
  }

  endStream(): void {
    if (this.sync?.stream) {
      this.sync.stream.sampler.close();
      this.sync.stream = undefined;
    }
    if (!this.stream) return;
    this.stream.task.cancel();
    const s = this.stream.sampler;
    this.stream.task.result.finally(() => s.close()).catch(() => {});
    this.stream = undefined;
  }

  /** Frees the session's slot; the host releases the model. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.endStream();
    if (this.sched && this.owner) this.sched.dropOwner(this.owner);
    this.sched = undefined;
    this.owner = undefined;
    this.sync?.ctx.close();
    this.sync = undefined;
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * The store key of a session: ids that callers choose and the names given to
 * the others live apart, so `initExecutionContext(g, "ctx-0")` never resumes
 * another caller's unnamed session.
 */
function sessionKey(handle: number, chosen: string | undefined): string {
  return chosen === undefined ? `#${handle}` : `name:${chosen}`;
}

function defaultLog(level: string, msg: string, category?: string): void {
  if (category === "llama") console.error(`[llama.cpp] ${msg}`);
  else if (level === "warn" || level === "error") {
    console.error(`[wasi_nn] ${level}: ${msg}`);
  }
}

/** The llama.cpp WASI-NN host. Create with `LlamaHost.create`. */
export class LlamaHost implements WasiNnHostApi {
  #registry: ModelResolver;
  #hostConfig: ConfigValues;
  #log: HostLog;
  #onProgress?: (name: string, fraction: number) => void;
  #stdout: (bytes: Uint8Array) => void;
  #models = new Map<string, ModelEntry>();
  #loading = new Map<string, Promise<ModelEntry>>();
  #graphs = new Map<number, Graph>();
  #sessions = new Map<number, Session>();
  #store: SessionStore<Session>;
  #nextGraph = 0;
  #nextExec = 0;
  #cancel = new AbortController();
  #build: { number: number; commit: string };
  #closed = false;
  /** Limits of the chat-template sandbox (host keys `chat_template_*`). */
  #templateLimits: TemplateLimits;

  private constructor(options: LlamaHostOptions) {
    this.#registry = options.registry;
    // Every message one line, whatever the sink: guests choose names and text.
    this.#log = escapingLog(options.log ?? defaultLog);
    this.#onProgress = options.onLoadProgress;
    this.#stdout = options.stdout ??
      ((b) => {
        Deno.stdout.writeSync(b);
      });
    const parsed = parseConfig(
      options.hostConfig as string | Record<string, unknown> | undefined,
    );
    for (const w of parsed.warnings) this.#log("warn", `host config: ${w}`);
    this.#hostConfig = parsed.values;
    this.#templateLimits = templateLimits(this.#hostConfig);
    const s = options.sessions ?? {};
    this.#store = new SessionStore<Session>({
      maxSessions: s.maxSessions ??
        (this.#hostConfig.max_sessions as number | undefined),
      idleTimeoutMs: s.idleTimeoutMs ??
        (this.#hostConfig.idle_timeout_ms as number | undefined),
      now: s.now,
      timer: s.timer ?? (this.#hostConfig.auto_cleanup !== false),
      onEvict: (_id, why, sess) => {
        this.#dropSession(sess);
        this.#log(
          "info",
          `session '${sess.name}' closed: ${
            why === "idle"
              ? "idle past idle_timeout_ms"
              : "least recently used, to make room"
          }`,
        );
      },
    });
    const info = backendInfo();
    this.#build = {
      number: info.llama_build_number,
      commit: info.llama_commit,
    };
  }

  /** `init_backend`: opens the library and prepares an empty host. */
  static create(options: LlamaHostOptions): Promise<LlamaHost> {
    return Promise.resolve(new LlamaHost(options));
  }

  /** llama.cpp build facts for `--version`. */
  get llamaBuild(): { number: number; commit: string } {
    return { ...this.#build };
  }

  /**
   * Model keys (n_gpu_layers, use_mmap, ...) apply when a model loads: in a
   * session's config they change nothing, so say so (once).
   */
  #warnModelKeys(values: ConfigValues, where: string): void {
    for (const k of Object.keys(values)) {
      if (specOf(k)?.scope === "model") {
        this.#logOnce(
          "warn",
          `${where}: '${k}' applies when the model loads, not per session; put it in the load_by_name config (or --config) and load the model again`,
        );
      }
    }
  }

  #logged = new Set<string>();

  /** Logs a message the first time it comes (at most 1000 remembered). */
  #logOnce(level: "info" | "warn", msg: string): void {
    if (this.#logged.has(msg)) return;
    if (this.#logged.size >= 1000) this.#logged.clear();
    this.#logged.add(msg);
    this.#log(level, msg);
  }

  /**
   * Forwards llama.cpp's queued log: all of it when the config asks
   * (`enable_log`, `enable_debug_log`), otherwise only errors.
   */
  #flushLlamaLog(cfg: ConfigValues): void {
    const enabled = Boolean(cfg.enable_log || cfg.enable_debug_log);
    for (const r of drainLog()) {
      if (enabled || r.level === "error") {
        this.#log(r.level, r.message, "llama");
      }
    }
  }

  /** What llama.cpp queues from now on: debug, info or warnings and errors, as the config asks. */
  #nativeLogLevel(cfg: ConfigValues): void {
    setLogLevel(
      cfg.enable_debug_log ? "debug" : cfg.enable_log ? "info" : "warn",
    );
  }

  // ---------------------------------------------------------------- models

  async #modelOptions(
    path: string,
    cfg: ConfigValues,
  ): Promise<ModelLoadOptions> {
    let nGpuLayers = cfg.n_gpu_layers as number | string | undefined;
    if (nGpuLayers === "auto") {
      try {
        // The scheduler's context: ctx_size for each of `parallel` sessions.
        const nSeq = (cfg.parallel as number | undefined) ?? 4;
        const perSeq = (cfg.ctx_size as number | undefined) ?? 0;
        const fit = await fitParams(path, {
          nCtx: perSeq * nSeq,
          nSeqMax: nSeq,
          context: contextOptions(cfg),
        });
        this.#log(
          "info",
          `n_gpu_layers auto: llama.cpp's fit chose ${fit.nGpuLayers} for ${path}`,
        );
        nGpuLayers = fit.nGpuLayers;
      } catch (e) {
        throw this.#loadError(path, e);
      }
    }
    return this.#modelOptionsSync({ ...cfg, n_gpu_layers: nGpuLayers });
  }

  /** Model options without llama.cpp's fit (`n_gpu_layers: "auto"` means all layers here). */
  #modelOptionsSync(cfg: ConfigValues): ModelLoadOptions {
    const ngl = cfg.n_gpu_layers === "auto" ? -1 : cfg.n_gpu_layers;
    return {
      nGpuLayers: ngl as number | undefined,
      mainGpu: cfg.main_gpu as number | undefined,
      splitMode: cfg.split_mode as "none" | "layer" | "row" | undefined,
      useMmap: cfg.use_mmap as boolean | undefined,
      useMlock: cfg.use_mlock as boolean | undefined,
      checkTensors: cfg.check_tensors as boolean | undefined,
    };
  }

  #loadError(path: string, e: unknown): WasiNnError {
    if (e instanceof WasiNnError) return e;
    if (e instanceof LlamaError && e.code === Status.FileNotFound) {
      return new WasiNnError(Errno.ModelNotFound, e.message, { cause: e });
    }
    let size = "";
    try {
      const file = Deno.statSync(path).size;
      const gpus = backendInfo().devices.filter((d) => d.type !== "cpu");
      size = ` (file ${mib(file)}; free RAM ${
        mib(Deno.systemMemoryInfo().available)
      }${gpus.map((d) => `, free ${d.name} ${mib(d.memory_free)}`).join("")})`;
    } catch { /* missing */ }
    return new WasiNnError(
      Errno.InvalidArgument,
      `${e instanceof Error ? e.message : String(e)}${size}`,
      { cause: e },
    );
  }

  /** Loads (or shares) a model; the caller owns one reference. */
  async #acquireModel(
    path: string,
    cfg: ConfigValues,
    label: string,
    guest?: GuestModel,
  ): Promise<ModelEntry> {
    // Guest bytes were checked when they were copied; files are checked here,
    // before llama.cpp (the fit below included) reads them.
    if (!guest) await checkModelFile(path);
    const opts = await this.#modelOptions(path, cfg);
    // Guest bytes are keyed by their unique id: fd numbers are reused.
    const key = `${guest?.id ?? path}\0${JSON.stringify(opts)}`;
    if (!this.#models.has(key)) {
      this.#checkModelFits(path, label);
    }
    const hit = this.#models.get(key);
    if (hit) return this.#revive(hit);
    let pending = this.#loading.get(key);
    if (!pending) {
      pending = this.#loadModel(key, path, opts, cfg, label);
      this.#loading.set(key, pending);
      pending.finally(() => this.#loading.delete(key)).catch(() => {});
    }
    const entry = await pending;
    // The memory file's path is gone once the load is over.
    if (guest) entry.path = guest.id;
    entry.refs++;
    return entry;
  }

  /** Blocking #acquireModel, for guests without JSPI. */
  #acquireModelSync(
    path: string,
    cfg: ConfigValues,
    label: string,
    guest?: GuestModel,
  ): ModelEntry {
    const opts = this.#modelOptionsSync(cfg);
    const key = `${guest?.id ?? path}\0${JSON.stringify(opts)}`;
    const hit = this.#models.get(key);
    if (hit) return this.#revive(hit);
    if (!guest) checkModelFileSync(path);
    this.#checkModelFits(path, label);
    let model: Model;
    this.#nativeLogLevel(cfg);
    try {
      model = Model.loadSync(path, opts);
    } catch (e) {
      const err = this.#loadError(path, e);
      this.#log("error", err.message);
      throw err;
    } finally {
      this.#flushLlamaLog(cfg);
    }
    const entry = this.#entry(key, path, label, model);
    if (guest) entry.path = guest.id;
    entry.refs++;
    return entry;
  }

  /** Takes a reference to a loaded model (a warm one stops its idle timer). */
  #revive(m: ModelEntry): ModelEntry {
    if (m.idleTimer !== undefined) clearTimeout(m.idleTimer);
    m.idleTimer = undefined;
    m.refs++;
    return m;
  }

  /** Refuses a model file that does not fit in what max_memory_mb leaves. */
  #checkModelFits(path: string, label: string): void {
    const limit = this.#memoryLimit();
    if (limit === undefined) return;
    const size = fileSize(path), used = this.#usage();
    if (size > limit - used) {
      throw new WasiNnError(
        Errno.RuntimeError,
        `model '${label}' (${mib(size)}) does not fit in max_memory_mb ${
          limit / 1048576
        } with ${
          mib(used)
        } already in use by this host; raise max_memory_mb or free other models and sessions`,
      );
    }
  }

  #entry(key: string, path: string, label: string, model: Model): ModelEntry {
    const mc = modelConfig(model);
    for (const w of mc.warnings) this.#log("warn", `model '${label}': ${w}`);
    const entry: ModelEntry = {
      key,
      path,
      label,
      model,
      refs: 0,
      defaults: mc.values,
      bytes: fileSize(path),
      keepWarm: false,
      schedulers: new Map(),
    };
    this.#models.set(key, entry);
    return entry;
  }

  async #loadModel(
    key: string,
    path: string,
    opts: ModelLoadOptions,
    cfg: ConfigValues,
    label: string,
  ): Promise<ModelEntry> {
    this.#nativeLogLevel(cfg);
    try {
      const t0 = performance.now();
      const model = await Model.load(path, {
        ...opts,
        onProgress: this.#onProgress
          ? (f) => this.#onProgress!(label, f)
          : undefined,
        signal: this.#cancel.signal,
      });
      if (this.#closed) {
        model.close();
        throw new WasiNnError(Errno.RuntimeError, "the host was closed");
      }
      this.#log(
        "info",
        `loaded model '${label}' from ${path} in ${
          (performance.now() - t0).toFixed(0)
        } ms`,
      );
      return this.#entry(key, path, label, model);
    } catch (e) {
      const err = this.#loadError(path, e);
      this.#log("error", err.message);
      throw err;
    } finally {
      this.#flushLlamaLog(cfg);
    }
  }

  #releaseModel(m: ModelEntry | undefined): void {
    if (!m) return;
    m.refs--;
    if (m.refs > 0) return;
    const idleMs = this.#store.limits.idleTimeoutMs;
    if (m.keepWarm && !this.#closed && idleMs > 0) {
      // The next guest that loads this name finds it loaded (and its most
      // recent context); unused for idle_timeout_ms, it is freed.
      this.#pruneSchedulers(m);
      m.idleTimer ??= setTimeout(() => {
        m.idleTimer = undefined;
        if (m.refs <= 0 && this.#models.get(m.key) === m) this.#freeModel(m);
      }, idleMs);
      Deno.unrefTimer(m.idleTimer);
      return;
    }
    this.#freeModel(m);
  }

  #freeModel(m: ModelEntry): void {
    if (m.idleTimer !== undefined) clearTimeout(m.idleTimer);
    m.idleTimer = undefined;
    if (this.#models.get(m.key) === m) this.#models.delete(m.key);
    this.#closeSchedulers(m);
    m.embed?.ctx.close();
    m.embed = undefined;
    m.model.close();
    this.#log("info", `freed model '${m.label}' (${m.path})`);
  }

  /**
   * The context a config asks for (every context key of the config, through
   * `contextOptions`), with the host's defaults: the model's training context
   * up to 4096 tokens per session when ctx_size is unset (all of it for 0),
   * batches of 512.
   */
  #contextOptions(m: ModelEntry, cfg: ConfigValues): ContextOptions {
    const o = contextOptions(cfg);
    const nTrain = m.model.nCtxTrain || 4096;
    // Unset: the training context up to 4096 tokens; 0: the training context.
    o.nCtx = o.nCtx === undefined ? Math.min(nTrain, 4096) : o.nCtx || nTrain;
    o.nBatch ??= 512;
    delete o.embeddings;
    // A learned position table ends at the training context: llama.cpp
    // aborts the process on a position past it.
    const maxPos = maxPositions(m.model.info.architecture, m.model.nCtxTrain);
    if (maxPos !== undefined && o.nCtx > maxPos) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `Field 'ctx_size': ${o.nCtx} is more than '${m.label}' (${m.model.info.architecture}, learned positions) can take: at most ${maxPos} (its training context); lower ctx_size`,
      );
    }
    return o;
  }

  /** The scheduler of a model for a context shape, created on first use. */
  #scheduler(m: ModelEntry, cfg: ConfigValues): Promise<Scheduler> {
    const nTrain = m.model.nCtxTrain;
    const o = this.#contextOptions(m, cfg);
    const perSeq = o.nCtx!;
    const shape = {
      nSeq: (cfg.parallel as number | undefined) ??
        (cfg.batch_processing === false ? 1 : 4),
      nCtxPerSeq: perSeq,
      nBatch: o.nBatch,
      nUbatch: o.nUbatch,
      threads: o.nThreads,
      threadsBatch: o.nThreadsBatch,
      poll: o.poll,
      flashAttn: o.flashAttn,
      context: o,
      // The original project's cache and batching keys.
      maxCacheTokens: cfg.max_cache_tokens as number | undefined,
      batchWaitMs: cfg.batch_timeout_ms as number | undefined,
      pressure: cfg.memory_pressure_threshold as number | undefined,
    };
    const key = JSON.stringify(shape);
    let e = m.schedulers.get(key);
    if (e) {
      // Most recently used last: idle schedulers are freed oldest first.
      m.schedulers.delete(key);
      m.schedulers.set(key, e);
      return e.ready;
    }
    const entry: SchedulerEntry = {
      ready: Promise.resolve() as never,
      bytes: 0,
    };
    e = entry;
    entry.ready = (async () => {
      entry.bytes = await this.#checkMemory(m, {
        ...o,
        nCtx: shape.nCtxPerSeq * shape.nSeq,
        nSeqMax: shape.nSeq,
      });
      if (nTrain > 0 && perSeq > nTrain) {
        this.#log(
          "warn",
          `ctx_size ${perSeq} exceeds the context '${m.label}' was trained with (${nTrain}); quality may drop`,
        );
      }
      this.#nativeLogLevel(cfg);
      try {
        const threshold = shape.pressure;
        const sched = await Scheduler.create(m.model, {
          ...shape,
          memoryPressure: threshold === undefined
            ? undefined
            : () => memoryInUse() > threshold,
        });
        entry.value = sched;
        return sched;
      } catch (e) {
        throw toWasiNn(e);
      } finally {
        this.#flushLlamaLog(cfg);
      }
    })();
    m.schedulers.set(key, entry);
    entry.ready.catch(() => {
      if (m.schedulers.get(key) === entry) m.schedulers.delete(key);
    });
    return entry.ready;
  }

  /**
   * Frees the schedulers (llama contexts) of a model that no session uses,
   * but the most recently used one: each context shape a config asks for
   * would otherwise keep its context until the model is freed.
   */
  #pruneSchedulers(m: ModelEntry): void {
    const keys = [...m.schedulers.keys()];
    for (const key of keys.slice(0, -1)) {
      const sched = m.schedulers.get(key)!.value;
      if (sched && sched.owners === 0) {
        m.schedulers.delete(key);
        sched.close();
      }
    }
  }

  /** Closes every scheduler of a model (the model is being freed). */
  #closeSchedulers(m: ModelEntry): void {
    for (const e of m.schedulers.values()) {
      e.ready.then((x) => x.close()).catch(() => {});
    }
    m.schedulers.clear();
  }

  /**
   * Bytes this host holds now: model files, scheduler and embedding
   * contexts, and the blocking sessions' own contexts. What max_memory_mb
   * limits, for the whole host.
   */
  #usage(): number {
    let n = 0;
    for (const m of this.#models.values()) {
      n += m.bytes + (m.embed?.bytes ?? 0);
      for (const e of m.schedulers.values()) n += e.bytes;
    }
    for (const s of this.#sessions.values()) n += s.sync?.bytes ?? 0;
    return n;
  }

  /**
   * Refuses, with numbers, a context whose KV cache alone cannot fit in free
   * memory (or `max_memory_mb`), counting the KV cache types asked for. Cheap
   * and blocking: every context is checked this way.
   */
  #checkKv(m: ModelEntry, o: ContextOptions): number {
    const nCtx = o.nCtx!, nSeq = o.nSeqMax ?? 1;
    if (nCtx > 0x7fffffff) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `ctx-size x parallel = ${nCtx} tokens exceeds llama.cpp's limit of ${0x7fffffff}; lower ctx-size or parallel`,
      );
    }
    const kv = kvCacheBytes(m.model.info, nCtx, o.typeK, o.typeV);
    const free = () => this.#freeMemory(Deno.systemMemoryInfo().available);
    if (kv > free() && !(this.#reclaim(m) && kv <= free())) {
      throw this.#refuse(m, nCtx, nSeq, kv, free());
    }
    return kv;
  }

  /**
   * Frees what no session uses (idle contexts of every model but `keep`'s
   * most recent one, warm models nobody holds) when memory runs short.
   * Returns whether anything was freed.
   */
  #reclaim(keep: ModelEntry): boolean {
    const before = this.#usage();
    for (const m of [...this.#models.values()]) {
      if (m.refs <= 0 && m !== keep) {
        this.#freeModel(m);
        continue;
      }
      for (const [key, e] of [...m.schedulers]) {
        if (e.value && e.value.owners === 0) {
          m.schedulers.delete(key);
          e.value.close();
        }
      }
      if (m.embed && !m.embedBusy) {
        m.embed.ctx.close();
        m.embed = undefined;
      }
    }
    return this.#usage() < before;
  }

  /** max_memory_mb in bytes, if set. */
  #memoryLimit(): number | undefined {
    const limit = this.#hostConfig.max_memory_mb as number | undefined;
    return limit ? limit * 1048576 : undefined;
  }

  /** Free memory, capped by what max_memory_mb leaves after everything this host holds. */
  #freeMemory(free: number): number {
    const limit = this.#memoryLimit();
    return limit === undefined
      ? free
      : Math.max(0, Math.min(limit - this.#usage(), free));
  }

  #refuse(
    m: ModelEntry,
    nCtx: number,
    nSeq: number,
    need: number,
    free: number,
  ): WasiNnError {
    const limit = this.#memoryLimit();
    const where = limit === undefined
      ? ""
      : ` of max_memory_mb ${limit / 1048576} (this host holds ${
        mib(this.#usage())
      })`;
    return new WasiNnError(
      Errno.RuntimeError,
      `a context of ${nCtx} tokens (${nSeq} sessions x ${
        nCtx / nSeq
      }) for '${m.label}' needs about ${mib(need)} but ${
        mib(free)
      } is free${where}; lower ctx-size or parallel, use a smaller cache-type-k/v, or finalize idle sessions`,
    );
  }

  /** `#checkKv`, then llama.cpp's own estimate of the context and compute buffers. */
  async #checkMemory(m: ModelEntry, o: ContextOptions): Promise<number> {
    const kv = this.#checkKv(m, o);
    let est;
    try {
      est = await estimateMemory(m.path, {
        nCtx: o.nCtx,
        nSeqMax: o.nSeqMax,
        nBatch: o.nBatch,
        nGpuLayers: 0,
        context: o,
      });
    } catch {
      return kv; // llama.cpp's estimate is advisory
    }
    const host = est.devices[est.devices.length - 1];
    const need = host.context + host.compute;
    // (A free of 0 from llama.cpp means "unknown", unless max_memory_mb says so.)
    const known = host.free > 0 || this.#memoryLimit() !== undefined;
    const fits = () => !known || need <= this.#freeMemory(host.free);
    if (!fits() && !(this.#reclaim(m) && fits())) {
      throw this.#refuse(
        m,
        o.nCtx!,
        o.nSeqMax ?? 1,
        need,
        this.#freeMemory(host.free),
      );
    }
    return Math.max(kv, need);
  }

  // ---------------------------------------------------------------- graphs

  #parse(
    config: string | Uint8Array | undefined,
    where: string,
  ): ConfigValues {
    try {
      const { values, warnings, notes } = parseConfig(config);
      // Once each: a guest may send the same config with every request.
      for (const w of warnings) this.#logOnce("warn", `${where}: ${w}`);
      for (const n of notes) this.#logOnce("info", `${where}: ${n}`);
      return values;
    } catch (e) {
      this.#log("warn", `${where}: ${(e as Error).message}`);
      throw e;
    }
  }

  async #newGraph(
    path: string,
    cfg: ConfigValues,
    name?: string,
  ): Promise<number> {
    const merged = mergeConfig(this.#hostConfig, cfg);
    const model = await this.#acquireModel(path, merged, name ?? path);
    return this.#addGraph(path, cfg, model, name);
  }

  #newGraphSync(path: string, cfg: ConfigValues, name?: string): number {
    const merged = mergeConfig(this.#hostConfig, cfg);
    const model = this.#acquireModelSync(path, merged, name ?? path);
    return this.#addGraph(path, cfg, model, name);
  }

  /**
   * A graph from guest bytes: they live in a sealed memory file (never on
   * disk) only while the model loads; the model keeps its own mapping.
   */
  async #newGraphFromBytes(
    bytes: Uint8Array,
    cfg: ConfigValues,
  ): Promise<number> {
    const guest = await openGuestModel(bytes);
    try {
      const merged = mergeConfig(this.#hostConfig, cfg);
      const model = await this.#acquireModel(
        guest.file.path,
        merged,
        guest.id,
        guest,
      );
      return this.#addGraph(guest.id, cfg, model);
    } catch (e) {
      throw renamed(e, guest);
    } finally {
      guest.file.close();
    }
  }

  /** Blocking #newGraphFromBytes, for guests without JSPI. */
  #newGraphFromBytesSync(bytes: Uint8Array, cfg: ConfigValues): number {
    const guest = openGuestModelSync(bytes);
    try {
      const merged = mergeConfig(this.#hostConfig, cfg);
      const model = this.#acquireModelSync(
        guest.file.path,
        merged,
        guest.id,
        guest,
      );
      return this.#addGraph(guest.id, cfg, model);
    } catch (e) {
      throw renamed(e, guest);
    } finally {
      guest.file.close();
    }
  }

  #addGraph(
    path: string,
    cfg: ConfigValues,
    model: ModelEntry,
    name?: string,
  ): number {
    const handle = this.#nextGraph++;
    if (name !== undefined) model.keepWarm = true;
    this.#graphs.set(handle, {
      handle,
      name,
      path,
      config: cfg,
      unloaded: false,
      model,
    });
    return handle;
  }

  /** `load`: GGML encoding (6 WasmEdge, 5 WAMR); builder 0 = GGUF bytes or `preload:<path>`. */
  load(
    builders: Uint8Array[],
    encoding: number,
    target: number,
  ): Promise<number> {
    try {
      const { path, cfg, bytes } = this.#loadSource(builders, encoding, target);
      if (bytes) return this.#newGraphFromBytes(bytes, cfg);
      return this.#newGraph(path, cfg);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Blocking `load`, for guests without JSPI. */
  loadSync(builders: Uint8Array[], encoding: number, target: number): number {
    const { path, cfg, bytes } = this.#loadSource(builders, encoding, target);
    if (bytes) return this.#newGraphFromBytesSync(bytes, cfg);
    return this.#newGraphSync(path, cfg);
  }

  #loadSource(
    builders: Uint8Array[],
    encoding: number,
    target: number,
  ): { path: string; cfg: ConfigValues; bytes?: Uint8Array } {
    this.#assertOpen();
    if (encoding !== 5 && encoding !== 6) {
      throw new WasiNnError(
        Errno.InvalidEncoding,
        `graph encoding ${encoding} is not supported; this host runs GGML models (encoding 6 as in WasmEdge, or 5 as in WAMR)`,
      );
    }
    if (target < 0 || target > 3) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `execution target ${target} is not one of 0 (CPU), 1 (GPU), 2 (TPU), 3 (AUTO)`,
      );
    }
    if (builders.length === 0) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        "load needs at least one graph builder (the model)",
      );
    }
    const cfg = builders.length > 1
      ? this.#parse(builders[1], "load config")
      : {};
    const head = dec.decode(builders[0].subarray(0, 8));
    if (head === "preload:") {
      return {
        path: this.#resolvePath(dec.decode(builders[0].subarray(8))),
        cfg,
      };
    }
    // Over max_load_mb: refused before anything is copied.
    checkGuestModelSize(builders[0].length, this.#hostConfig);
    return { path: "", cfg, bytes: builders[0] };
  }

  #resolvePath(name: string): string {
    const r = this.#registry.resolve(name);
    return typeof r === "string" ? r : r.path;
  }

  /**
   * `load_by_name` / `load_by_name_with_config`: a new graph handle, with
   * its own config, on every call; graphs of the same file share one model.
   * (A guest's second `load_by_name` of a name returns its first handle:
   * the guest's own handle table in `guest_imports.ts` does that.)
   */
  async loadByName(name: string, config?: string): Promise<number> {
    const r = this.#byNameSource(name, config);
    return await this.#newGraph(r.path, r.cfg, name);
  }

  /** Blocking `loadByName`, for guests without JSPI. */
  loadByNameSync(name: string, config?: string): number {
    const r = this.#byNameSource(name, config);
    return this.#newGraphSync(r.path, r.cfg, name);
  }

  #byNameSource(
    name: string,
    config?: string,
  ): { path: string; cfg: ConfigValues } {
    this.#assertOpen();
    let path: string;
    try {
      path = this.#resolvePath(name);
    } catch (e) {
      this.#log("warn", `load_by_name '${name}': ${(e as Error).message}`);
      throw e;
    }
    return { path, cfg: this.#parse(config, `config of '${name}'`) };
  }

  /**
   * Hot swap: loads `path` (default: what the registry now says for `name`)
   * and serves it under `name`. Sessions already open finish on the old
   * model, which is freed when the last of them ends. A failed load leaves
   * the old model serving (and throws).
   */
  async reloadModel(name: string, path?: string): Promise<void> {
    const graphs = [...this.#graphs.values()].filter((g) => g.name === name);
    if (graphs.length === 0) {
      throw new WasiNnError(
        Errno.NotFound,
        `no graph is loaded under '${name}'`,
      );
    }
    const newPath = path ?? this.#resolvePath(name);
    // Load every new model before swapping any: a failed load changes nothing.
    const fresh: ModelEntry[] = [];
    try {
      for (const g of graphs) {
        const merged = mergeConfig(this.#hostConfig, g.config);
        fresh.push(await this.#acquireModel(newPath, merged, name));
      }
    } catch (e) {
      for (const m of fresh) this.#releaseModel(m);
      throw e;
    }
    graphs.forEach((g, i) => {
      const old = g.model;
      if (old !== fresh[i]) old.keepWarm = false; // the name serves the new file now
      g.model = fresh[i];
      g.path = newPath;
      this.#log(
        "info",
        `model '${name}' swapped: ${old.path} -> ${newPath} (open sessions keep the old one)`,
      );
      this.#releaseModel(old);
    });
  }

  #graph(handle: number): Graph {
    const g = this.#graphs.get(handle);
    if (!g) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `no graph with handle ${handle}`,
      );
    }
    return g;
  }

  #session(handle: number): Session {
    const s = this.#sessions.get(handle);
    if (!s) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `no execution context with handle ${handle} (never created, finalized, or closed after being idle)`,
      );
    }
    this.#store.touch(s.id);
    return s;
  }

  // ---------------------------------------------------------------- sessions

  /**
   * `init_execution_context`: a new session for a graph. With a `sessionId`
   * that names an open session of the same graph, that session resumes.
   */
  initExecutionContext(graph: number, sessionId?: string): number {
    this.#assertOpen();
    const g = this.#graph(graph);
    if (g.unloaded) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `graph ${graph} was unloaded`,
      );
    }
    if (sessionId !== undefined) {
      const existing = this.#store.get(sessionKey(-1, sessionId));
      if (existing) {
        if (existing.graph !== g) {
          throw new WasiNnError(
            Errno.InvalidArgument,
            `session '${sessionId}' belongs to graph ${existing.graph.handle}, not ${graph}`,
          );
        }
        return existing.handle;
      }
    }
    const handle = this.#nextExec++;
    const s = new Session(handle, sessionId, g, g.model);
    this.#store.add(s);
    g.model.refs++;
    this.#sessions.set(handle, s);
    return handle;
  }

  #dropSession(s: Session): void {
    s.close();
    if (this.#sessions.delete(s.handle)) {
      this.#pruneSchedulers(s.model);
      this.#releaseModel(s.model);
    }
  }

  /** Layers, lowest first: the model's recommendations, host, load (graph), session, call. */
  #config(s: Session, runtime?: ConfigValues): ConfigValues {
    return mergeConfig(
      s.model.defaults,
      this.#hostConfig,
      s.graph.config,
      s.config,
      runtime,
    );
  }

  /** Cross-parameter checks against the model and the context; logs the warnings. */
  #check(s: Session, cfg: ConfigValues, nCtx: number): ConfigValues {
    try {
      const m = s.model.model;
      const r = checkConfig(cfg, {
        nCtxTrain: m.nCtxTrain,
        nCtx,
        nVocab: m.nVocab,
        cpus: navigator.hardwareConcurrency,
      });
      for (const w of r.warnings) {
        this.#log("warn", `session '${s.name}': ${w}`);
      }
      return r.values;
    } catch (e) {
      this.#log("warn", `session '${s.name}': ${(e as Error).message}`);
      throw e;
    }
  }

  /** The session's scheduler and slot owner for this config (moves the session if the shape changed). */
  async #bind(
    s: Session,
    cfg: ConfigValues,
  ): Promise<{ sched: Scheduler; owner: SlotOwner }> {
    if (s.graph.unloaded) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `graph ${s.graph.handle} was unloaded`,
      );
    }
    const sched = await this.#scheduler(s.model, cfg);
    if (s.sched !== sched) {
      if (s.sched && s.owner) s.sched.dropOwner(s.owner);
      s.sched = sched;
      s.owner = sched.newOwner(`${s.name}#${s.handle}`);
      this.#pruneSchedulers(s.model);
    }
    return { sched, owner: s.owner! };
  }

  /** `set_input`: index 0 = prompt text, index 1 = config JSON for this context. */
  async setInput(
    ctx: number,
    index: number,
    tensor: TensorInput,
  ): Promise<void> {
    const s = this.#takeInput(ctx, index, tensor);
    if (s) await this.#setPrompt(s, dec.decode(tensor.data));
  }

  /**
   * `set_input` for guests without JSPI: the same, with a blocking wait for a
   * chat template (bounded by `chat_template_timeout_ms`).
   */
  setInputSync(ctx: number, index: number, tensor: TensorInput): void {
    const s = this.#takeInput(ctx, index, tensor);
    if (s) this.#setPromptSync(s, dec.decode(tensor.data));
  }

  /** Checks a `set_input` and applies a config (index 1); returns the session when a prompt is to be set. */
  #takeInput(
    ctx: number,
    index: number,
    tensor: TensorInput,
  ): Session | undefined {
    const s = this.#session(ctx);
    if (s.running > 0) {
      throw new WasiNnError(Errno.Busy, `execution context ${ctx} is busy`);
    }
    if (tensor.type === 2 || tensor.type === 5) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `tensor type ${tensor.type} (${
          tensor.type === 2 ? "F64" : "I64"
        }) is not accepted; send text as U8 (3)`,
      );
    }
    if (index === 1) {
      const where = `set_input(1) of context ${ctx}`;
      const values = this.#parse(tensor.data, where);
      this.#warnModelKeys(values, where);
      s.config = mergeConfig(s.config, values);
      return undefined;
    }
    s.endStream();
    return s;
  }

  /**
   * A raw prompt keeps parsing special tokens (guests rely on it); a JSON
   * messages array is rendered with the model's chat template, and message
   * text cannot inject control tokens (unless chat_parse_special). Every
   * chat template renders in the sandbox (`renderChatIsolated`): a guest can
   * choose one (`chat_template`) or bring one inside a model.
   */
  async #setPrompt(
    s: Session,
    input: string | ChatMessage[],
    runtime?: ConfigValues,
  ): Promise<void> {
    const cfg = this.#config(s, runtime);
    const chat = typeof input === "string" ? promptInput(input) : input;
    if (typeof chat === "string") {
      return this.#usePrompt(s, tokenizeInput(s.model.model, chat));
    }
    const opts = chatOptions(cfg);
    const r = await renderChatIsolated(
      s.model.model,
      chat,
      opts,
      this.#templateLimits,
    );
    this.#usePrompt(s, tokenizeRendered(s.model.model, r, opts.parseSpecial));
  }

  /** `#setPrompt` with a blocking wait for the sandbox (bounded by its time limit). */
  #setPromptSync(s: Session, input: string): void {
    const cfg = this.#config(s);
    const chat = promptInput(input);
    if (typeof chat === "string") {
      return this.#usePrompt(s, tokenizeInput(s.model.model, chat));
    }
    const opts = chatOptions(cfg);
    const r = renderChatIsolatedSync(
      s.model.model,
      chat,
      opts,
      this.#templateLimits,
    );
    this.#usePrompt(s, tokenizeRendered(s.model.model, r, opts.parseSpecial));
  }

  #usePrompt(
    s: Session,
    r: { text: string; tokens: Int32Array<ArrayBuffer>; warnings: string[] },
  ): void {
    for (const w of r.warnings) this.#log("warn", `session '${s.name}': ${w}`);
    s.promptText = r.text;
    s.prompt = r.tokens;
    s.inputTokens = r.tokens.length;
  }

  #sampler(model: Model, cfg: ConfigValues, nCtx: number): Sampler {
    try {
      return Sampler.create(model, samplerParams(model, cfg, nCtx));
    } catch (err) {
      throw toWasiNn(err);
    }
  }

  #signal(s: Session): AbortSignal {
    return AbortSignal.any([this.#cancel.signal, s.abort.signal]);
  }

  /** Throws unless the session can compute now: idle, and with a prompt. */
  #ready(
    s: Session,
    call: string,
  ): asserts s is Session & { prompt: Int32Array<ArrayBuffer> } {
    if (s.running > 0) {
      throw new WasiNnError(
        Errno.Busy,
        `execution context ${s.handle} is busy`,
      );
    }
    if (!s.prompt) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `${call} called before set_input(0, prompt)`,
      );
    }
  }

  /** `compute`: generation (or embedding) to completion. ContextFull keeps the partial output. */
  async compute(ctx: number): Promise<void> {
    await this.#compute(this.#session(ctx));
  }

  async #compute(s: Session, runtime?: ConfigValues): Promise<void> {
    this.#ready(s, "compute");
    // Taken now: a cancelAll() during the setup below still stops this compute.
    const signal = this.#signal(s);
    s.endStream();
    s.running++;
    const cfg = this.#config(s, runtime);
    try {
      if (cfg.embedding) return await this.#embed(s, cfg);
      s.output = new Uint8Array(0);
      s.outputTokens = 0;
      s.meta = {};
      const { sched, owner } = await this.#bind(s, cfg);
      const checked = this.#check(s, cfg, sched.nCtxPerSeq);
      const sampler = this.#sampler(s.model.model, checked, sched.nCtxPerSeq);
      try {
        const task = sched.submit({
          owner,
          prompt: s.prompt,
          sampler,
          ...taskOptions(checked),
          nProbs: checked.n_probs as number | undefined,
          signal,
          onText: checked.stream_stdout
            ? (t) => this.#stdout(enc.encode(t))
            : undefined,
        });
        this.#warnQueue(s, sched, checked);
        const r = await task.result;
        s.output = enc.encode(r.text);
        s.outputTokens = r.tokens.length;
        s.meta = {
          stop_reason: r.stopReason,
          stopped_by: r.stoppedBy,
          truncated: r.truncated || undefined,
          cached_tokens: r.timings.promptReused,
          queue_ms: round(r.timings.queueMs),
          prompt_ms: round(r.timings.promptMs),
          generation_ms: round(r.timings.generateMs),
          tokens_per_second: round(r.timings.tokensPerSecond),
          probs: r.probs,
        };
        if (cfg.enable_log) {
          this.#log(
            "info",
            `session '${s.name}': ${s.inputTokens} prompt tokens (${r.timings.promptReused} cached) in ${s.meta.prompt_ms} ms, ${s.outputTokens} generated at ${s.meta.tokens_per_second} t/s, stop: ${r.stopReason}`,
            "llama",
          );
        }
        if (r.stopReason === "context_full") {
          throw new WasiNnError(
            Errno.ContextFull,
            `the context (${sched.nCtxPerSeq} tokens) filled after ${s.outputTokens} generated tokens; the partial output is kept (raise ctx-size, lower n-predict, or enable ctx_shift)`,
          );
        }
      } finally {
        sampler.close();
      }
    } finally {
      s.running--;
      this.#flushLlamaLog(cfg);
    }
  }

  /** What an embedding request needs: its context options, checked against the prompt. */
  #embedPlan(s: Session, cfg: ConfigValues) {
    const prompt = s.prompt!;
    const nBatch = (cfg.batch_size as number | undefined) ?? 2048;
    if (prompt.length === 0) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        "the embedding input is empty: call set_input first",
      );
    }
    if (prompt.length > nBatch) {
      throw new WasiNnError(
        Errno.PromptTooLong,
        `embedding input is ${prompt.length} tokens but batch-size is ${nBatch}; raise batch-size`,
      );
    }
    const model = s.model.model;
    const maxPos = maxPositions(model.info.architecture, model.nCtxTrain);
    if (maxPos !== undefined && prompt.length > maxPos) {
      // Past its position table, llama.cpp would abort the process.
      throw new WasiNnError(
        Errno.PromptTooLong,
        `embedding input is ${prompt.length} tokens but '${s.model.label}' (${model.info.architecture}) has learned positions for ${maxPos} tokens only; shorten or split the input`,
      );
    }
    const opts: ContextOptions = {
      ...this.#contextOptions(s.model, cfg),
      nCtx: Math.max(nBatch, (cfg.ctx_size as number | undefined) ?? 0),
      nBatch,
      nUbatch: nBatch,
      embeddings: true,
    };
    return {
      prompt,
      opts,
      key: JSON.stringify(opts),
      norm: (cfg.embd_normalize as number | undefined) ?? 2,
    };
  }

  /** The pooled embedding of the prompt just decoded, as the session's output. */
  #embedOutput(s: Session, ctx: Context, norm: number): void {
    // Without pooling, the last token's embedding; pooled, sequence 0's.
    // Rank pooling gives the classifier's scores, as they are (llama.cpp's
    // server does not normalise rerank scores: one normalised score is ±1).
    const pooling = ctx.poolingType;
    const v = ctx.embeddings(
      pooling === 0 ? -1 : 0,
      pooling === POOLING_RANK ? -1 : norm,
    );
    // JSON has no NaN or Infinity: a model that overflows gives null there.
    const parts = Array.from(
      v,
      (x) => Number.isFinite(x) ? Number(x.toPrecision(10)).toString() : "null",
    );
    s.output = enc.encode(
      `{"n_embedding": ${v.length}, "embedding": [${parts.join(",")}]}`,
    );
    s.outputTokens = 0;
    s.meta = {};
  }

  async #embed(s: Session, cfg: ConfigValues): Promise<void> {
    const m = s.model;
    const plan = this.#embedPlan(s, cfg);
    const run = async () => {
      m.embedBusy = true;
      try {
        if (m.embed?.key !== plan.key) {
          m.embed?.ctx.close();
          m.embed = undefined;
          const bytes = await this.#checkMemory(m, plan.opts);
          this.#nativeLogLevel(cfg);
          m.embed = {
            key: plan.key,
            ctx: await Context.create(m.model, plan.opts),
            bytes,
          };
        }
        await evalPrompt(m.embed.ctx, plan.prompt);
        this.#embedOutput(s, m.embed.ctx, plan.norm);
      } finally {
        m.embedBusy = false;
      }
    };
    // One embedding at a time per model (they share one context).
    const next = (m.embedLock ?? Promise.resolve()).then(run);
    m.embedLock = next.catch(() => {});
    try {
      await next;
    } catch (e) {
      throw toWasiNn(e);
    }
  }

  /** Blocking embedding, for guests without JSPI: the same context and output. */
  #embedSync(s: Session, cfg: ConfigValues): void {
    const m = s.model;
    const plan = this.#embedPlan(s, cfg);
    if (m.embedBusy) {
      throw new WasiNnError(
        Errno.Busy,
        `an embedding of '${m.label}' is running in another session; retry`,
      );
    }
    try {
      if (m.embed?.key !== plan.key) {
        m.embed?.ctx.close();
        m.embed = undefined;
        const bytes = this.#checkKv(m, plan.opts);
        this.#nativeLogLevel(cfg);
        m.embed = {
          key: plan.key,
          ctx: Context.createSync(m.model, plan.opts),
          bytes,
        };
      }
      const ctx = m.embed.ctx;
      ctx.seqRemove(0);
      ctx.decodePromptSync(plan.prompt, 0, 0);
      this.#embedOutput(s, ctx, plan.norm);
    } catch (e) {
      throw toWasiNn(e);
    }
  }

  #metadata(s: Session): Uint8Array {
    // WasmEdge's spacing for the four standard keys, then ours.
    const std =
      `{"input_tokens": ${s.inputTokens}, "output_tokens": ${s.outputTokens}, "llama_build_number": ${this.#build.number}, "llama_commit": ${
        JSON.stringify(this.#build.commit)
      }`;
    const extra = Object.entries(s.meta)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `, ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
      .join("");
    return enc.encode(`${std}${extra}}`);
  }

  /** The session's own context for blocking calls (guests without JSPI). */
  #syncContext(s: Session, cfg: ConfigValues): Context {
    const opts = this.#contextOptions(s.model, cfg);
    opts.poll ??= 50;
    const key = JSON.stringify(opts);
    if (!s.sync || s.sync.key !== key) {
      s.sync?.ctx.close();
      s.sync = undefined;
      try {
        const bytes = this.#checkKv(s.model, opts);
        this.#nativeLogLevel(cfg);
        const ctx = Context.createSync(s.model.model, opts);
        s.sync = {
          key,
          ctx,
          bytes,
          nCtx: Math.min(opts.nCtx!, ctx.nCtx),
          cached: [],
          checkpoints: [],
        };
      } catch (e) {
        throw toWasiNn(e);
      }
    }
    return s.sync.ctx;
  }

  /**
   * Blocking prompt evaluation into the session's own context. With
   * `cache_prompt` (the default), the prefix the context already holds is
   * kept and only the rest is decoded, as the scheduler does. Returns how many
   * prompt tokens were reused.
   */
  #syncPrompt(s: Session, ctx: Context, cfg: ConfigValues): number {
    const prompt = s.prompt!;
    const sync = s.sync!;
    checkPromptFits(prompt.length, sync.nCtx, "the context");
    // At least one token is decoded: its logits start the generation.
    const common = taskOptions(cfg).cachePrompt === false
      ? 0
      : Math.min(commonPrefix(sync.cached, prompt), prompt.length - 1);
    // The scheduler's memory rules: drop the rest as far as the memory allows.
    const traits = memoryTraits(s.model.model.info, ctx.canShift);
    const n = rollBack(
      ctx,
      0,
      sync.cached.length,
      common,
      traits,
      sync.checkpoints,
    ).kept;
    sync.cached = [];
    // A checkpoint near the end of the prompt lets the next turn reuse it.
    const at = prompt.length - CHECKPOINT_OFFSET;
    const split = traits.needsCheckpoints && at > n ? at : n;
    try {
      if (split > n) {
        ctx.decodePromptSync(prompt.subarray(n, split), n, 0);
        addCheckpoint(sync.checkpoints, {
          nTokens: split,
          data: ctx.sequenceState(0, true),
        });
      }
      ctx.decodePromptSync(prompt.subarray(split), split, 0);
    } catch (e) {
      sync.checkpoints.length = 0;
      ctx.seqRemove(0, -1, -1);
      throw toWasiNn(e);
    }
    sync.cached = [...prompt];
    return n;
  }

  /**
   * After a blocking generation: what the session's context holds now, for
   * the next turn's prompt cache (nothing after a context shift).
   */
  #syncCached(s: Session, ctx: Context, gen: Generation): void {
    const sync = s.sync!;
    if (gen.truncated) {
      sync.cached = [];
      sync.checkpoints = [];
      return;
    }
    const held = ctx.seqPosMax(0) + 1;
    sync.cached = [...s.prompt!, ...gen.tokens].slice(0, Math.max(0, held));
  }

  /**
   * Blocking `compute`, for guests without JSPI: the same semantics, on a
   * context of the session's own (no batching with other sessions).
   */
  computeSync(ctx: number): void {
    const s = this.#session(ctx);
    this.#ready(s, "compute");
    s.endStream();
    const cfg = this.#config(s);
    s.running++;
    try {
      if (cfg.embedding) return this.#embedSync(s, cfg);
      const context = this.#syncContext(s, cfg);
      const nCtx = s.sync!.nCtx;
      const checked = this.#check(s, cfg, nCtx);
      const sampler = this.#sampler(s.model.model, checked, nCtx);
      try {
        const t0 = performance.now();
        const reused = this.#syncPrompt(s, context, checked);
        for (const t of s.prompt) sampler.accept(t);
        const t1 = performance.now();
        const model = s.model.model;
        const task = taskOptions(checked);
        const gen = new Generation(model, {
          stop: task.stop,
          ignoreEos: task.ignoreEos,
          nProbs: checked.n_probs as number | undefined,
          contextShift: task.contextShift
            ? {
              promptLength: s.prompt.length,
              nKeep: task.nKeep,
              nDiscard: task.nDiscard,
            }
            : undefined,
        });
        const out = (text: string) => {
          if (text && checked.stream_stdout) this.#stdout(enc.encode(text));
        };
        const stop = gen.runSync(context, sampler, s.prompt.length, {
          nCtx,
          onToken: (_, step) => out(step.emit),
        });
        out(gen.finish());
        this.#syncCached(s, context, gen);
        const reason = stop.reason, matched = stop.matched;
        const t2 = performance.now();
        s.output = enc.encode(gen.text);
        s.outputTokens = gen.tokens.length;
        s.meta = {
          stop_reason: reason,
          stopped_by: matched,
          truncated: gen.truncated || undefined,
          cached_tokens: reused,
          prompt_ms: round(t1 - t0),
          generation_ms: round(t2 - t1),
          tokens_per_second: round(
            t2 > t1 ? (s.outputTokens * 1000) / (t2 - t1) : 0,
          ),
          probs: gen.probs,
        };
        if (reason === "context_full") {
          throw new WasiNnError(
            Errno.ContextFull,
            `the context (${nCtx} tokens) filled after ${s.outputTokens} generated tokens; the partial output is kept`,
          );
        }
      } finally {
        sampler.close();
      }
    } finally {
      s.running--;
      this.#flushLlamaLog(cfg);
    }
  }

  /** Blocking `compute_single`, for guests without JSPI. */
  computeSingleSync(ctx: number): void {
    const s = this.#session(ctx);
    this.#ready(s, "compute_single");
    const cfg = this.#config(s);
    this.#noEmbeddingStream(cfg);
    const context = this.#syncContext(s, cfg);
    const nCtx = s.sync!.nCtx;
    if (!s.sync!.stream) {
      const checked = this.#check(s, cfg, nCtx);
      s.output = new Uint8Array(0);
      s.outputTokens = 0;
      s.lastPiece = new Uint8Array(0);
      s.meta = {};
      const sampler = this.#sampler(s.model.model, checked, nCtx);
      try {
        this.#syncPrompt(s, context, checked);
      } catch (e) {
        sampler.close();
        throw e;
      }
      for (const t of s.prompt) sampler.accept(t);
      const gen = new Generation(s.model.model, {
        stop: singleStop(checked),
        ignoreEos: Boolean(checked.ignore_eos),
      });
      s.sync!.stream = { sampler, gen, pos: s.prompt.length };
    }
    const stream = s.sync!.stream!;
    // A stop token was the previous call's piece: the stream ends now.
    const ended = stream.ended;
    if (ended) return this.#endSyncStream(s, ended, nCtx);
    const r = context.stepSync(stream.sampler, { pos: stream.pos });
    const step = stream.gen.take(r.token, stream.sampler);
    s.outputTokens++;
    if (step.eog) return this.#endSyncStream(s, step.stop!, nCtx);
    s.lastPiece = step.bytes;
    s.output = concat(s.output, step.bytes);
    let full;
    try {
      full = stream.gen.afterDecode(r.error, ++stream.pos, nCtx);
    } catch (e) {
      s.endStream();
      throw e;
    }
    // As WasmEdge: the token that filled the context is output, with ContextFull.
    if (full) return this.#endSyncStream(s, full, nCtx);
    stream.ended = step.stop;
  }

  /** Logs when more tasks wait for the model than queue_warning_threshold. */
  #warnQueue(s: Session, sched: Scheduler, cfg: ConfigValues): void {
    const warnAt = cfg.queue_warning_threshold as number | undefined;
    if (warnAt !== undefined && sched.stats.queued > warnAt) {
      this.#log(
        "warn",
        `${sched.stats.queued} tasks are waiting for '${s.model.label}' (queue_warning_threshold ${warnAt})`,
      );
    }
  }

  /** compute_single streams generated tokens; an embedding comes whole from compute. */
  #noEmbeddingStream(cfg: ConfigValues): void {
    if (cfg.embedding) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        "this session's config asks for an embedding (embedding: true): call compute, not compute_single",
      );
    }
  }

  /** Ends a blocking stream: EndOfSequence, or ContextFull. */
  #endSyncStream(s: Session, stop: GenerationStop, nCtx: number): never {
    const stream = s.sync?.stream;
    if (stream) this.#syncCached(s, s.sync!.ctx, stream.gen);
    s.endStream();
    s.meta = { stop_reason: stop.reason };
    if (stop.reason === "context_full") {
      throw new WasiNnError(
        Errno.ContextFull,
        `the context (${nCtx} tokens) is full`,
      );
    }
    s.lastPiece = new Uint8Array(0);
    throw new WasiNnError(
      Errno.EndOfSequence,
      `end of sequence (${stop.reason})`,
    );
  }

  /** `get_output`: index 1 = metadata JSON, any other = the output of the last compute. */
  getOutput(ctx: number, index: number): Uint8Array {
    const s = this.#session(ctx);
    return index === 1 ? this.#metadata(s) : s.output;
  }

  /** `compute_single`: one token per call; EndOfSequence (100) at the end. */
  async computeSingle(ctx: number): Promise<void> {
    const s = this.#session(ctx);
    this.#ready(s, "compute_single");
    // Taken now: a cancelAll() during the setup below still stops this stream.
    const signal = this.#signal(s);
    s.running++;
    try {
      if (!s.stream) {
        const cfg = this.#config(s);
        this.#noEmbeddingStream(cfg);
        s.output = new Uint8Array(0);
        s.outputTokens = 0;
        s.lastPiece = new Uint8Array(0);
        s.meta = {};
        const { sched, owner } = await this.#bind(s, cfg);
        const checked = this.#check(s, cfg, sched.nCtxPerSeq);
        const sampler = this.#sampler(s.model.model, checked, sched.nCtxPerSeq);
        const opts = taskOptions(checked);
        try {
          const task = sched.submit({
            owner,
            prompt: s.prompt,
            sampler,
            ...opts,
            stop: singleStop(checked),
            onDemand: true,
            signal,
          });
          s.stream = { task, sampler };
          this.#warnQueue(s, sched, checked);
        } catch (e) {
          sampler.close();
          throw e;
        }
      }
      const stream = s.stream;
      const ev = await stream.task.next();
      if (ev) {
        s.outputTokens++;
        s.lastPiece = ev.bytes;
        s.output = concat(s.output, ev.bytes);
        return;
      }
      // The task ended: say why, and leave streaming mode.
      s.stream = undefined;
      stream.sampler.close();
      s.lastPiece = new Uint8Array(0);
      let r;
      try {
        r = await stream.task.result;
      } catch (e) {
        throw toWasiNn(e);
      }
      s.outputTokens = r.tokens.length;
      s.meta = {
        stop_reason: r.stopReason,
        cached_tokens: r.timings.promptReused,
      };
      if (r.stopReason === "context_full") {
        throw new WasiNnError(
          Errno.ContextFull,
          `the context (${s.sched?.nCtxPerSeq} tokens) is full`,
        );
      }
      throw new WasiNnError(
        Errno.EndOfSequence,
        `end of sequence (${r.stopReason})`,
      );
    } finally {
      s.running--;
    }
  }

  /** `get_output_single`: index 1 = metadata, otherwise the latest token's piece. */
  getOutputSingle(ctx: number, index: number): Uint8Array {
    const s = this.#session(ctx);
    return index === 1 ? this.#metadata(s) : s.lastPiece;
  }

  /** `fini_single`: leaves streaming mode and clears the outputs. */
  finiSingle(ctx: number): void {
    const s = this.#session(ctx);
    s.endStream();
    s.lastPiece = new Uint8Array(0);
    s.output = new Uint8Array(0);
  }

  /** `unload`: drops the graph from the name cache; its sessions may still read outputs. */
  unload(graph: number): void {
    const g = this.#graph(graph);
    g.unloaded = true;
    this.#graphs.delete(graph);
    for (const s of this.#sessions.values()) if (s.graph === g) s.endStream();
    this.#releaseModel(g.model); // freed once no session uses it either
  }

  /** `finalize_execution_context`: frees one session. */
  finalizeExecutionContext(ctx: number): void {
    const s = this.#session(ctx);
    this.#store.delete(s.id);
    this.#dropSession(s);
  }

  /**
   * `run_inference`: set_input + compute + get_output in one call, with an
   * optional per-call config (any key style) on top of the session's.
   */
  async runInference(
    ctx: number,
    prompt: string | ChatMessage[],
    runtimeConfig?: Record<string, unknown> | string,
  ): Promise<InferenceResult> {
    const s = this.#session(ctx);
    const runtime = this.#parse(
      typeof runtimeConfig === "string"
        ? runtimeConfig
        : runtimeConfig as never,
      "runtime config",
    );
    this.#warnModelKeys(runtime, "runtime config");
    if (s.running > 0) {
      throw new WasiNnError(Errno.Busy, `execution context ${ctx} is busy`);
    }
    s.endStream();
    await this.#setPrompt(s, prompt, runtime);
    try {
      await this.#compute(s, runtime);
    } catch (err) {
      if (!(err instanceof WasiNnError && err.errno === Errno.ContextFull)) {
        throw err;
      }
    }
    return {
      text: dec.decode(s.output),
      metadata: JSON.parse(dec.decode(this.#metadata(s))) as Metadata,
    };
  }

  /** Saves a session's state (KV cache and tokens) to a file; returns the token count. */
  async saveSession(ctx: number, path: string): Promise<number> {
    const s = this.#session(ctx);
    if (!s.sched || !s.owner) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `session '${s.name}' has no state yet: compute first`,
      );
    }
    return await s.sched.saveOwner(s.owner, path);
  }

  /** Restores a session's state from a file written by saveSession; returns the token count. */
  async restoreSession(ctx: number, path: string): Promise<number> {
    const s = this.#session(ctx);
    const { sched, owner } = await this.#bind(s, this.#config(s));
    return await sched.restoreOwner(owner, path);
  }

  /** Clears a session's outputs and cached state (it stays open). */
  resetSession(ctx: number): void {
    const s = this.#session(ctx);
    if (s.running > 0) {
      throw new WasiNnError(Errno.Busy, `execution context ${ctx} is busy`);
    }
    s.endStream();
    if (s.sched && s.owner) s.sched.dropOwner(s.owner);
    s.sched = undefined;
    s.owner = undefined;
    if (s.sync) {
      s.sync.ctx.seqRemove(0);
      s.sync.cached = [];
      s.sync.checkpoints = [];
    }
    s.prompt = undefined;
    s.inputTokens = 0;
    s.output = new Uint8Array(0);
    s.outputTokens = 0;
    s.meta = {};
  }

  /** Sessions, models, schedulers and memory. */
  status(): HostStatus {
    const sessions = this.#store.entries().map(({ session: s, idleMs }) => ({
      handle: s.handle,
      id: s.name,
      graph: s.graph.handle,
      model: s.model.label,
      busy: s.busy,
      cachedTokens: s.owner?.cached.length ?? 0,
      idleMs: Math.round(idleMs),
    }));
    const models = [...this.#models.values()].map((m) => ({
      label: m.label,
      path: m.path,
      users: m.refs,
      schedulers: [] as HostStatus["models"][number]["schedulers"],
    }));
    return {
      sessions,
      models,
      limits: this.#store.limits,
      rss: Deno.memoryUsage().rss,
    };
  }

  /** Like status(), with the schedulers' live counters. */
  async statusWithSchedulers(): Promise<HostStatus> {
    const st = this.status();
    const all = [...this.#models.values()];
    for (const [i, m] of all.entries()) {
      for (const e of m.schedulers.values()) {
        try {
          const s = await e.ready;
          st.models[i].schedulers.push({
            nSeq: s.nSeq,
            nCtxPerSeq: s.nCtxPerSeq,
            kvBytes: s.kvBytes,
            ...s.stats,
          });
        } catch { /* failed to create */ }
      }
    }
    return st;
  }

  /** Closes sessions idle longer than idle_timeout_ms now (the timer also does it). */
  sweepSessions(): string[] {
    return this.#store.sweep();
  }

  /**
   * Stops every running generation cleanly (Ctrl-C): compute returns what it
   * has. Later calls run normally.
   */
  cancelAll(): void {
    const c = this.#cancel;
    this.#cancel = new AbortController();
    c.abort();
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new WasiNnError(Errno.RuntimeError, "the host was closed");
    }
  }

  /** `deinit_backend`: frees every session and model. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancel.abort();
    this.#store.close();
    for (const s of this.#sessions.values()) s.close();
    this.#sessions.clear();
    for (const m of [...this.#models.values()]) this.#freeModel(m);
    this.#models.clear();
    this.#graphs.clear();
  }

  /** Frees everything at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Threads to use: as asked, but never more than the CPUs (extra threads only spin). */
/** The fraction of the machine's memory in use (0..1). */
function memoryInUse(): number {
  const m = Deno.systemMemoryInfo();
  return m.total > 0 ? 1 - m.available / m.total : 0;
}

/** A file's size in bytes (0 when it cannot be read). */
/** An error of a guest-bytes load, naming the guest model instead of its memory file's path. */
function renamed(e: unknown, guest: GuestModel): unknown {
  if (!(e instanceof WasiNnError)) return e;
  const path = `/proc/self/fd/`;
  if (!e.message.includes(path)) return e;
  return new WasiNnError(
    e.errno,
    e.message.replace(/\/proc\/self\/fd\/\d+/g, guest.id),
    { cause: e, detail: e.detail },
  );
}

function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

function mib(x: number): string {
  return `${(x / 1048576).toFixed(0)} MiB`;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
