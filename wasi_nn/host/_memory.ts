/**
 * Memory checks before the host makes something big: a model file must fit
 * in what `max_memory_mb` leaves, and a context's KV cache (then llama.cpp's
 * own estimate of its context and compute buffers) must fit in free memory
 * (capped by `max_memory_mb`). When it does not, what no session uses is
 * reclaimed first; then the request is refused with the numbers.
 *
 * @example
 * ```ts
 * import { mib, MemoryBudget } from "./_memory.ts";
 * const budget = new MemoryBudget(256, () => 100 * 1048576, () => false);
 * console.log(mib(budget.free(1 << 30))); // 156 MiB
 * ```
 * @module
 */

import type { ContextOptions } from "../../bindings/mod.ts";
import { kvCacheBytes } from "../engine/_kv_memory.ts";
import { Errno, WasiNnError } from "../errno.ts";
import type { ModelEntry } from "./_models.ts";
import type { ModelSplit } from "./_model_split.ts";

/** Formats bytes as whole MiB (whole KiB below 1 MiB, where "0 MiB" would say nothing). */
export function mib(x: number): string {
  return x > 0 && x < 1048576
    ? `${Math.round(x / 1024)} KiB`
    : `${(x / 1048576).toFixed(0)} MiB`;
}

/** A file's size in bytes (0 when it cannot be read). */
export function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * More than llama.cpp's compute and output buffers take for a context: per
 * token of a micro-batch, the logits, 32 activations of the embedding width
 * and (without flash attention) the attention scores over the whole context,
 * plus 64 MiB.
 */
export function bufferBound(m: ModelEntry, o: ContextOptions): number {
  const info = m.model.info;
  const nUbatch = o.nUbatch ?? o.nBatch ?? 512;
  const perToken = info.n_vocab + 32 * info.n_embd +
    info.n_head * (o.nCtx ?? 0);
  return 4 * nUbatch * perToken + 64 * 1048576;
}

/** The host's memory limit and the checks made against it. */
export class MemoryBudget {
  #limit: number | undefined;
  #usage: () => number;
  #reclaim: (keep: ModelEntry) => boolean;

  /**
   * `limitMb`: max_memory_mb (undefined or 0: free memory only). `usage`:
   * the bytes the host holds now. `reclaim`: frees what no session uses but
   * `keep`'s, and says whether anything was freed.
   */
  constructor(
    limitMb: number | undefined,
    usage: () => number,
    reclaim: (keep: ModelEntry) => boolean,
  ) {
    this.#limit = limitMb ? limitMb * 1048576 : undefined;
    this.#usage = usage;
    this.#reclaim = reclaim;
  }

  /** Free memory, capped by what max_memory_mb leaves after everything this host holds. */
  free(available: number): number {
    const limit = this.#limit;
    return limit === undefined
      ? available
      : Math.max(0, Math.min(limit - this.#usage(), available));
  }

  /** Refuses a model file that does not fit in what max_memory_mb leaves. */
  checkModelFits(
    path: string,
    label: string,
    split: ModelSplit = { local: fileSize(path), remote: 0, shares: [] },
  ): void {
    for (const d of split.shares) {
      if (d.free !== undefined && d.bytes > d.free) {
        throw new WasiNnError(
          Errno.RuntimeError,
          `model '${label}': the ${
            mib(d.bytes)
          } of it that go to ${d.label} do not fit in its ${
            mib(d.free)
          } free; offload fewer layers (n_gpu_layers), give it a smaller tensor_split share, or add a server`,
        );
      }
    }
    const limit = this.#limit;
    if (limit === undefined) return;
    const size = split.local, used = this.#usage();
    if (size > limit - used) {
      throw new WasiNnError(
        Errno.RuntimeError,
        `model '${label}' (${mib(size)}${
          split.remote > 0 ? ` here, besides what is on the RPC servers` : ""
        }) does not fit in max_memory_mb ${limit / 1048576} with ${
          mib(used)
        } already in use by this host; raise max_memory_mb or free other models and sessions`,
      );
    }
  }

  /**
   * Refuses, with numbers, a context whose KV cache alone cannot fit in free
   * memory (or `max_memory_mb`), counting the KV cache types asked for. Cheap
   * and blocking: every context is checked this way.
   */
  checkKv(m: ModelEntry, o: ContextOptions): number {
    const nCtx = o.nCtx!, nSeq = o.nSeqMax ?? 1;
    if (nCtx > 0x7fffffff) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `ctx-size x parallel = ${nCtx} tokens exceeds llama.cpp's limit of ${0x7fffffff}; lower ctx-size or parallel`,
      );
    }
    const kv = kvCacheBytes(m.model.info, nCtx, o.typeK, o.typeV);
    const free = () => this.free(Deno.systemMemoryInfo().available);
    if (kv > free() && !(this.#reclaim(m) && kv <= free())) {
      throw this.#refuse(m, nCtx, nSeq, kv, free());
    }
    return kv;
  }

  /**
   * `checkKv`, then llama.cpp's own estimate of the context and compute
   * buffers; the bytes to count. The estimate loads the model's metadata
   * again (60-100 ms): without max_memory_mb, when free memory holds twice
   * the KV cache plus a generous bound on those buffers, it is skipped.
   */
  async check(m: ModelEntry, o: ContextOptions): Promise<number> {
    const kv = this.checkKv(m, o);
    if (
      this.#limit === undefined &&
      Deno.systemMemoryInfo().available > 2 * (kv + bufferBound(m, o))
    ) {
      return kv;
    }
    let est;
    try {
      est = await m.engine.estimate(m.path, {
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
    const known = host.free > 0 || this.#limit !== undefined;
    const fits = () => !known || need <= this.free(host.free);
    if (!fits() && !(this.#reclaim(m) && fits())) {
      throw this.#refuse(
        m,
        o.nCtx!,
        o.nSeqMax ?? 1,
        need,
        this.free(host.free),
      );
    }
    return Math.max(kv, need);
  }

  #refuse(
    m: ModelEntry,
    nCtx: number,
    nSeq: number,
    need: number,
    free: number,
  ): WasiNnError {
    const limit = this.#limit;
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
}
