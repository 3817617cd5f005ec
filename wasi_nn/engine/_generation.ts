/**
 * The per-token part of every generation loop (`generate()`, the host's
 * blocking compute, the scheduler): what a sampled token means (end of
 * generation, text to release, a stopping criterion met) and what a decode's
 * status means (context full, cancelled, or an error). The loops differ only
 * in how they sample and decode.
 *
 * @example
 * ```ts ignore
 * import { Context, Model, Sampler } from "../../bindings/mod.ts";
 * import { Generation } from "./_generation.ts";
 * using model = await Model.load(".cache/models/tiny.gguf");
 * const ctx = await Context.create(model, { nCtx: 128 });
 * using sampler = Sampler.create(model, { temp: 0 });
 * const prompt = model.tokenize("Hello");
 * await ctx.decodePrompt(prompt);
 * const gen = new Generation(model, { stop: { nPredict: 8 } });
 * const stop = await gen.run(ctx, sampler, prompt.length);
 * gen.finish();
 * console.log(stop.reason, gen.text); // length ...
 * ```
 * @module
 */

import {
  type Context,
  type LlamaError,
  type Model,
  type Sampler,
  Status,
  type StepResult,
} from "../../bindings/mod.ts";
import { Errno, toWasiNn, WasiNnError } from "../errno.ts";
import { StopChecker, type StopOptions, type StopStep } from "./stopping.ts";
import { type TokenProbs, tokenProbs } from "./token_probs.ts";
import { memoryTraits } from "./_prompt_cache.ts";

/** What ends a generation, and the stop string or token that did. */
export type GenerationStop = NonNullable<StopStep["stop"]>;

/** Options of `Generation`. */
export interface GenerationOptions {
  /** Stopping criteria. */
  stop?: StopOptions;
  /** Generate past end-of-generation tokens. */
  ignoreEos?: boolean;
  /** Record the top N candidates of every token (`n_probs`); 0 = off. */
  nProbs?: number;
  /** In `run`: shift the context when it fills instead of stopping (the model says whether it adds a BOS). */
  contextShift?: Omit<ShiftOptions, "addBos">;
}

/** How a context shift makes room (the server's rule, see `shiftSpan`). */
export interface ShiftOptions {
  /** Prompt tokens (what n_keep -1 keeps). */
  promptLength: number;
  /** Whether the model adds a BOS token (always kept). */
  addBos: boolean;
  /** Tokens kept after the BOS (-1 = the prompt; default 0). */
  nKeep?: number;
  /** Tokens discarded (default: half of what is not kept). */
  nDiscard?: number;
}

/**
 * Throws PromptTooLong unless a prompt of `length` tokens leaves room to
 * generate in `holder` (a context of `nCtx` tokens): at most `nCtx - 4`.
 *
 * @example
 * ```ts
 * import { checkPromptFits } from "./_generation.ts";
 * checkPromptFits(100, 512, "the context"); // fits: nothing happens
 * ```
 */
export function checkPromptFits(
  length: number,
  nCtx: number,
  holder: string,
): void {
  if (length > nCtx - 4) {
    throw new WasiNnError(
      Errno.PromptTooLong,
      `the prompt is ${length} tokens but ${holder} holds ${nCtx} (at most ${
        nCtx - 4
      } prompt tokens); shorten the prompt or raise ctx-size`,
    );
  }
}

/**
 * The server's context shift: keep the BOS and `nKeep` tokens (-1: the
 * prompt), discard `nDiscard` of the rest (0 or unset: half). Undefined
 * when nothing can be discarded.
 *
 * @example
 * ```ts
 * import { shiftSpan } from "./_generation.ts";
 * console.log(shiftSpan(64, 64, { promptLength: 10, addBos: true })); // { keep: 1, discard: 31 }
 * ```
 */
export function shiftSpan(
  pos: number,
  nCtx: number,
  o: ShiftOptions,
): { keep: number; discard: number } | undefined {
  const asked = o.nKeep ?? 0;
  let keep = asked < 0 ? o.promptLength : asked;
  if (o.addBos) keep += 1;
  keep = Math.min(nCtx - 4, keep);
  const left = pos - keep;
  const discard = Math.max(
    0,
    Math.min(o.nDiscard ? o.nDiscard : Math.floor(left / 2), left - 1),
  );
  return discard > 0 ? { keep, discard } : undefined;
}

/**
 * Shifts a full sequence as the server does (see `shiftSpan`): removes the
 * discarded positions and moves the rest down. Returns what it kept and
 * discarded; undefined when nothing could be discarded (nothing changed).
 *
 * @example
 * ```ts ignore
 * const span = shiftContext(ctx, 0, pos, 512, { promptLength: 10, addBos: true });
 * if (span) pos -= span.discard;
 * ```
 */
export function shiftContext(
  ctx: Context,
  seq: number,
  pos: number,
  nCtx: number,
  o: ShiftOptions,
): { keep: number; discard: number } | undefined {
  const span = shiftSpan(pos, nCtx, o);
  if (!span) return undefined;
  ctx.seqRemove(seq, span.keep, span.keep + span.discard);
  ctx.seqAdd(seq, span.keep + span.discard, pos, -span.discard);
  return span;
}

/** Options of `Generation.run`. */
export interface RunOptions {
  /** Sequence id in the context (default 0). */
  seqId?: number;
  /** Context length to stay within (default the context's; llama.cpp may round it up from what was asked). */
  nCtx?: number;
  /** Stops generation before the next step (reason "cancelled"). */
  signal?: AbortSignal;
  /** Each sampled token and what it means (its bytes, the text it releases). */
  onToken?: (token: number, out: TokenOutcome) => void;
  /** Each step is a blocking FFI call (faster for small models; the event loop waits). */
  blocking?: boolean;
}

/** What one sampled token means. */
export interface TokenOutcome {
  /** The token is an end-of-generation token (and ends the generation). */
  eog: boolean;
  /** Its bytes (empty for an end-of-generation token). */
  bytes: Uint8Array;
  /** Text that is safe to release now. */
  emit: string;
  /** Set when the generation ends with this token. */
  stop?: GenerationStop;
}

/** One generation's state: its tokens, text, stop reason and `n_probs` report. */
export class Generation {
  #model: Model;
  #stopper: StopChecker;
  #ignoreEos: boolean;
  #nProbs: number;
  #shift?: ShiftOptions;
  /** Per generated token (end-of-generation included), when `nProbs` > 0. */
  readonly probs?: TokenProbs[];
  /** Whether a context shift dropped tokens. */
  truncated = false;

  /** Starts a generation; its time limit starts now. */
  constructor(model: Model, options: GenerationOptions = {}) {
    this.#model = model;
    this.#stopper = new StopChecker(options.stop);
    this.#ignoreEos = options.ignoreEos ?? false;
    this.#nProbs = Math.min(
      Math.max(0, Math.floor(options.nProbs ?? 0)),
      model.nVocab,
    );
    if (this.#nProbs > 0) this.probs = [];
    this.#shift = options.contextShift && {
      ...options.contextShift,
      addBos: model.info.add_bos,
    };
  }

  /** The text so far (cut at a matched stop string). */
  get text(): string {
    return this.#stopper.text;
  }

  /** Generated tokens (the end-of-generation token included when it ended generation). */
  get tokens(): readonly number[] {
    return this.#stopper.tokens;
  }

  /** True when the token budget is used up before sampling another token. */
  exhausted(): boolean {
    return this.#stopper.exhausted();
  }

  /** Records a token just sampled by `sampler`. */
  take(token: number, sampler: Sampler): TokenOutcome {
    if (this.probs) {
      this.probs.push(tokenProbs(sampler, this.#model, token, this.#nProbs));
    }
    if (!this.#ignoreEos && this.#model.isEog(token)) {
      const step = this.#stopper.pushEog(token);
      return { eog: true, bytes: new Uint8Array(0), ...step };
    }
    const bytes = this.#model.tokenBytes(token);
    return { eog: false, bytes, ...this.#stopper.push(token, bytes) };
  }

  /**
   * After a token was decoded so that the next one goes at `nextPos`: a full
   * context or a cancelled decode ends the generation; any other decode error
   * is thrown as a WasiNnError.
   */
  afterDecode(
    error: LlamaError | undefined,
    nextPos: number,
    nCtx: number,
  ): GenerationStop | undefined {
    if (error) {
      if (error.code === Status.NoKvSpace) return { reason: "context_full" };
      if (error.code === Status.Cancelled) return { reason: "cancelled" };
      throw toWasiNn(error);
    }
    return nextPos >= nCtx ? { reason: "context_full" } : undefined;
  }

  /**
   * Generates on `ctx` until a stopping criterion is met: each step samples,
   * then decodes the token at `pos`, `pos + 1`, ... `onToken` gets each token
   * and the text it releases. With `blocking`, each step is one blocking FFI
   * call (the event loop waits); otherwise it runs while the loop goes on.
   */
  async run(
    ctx: Context,
    sampler: Sampler,
    pos: number,
    options: RunOptions = {},
  ): Promise<GenerationStop> {
    for (;;) {
      const stop = this.#before(options.signal);
      if (stop) return stop;
      const at = { pos, seqId: options.seqId };
      const r = options.blocking
        ? ctx.stepSync(sampler, at)
        : await ctx.step(sampler, at);
      const next = this.#next(ctx, sampler, r, pos, options);
      if (typeof next !== "number") return next;
      pos = next;
    }
  }

  /**
   * After a step that decoded at `pos`: the position of the next step, or
   * why generation ends. A full context is shifted when shifting is on.
   */
  #next(
    ctx: Context,
    sampler: Sampler,
    r: StepResult,
    pos: number,
    options: RunOptions,
  ): number | GenerationStop {
    const out = this.take(r.token, sampler);
    options.onToken?.(r.token, out);
    if (out.stop) return out.stop;
    const nCtx = options.nCtx ?? ctx.nCtx;
    const stop = this.afterDecode(r.error, pos + 1, nCtx);
    if (!stop) return pos + 1;
    const room = stop.reason === "context_full" && !r.error
      ? this.#makeRoom(ctx, pos + 1, nCtx, options.seqId ?? 0)
      : 0;
    return room > 0 ? pos + 1 - room : stop;
  }

  /** Shifts a full context when shifting is on; returns how many positions were freed (0: none). */
  #makeRoom(ctx: Context, pos: number, nCtx: number, seq: number): number {
    if (!this.#shift || !memoryTraits(ctx.model.info, ctx.canShift).canShift) {
      return 0;
    }
    const span = shiftContext(ctx, seq, pos, nCtx, this.#shift);
    if (!span) return 0;
    this.truncated = true;
    return span.discard;
  }

  #before(signal?: AbortSignal): GenerationStop | undefined {
    if (this.exhausted()) return { reason: "length" };
    if (signal?.aborted) return { reason: "cancelled" };
    return undefined;
  }

  /** Ends the generation: releases the text still held back. */
  finish(): string {
    return this.#stopper.flush();
  }
}
