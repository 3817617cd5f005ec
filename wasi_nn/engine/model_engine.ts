/**
 * A model's engine: what runs llama.cpp for one loaded model (its contexts,
 * its schedulers, its embedding context). The host drives every engine
 * through this one interface; {@linkcode LocalEngine} runs in the host's
 * process, `EngineProcess` (`./process/engine_process.ts`) in a child
 * process of its own, so that a llama.cpp abort ends only that model's
 * sessions.
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { LocalEngine } from "./model_engine.ts";
 * import { ensureModel } from "../../gguf/synthetic_model.ts";
 *
 * const engine = new LocalEngine(await Model.load((await ensureModel("tiny")).path));
 * const sched = await engine.scheduler({ nSeq: 1, nCtxPerSeq: 256 });
 * console.log(sched.nCtxPerSeq); // 256
 * sched.close();
 * await engine.close();
 * ```
 * @module
 */

import {
  Context,
  type ContextOptions,
  estimateMemory,
  type MemoryEstimate,
  type Model,
  type Mtmd,
  type PlanOptions,
} from "../../bindings/mod.ts";
import { evalPrompt } from "./generate.ts";
import { Errno, WasiNnError } from "../errno.ts";
import {
  loadProjector,
  type MediaInput,
  type MediaPrompt,
  mediaPrompt,
  type ProjectorOptions,
} from "./_media_prompt.ts";
import { Scheduler } from "./scheduler.ts";

/**
 * What the host asks of a scheduler, wherever it runs: the shape, the
 * counters, the sessions' records, tasks, and saving a session.
 */
export type EngineScheduler = Pick<
  Scheduler,
  | "nCtxPerSeq"
  | "kvBytes"
  | "nSeq"
  | "stats"
  | "owners"
  | "newOwner"
  | "dropOwner"
  | "saveOwner"
  | "restoreOwner"
  | "submit"
  | "close"
>;

/** A scheduler's options, and the memory-pressure threshold (a fraction of the machine's memory) that drives `memoryPressure`. */
export type EngineSchedulerOptions =
  & Omit<import("./scheduler.ts").SchedulerOptions, "memoryPressure" | "now">
  & { pressure?: number };

/** A context that embeds prompts (one at a time). */
export interface EmbedContext {
  /** llama.cpp's pooling type of the context. */
  readonly poolingType: number;
  /**
   * Decodes `prompt` (replacing what the context held) and returns the
   * embedding of sequence `seq` (-1: the last token's), normalised with
   * `norm` (llama.cpp's embd_normalize; -1: none).
   */
  embed(
    prompt: Int32Array<ArrayBuffer>,
    seq: number,
    norm: number,
  ): Promise<Float32Array>;
  /** Frees the context. */
  close(): void;
}

/** A loaded model's engine. */
export interface ModelEngine {
  /** Where it runs. */
  readonly kind: "in_process" | "process";
  /** A scheduler (one llama.cpp context shared by nSeq sessions). */
  scheduler(opts: EngineSchedulerOptions): Promise<EngineScheduler>;
  /** An embedding context. */
  embedContext(opts: ContextOptions): Promise<EmbedContext>;
  /** llama.cpp's memory estimate for a context of the model at `path`. */
  estimate(path: string, opts: PlanOptions): Promise<MemoryEstimate>;
  /** Loads the model's projector (`mmproj`): its prompts may then take media. */
  projector(path: string, opts: ProjectorOptions): Promise<void>;
  /**
   * Tokenizes `text` with `media` through the projector (see
   * `mediaPrompt`); the caller closes the result. Without a projector,
   * InvalidArgument.
   */
  mediaPrompt(text: string, media: MediaInput[]): Promise<MediaPrompt>;
  /** Frees the model and what the engine made for it; settles when it is gone. */
  close(): Promise<void>;
}

/** The fraction of the machine's memory in use (0..1). */
export function memoryInUse(): number {
  const m = Deno.systemMemoryInfo();
  return m.total > 0 ? 1 - m.available / m.total : 0;
}

/** An engine in this process, over a loaded model (which it owns and frees). */
export class LocalEngine implements ModelEngine {
  /** In this process. */
  readonly kind = "in_process";
  /** The model. */
  readonly model: Model;
  #mtmd?: Mtmd;

  /** The engine of `model`; `close()` frees the model. */
  constructor(model: Model) {
    this.model = model;
  }

  /** Loads the projector (the model owns it). */
  async projector(path: string, opts: ProjectorOptions): Promise<void> {
    this.#mtmd?.close();
    this.#mtmd = await loadProjector(this.model, path, opts);
  }

  /** A prompt with media, tokenized here. */
  mediaPrompt(text: string, media: MediaInput[]): Promise<MediaPrompt> {
    if (!this.#mtmd) {
      return Promise.reject(
        new WasiNnError(Errno.InvalidArgument, "the model has no projector"),
      );
    }
    return mediaPrompt(this.#mtmd, text, media);
  }

  /** A scheduler over a new context of the model. */
  scheduler(opts: EngineSchedulerOptions): Promise<EngineScheduler> {
    const { pressure, ...rest } = opts;
    return Scheduler.create(this.model, {
      ...rest,
      memoryPressure: pressure === undefined
        ? undefined
        : () => memoryInUse() > pressure,
    });
  }

  /** An embedding context of the model. */
  async embedContext(opts: ContextOptions): Promise<EmbedContext> {
    const ctx = await Context.create(this.model, opts);
    return {
      poolingType: ctx.poolingType,
      embed: async (prompt, seq, norm) => {
        await evalPrompt(ctx, prompt);
        return ctx.embeddings(seq, norm);
      },
      close: () => ctx.close(),
    };
  }

  /** llama.cpp's estimate, in this process. */
  estimate(path: string, opts: PlanOptions): Promise<MemoryEstimate> {
    return estimateMemory(path, opts);
  }

  /** Frees the model. */
  close(): Promise<void> {
    this.model.close();
    return Promise.resolve();
  }
}
