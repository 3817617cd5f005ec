/**
 * Quotas per guest instance: what one guest may use of a host that serves
 * many. The limits are host keys (unset: no limit), read from the host's
 * config only, so a guest cannot raise its own:
 *
 * | Key                    | What it limits                                                      |
 * | ---------------------- | ------------------------------------------------------------------- |
 * | `guest_max_tokens`     | tokens generated, over all computes                                 |
 * | `guest_max_compute_ms` | wall time spent in compute / compute_single                         |
 * | `guest_max_contexts`   | execution contexts held at once                                     |
 * | `guest_max_kv_tokens`  | KV cache tokens its contexts' sequences hold together               |
 * | `guest_max_load_mb`    | model bytes passed to `load`, over all its load calls               |
 *
 * Over a limit, the call is refused with TooLarge (7) and the host log says
 * which limit, which guest, the value and the limit; the guest runs on, and a
 * later call within the limits works. A compute that would pass
 * `guest_max_tokens` stops at it (its n_predict is capped to what is left).
 * Tokens and time are counted when a compute (or a compute_single step)
 * finishes; tokens a running compute may still generate are reserved, so
 * two computes of one guest never pass the limit together.
 *
 * @example
 * ```ts ignore
 * import { GuestQuota } from "./_quota.ts";
 * const quota = new GuestQuota("guest#1", { guest_max_tokens: 16 }, log);
 * const ticket = quota.begin(session, { prompt: 5, nPredict: 64 });
 * console.log(ticket.nPredict); // 16
 * ticket.end(16);
 * quota.begin(session, { prompt: 5, nPredict: 1 }); // throws TooLarge
 * ```
 * @module
 */

import type { ConfigValues } from "../config/parse.ts";
import { Errno, WasiNnError } from "../errno.ts";
import type { WasiNnHostApi } from "./api.ts";
import type { HostLog } from "./_host_log.ts";

/** The host keys that limit one guest instance. */
export type QuotaKey =
  | "guest_max_tokens"
  | "guest_max_compute_ms"
  | "guest_max_contexts"
  | "guest_max_kv_tokens"
  | "guest_max_load_mb";

/** A context as its guest's quota sees it: the tokens its sequence holds. */
export interface QuotaSession {
  /** Tokens in the KV cache of its sequence now. */
  readonly kvTokens: number;
}

/** What a compute (or one compute_single step) would hold and generate. */
export interface ComputeNeed {
  /** The tokens its sequence holds before generating: the prompt (compute_single: what it holds, plus the prompt at the first step). */
  prompt: number;
  /** Tokens it may generate (-1: until it stops). */
  nPredict: number;
  /** The most its sequence can hold (the context per session). */
  nCtx?: number;
}

/** One admitted compute: what it may generate; `end` counts what it did. */
export interface QuotaTicket {
  /** Its n_predict, capped to the tokens this guest has left. */
  readonly nPredict: number;
  /** Counts the tokens it generated and the time since `begin`; call once. */
  end(generated: number): void;
}

/** What one guest instance used so far. */
export interface QuotaUsage {
  /** Tokens generated. */
  tokens: number;
  /** Wall time spent computing, ms. */
  computeMs: number;
  /** Live execution contexts. */
  contexts: number;
  /** KV cache tokens its contexts hold. */
  kvTokens: number;
  /** Model bytes passed to `load`. */
  loadBytes: number;
}

const MIB = 1024 * 1024;

/** One guest instance's limits and counters. */
export class GuestQuota {
  /** The guest as the log names it. */
  readonly label: string;
  #log: HostLog;
  #limits: Partial<Record<QuotaKey, number>>;
  #tokens = 0;
  #reserved = 0;
  #computeMs = 0;
  #loadBytes = 0;
  #loading = 0;
  #sessions = new Set<QuotaSession>();

  /** The limits of `hostConfig` for the guest `label`. */
  constructor(label: string, hostConfig: ConfigValues, log: HostLog) {
    this.label = label;
    this.#log = log;
    this.#limits = {
      guest_max_tokens: hostConfig.guest_max_tokens,
      guest_max_compute_ms: hostConfig.guest_max_compute_ms,
      guest_max_contexts: hostConfig.guest_max_contexts,
      guest_max_kv_tokens: hostConfig.guest_max_kv_tokens,
      guest_max_load_mb: hostConfig.guest_max_load_mb,
    };
  }

  /** What the guest used so far. */
  get usage(): QuotaUsage {
    return {
      tokens: this.#tokens,
      computeMs: this.#computeMs,
      contexts: this.#sessions.size,
      kvTokens: this.#kvHeld(),
      loadBytes: this.#loadBytes,
    };
  }

  // ------------------------------------------------------------- load

  /** Runs `load` for `bytes` of guest model bytes, within `guest_max_load_mb`; they count once it succeeds. */
  async loading<T>(bytes: number, load: () => Promise<T>): Promise<T> {
    const limit = this.#limits.guest_max_load_mb;
    const after = this.#loadBytes + this.#loading + bytes;
    if (limit !== undefined && after > limit * MIB) {
      this.#refuse(
        "guest_max_load_mb",
        `loading ${mib(bytes)} MiB more would make ${
          mib(after)
        } MiB of models passed to load`,
        `${limit} MiB`,
      );
    }
    this.#loading += bytes;
    try {
      const r = await load();
      this.#loadBytes += bytes;
      return r;
    } finally {
      this.#loading -= bytes;
    }
  }

  // ------------------------------------------------------------- contexts

  /** Throws TooLarge when the guest holds `guest_max_contexts` contexts already. */
  checkContexts(): void {
    const limit = this.#limits.guest_max_contexts;
    if (limit !== undefined && this.#sessions.size >= limit) {
      this.#refuse(
        "guest_max_contexts",
        `it holds ${this.#sessions.size} live execution contexts; a new one would make ${
          this.#sessions.size + 1
        }`,
        String(limit),
        "finalize one first",
      );
    }
  }

  /** A context of this guest was made. */
  opened(s: QuotaSession): void {
    this.#sessions.add(s);
  }

  /** A context of this guest ended (finalized, expired, or the host closed). */
  closed(s: QuotaSession): void {
    this.#sessions.delete(s);
  }

  // ------------------------------------------------------------- computes

  /**
   * Admits a compute of `session`: refuses it (TooLarge) when the guest
   * spent `guest_max_compute_ms`, has no tokens left of `guest_max_tokens`,
   * or would hold more than `guest_max_kv_tokens`; caps its n_predict to the
   * tokens left. Without `need` (an embedding) only the time counts.
   */
  begin(session: QuotaSession, need?: ComputeNeed): QuotaTicket {
    const timeLimit = this.#limits.guest_max_compute_ms;
    if (timeLimit !== undefined && this.#computeMs >= timeLimit) {
      this.#refuse(
        "guest_max_compute_ms",
        `it has computed for ${round(this.#computeMs)} ms`,
        `${timeLimit} ms`,
      );
    }
    let nPredict = need?.nPredict ?? 0;
    let reserved = 0;
    if (need) {
      const tokenLimit = this.#limits.guest_max_tokens;
      if (tokenLimit !== undefined) {
        const left = tokenLimit - this.#tokens - this.#reserved;
        if (left <= 0) {
          this.#refuse(
            "guest_max_tokens",
            `it has generated ${this.#tokens} tokens${
              this.#reserved ? ` (and ${this.#reserved} more are running)` : ""
            }`,
            String(tokenLimit),
          );
        }
        if (nPredict < 0 || nPredict > left) {
          this.#log.log(
            "info",
            `guest '${this.label}': this compute stops after ${left} tokens, what is left of guest_max_tokens ${tokenLimit} (n_predict ${nPredict})`,
          );
          nPredict = left;
        }
        reserved = nPredict;
      }
      this.#checkKv(session, need.prompt, nPredict, need.nCtx);
    }
    this.#reserved += reserved;
    const start = performance.now();
    let ended = false;
    return {
      nPredict,
      end: (generated) => {
        if (ended) return;
        ended = true;
        this.#reserved -= reserved;
        this.#tokens += generated;
        this.#computeMs += performance.now() - start;
      },
    };
  }

  #checkKv(
    session: QuotaSession,
    prompt: number,
    nPredict: number,
    nCtx = Infinity,
  ): void {
    const limit = this.#limits.guest_max_kv_tokens;
    if (limit === undefined) return;
    let others = 0;
    for (const s of this.#sessions) if (s !== session) others += s.kvTokens;
    const own = Math.min(prompt + Math.max(nPredict, 0), nCtx);
    if (others + own > limit) {
      this.#refuse(
        "guest_max_kv_tokens",
        `this compute would make its contexts hold ${
          others + own
        } KV cache tokens (${own} in this one: prompt ${prompt}${
          nPredict > 0 ? ` + n_predict ${nPredict}` : ""
        }; ${others} in its others)`,
        String(limit),
        "finalize a context, or lower n_predict",
      );
    }
  }

  #kvHeld(): number {
    let n = 0;
    for (const s of this.#sessions) n += s.kvTokens;
    return n;
  }

  /** Logs the refusal and throws it: TooLarge, naming the limit, the guest, the value and the limit. */
  #refuse(
    key: QuotaKey,
    value: string,
    limit: string,
    instead?: string,
  ): never {
    const option = `--${key.replaceAll("_", "-")}`;
    const message =
      `guest '${this.label}' is over ${key}: ${value}, the limit is ${limit}; refused with TooLarge (7) (${
        instead ? `${instead}, or ` : ""
      }raise ${key} in the host config: cli.ts ${option})`;
    // The same refusal again (a guest retrying) is logged once.
    this.#log.once("warn", message);
    throw new WasiNnError(Errno.TooLarge, message);
  }
}

/**
 * A view of `host` for one guest instance: `load` and `loadByName` are the
 * guest's own (their graphs carry its quota, and so do the contexts made of
 * them); every other operation is the host's.
 *
 * @example
 * ```ts ignore
 * import { guestView } from "./_quota.ts";
 * const view = guestView(host, { load, loadByName });
 * await view.compute(0);
 * ```
 */
export function guestView(
  host: WasiNnHostApi,
  own: Pick<WasiNnHostApi, "load" | "loadByName">,
): WasiNnHostApi {
  return {
    load: own.load,
    loadByName: own.loadByName,
    initExecutionContext: (graph) => host.initExecutionContext(graph),
    setInput: (ctx, index, tensor) => host.setInput(ctx, index, tensor),
    compute: (ctx) => host.compute(ctx),
    getOutput: (ctx, index) => host.getOutput(ctx, index),
    computeSingle: (ctx) => host.computeSingle(ctx),
    getOutputSingle: (ctx, index) => host.getOutputSingle(ctx, index),
    finiSingle: (ctx) => host.finiSingle(ctx),
    unload: (graph) => host.unload(graph),
    finalizeExecutionContext: (ctx) => host.finalizeExecutionContext(ctx),
  };
}

function mib(bytes: number): string {
  return String(Math.round((bytes / MIB) * 100) / 100);
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
