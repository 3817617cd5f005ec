/**
 * Session bookkeeping: a bounded set of sessions with idle expiry by a timer,
 * least-recently-used eviction of idle sessions when full, and Busy when every
 * session is busy.
 *
 * @example
 * ```ts
 * import { SessionStore } from "./sessions.ts";
 * let now = 0;
 * const store = new SessionStore<{ id: string; busy: boolean; close(): void }>({
 *   maxSessions: 2,
 *   idleTimeoutMs: 1000,
 *   now: () => now,
 *   timer: false,
 * });
 * store.add({ id: "a", busy: false, close() {} });
 * now = 2000;
 * console.log(store.sweep(), store.size); // ["a"] 0
 * store.close();
 * ```
 * @module
 */

import { Errno, WasiNnError } from "../errno.ts";

/** A stored session, when it was last used, and the order it was added in. */
interface Entry<S> {
  s: S;
  lastUsed: number;
  seq: number;
}

/** What the store needs of a session. */
export interface StoredSession {
  /** Unique id. */
  readonly id: string;
  /** A number it is also found by (`byHandle`), if it has one. */
  readonly handle?: number;
  /** Busy sessions are never evicted or expired. */
  readonly busy: boolean;
  /** Frees the session's resources. */
  close(): void;
}

/** Options of `SessionStore`. */
export interface SessionStoreOptions<S extends StoredSession = StoredSession> {
  /** Most sessions at once (default 100). */
  maxSessions?: number;
  /** Idle sessions older than this are closed (default 300000 ms; 0 = never). */
  idleTimeoutMs?: number;
  /** How often the timer sweeps (default: a quarter of the idle timeout, at most 30 s). */
  sweepIntervalMs?: number;
  /** Run the sweep timer (default true); tests call `sweep()` themselves. */
  timer?: boolean;
  /** Clock in ms. */
  now?: () => number;
  /** Called with each session closed by expiry or eviction, why, and the session itself. */
  onEvict?: (id: string, why: "idle" | "lru", session: S) => void;
}

/** A bounded, self-cleaning set of sessions. */
export class SessionStore<S extends StoredSession> {
  /** By id, least recently used first. */
  #sessions = new Map<string, Entry<S>>();
  #added = 0;
  #byHandle = new Map<number, S>();
  #max: number;
  #idle: number;
  #now: () => number;
  #timer?: ReturnType<typeof setInterval>;
  #onEvict?: (id: string, why: "idle" | "lru", session: S) => void;

  /** Creates a store (and its sweep timer, which does not keep the process alive). */
  constructor(options: SessionStoreOptions<S> = {}) {
    this.#max = options.maxSessions ?? 100;
    this.#idle = options.idleTimeoutMs ?? 300_000;
    this.#now = options.now ?? (() => performance.now());
    this.#onEvict = options.onEvict;
    if (options.timer !== false && this.#idle > 0) {
      const every = options.sweepIntervalMs ??
        Math.min(30_000, Math.max(10, this.#idle / 4));
      const timer = setInterval(() => this.sweep(), every);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /** Sessions held. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Limits in force. */
  get limits(): { maxSessions: number; idleTimeoutMs: number } {
    return { maxSessions: this.#max, idleTimeoutMs: this.#idle };
  }

  /**
   * Adds a session. When full, the least recently used idle session is
   * closed to make room; when every session is busy, throws Busy.
   */
  add(s: S): void {
    if (this.#sessions.has(s.id)) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `a session '${s.id}' already exists`,
      );
    }
    if (this.#sessions.size >= this.#max) {
      // Least recently used first: the first idle one is the one to evict.
      let lru: S | undefined;
      for (const e of this.#sessions.values()) {
        if (!e.s.busy) {
          lru = e.s;
          break;
        }
      }
      if (!lru) {
        throw new WasiNnError(
          Errno.Busy,
          `all ${this.#max} sessions are busy (max_sessions); retry later or raise max_sessions`,
        );
      }
      this.#evict(lru, "lru");
    }
    this.#sessions.set(s.id, { s, lastUsed: this.#now(), seq: this.#added++ });
    if (s.handle !== undefined) this.#byHandle.set(s.handle, s);
  }

  /** The session with this id (and marks it used), or undefined. */
  get(id: string): S | undefined {
    const e = this.#sessions.get(id);
    if (!e) return undefined;
    this.#use(e);
    return e.s;
  }

  /** The session with this handle (and marks it used), or undefined. */
  byHandle(handle: number): S | undefined {
    const s = this.#byHandle.get(handle);
    if (s) this.touch(s.id);
    return s;
  }

  /** Marks a session used now. */
  touch(id: string): void {
    const e = this.#sessions.get(id);
    if (e) this.#use(e);
  }

  /** Removes a session without closing it. */
  delete(id: string): boolean {
    const e = this.#sessions.get(id);
    if (!e) return false;
    this.#sessions.delete(id);
    if (e.s.handle !== undefined) this.#byHandle.delete(e.s.handle);
    return true;
  }

  /** Marks used now: to the end of the order. */
  #use(e: Entry<S>): void {
    e.lastUsed = this.#now();
    this.#sessions.delete(e.s.id);
    this.#sessions.set(e.s.id, e);
  }

  #evict(s: S, why: "idle" | "lru"): void {
    this.delete(s.id);
    try {
      s.close();
    } finally {
      this.#onEvict?.(s.id, why, s);
    }
  }

  /** Closes sessions idle longer than the timeout; returns their ids. */
  sweep(): string[] {
    if (this.#idle <= 0) return [];
    const now = this.#now();
    const gone: string[] = [];
    for (const e of [...this.#sessions.values()]) {
      if (now - e.lastUsed <= this.#idle) break; // the rest were used later
      if (!e.s.busy) {
        gone.push(e.s.id);
        this.#evict(e.s, "idle");
      }
    }
    return gone;
  }

  /** Every session with its idle time. */
  entries(): { session: S; idleMs: number }[] {
    const now = this.#now();
    const all = [...this.#sessions.values()].sort((a, b) => a.seq - b.seq);
    return all.map((e) => ({
      session: e.s,
      idleMs: now - e.lastUsed,
    }));
  }

  /** Stops the timer and closes every session. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    for (const e of [...this.#sessions.values()]) {
      this.delete(e.s.id);
      e.s.close();
    }
  }
}
