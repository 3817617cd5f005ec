/**
 * A scheduler's slot table, as the server's slots with `cache_prompt`: which
 * session holds which sequence of the shared context, and when a session
 * loses it. A session keeps its slot (and its cached tokens) after a task; a
 * task that needs a slot takes a free one, else the least recently used one
 * of an idle session; idle sessions lose theirs under memory pressure or past
 * `maxCacheTokens`.
 *
 * @example
 * ```ts
 * import { Slots } from "./_slots.ts";
 * const slots = new Slots(2, () => {});
 * const owner = { id: "a", cached: [], checkpoints: [], lastUsed: 0 };
 * console.log(slots.take(owner), slots.used); // 0 1
 * ```
 * @module
 */

import type { SlotOwner } from "./_task.ts";

/** The slots of one context, each empty or held by a session. */
export class Slots {
  #slots: (SlotOwner | undefined)[];
  #clear: (slot: number) => void;

  /** `n` slots; `clear(slot)` empties a slot's sequence when its session loses it. */
  constructor(n: number, clear: (slot: number) => void) {
    this.#slots = new Array(n).fill(undefined);
    this.#clear = clear;
  }

  /** Slots holding a session's tokens. */
  get used(): number {
    return this.#slots.filter(Boolean).length;
  }

  /** Slots a queued task could take now: empty, or held by an idle session. */
  available(): number {
    let n = 0;
    for (const o of this.#slots) {
      if (!o?.running || o.running.queued) n++;
    }
    return n;
  }

  /** Finds a slot for an owner: its own, a free one, or the least recently used idle one. */
  take(owner: SlotOwner): number | undefined {
    if (owner.slot !== undefined) return owner.slot;
    let slot = this.#slots.findIndex((o) => o === undefined);
    if (slot < 0) {
      let lru: SlotOwner | undefined;
      for (const o of this.#slots) {
        // A session whose task is only queued may lose its slot (and its cache).
        const busy = o?.running && !o.running.queued;
        if (o && !busy && (!lru || o.lastUsed < lru.lastUsed)) lru = o;
      }
      if (!lru) return undefined;
      slot = lru.slot!;
      this.free(lru);
    }
    this.#slots[slot] = owner;
    owner.slot = slot;
    owner.cached = [];
    owner.checkpoints = [];
    return slot;
  }

  /** Frees a session's slot (its cached tokens are dropped). */
  free(owner: SlotOwner): void {
    if (owner.slot !== undefined) {
      this.#clear(owner.slot);
      this.#slots[owner.slot] = undefined;
      owner.slot = undefined;
    }
    owner.cached = [];
    owner.checkpoints = [];
  }

  /**
   * Frees idle sessions' slots: all of them when `memoryPressure()` says so
   * (asked only when some session is idle), otherwise the least recently
   * used ones until the cached tokens of idle sessions fit in
   * `maxCacheTokens`. Returns how many slots were freed.
   */
  trim(memoryPressure?: () => boolean, maxCacheTokens?: number): number {
    const idle = this.#slots.filter((o): o is SlotOwner =>
      o !== undefined && !o.running
    );
    if (idle.length === 0) return 0;
    if (memoryPressure?.()) {
      for (const o of idle) this.free(o);
      return idle.length;
    }
    if (maxCacheTokens === undefined) return 0;
    let total = idle.reduce((n, o) => n + o.cached.length, 0);
    let freed = 0;
    idle.sort((a, b) => a.lastUsed - b.lastUsed);
    for (const o of idle) {
      if (total <= maxCacheTokens) break;
      total -= o.cached.length;
      this.free(o);
      freed++;
    }
    return freed;
  }
}
