/**
 * The scheduler of an engine process, as the host sees it: it takes the same
 * tasks as an in-process `Scheduler` and mirrors the sessions' records
 * (cached tokens, the running task), while the engine (`_child.ts`) does the
 * work. It talks to the engine through a {@linkcode SchedulerLink}, which
 * `EngineProcess` is.
 * @module
 */

import type { SamplerParams } from "../../../bindings/mod.ts";
import { Errno, WasiNnError } from "../../errno.ts";
import type { EngineScheduler } from "../model_engine.ts";
import { checkSubmittable } from "../_task.ts";
import type {
  SchedulerStats,
  SlotOwner,
  TaskHandle,
  TaskResult,
  TaskSpec,
  TokenEvent,
} from "../scheduler.ts";

/** A task in flight in the engine, as its scheduler tracks it. */
export interface RemoteTask {
  /** Settles the task's result. */
  resolve(r: TaskResult): void;
  /** Fails the task. */
  reject(e: unknown): void;
  /** Its session. */
  owner: SlotOwner;
  /** Its scheduler (gets the counters when it ends). */
  sched: RemoteScheduler;
  /** Streamed text. */
  onText?: (t: string) => void;
  /** Streamed tokens. */
  onToken?: (token: number, bytes: Uint8Array) => void;
  /** Callers of `next()` waiting for a token. */
  waiters: ((e: TokenEvent | null) => void)[];
  /** It has ended. */
  ended: boolean;
}

/** What a RemoteScheduler needs of its engine. */
export interface SchedulerLink {
  /** A fresh id for an owner or a task. */
  nextId(): number;
  /** A request without a reply. */
  notify(op: string, args: Record<string, unknown>): void;
  /** A request and its reply. */
  request<T>(op: string, args: Record<string, unknown>): Promise<T>;
  /** Sends a task of scheduler `sched`. */
  submitTask(
    sched: number,
    id: number,
    args: Record<string, unknown>,
    task: RemoteTask,
  ): void;
  /** Asks for an on-demand task's next token. */
  demand(id: number): void;
  /** Cancels a task. */
  cancelTask(id: number): void;
}

/** A scheduler of an engine process: the same tasks as an in-process one. */
export class RemoteScheduler implements EngineScheduler {
  readonly #engine: SchedulerLink;
  /** Its id in the engine. */
  readonly id: number;
  readonly #nSeq: number;
  readonly #nCtxPerSeq: number;
  readonly #kvBytes: number;
  #stats: SchedulerStats;
  #owners = new Map<SlotOwner, number>();
  #closed = false;

  /** Made by `EngineProcess.scheduler`. */
  constructor(
    engine: SchedulerLink,
    id: number,
    nSeq: number,
    r: { nCtxPerSeq: number; kvBytes: number; stats: SchedulerStats },
  ) {
    this.#engine = engine;
    this.id = id;
    this.#nSeq = nSeq;
    this.#nCtxPerSeq = r.nCtxPerSeq;
    this.#kvBytes = r.kvBytes;
    this.#stats = r.stats;
  }

  /** Context length of each slot. */
  get nCtxPerSeq(): number {
    return this.#nCtxPerSeq;
  }

  /** Bytes of the context's KV cache. */
  get kvBytes(): number {
    return this.#kvBytes;
  }

  /** Slots. */
  get nSeq(): number {
    return this.#nSeq;
  }

  /** The counters as of the last task that ended. */
  get stats(): SchedulerStats {
    return this.#stats;
  }

  /** Sessions bound to this scheduler. */
  get owners(): number {
    return this.#owners.size;
  }

  /** Counters sent by the engine. */
  updateStats(s: SchedulerStats): void {
    this.#stats = s;
  }

  /** A session record (mirrored in the engine). */
  newOwner(id: string): SlotOwner {
    const o: SlotOwner = {
      id,
      cached: [],
      checkpoints: [],
      lastUsed: performance.now(),
    };
    const n = this.#engine.nextId();
    this.#owners.set(o, n);
    this.#engine.notify("owner_new", { sched: this.id, owner: n, name: id });
    return o;
  }

  /** Forgets a session and frees its slot. */
  dropOwner(owner: SlotOwner): void {
    const n = this.#owners.get(owner);
    if (n === undefined) return;
    this.#owners.delete(owner);
    this.#engine.notify("owner_drop", { owner: n });
  }

  /** Saves a session's KV and tokens to a file. */
  saveOwner(owner: SlotOwner, path: string): Promise<number> {
    return this.#engine.request("save", {
      sched: this.id,
      owner: this.#ownerId(owner),
      path,
    });
  }

  /** Restores a session from a file written by saveOwner. */
  async restoreOwner(owner: SlotOwner, path: string): Promise<number> {
    const r = await this.#engine.request<{ n: number; cached: number[] }>(
      "restore",
      { sched: this.id, owner: this.#ownerId(owner), path },
    );
    owner.cached = r.cached;
    owner.checkpoints = [];
    return r.n;
  }

  /** Queues a task in the engine; `spec.sampler` must be parameters. */
  submit(spec: TaskSpec): TaskHandle {
    checkSubmittable(this.#closed, spec);
    if (spec.media && spec.media.remote === undefined) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        "a prompt's media for an engine process are made there (EngineProcess.mediaPrompt)",
      );
    }
    if (!isParams(spec.sampler)) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        "an engine process takes sampler parameters, not a Sampler",
      );
    }
    const {
      owner,
      prompt,
      sampler,
      signal,
      onText,
      onToken,
      stop,
      media,
      ...rest
    } = spec;
    const id = this.#engine.nextId();
    const { promise, resolve, reject } = Promise.withResolvers<TaskResult>();
    promise.catch(() => {}); // observed through the handle
    const task: RemoteTask = {
      resolve,
      reject,
      owner,
      sched: this,
      onText,
      onToken,
      waiters: [],
      ended: false,
    };
    const ownerId = this.#ownerId(owner);
    owner.running = { queued: false };
    const { now: _now, ...stopData } = stop ?? {};
    this.#engine.submitTask(this.id, id, {
      owner: ownerId,
      prompt,
      media: media?.remote,
      sampler: sampler as Partial<SamplerParams>,
      spec: { ...rest, stop: stopData },
      text: onText !== undefined,
      token: onToken !== undefined,
    }, task);
    const cancel = () => this.#engine.cancelTask(id);
    if (signal?.aborted) queueMicrotask(cancel);
    else signal?.addEventListener("abort", cancel, { once: true });
    promise.finally(() => signal?.removeEventListener("abort", cancel))
      .catch(() => {});
    return {
      result: promise,
      next: () => {
        if (task.ended) return Promise.resolve(null);
        return new Promise((res) => {
          task.waiters.push(res);
          this.#engine.demand(id);
        });
      },
      cancel,
    };
  }

  /** Frees the scheduler's context in the engine. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#owners.clear();
    this.#engine.notify("sched_close", { sched: this.id });
  }

  #ownerId(owner: SlotOwner): number {
    const n = this.#owners.get(owner);
    if (n === undefined) {
      throw new WasiNnError(
        Errno.RuntimeError,
        `session ${owner.id} is not bound to this scheduler`,
      );
    }
    return n;
  }
}

function isParams(s: TaskSpec["sampler"]): boolean {
  return typeof s === "object" && s !== null &&
    !("sample" in s &&
      typeof (s as { sample?: unknown }).sample === "function");
}
