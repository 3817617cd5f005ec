/**
 * When a native object may be freed: never while a non-blocking call that
 * uses it is still running on a worker thread. Each binding class (Model,
 * Context, Sampler) holds one `Lifetime`: calls `pin()` it for their
 * duration, `close()` asks for the free, and the free runs once nothing is
 * pinned (and, for a model, once every child it owns has been freed).
 *
 * @example
 * ```ts
 * import { Lifetime } from "./_lifetime.ts";
 * let freed = false;
 * const life = new Lifetime(() => { freed = true; });
 * const done = life.pin();
 * life.close();
 * console.log(freed); // false: a call is in flight
 * done();
 * console.log(freed); // true
 * ```
 * @module
 */

/** Non-blocking calls in flight, over every object, and who waits for none. */
let inFlight = 0;
let idle: (() => void)[] = [];

/**
 * Resolves once no non-blocking native call is in flight (so every free
 * that close() deferred has run). Await it before the process exits: an
 * exit while a worker thread is still in llama.cpp tears down what it uses.
 *
 * @example
 * ```ts
 * import { nativeCallsSettled } from "./_lifetime.ts";
 * await nativeCallsSettled(); // nothing in flight: at once
 * ```
 */
export function nativeCallsSettled(): Promise<void> {
  if (inFlight === 0) return Promise.resolve();
  return new Promise((resolve) => idle.push(resolve));
}

/** Defers a native free until no call that uses the object is in flight. */
export class Lifetime {
  #pins = 0;
  #closing = false;
  #freed = false;
  #free: () => void;
  #ready: () => boolean;

  /**
   * @param free frees the native object; runs exactly once.
   * @param ready a further condition for the free (e.g. "every child is freed").
   */
  constructor(free: () => void, ready: () => boolean = () => true) {
    this.#free = free;
    this.#ready = ready;
  }

  /** close() was called (the object may still wait for its calls). */
  get closing(): boolean {
    return this.#closing;
  }

  /** The native object has been freed. */
  get freed(): boolean {
    return this.#freed;
  }

  /** Calls in flight. */
  get pins(): number {
    return this.#pins;
  }

  /** Marks a call in flight; the returned function ends it (call it once). */
  pin(): () => void {
    this.#pins++;
    inFlight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#pins--;
      this.settle();
      if (--inFlight === 0) {
        const waiting = idle;
        idle = [];
        for (const resolve of waiting) resolve();
      }
    };
  }

  /** Asks for the free: now when nothing is in flight, otherwise when the last call ends. */
  close(): void {
    this.#closing = true;
    this.settle();
  }

  /** Frees now if closing, unpinned and ready (call again when `ready` may have changed). */
  settle(): void {
    if (!this.#closing || this.#freed || this.#pins > 0 || !this.#ready()) {
      return;
    }
    this.#freed = true;
    this.#free();
  }
}
