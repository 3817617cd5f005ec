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
 * Every execution context is a session (`_session.ts`): its own KV sequence
 * in a context shared by the sessions of one model (see the engine's
 * `scheduler.ts`), so sessions are isolated yet decoded together in one
 * batch. This file is the facade: the models live in `_models.ts` (with the
 * memory checks of `_memory.ts`), graphs in `_graphs.ts`, embeddings in
 * `_embeddings.ts`, the status view in `_status.ts`.
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
 * await host.shutdown();
 * ```
 * @module
 */

import { backendInfo, nativeCallsSettled } from "../../bindings/mod.ts";
import {
  type ConfigValues,
  mergeConfig,
  parseConfig,
} from "../config/parse.ts";
import type { ChatMessage } from "../engine/chat.ts";
import { templateLimits } from "../config/options.ts";
import { Errno, WasiNnError } from "../errno.ts";
import type { Logger } from "../log.ts";
import type { TensorInput, WasiNnHostApi } from "./api.ts";
import { GraphTable, loadRequest } from "./_graphs.ts";
import { HostLog } from "./_host_log.ts";
import { checkGuestModelSize } from "./_model_source.ts";
import { ModelCache } from "./_models.ts";
import type { GuestFolders } from "./_guest_files.ts";
import { GuestQuota, guestView } from "./_quota.ts";
import {
  type Metadata,
  Session,
  type SessionEnv,
  sessionKey,
} from "./_session.ts";
import {
  type HostStatus,
  hostStatus,
  hostStatusWithSchedulers,
} from "./_status.ts";
import { SessionStore } from "./sessions.ts";

export type { HostStatus, Metadata };

/** Resolves a guest-given model name (or allowed path) to a file. Throws WasiNnError(NotFound). */
export interface ModelResolver {
  /** Returns the model's path (or an object with it). */
  resolve(nameOrPath: string): string | { path: string };
}

/** What a guest instance's view of the host carries into its graphs. */
interface GuestContext {
  quota: GuestQuota;
  folders: GuestFolders;
}

/** Options of `LlamaHost.create`. */
export interface LlamaHostOptions {
  /** Name -> model file mapping and the sandbox for paths. */
  registry: ModelResolver;
  /** Host defaults beneath whatever a guest sends (any key style). */
  hostConfig?: Record<string, unknown> | string;
  /**
   * Where host messages go (default: stderr for warn and error). Each
   * message is one line: the host shows control characters as escapes
   * (`\n`, `\x1b`) and calls it once per line of llama.cpp's log.
   */
  log?: Logger;
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

/** Result of `runInference`. */
export interface InferenceResult {
  /** Generated text (or the embedding JSON in embedding mode). */
  text: string;
  /** Token counts, timings and stop reason. */
  metadata: Metadata;
}

const dec = new TextDecoder();

/** The llama.cpp WASI-NN host. Create with `LlamaHost.create`. */
export class LlamaHost implements WasiNnHostApi {
  #registry: ModelResolver;
  #hostConfig: ConfigValues;
  #log: HostLog;
  #models: ModelCache;
  #graphs = new GraphTable();
  #store: SessionStore<Session>;
  #env: SessionEnv;
  #nextExec = 0;
  #guests = 0;
  #cancel = new AbortController();
  #build: { number: number; commit: string };
  #closed = false;

  private constructor(options: LlamaHostOptions) {
    this.#registry = options.registry;
    // Every message one line, whatever the sink: guests choose names and text.
    const log = this.#log = new HostLog(options.log);
    const parsed = parseConfig(options.hostConfig);
    for (const w of parsed.warnings) log.log("warn", `host config: ${w}`);
    this.#hostConfig = parsed.values;
    const s = options.sessions ?? {};
    const store = this.#store = new SessionStore<Session>({
      maxSessions: s.maxSessions ??
        this.#hostConfig.max_sessions,
      idleTimeoutMs: s.idleTimeoutMs ??
        this.#hostConfig.idle_timeout_ms,
      now: s.now,
      timer: s.timer ?? (this.#hostConfig.auto_cleanup !== false),
      onEvict: (_id, why, sess) => {
        this.#dropSession(sess);
        log.log(
          "info",
          `session '${sess.name}' closed: ${
            why === "idle"
              ? "idle past idle_timeout_ms"
              : "least recently used, to make room"
          }`,
        );
      },
    });
    this.#models = new ModelCache({
      hostConfig: this.#hostConfig,
      log,
      onProgress: options.onLoadProgress,
      signal: () => this.#cancel.signal,
      idleTimeoutMs: () => store.limits.idleTimeoutMs,
    });
    const info = backendInfo();
    this.#build = {
      number: info.llama_build_number,
      commit: info.llama_commit,
    };
    this.#env = {
      hostConfig: this.#hostConfig,
      log,
      models: this.#models,
      stdout: options.stdout ?? ((b) => {
        Deno.stdout.writeSync(b);
      }),
      signal: () => this.#cancel.signal,
      templateLimits: templateLimits(this.#hostConfig),
      build: this.#build,
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

  // ---------------------------------------------------------------- graphs

  /**
   * The host for one guest instance (`label` names it in the log), within
   * the host's `guest_max_*` quotas: the graphs it loads, and the contexts
   * and computes of those, count for that guest alone.
   */
  forGuest(
    label: string,
    folders: Readonly<Record<string, string>> = {},
  ): WasiNnHostApi {
    const guest = {
      quota: new GuestQuota(
        `${label}#${++this.#guests}`,
        this.#hostConfig,
        this.#log,
      ),
      folders,
    };
    return guestView(this, {
      load: (builders, encoding, target) =>
        this.#load(builders, encoding, target, guest),
      loadByName: (name, config) => this.#loadByName(name, config, guest),
    });
  }

  /** `load`: GGML encoding (6 WasmEdge, 5 WAMR); builder 0 = GGUF bytes or `preload:<path>`. */
  load(
    builders: Uint8Array[],
    encoding: number,
    target: number,
  ): Promise<number> {
    return this.#load(builders, encoding, target);
  }

  async #load(
    builders: Uint8Array[],
    encoding: number,
    target: number,
    guest?: GuestContext,
  ): Promise<number> {
    this.#assertOpen();
    const req = loadRequest(builders, encoding, target);
    const cfg = this.#resolveMmproj(
      req.config ? this.#log.parse(req.config, "load config") : {},
      "load config",
    );
    const quota = guest?.quota;
    if (req.preload !== undefined) {
      const path = this.#resolvePath(req.preload);
      return await this.#newGraph(path, cfg, undefined, guest);
    }
    // Over max_load_mb: refused before anything is copied.
    checkGuestModelSize(req.bytes!.length, this.#hostConfig);
    const merged = mergeConfig(this.#hostConfig, cfg);
    const acquire = () => this.#models.acquireBytes(req.bytes!, merged);
    const model = await (quota?.loading(req.bytes!.length, acquire) ??
      acquire());
    return this.#graphs.add(
      model.path,
      cfg,
      model,
      undefined,
      quota,
      guest?.folders,
    );
  }

  /**
   * `load_by_name` / `load_by_name_with_config`: a new graph handle, with
   * its own config, on every call; graphs of the same file share one model.
   * (A guest's second `load_by_name` of a name returns its first handle:
   * the guest's own handle table in `guest_imports.ts` does that.)
   */
  loadByName(name: string, config?: string): Promise<number> {
    return this.#loadByName(name, config);
  }

  async #loadByName(
    name: string,
    config?: string,
    guest?: GuestContext,
  ): Promise<number> {
    this.#assertOpen();
    let path: string;
    try {
      path = this.#resolvePath(name);
    } catch (e) {
      this.#log.log("warn", `load_by_name '${name}': ${(e as Error).message}`);
      throw e;
    }
    const where = `config of '${name}'`;
    const cfg = this.#resolveMmproj(this.#log.parse(config, where), where);
    return await this.#newGraph(path, cfg, name, guest);
  }

  async #newGraph(
    path: string,
    cfg: ConfigValues,
    name?: string,
    guest?: GuestContext,
  ): Promise<number> {
    const merged = mergeConfig(this.#hostConfig, cfg);
    const model = await this.#models.acquire(path, merged, name ?? path);
    return this.#graphs.add(
      path,
      cfg,
      model,
      name,
      guest?.quota,
      guest?.folders,
    );
  }

  /**
   * A request's `mmproj` names a projector as a model is named: a preloaded
   * name, or a file inside an allowed folder (NotFound otherwise, logged
   * with why); it becomes that file's path. The host config's own is the
   * operator's, taken as it is.
   */
  #resolveMmproj(cfg: ConfigValues, where: string): ConfigValues {
    if (!cfg.mmproj || cfg.mmproj === this.#hostConfig.mmproj) return cfg;
    try {
      return { ...cfg, mmproj: this.#resolvePath(cfg.mmproj) };
    } catch (e) {
      const err = new WasiNnError(
        Errno.NotFound,
        `${where}: mmproj ${(e as Error).message.replace(/^model /, "")}`,
        { cause: e },
      );
      this.#log.log("warn", err.message);
      throw err;
    }
  }

  #resolvePath(name: string): string {
    const r = this.#registry.resolve(name);
    return typeof r === "string" ? r : r.path;
  }

  /**
   * Hot swap: loads `path` (default: what the registry now says for `name`)
   * and serves it under `name`. Sessions already open finish on the old
   * model, which is freed when the last of them ends. A failed load leaves
   * the old model serving (and throws).
   */
  async reloadModel(name: string, path?: string): Promise<void> {
    const graphs = this.#graphs.named(name);
    if (graphs.length === 0) {
      throw new WasiNnError(
        Errno.NotFound,
        `no graph is loaded under '${name}'`,
      );
    }
    const newPath = path ?? this.#resolvePath(name);
    await this.#models.swap(graphs, newPath, name, this.#hostConfig);
  }

  /** `unload`: drops the graph from the name cache; its sessions may still read outputs. */
  unload(graph: number): void {
    const g = this.#graphs.unload(graph);
    for (const { session } of this.#store.entries()) {
      if (session.graph === g) session.endStream();
    }
    this.#models.release(g.model); // freed once no session uses it either
  }

  // ---------------------------------------------------------------- sessions

  /**
   * `init_execution_context`: a new session for a graph. With a `sessionId`
   * that names an open session of the same graph, that session resumes.
   */
  initExecutionContext(graph: number, sessionId?: string): number {
    this.#assertOpen();
    const g = this.#graphs.get(graph);
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
    g.quota?.checkContexts(); // over guest_max_contexts: TooLarge
    const s = new Session(this.#nextExec++, sessionId, g, this.#env);
    this.#store.add(s);
    g.model.refs++;
    g.quota?.opened(s);
    return s.handle;
  }

  #session(handle: number): Session {
    const s = this.#store.byHandle(handle);
    if (!s) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `no execution context with handle ${handle} (never created, finalized, or closed after being idle)`,
      );
    }
    return s;
  }

  /** Closes a session the store no longer holds and releases its model. */
  #dropSession(s: Session): void {
    if (!s.close()) return;
    this.#models.prune(s.model);
    this.#models.release(s.model);
  }

  /** `set_input`: index 0 = prompt text, index 1 = config JSON for this context. */
  async setInput(
    ctx: number,
    index: number,
    tensor: TensorInput,
  ): Promise<void> {
    await this.#session(ctx).setInput(index, tensor);
  }

  /** `compute`: generation (or embedding) to completion. ContextFull keeps the partial output. */
  async compute(ctx: number): Promise<void> {
    await this.#session(ctx).compute();
  }

  /** `get_output`: index 1 = metadata JSON, any other = the output of the last compute. */
  getOutput(ctx: number, index: number): Uint8Array {
    const s = this.#session(ctx);
    return index === 1 ? s.metadata() : s.output;
  }

  /** `compute_single`: one token per call; EndOfSequence (100) at the end. */
  async computeSingle(ctx: number): Promise<void> {
    await this.#session(ctx).computeSingle();
  }

  /** `get_output_single`: index 1 = metadata, otherwise the latest token's piece. */
  getOutputSingle(ctx: number, index: number): Uint8Array {
    const s = this.#session(ctx);
    return index === 1 ? s.metadata() : s.lastPiece;
  }

  /** `fini_single`: leaves streaming mode and clears the outputs. */
  finiSingle(ctx: number): void {
    this.#session(ctx).finiSingle();
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
    const runtime = this.#log.parse(runtimeConfig, "runtime config");
    this.#log.warnModelKeys(runtime, "runtime config");
    s.assertIdle();
    s.endStream();
    await s.setPrompt(prompt, runtime);
    try {
      await s.compute(runtime);
    } catch (err) {
      if (!(err instanceof WasiNnError && err.errno === Errno.ContextFull)) {
        throw err;
      }
    }
    return {
      text: dec.decode(s.output),
      metadata: JSON.parse(dec.decode(s.metadata())) as Metadata,
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
    const { sched, owner } = await this.#session(ctx).bind();
    return await sched.restoreOwner(owner, path);
  }

  /** Clears a session's outputs and cached state (it stays open). */
  resetSession(ctx: number): void {
    this.#session(ctx).reset();
  }

  // ---------------------------------------------------------------- the host

  /** Sessions, models, schedulers and memory. */
  status(): HostStatus {
    return hostStatus(this.#store, this.#models.entries());
  }

  /** Like status(), with the schedulers' live counters. */
  statusWithSchedulers(): Promise<HostStatus> {
    return hostStatusWithSchedulers(this.#store, this.#models.entries());
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
    this.#models.close();
    this.#graphs.clear();
  }

  /** Frees everything at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * `close()`, then waits until every native call still in flight (a decode
   * that close() cancelled) has returned and what it used is freed. Await it
   * before the process exits.
   */
  async shutdown(): Promise<void> {
    this.close();
    await this.#models.settled();
    await nativeCallsSettled();
  }

  /** `await using host = ...` shuts it down at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}
