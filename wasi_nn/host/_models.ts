/**
 * The host's models: loaded once per file and options and shared by every
 * graph that asks for them, reference-counted, kept warm for the next guest
 * when loaded by name, fitted to the GPU when `n_gpu_layers` is "auto", and
 * freed when the last user lets go or memory runs short. Each model has one
 * scheduler (one llama.cpp context) per context shape its sessions ask for.
 *
 * A model's engine runs in this process, or in an engine process of its own
 * (host key `engine: "process"`; always for models from guest bytes). The
 * host then keeps a tokenizer-only copy of the model for prompts, chat
 * templates and sampler parameters; when the engine dies, its sessions fail
 * with RuntimeError, and the next use starts a new one (after a backoff when
 * it keeps crashing).
 *
 * @example
 * ```ts ignore
 * import { ModelCache } from "./_models.ts";
 * import { HostLog } from "./_host_log.ts";
 * const models = new ModelCache({ hostConfig: {}, log: new HostLog() });
 * const m = await models.acquire(".cache/models/tiny.gguf", {}, "tiny");
 * const sched = await models.scheduler(m, {});
 * console.log(sched.nCtxPerSeq);
 * models.release(m);
 * ```
 * @module
 */

import {
  backendInfo,
  type ContextOptions,
  fitParams,
  LlamaError,
  Model,
  type ModelLoadOptions,
  type PlanOptions,
  Status,
} from "../../bindings/mod.ts";
import { type ConfigValues, mergeConfig } from "../config/parse.ts";
import {
  contextOptions,
  modelOptions,
  projectorOptions,
  rpcServers,
} from "../config/options.ts";
import { modelConfig } from "../config/layers.ts";
import { maxPositions } from "../engine/_positions.ts";
import {
  type EmbedContext,
  type EngineScheduler,
  LocalEngine,
  type ModelEngine,
} from "../engine/model_engine.ts";
import { EngineProcess } from "../engine/process/engine_process.ts";
import { Errno, toWasiNn, WasiNnError } from "../errno.ts";
import type { HostLog } from "./_host_log.ts";
import {
  EngineSupervisor,
  RPC_PROBE_MS,
  type Supervised,
} from "./_engine_supervisor.ts";
import { fileSize, MemoryBudget, mib } from "./_memory.ts";
import { type ModelSplit, modelSplit, splitDevices } from "./_model_split.ts";
import type { Graph } from "./_graphs.ts";
import {
  checkModelFile,
  type GuestModel,
  openGuestModel,
} from "./_model_source.ts";

/** A loaded model and what the host made for it. */
export interface ModelEntry extends Supervised {
  /** The cache key: the file (or guest model id) and the load options. */
  key: string;
  /**
   * The model: the engine's own in this process, or a tokenizer-only copy
   * (prompts, chat templates, sampler parameters) when the engine runs in a
   * process of its own.
   */
  model: Model;
  /** Graphs and sessions using it. */
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
  embed?: { key: string; ctx: EmbedContext; bytes: number };
  /** Embeddings run one at a time per model: the last one queued. */
  embedLock?: Promise<unknown>;
  /** An embedding is decoding now. */
  embedBusy?: boolean;
}

/** A scheduler being made or made, and the memory counted for it. */
export interface SchedulerEntry {
  ready: Promise<EngineScheduler>;
  /** Set once made. */
  value?: EngineScheduler;
  /** Bytes counted against max_memory_mb: llama.cpp's estimate of its context and compute buffers. */
  bytes: number;
}

/** What the model cache needs from the host. */
export interface ModelCacheOptions {
  /** The host's config (max_memory_mb). */
  hostConfig: ConfigValues;
  log: HostLog;
  /** Model load progress, 0..1. */
  onProgress?: (label: string, fraction: number) => void;
  /** Cancels loads in flight (the host closing). */
  signal?: () => AbortSignal;
  /** How long a warm model stays loaded without users (0: not at all). */
  idleTimeoutMs?: () => number;
}

/** Models by file and options, with their schedulers. */
export class ModelCache {
  /** The memory checks, against everything this cache holds. */
  readonly memory: MemoryBudget;
  #models = new Map<string, ModelEntry>();
  #loading = new Map<string, Promise<ModelEntry>>();
  #o: ModelCacheOptions;
  #closed = false;
  /** Engines still shutting down (close() settles them). */
  #ending = new Set<Promise<void>>();
  #engines: EngineSupervisor;

  /** An empty cache. */
  constructor(options: ModelCacheOptions) {
    this.#o = options;
    this.#engines = new EngineSupervisor(options.log, () => this.#closed);
    this.memory = new MemoryBudget(
      options.hostConfig.max_memory_mb,
      () => this.usage(),
      (keep) => this.reclaim(keep),
    );
  }

  /** The loaded models. */
  entries(): ModelEntry[] {
    return [...this.#models.values()];
  }

  /** Loads (or shares) a model; the caller owns one reference. */
  async acquire(
    path: string,
    cfg: ConfigValues,
    label: string,
    guest?: GuestModel,
  ): Promise<ModelEntry> {
    // Guest bytes were checked when they were copied; files are checked here,
    // before llama.cpp (the fit below included) reads them.
    if (!guest) await checkModelFile(path);
    // Guest bytes and RPC models always run in an engine process: a model
    // llama.cpp aborts on, or a lost RPC server, must not end the host.
    const rpc = rpcServers(this.#o.hostConfig, cfg);
    const inProcess = !guest && !rpc && cfg.engine !== "process";
    // In an engine process, n_gpu_layers "auto" is fitted there, at load.
    const opts = inProcess
      ? await this.#modelOptions(path, cfg, fitParams)
      : { ...modelOptions(cfg), rpcServers: rpc };
    // Guest bytes are keyed by their unique id: fd numbers are reused.
    const key = `${guest?.id ?? path}\0${inProcess ? "" : "process:"}${
      JSON.stringify({
        ...opts,
        auto: cfg.n_gpu_layers === "auto",
        mmproj: cfg.mmproj,
      })
    }`;
    const hit = this.#models.get(key);
    if (hit) return this.#revive(hit);
    // With RPC servers, only what stays here counts against max_memory_mb,
    // and what goes there must fit in their free memory.
    const split = rpc ? await this.#rpcSplit(path, cfg, rpc) : undefined;
    this.memory.checkModelFits(path, label, split);
    let pending = this.#loading.get(key);
    if (!pending) {
      pending = this.#load(
        key,
        path,
        inProcess ? opts : undefined,
        cfg,
        label,
        split?.local,
      );
      this.#loading.set(key, pending);
      pending.finally(() => this.#loading.delete(key)).catch(() => {});
    }
    const entry = await pending;
    // The memory file's path is gone once the load is over.
    if (guest) {
      entry.path = guest.id;
      entry.fromGuest = true;
    }
    entry.refs++;
    return entry;
  }

  /**
   * A model from guest bytes: they live in a sealed memory file (never on
   * disk) only while the model loads; the model keeps its own mapping. Its
   * `path` is the guest model's id. The caller owns one reference.
   */
  async acquireBytes(
    bytes: Uint8Array,
    cfg: ConfigValues,
  ): Promise<ModelEntry> {
    const guest = await openGuestModel(bytes);
    try {
      return await this.acquire(guest.file.path, cfg, guest.id, guest);
    } catch (e) {
      throw renamed(e, guest);
    } finally {
      guest.file.close();
    }
  }

  /**
   * Hot swap: loads `path` for each graph (with its config over
   * `hostConfig`) and serves it in their model's place. Sessions already
   * open finish on the old model, which is freed when the last of them
   * ends. A failed load changes nothing (and throws).
   */
  async swap(
    graphs: Graph[],
    path: string,
    name: string,
    hostConfig: ConfigValues,
  ): Promise<void> {
    // Load every new model before swapping any: a failed load changes nothing.
    const fresh: ModelEntry[] = [];
    try {
      for (const g of graphs) {
        const merged = mergeConfig(hostConfig, g.config);
        fresh.push(await this.acquire(path, merged, name));
      }
    } catch (e) {
      for (const m of fresh) this.release(m);
      throw e;
    }
    graphs.forEach((g, i) => {
      const old = g.model;
      if (old !== fresh[i]) old.keepWarm = false; // the name serves the new file now
      g.model = fresh[i];
      g.path = path;
      this.#o.log.log(
        "info",
        `model '${name}' swapped: ${old.path} -> ${path} (open sessions keep the old one)`,
      );
      this.release(old);
    });
  }

  /** Drops one reference; the last one frees the model (or keeps it warm). */
  release(m: ModelEntry | undefined): void {
    if (!m) return;
    m.refs--;
    if (m.refs > 0) return;
    const idleMs = this.#o.idleTimeoutMs?.() ?? 0;
    if (m.keepWarm && !this.#closed && idleMs > 0) {
      // The next guest that loads this name finds it loaded (and its most
      // recent context); unused for idle_timeout_ms, it is freed.
      this.prune(m);
      m.idleTimer ??= setTimeout(() => {
        m.idleTimer = undefined;
        if (m.refs <= 0 && this.#models.get(m.key) === m) this.free(m);
      }, idleMs);
      Deno.unrefTimer(m.idleTimer);
      return;
    }
    this.free(m);
  }

  /** Frees a model, its schedulers and its embedding context now. */
  free(m: ModelEntry): void {
    if (m.idleTimer !== undefined) clearTimeout(m.idleTimer);
    m.idleTimer = undefined;
    if (this.#models.get(m.key) === m) this.#models.delete(m.key);
    for (const e of m.schedulers.values()) {
      e.ready.then((x) => x.close()).catch(() => {});
    }
    m.schedulers.clear();
    m.embed?.ctx.close();
    m.embed = undefined;
    this.#end(m.engine);
    if (m.engine.kind === "process") m.model.close();
    this.#o.log.log("info", `freed model '${m.label}' (${m.path})`);
  }

  /** Frees every model (the host is closing); loads in flight are refused. */
  close(): void {
    this.#closed = true;
    for (const m of this.entries()) this.free(m);
  }

  /** Settles once every engine process has exited (and was reaped). */
  async settled(): Promise<void> {
    while (this.#ending.size > 0) await Promise.all([...this.#ending]);
  }

  #end(engine: ModelEngine): void {
    const done = engine.close().catch(() => {});
    this.#ending.add(done);
    done.finally(() => this.#ending.delete(done));
  }

  /**
   * The context a config asks for (every context key of the config, through
   * `contextOptions`), with the host's defaults: the model's training context
   * up to 4096 tokens per session when ctx_size is unset (all of it for 0),
   * batches of 512.
   */
  contextOptions(m: ModelEntry, cfg: ConfigValues): ContextOptions {
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
  async scheduler(
    m: ModelEntry,
    cfg: ConfigValues,
  ): Promise<EngineScheduler> {
    await this.ensureEngine(m);
    return await this.#scheduler(m, cfg);
  }

  #scheduler(m: ModelEntry, cfg: ConfigValues): Promise<EngineScheduler> {
    const nTrain = m.model.nCtxTrain;
    const o = this.contextOptions(m, cfg);
    const perSeq = o.nCtx!;
    const shape = {
      nSeq: cfg.parallel ??
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
      maxCacheTokens: cfg.max_cache_tokens,
      batchWaitMs: cfg.batch_timeout_ms,
      pressure: cfg.memory_pressure_threshold,
    };
    const key = JSON.stringify(shape);
    const hit = m.schedulers.get(key);
    if (hit) {
      // Most recently used last: idle schedulers are freed oldest first.
      m.schedulers.delete(key);
      m.schedulers.set(key, hit);
      return hit.ready;
    }
    const entry: SchedulerEntry = {
      ready: Promise.resolve() as never,
      bytes: 0,
    };
    const log = this.#o.log;
    entry.ready = (async () => {
      entry.bytes = await this.memory.check(m, {
        ...o,
        nCtx: shape.nCtxPerSeq * shape.nSeq,
        nSeqMax: shape.nSeq,
      });
      if (nTrain > 0 && perSeq > nTrain) {
        log.log(
          "warn",
          `ctx_size ${perSeq} exceeds the context '${m.label}' was trained with (${nTrain}); quality may drop`,
        );
      }
      log.nativeLevel(cfg);
      if (m.engine instanceof EngineProcess) {
        m.engine.setLogLevel(log.levelOf(cfg));
      }
      try {
        const sched = await m.engine.scheduler(shape);
        entry.value = sched;
        return sched;
      } catch (e) {
        throw toWasiNn(e);
      } finally {
        log.flushLlama(cfg);
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
   * but the most recently used one unless `keepLatest` is false: each
   * context shape a config asks for would otherwise keep its context until
   * the model is freed.
   */
  prune(m: ModelEntry, keepLatest = true): void {
    const keys = [...m.schedulers.keys()];
    for (const key of keepLatest ? keys.slice(0, -1) : keys) {
      const sched = m.schedulers.get(key)!.value;
      if (sched && sched.owners === 0) {
        m.schedulers.delete(key);
        sched.close();
      }
    }
  }

  /**
   * Bytes this host holds now: model files, scheduler and embedding
   * contexts. What max_memory_mb limits, for the whole host.
   */
  usage(): number {
    let n = 0;
    for (const m of this.#models.values()) {
      n += m.bytes + (m.embed?.bytes ?? 0);
      for (const e of m.schedulers.values()) n += e.bytes;
    }
    return n;
  }

  /**
   * Frees what no session uses (idle contexts of every model but `keep`'s
   * most recent one, warm models nobody holds) when memory runs short.
   * Returns whether anything was freed.
   */
  reclaim(keep: ModelEntry): boolean {
    const before = this.usage();
    for (const m of this.entries()) {
      if (m.refs <= 0 && m !== keep) {
        this.free(m);
        continue;
      }
      this.prune(m, false);
      if (m.embed && !m.embedBusy) {
        m.embed.ctx.close();
        m.embed = undefined;
      }
    }
    return this.usage() < before;
  }

  /** Takes a reference to a loaded model (a warm one stops its idle timer). */
  #revive(m: ModelEntry): ModelEntry {
    if (m.idleTimer !== undefined) clearTimeout(m.idleTimer);
    m.idleTimer = undefined;
    m.refs++;
    return m;
  }

  async #modelOptions(
    path: string,
    cfg: ConfigValues,
    fit: (
      path: string,
      o: PlanOptions,
    ) => Promise<{ nGpuLayers: number }>,
  ): Promise<ModelLoadOptions> {
    let nGpuLayers = cfg.n_gpu_layers;
    if (nGpuLayers === "auto") {
      try {
        // The scheduler's context: ctx_size for each of `parallel` sessions.
        const nSeq = cfg.parallel ?? 4;
        const perSeq = cfg.ctx_size ?? 0;
        const fitted = await fit(path, {
          nCtx: perSeq * nSeq,
          nSeqMax: nSeq,
          context: contextOptions(cfg),
        });
        this.#o.log.log(
          "info",
          `n_gpu_layers auto: llama.cpp's fit chose ${fitted.nGpuLayers} for ${path}`,
        );
        nGpuLayers = fitted.nGpuLayers;
      } catch (e) {
        throw loadError(path, e);
      }
    }
    const o = modelOptions({ ...cfg, n_gpu_layers: nGpuLayers });
    // The operator's RPC servers (never a guest's): only engine processes get them.
    const rpc = rpcServers(this.#o.hostConfig, cfg);
    if (rpc) o.rpcServers = rpc;
    return o;
  }

  /**
   * Loads a model: in this process with `opts`, or (no `opts`) in a new
   * engine process, keeping a tokenizer-only copy here.
   */
  async #load(
    key: string,
    path: string,
    opts: ModelLoadOptions | undefined,
    cfg: ConfigValues,
    label: string,
    localBytes = fileSize(path),
  ): Promise<ModelEntry> {
    const { log, onProgress } = this.#o;
    log.nativeLevel(cfg);
    try {
      const t0 = performance.now();
      let model: Model, engine: ModelEngine;
      if (opts) {
        model = await Model.load(path, {
          ...opts,
          onProgress: onProgress ? (f) => onProgress(label, f) : undefined,
          signal: this.#o.signal?.(),
        });
        engine = new LocalEngine(model);
      } else {
        const proc = await this.#engines.start(
          label,
          Boolean(cfg.enable_log || cfg.enable_debug_log),
          rpcServers(this.#o.hostConfig, cfg),
        );
        try {
          opts = await this.#modelOptions(
            path,
            cfg,
            (p, o) => proc.fit(p, o),
          );
          await proc.load(
            path,
            opts,
            onProgress ? (f) => onProgress(label, f) : undefined,
            this.#o.signal?.(),
          );
          // The engine loaded it: the same file's vocabulary loads here too.
          model = await Model.load(path, { vocabOnly: true });
        } catch (e) {
          await proc.close();
          // A model the engine refused: worded as a refusal here would be.
          throw e instanceof WasiNnError &&
              e.errno === Errno.InvalidArgument && !proc.dead
            ? loadError(path, new Error(e.message))
            : e;
        }
        engine = proc;
      }
      const projector = cfg.mmproj
        ? { path: cfg.mmproj, options: projectorOptions(cfg) }
        : undefined;
      if (projector) {
        try {
          await engine.projector(projector.path, projector.options);
        } catch (e) {
          await engine.close();
          throw e;
        }
      }
      if (this.#closed) {
        await engine.close();
        throw new WasiNnError(Errno.RuntimeError, "the host was closed");
      }
      log.log(
        "info",
        `loaded model '${label}' from ${path} in ${
          (performance.now() - t0).toFixed(0)
        } ms${
          engine instanceof EngineProcess
            ? ` (engine process ${engine.pid})`
            : ""
        }`,
      );
      const mc = modelConfig(model);
      for (const w of mc.warnings) log.log("warn", `model '${label}': ${w}`);
      const entry: ModelEntry = {
        key,
        path,
        label,
        model,
        engine,
        projector,
        options: opts,
        fromGuest: false,
        crashes: 0,
        refs: 0,
        defaults: mc.values,
        bytes: localBytes,
        keepWarm: false,
        schedulers: new Map(),
      };
      if (engine instanceof EngineProcess) {
        this.#engines.watch(entry, engine, () => this.#engineDied(entry));
      }
      this.#models.set(key, entry);
      return entry;
    } catch (e) {
      const err = loadError(path, e);
      log.log("error", err.message);
      throw err;
    } finally {
      log.flushLlama(cfg);
    }
  }

  /** Where a model's weights go with RPC servers (see `splitDevices`). */
  async #rpcSplit(
    path: string,
    cfg: ConfigValues,
    rpc: string[],
  ): Promise<ModelSplit> {
    return await modelSplit(path, {
      nGpuLayers: cfg.n_gpu_layers,
      splitMode: cfg.split_mode,
      mainGpu: cfg.main_gpu,
      tensorSplit: cfg.tensor_split,
    }, await splitDevices(rpc, RPC_PROBE_MS));
  }

  /** The engine of `m` died: its schedulers and embedding context went with it. */
  #engineDied(m: ModelEntry): void {
    m.schedulers.clear();
    m.embed = undefined;
  }

  /**
   * Restarts the engine process of `m` if it died (see `EngineSupervisor`);
   * a model from guest bytes cannot be restarted.
   */
  async ensureEngine(m: ModelEntry): Promise<void> {
    await this.#engines.ensure(m, () => this.#engineDied(m));
  }
}

/** A load failure as a WasiNnError, with the file's size and the free memory. */
function loadError(path: string, e: unknown): WasiNnError {
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

/** An error of a guest-bytes load, naming the guest model instead of its memory file's path. */
function renamed(e: unknown, guest: GuestModel): unknown {
  if (!(e instanceof WasiNnError)) return e;
  if (!/\/proc\/(self|\d+)\/fd\//.test(e.message)) return e;
  return new WasiNnError(
    e.errno,
    e.message.replace(/\/proc\/(self|\d+)\/fd\/\d+/g, guest.id),
    { cause: e, detail: e.detail },
  );
}
