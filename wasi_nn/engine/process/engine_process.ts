/**
 * An engine in a child process: one loaded model, its schedulers and its
 * embedding context run in a Deno process of their own (`_child.ts`), which
 * the host drives over a Unix socket ({@link ./_protocol.ts}). A llama.cpp
 * abort, a signal or an OOM kill ends that process only: every call and task
 * on it fails with RuntimeError naming the cause and the engine's last log
 * lines, and the host and its other models serve on.
 *
 * The schedulers it makes (`RemoteScheduler`, `_remote_scheduler.ts`) take
 * the same tasks as in-process ones; sampler parameters cross instead of a sampler, and the
 * tokens of every streaming session in a decode step come back in one frame.
 *
 * @example
 * ```ts
 * import { EngineProcess } from "./engine_process.ts";
 * import { ensureModel } from "../../../gguf/synthetic_model.ts";
 *
 * const engine = await EngineProcess.start({ label: "tiny" });
 * await engine.load((await ensureModel("tiny")).path, {});
 * const sched = await engine.scheduler({ nSeq: 1, nCtxPerSeq: 128 });
 * const owner = sched.newOwner("demo");
 * const task = sched.submit({ owner, prompt: new Int32Array([1, 2, 3]), sampler: { temp: 0 }, stop: { nPredict: 4 } });
 * console.log((await task.result).tokens.length); // 4
 * await engine.close();
 * ```
 * @module
 */

import type {
  ContextOptions,
  LogLevel,
  LogRecord,
  MemoryEstimate,
  ModelLoadOptions,
  PlanOptions,
} from "../../../bindings/mod.ts";
import { Errno, WasiNnError } from "../../errno.ts";
import type {
  MediaInput,
  MediaPrompt,
  ProjectorOptions,
} from "../_media_prompt.ts";
import type { MediaSpan } from "../_task.ts";
import type {
  EmbedContext,
  EngineScheduler,
  EngineSchedulerOptions,
  ModelEngine,
} from "../model_engine.ts";
import type { SchedulerStats, TaskResult } from "../scheduler.ts";
import {
  RemoteScheduler,
  type RemoteTask,
  type SchedulerLink,
} from "./_remote_scheduler.ts";
import {
  decodeJson,
  decodeStep,
  encodeJson,
  FrameKind,
  FrameReader,
  FrameWriter,
  fromWire,
  StepKind,
  type WireError,
} from "./_protocol.ts";

/** How an engine process is started. */
export interface EngineProcessOptions {
  /** The model's name, for messages. */
  label: string;
  /** llama.cpp's log records from the engine (and its stderr lines, as "error" when it dies). */
  onLog?: (r: LogRecord) => void;
  /** When it dies: what else its users should be told (say, which RPC server stopped answering). */
  explain?: () => Promise<string | undefined>;
  /** Called once when the process ends without `close()`, with the error its users get. */
  onExit?: (error: WasiNnError) => void;
}

/** Log lines of the engine kept for the message of its death. */
const KEEP_LINES = 12;

const dec = new TextDecoder();

/** A model's engine in a child process. */
export class EngineProcess implements ModelEngine, SchedulerLink {
  /** In a child process. */
  readonly kind = "process";
  readonly #o: EngineProcessOptions;
  readonly #child: Deno.ChildProcess;
  readonly #conn: Deno.Conn;
  #refed = true;
  readonly #out: FrameWriter;
  readonly #in: FrameReader;
  #nextId = 1;
  #calls = new Map<
    number,
    {
      resolve(v: unknown): void;
      reject(e: unknown): void;
      progress?: (f: number) => void;
    }
  >();
  #tasks = new Map<number, RemoteTask>();
  #lines: string[] = [];
  #dead?: WasiNnError;
  #closing = false;
  /** Settles when the child has exited (and was reaped). */
  readonly exited: Promise<Deno.CommandStatus>;
  readonly #died = Promise.withResolvers<WasiNnError>();
  /** Resolves, with the error its users got, if the engine dies without `close()`. */
  readonly died: Promise<WasiNnError> = this.#died.promise;

  private constructor(
    o: EngineProcessOptions,
    child: Deno.ChildProcess,
    conn: Deno.Conn,
  ) {
    this.#o = o;
    this.#child = child;
    this.#conn = conn;
    this.#out = new FrameWriter(conn.writable);
    this.#in = new FrameReader(conn.readable);
    this.exited = child.status;
    this.#readLines(child.stdout);
    this.#readLines(child.stderr);
    this.#pump();
    child.status.then((st) => this.#exit(st));
    this.#refresh();
  }

  /** An idle engine does not keep the host's process alive; a busy one does. */
  #refresh(): void {
    const busy = this.#calls.size + this.#tasks.size > 0 && !this.#dead;
    if (busy === this.#refed) return;
    this.#refed = busy;
    if (busy) {
      this.#child.ref();
      this.#conn.ref();
    } else {
      this.#child.unref();
      this.#conn.unref();
    }
  }

  /** Spawns an engine process (no model yet: `load` one). */
  static async start(o: EngineProcessOptions): Promise<EngineProcess> {
    const dir = await Deno.makeTempDir({ prefix: "wnb-engine-" });
    const path = `${dir}/engine.sock`;
    const listener = Deno.listen({ transport: "unix", path });
    const main = new URL("./_child.ts", import.meta.url);
    let child: Deno.ChildProcess | undefined;
    try {
      child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--no-config",
          "--quiet",
          main.protocol === "file:" ? main.pathname : main.href,
          path,
          // Unused by the child: `ps` shows which model an engine serves.
          o.label,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        // An abort's message, not a debugger's backtrace, ends its log.
        env: { GGML_NO_BACKTRACE: "1" },
      }).spawn();
      const failed = child.status.then((st) => {
        throw new WasiNnError(
          Errno.RuntimeError,
          `the engine process for '${o.label}' exited at start (${cause(st)})`,
        );
      });
      const conn = await Promise.race([listener.accept(), failed]);
      return new EngineProcess(o, child, conn);
    } catch (e) {
      try {
        child?.kill("SIGKILL");
      } catch { /* gone */ }
      throw e;
    } finally {
      listener.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  /** The child's process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Why the engine is gone (undefined while it runs). */
  get dead(): WasiNnError | undefined {
    return this.#dead;
  }

  /** llama.cpp's `fit` (n_gpu_layers "auto"), in the engine. */
  fit(
    path: string,
    opts: PlanOptions & { nCtxMin?: number },
  ): Promise<{ nGpuLayers: number; nCtx: number }> {
    return this.#call("fit", { path: childPath(path), opts });
  }

  /** Loads the model's projector in the engine. */
  async projector(path: string, opts: ProjectorOptions): Promise<void> {
    await this.#call("projector", { path: childPath(path), opts });
  }

  /**
   * Tokenizes a prompt with media in the engine, which keeps the chunks
   * until `close()`; the scheduler's tasks name them by id.
   */
  async mediaPrompt(text: string, media: MediaInput[]): Promise<MediaPrompt> {
    const id = this.#nextId++;
    const r = await this.#call<{ tokens: number[]; spans: MediaSpan[] }>(
      "media_prompt",
      {
        media: id,
        text,
        items: media.map((m) => ({
          source: m.source,
          data: m.bytes.toBase64(),
        })),
      },
    );
    let closed = false;
    return {
      tokens: Int32Array.from(r.tokens),
      media: {
        spans: r.spans,
        remote: id,
        eval: () =>
          Promise.reject(
            new WasiNnError(
              Errno.RuntimeError,
              "this prompt's media live in its engine process",
            ),
          ),
      },
      close: () => {
        if (closed || this.#dead) return;
        closed = true;
        this.#send("media_free", { media: id });
      },
    };
  }

  /** Loads the model (once per engine); progress 0..1. */
  async load(
    path: string,
    options: Omit<ModelLoadOptions, "onProgress" | "signal">,
    onProgress?: (f: number) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const stop = () => this.kill("SIGKILL");
    signal?.addEventListener("abort", stop, { once: true });
    try {
      await this.#call(
        "load",
        { path: childPath(path), options },
        onProgress,
      );
    } finally {
      signal?.removeEventListener("abort", stop);
    }
  }

  /** Sets the engine's llama.cpp log level. */
  setLogLevel(level: LogLevel): void {
    this.#send("log_level", { level });
  }

  /** A scheduler in the engine. */
  async scheduler(opts: EngineSchedulerOptions): Promise<EngineScheduler> {
    const id = this.#nextId++;
    const r = await this.#call<
      { nCtxPerSeq: number; kvBytes: number; stats: SchedulerStats }
    >("sched_create", { sched: id, opts });
    return new RemoteScheduler(this, id, opts.nSeq, r);
  }

  /** An embedding context in the engine. */
  async embedContext(opts: ContextOptions): Promise<EmbedContext> {
    const id = this.#nextId++;
    const r = await this.#call<{ poolingType: number }>("embed_create", {
      embed: id,
      opts,
    });
    return {
      poolingType: r.poolingType,
      embed: async (prompt, seq, norm) =>
        Float32Array.from(
          await this.#call<number[]>("embed_run", {
            embed: id,
            prompt,
            seq,
            norm,
          }),
        ),
      close: () => this.#send("embed_close", { embed: id }),
    };
  }

  /** llama.cpp's estimate, in the engine. */
  estimate(path: string, opts: PlanOptions): Promise<MemoryEstimate> {
    return this.#call("estimate", { path: childPath(path), opts });
  }

  /** Sends a signal to the engine (SIGKILL when it must go now). */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
  }

  /**
   * Ends the engine: asks it to free everything and exit, kills it if it
   * has not within a second, and settles once it is reaped.
   */
  async close(): Promise<void> {
    if (!this.#closing && !this.#dead) {
      this.#closing = true;
      this.#fail(
        new WasiNnError(Errno.RuntimeError, "the engine was closed"),
      );
      this.#send("exit", {});
      const timer = setTimeout(() => this.kill("SIGKILL"), 1000);
      Deno.unrefTimer(timer);
      this.exited.finally(() => clearTimeout(timer));
    }
    // Whoever awaits the exit keeps this process alive until it comes.
    this.#child.ref();
    await this.exited.catch(() => {});
  }

  // ---- the wire ----

  /** A request without a reply. */
  #send(op: string, args: Record<string, unknown>): void {
    if (this.#dead) return;
    this.#out.json(FrameKind.Request, { id: 0, op, ...args });
  }

  /** A request and its reply. */
  #call<T>(
    op: string,
    args: Record<string, unknown>,
    progress?: (f: number) => void,
  ): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#calls.set(id, {
        resolve: resolve as (v: unknown) => void,
        reject,
        progress,
      });
      this.#refresh();
      this.#out.send(
        FrameKind.Request,
        encodeJson({ id, op, ...args }),
      );
    });
  }

  /** Sends a task (RemoteScheduler.submit). */
  submitTask(
    sched: number,
    id: number,
    args: Record<string, unknown>,
    task: RemoteTask,
  ): void {
    if (this.#dead) {
      task.reject(this.#dead);
      return;
    }
    this.#tasks.set(id, task);
    this.#refresh();
    this.#send("submit", { sched, task: id, ...args });
  }

  /** Asks for an on-demand task's next token. */
  demand(id: number): void {
    this.#send("demand", { task: id });
  }

  /** Cancels a task. */
  cancelTask(id: number): void {
    this.#send("cancel", { task: id });
  }

  /** A request of a RemoteScheduler, without a reply. */
  notify(op: string, args: Record<string, unknown>): void {
    this.#send(op, args);
  }

  /** A request of a RemoteScheduler, with a reply. */
  request<T>(op: string, args: Record<string, unknown>): Promise<T> {
    return this.#call<T>(op, args);
  }

  /** A fresh id for a scheduler's owner or task. */
  nextId(): number {
    return this.#nextId++;
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const f = await this.#in.next();
        if (!f) break;
        this.#dispatch(f.kind, f.payload);
      }
    } catch { /* the socket broke: the exit status tells why */ }
  }

  #dispatch(kind: FrameKind, payload: Uint8Array): void {
    if (kind === FrameKind.Step) {
      for (const e of decodeStep(payload)) {
        const t = this.#tasks.get(e.task);
        if (!t) continue;
        if (e.what === StepKind.Text) t.onText?.(dec.decode(e.bytes));
        else if (e.what === StepKind.Token) t.onToken?.(e.token, e.bytes);
        else if (e.what === StepKind.Next) {
          t.waiters.shift()?.({ token: e.token, bytes: e.bytes });
        } else t.waiters.shift()?.(null);
      }
      return;
    }
    // deno-lint-ignore no-explicit-any
    const m = decodeJson<any>(payload);
    if (kind === FrameKind.Reply) {
      const c = this.#calls.get(m.id);
      if (!c) return;
      this.#calls.delete(m.id);
      this.#refresh();
      if (m.error) c.reject(fromWire(m.error as WireError));
      else c.resolve(m.value);
    } else if (kind === FrameKind.Event) {
      if (m.event === "progress") this.#calls.get(m.id)?.progress?.(m.f);
      else if (m.event === "done") this.#taskDone(m);
    } else if (kind === FrameKind.Log) {
      for (const r of m as LogRecord[]) {
        this.#keep(r.message);
        this.#o.onLog?.(r);
      }
    }
  }

  #taskDone(
    m: {
      task: number;
      cached: number[];
      stats: SchedulerStats;
      result?: TaskResult;
      error?: WireError;
    },
  ): void {
    const t = this.#tasks.get(m.task);
    if (!t) return;
    this.#tasks.delete(m.task);
    this.#refresh();
    t.owner.cached = m.cached;
    t.owner.running = undefined;
    t.owner.lastUsed = performance.now();
    t.sched.updateStats(m.stats);
    t.ended = true;
    while (t.waiters.length > 0) t.waiters.shift()!(null);
    if (m.error) t.reject(fromWire(m.error));
    else t.resolve(m.result!);
  }

  async #readLines(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    try {
      for await (const chunk of stream) {
        const lines = (rest + dec.decode(chunk, { stream: true })).split("\n");
        rest = lines.pop()!;
        for (const l of lines) if (l.trim()) this.#keep(l);
      }
    } catch { /* closed */ }
    if (rest.trim()) this.#keep(rest);
  }

  #keep(line: string): void {
    this.#lines.push(line.trimEnd());
    if (this.#lines.length > KEEP_LINES) this.#lines.shift();
  }

  #exit(st: Deno.CommandStatus): void {
    this.#in.cancel();
    if (this.#closing) {
      this.#dead ??= new WasiNnError(
        Errno.RuntimeError,
        `the engine of '${this.#o.label}' was closed`,
      );
      this.#fail(this.#dead);
      return;
    }
    // Give the pipes a moment to deliver the last lines (an abort's message).
    setTimeout(async () => {
      const why = await this.#o.explain?.().catch(() => undefined);
      const last = this.#lines.length > 0
        ? `; its last log lines:\n  ${this.#lines.join("\n  ")}`
        : "";
      const err = new WasiNnError(
        Errno.RuntimeError,
        `the engine process of model '${this.#o.label}' (pid ${this.pid}) died: ${
          cause(st)
        }${why ? `; ${why}` : ""}${last}`,
      );
      this.#dead = err;
      this.#fail(err);
      this.#o.onExit?.(err);
      this.#died.resolve(err);
    }, 20);
  }

  #fail(err: WasiNnError): void {
    for (const c of this.#calls.values()) c.reject(err);
    this.#calls.clear();
    for (const t of this.#tasks.values()) {
      t.owner.running = undefined;
      t.ended = true;
      while (t.waiters.length > 0) t.waiters.shift()!(null);
      t.reject(err);
    }
    this.#tasks.clear();
    this.#refresh();
  }
}

/** How a process ended, in words. */
function cause(st: Deno.CommandStatus): string {
  if (st.signal) {
    const why: Record<string, string> = {
      SIGABRT: " (llama.cpp aborted)",
      SIGKILL: " (killed, or out of memory)",
      SIGSEGV: " (a crash in native code)",
    };
    return `signal ${st.signal}${why[st.signal] ?? ""}`;
  }
  return `exit code ${st.code}`;
}

/** A path as the child sees it: this process's file descriptors are under /proc/<pid>. */
function childPath(path: string): string {
  return path.replace(/^\/proc\/self\//, `/proc/${Deno.pid}/`);
}
