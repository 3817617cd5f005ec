/**
 * A priority queue with levels, FIFO order within a level, and aging so that
 * nothing starves: an entry's effective priority grows by one level for
 * every `agingMs` it waits.
 *
 * @example
 * ```ts
 * import { PriorityQueue } from "./_priority_queue.ts";
 * let now = 0;
 * const q = new PriorityQueue<string>({ agingMs: 1000, now: () => now });
 * q.push("low", 0);
 * q.push("high", 5);
 * console.log(q.pop()); // "high"
 * ```
 * @module
 */

interface Entry<T> {
  item: T;
  priority: number;
  enqueued: number;
  seq: number;
}

/** Options of `PriorityQueue`. */
export interface PriorityQueueOptions {
  /** Milliseconds of waiting worth one priority level (0 = no aging). */
  agingMs?: number;
  /** Clock in ms (injectable for tests). */
  now?: () => number;
}

/** Priority levels, FIFO within a level, aging. */
export class PriorityQueue<T> {
  #entries: Entry<T>[] = [];
  #seq = 0;
  #agingMs: number;
  #now: () => number;

  /** Creates an empty queue. */
  constructor(options: PriorityQueueOptions = {}) {
    this.#agingMs = options.agingMs ?? 0;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Number of waiting entries. */
  get size(): number {
    return this.#entries.length;
  }

  /** Adds an entry at a priority level (higher runs first). */
  push(item: T, priority = 0): void {
    this.#entries.push({
      item,
      priority,
      enqueued: this.#now(),
      seq: this.#seq++,
    });
  }

  /** Removes an entry (e.g. a cancelled task). Returns whether it was there. */
  remove(item: T): boolean {
    const i = this.#entries.findIndex((e) => e.item === item);
    if (i < 0) return false;
    this.#entries.splice(i, 1);
    return true;
  }

  /** The effective priority of an entry now. */
  #effective(e: Entry<T>, now: number): number {
    return this.#agingMs > 0
      ? e.priority + (now - e.enqueued) / this.#agingMs
      : e.priority;
  }

  /** The entry that runs next, without removing it. */
  peek(): T | undefined {
    return this.#best()?.item;
  }

  #best(): Entry<T> | undefined {
    const now = this.#now();
    let best: Entry<T> | undefined;
    let bestP = -Infinity;
    for (const e of this.#entries) {
      const p = this.#effective(e, now);
      if (p > bestP || (p === bestP && best && e.seq < best.seq)) {
        best = e;
        bestP = p;
      }
    }
    return best;
  }

  /** Removes and returns the entry that runs next. */
  pop(): T | undefined {
    const best = this.#best();
    if (!best) return undefined;
    this.#entries.splice(this.#entries.indexOf(best), 1);
    return best.item;
  }

  /** All entries, in no particular order. */
  items(): T[] {
    return this.#entries.map((e) => e.item);
  }
}
