/**
 * One generation on a context of its own: prompt in, tokens out, with the
 * stopping criteria (max tokens, end-of-generation, stop strings and tokens,
 * a time limit, the loop detector, context full, cancellation) and UTF-8-safe
 * text. `cli.ts generate` and the benchmarks use it; the host serves guests
 * through the scheduler, which applies the same per-token rules
 * (`_generation.ts`).
 *
 * @example
 * ```ts ignore
 * import { Context, Model, Sampler } from "../../bindings/mod.ts";
 * import { generate } from "./generate.ts";
 * using model = await Model.load(".cache/models/tiny.gguf");
 * const ctx = await Context.create(model, { nCtx: 256 });
 * const sampler = Sampler.create(model, { temp: 0 });
 * const r = await generate(ctx, sampler, model.tokenize("Hello"), { nPredict: 16 });
 * console.log(r.text, r.stopReason);
 * ```
 * @module
 */

import type { Context, Sampler } from "../../bindings/mod.ts";
import { Errno, toWasiNn, WasiNnError } from "../errno.ts";
import {
  checkPromptFits,
  Generation,
  type TokenOutcome,
} from "./_generation.ts";
import type { StopReason } from "./stopping.ts";
import type { TokenProbs } from "./token_probs.ts";

export type { StopReason };

/** Options of `generate`. */
export interface GenerateOptions {
  /** Max tokens to generate; negative = until the context is full. */
  nPredict?: number;
  /** Stop strings. */
  stop?: string[];
  /** Keep the matched stop string in the text (default true, as WasmEdge's reverse-prompt; the server's `stop` drops it). */
  includeStop?: boolean;
  /** Token ids that end generation (the server's stop tokens). */
  stopTokens?: number[];
  /** Stop after this many ms of generation (`t_max_predict_ms`). */
  tMaxPredictMs?: number;
  /** Lines after the first need this much indentation, or the output ends there (`n_indent`). */
  nIndent?: number;
  /** Stop when the tail repeats a cycle of up to `maxCycle` tokens `repeats` times. */
  loop?: { maxCycle: number; repeats: number };
  /** Do not stop at end-of-generation tokens. */
  ignoreEos?: boolean;
  /** Called with each token's bytes as it is generated (not for the EOG token). */
  onToken?: (bytes: Uint8Array, token: number) => void;
  /** Called with text as it becomes safe to show: complete characters, no part of a possible stop string. */
  onText?: (text: string) => void;
  /** When the context fills, discard tokens and go on (the server's context shift) instead of stopping. */
  contextShift?: boolean;
  /** On a shift, tokens kept after the BOS (-1 = the whole prompt; default 0). */
  nKeep?: number;
  /** On a shift, tokens discarded (default: half of what is not kept). */
  nDiscard?: number;
  /** Stops generation (reason "cancelled"). */
  signal?: AbortSignal;
  /** Use blocking FFI calls (fastest; blocks the event loop). Default false. */
  sync?: boolean;
  /** Sequence id in the context (default 0). */
  seqId?: number;
  /** Report the top N candidates (after the sampler chain) of each generated token (`n_probs`); 0 = off. */
  nProbs?: number;
}

/** Timings of one generation. */
export interface Timings {
  /** Prompt tokens decoded. */
  promptTokens: number;
  /** Prompt processing time. */
  promptMs: number;
  /** Generation time. */
  generateMs: number;
  /** Generated tokens per second. */
  tokensPerSecond: number;
}

/** Result of `generate`. */
export interface GenerateResult {
  /** The generated text: complete characters, cut after the stop string (or before it, with includeStop false), EOG token excluded. */
  text: string;
  /** The text as UTF-8. */
  bytes: Uint8Array;
  /** Generated token ids (the EOG token included when it ended generation). */
  tokens: number[];
  /** Why it stopped. */
  stopReason: StopReason;
  /** The stop string (reason "stop") or token (reason "stop_token" or "eos") that matched. */
  stoppedBy?: string | number;
  /** Whether a context shift dropped tokens. */
  truncated: boolean;
  /** Per generated token (EOG included), with `nProbs` > 0. */
  probs?: TokenProbs[];
  /** Timings. */
  timings: Timings;
}

/** Decodes the prompt into an empty sequence; PromptTooLong / ContextFull as WasiNnError. */
export async function evalPrompt(
  ctx: Context,
  prompt: Int32Array<ArrayBuffer>,
  options: { seqId?: number; sync?: boolean } = {},
): Promise<number> {
  const nCtx = ctx.nCtx;
  if (prompt.length === 0) {
    throw new WasiNnError(
      Errno.InvalidArgument,
      "the prompt is empty: call set_input first",
    );
  }
  checkPromptFits(prompt.length, nCtx, "the context");
  const seq = options.seqId ?? 0;
  ctx.seqRemove(seq);
  const t0 = performance.now();
  try {
    if (options.sync) ctx.decodePromptSync(prompt, 0, seq);
    else await ctx.decodePrompt(prompt, 0, seq);
  } catch (e) {
    throw toWasiNn(e);
  }
  return performance.now() - t0;
}

/**
 * Generates after a prompt that `evalPrompt` decoded: samples, checks the
 * stopping criteria, decodes each token. A full context ends generation with
 * reason "context_full" and keeps the output.
 */
export async function generateAfterPrompt(
  ctx: Context,
  sampler: Sampler,
  promptLength: number,
  options: GenerateOptions = {},
): Promise<Omit<GenerateResult, "timings"> & { generateMs: number }> {
  const gen = new Generation(ctx.model, {
    stop: {
      stop: options.stop,
      includeStop: options.includeStop ?? true,
      stopTokens: options.stopTokens,
      nPredict: options.nPredict,
      tMaxPredictMs: options.tMaxPredictMs,
      nIndent: options.nIndent,
      loop: options.loop,
    },
    ignoreEos: options.ignoreEos,
    nProbs: options.nProbs,
    contextShift: options.contextShift
      ? {
        promptLength,
        nKeep: options.nKeep,
        nDiscard: options.nDiscard,
      }
      : undefined,
  });
  const t0 = performance.now();
  const run = {
    seqId: options.seqId,
    signal: options.signal,
    blocking: options.sync,
    onToken: (token: number, out: TokenOutcome) => {
      if (!out.eog) options.onToken?.(out.bytes, token);
      if (out.emit) options.onText?.(out.emit);
    },
  };
  const stop = await gen.run(ctx, sampler, promptLength, run);
  const rest = gen.finish();
  if (rest) options.onText?.(rest);
  const text = gen.text;
  return {
    text,
    bytes: new TextEncoder().encode(text),
    tokens: [...gen.tokens],
    stopReason: stop.reason,
    stoppedBy: stop.matched,
    truncated: gen.truncated,
    ...(gen.probs ? { probs: gen.probs } : {}),
    generateMs: performance.now() - t0,
  };
}

/** Prompt plus generation in one call. */
export async function generate(
  ctx: Context,
  sampler: Sampler,
  prompt: Int32Array<ArrayBuffer>,
  options: GenerateOptions = {},
): Promise<GenerateResult> {
  const promptMs = await evalPrompt(ctx, prompt, options);
  for (const t of prompt) sampler.accept(t);
  const r = await generateAfterPrompt(ctx, sampler, prompt.length, options);
  const n = r.tokens.length;
  return {
    text: r.text,
    bytes: r.bytes,
    tokens: r.tokens,
    stopReason: r.stopReason,
    stoppedBy: r.stoppedBy,
    truncated: r.truncated,
    ...(r.probs ? { probs: r.probs } : {}),
    timings: {
      promptTokens: prompt.length,
      promptMs,
      generateMs: r.generateMs,
      tokensPerSecond: r.generateMs > 0 ? (n * 1000) / r.generateMs : 0,
    },
  };
}
