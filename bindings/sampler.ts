/**
 * `Sampler`: llama.cpp's common sampler chain (the one llama.cpp's server
 * uses), built from one flat parameter set, so a given seed and parameters
 * pick exactly the tokens llama.cpp's own tools pick.
 *
 * @example
 * ```ts ignore
 * import { Model } from "./model.ts";
 * import { Sampler } from "./sampler.ts";
 * using model = await Model.load(".cache/models/tiny.gguf");
 * const sampler = Sampler.create(model, { temp: 0.7, top_k: 40, seed: 42 });
 * console.log(sampler.seed);
 * ```
 * @module
 */

import { symbols } from "./_library.ts";
import { check, cstr, errorBuffer } from "./_buffers.ts";
import { readStruct, SAMPLER_PARAMS, writeStruct } from "./_struct.ts";
import { LlamaError, Status } from "./errors.ts";
import { Lifetime } from "./_lifetime.ts";
import { GRAMMAR_TRIGGER_TYPES } from "./types.ts";
import type { Model } from "./model.ts";

/** Scalar sampling parameters, named as in llama.cpp's `common_params_sampling`. */
export interface SamplerScalars {
  /** RNG seed; 0xFFFFFFFF = random. */
  seed: number;
  /** Tokens of history the sampler remembers. */
  n_prev: number;
  /** Top-N probabilities to report per token (0 = none). */
  n_probs: number;
  /** Samplers keep at least this many candidates. */
  min_keep: number;
  /** Top-k; <= 0 = vocabulary size. */
  top_k: number;
  /** Nucleus sampling; 1 = off. */
  top_p: number;
  /** Min-p; 0 = off. */
  min_p: number;
  /** XTC probability; 0 = off. */
  xtc_probability: number;
  /** XTC threshold; > 0.5 = off. */
  xtc_threshold: number;
  /** Locally typical sampling; 1 = off. */
  typ_p: number;
  /** Temperature; <= 0 = greedy. */
  temp: number;
  /** Dynamic temperature range; 0 = off. */
  dynatemp_range: number;
  /** Dynamic temperature exponent. */
  dynatemp_exponent: number;
  /** Penalty window; 0 = off, -1 = context size. */
  penalty_last_n: number;
  /** Repetition penalty; 1 = off. */
  penalty_repeat: number;
  /** Frequency penalty; 0 = off. */
  penalty_freq: number;
  /** Presence penalty; 0 = off. */
  penalty_present: number;
  /** DRY multiplier; 0 = off. */
  dry_multiplier: number;
  /** DRY base. */
  dry_base: number;
  /** DRY allowed repeat length. */
  dry_allowed_length: number;
  /** DRY window; 0 = off, -1 = context size. */
  dry_penalty_last_n: number;
  /** 0 off, 1 Mirostat, 2 Mirostat 2.0. */
  mirostat: number;
  /** Mirostat target entropy. */
  mirostat_tau: number;
  /** Mirostat learning rate. */
  mirostat_eta: number;
  /** Top-n-sigma; -1 = off. */
  top_n_sigma: number;
  /** Adaptive-p target; negative = off. */
  adaptive_target: number;
  /** Adaptive-p decay. */
  adaptive_decay: number;
  /** Never stop on end-of-generation tokens (they are banned). */
  ignore_eos: boolean;
}

/** A grammar trigger for lazy grammars. */
export interface GrammarTrigger {
  /** "token", "word", "pattern" or "pattern_full". */
  type: typeof GRAMMAR_TRIGGER_TYPES[number];
  /** The token, for type "token". */
  token?: number;
  /** The word or regex, for the other types. */
  value?: string;
}

/** Everything a sampler chain takes. */
export interface SamplerParams extends SamplerScalars {
  /** Sampler order by name ("penalties", "dry", "top_k", ...); default llama.cpp's. */
  samplers?: string[];
  /** DRY sequence breakers; default llama.cpp's. */
  dry_sequence_breakers?: string[];
  /** GBNF grammar. */
  grammar?: string;
  /** Apply the grammar only after a trigger. */
  grammar_lazy?: boolean;
  /** Triggers of a lazy grammar. */
  grammar_triggers?: GrammarTrigger[];
  /** Logit biases; -Infinity bans a token. */
  logit_bias?: { token: number; bias: number }[];
}

/** llama.cpp's defaults (read from the library, `common_params_sampling`). */
export function defaultSamplerParams(): SamplerScalars {
  const b = new Uint8Array(SAMPLER_PARAMS.size);
  symbols().wnb_sampler_default_params(b);
  const r = readStruct(SAMPLER_PARAMS, b);
  const out: Record<string, number | boolean> = {};
  for (const [k, v] of Object.entries(r)) {
    if (
      typeof v === "bigint" || k.startsWith("reserved") || k.startsWith("n_")
    ) {
      if (k === "n_prev" || k === "n_probs") out[k] = Number(v);
      continue;
    }
    out[k] = k === "ignore_eos" || k === "grammar_lazy" ? v !== 0 : Number(v);
  }
  delete out.grammar_lazy;
  return out as unknown as SamplerScalars;
}

function ptr(
  buf: Uint8Array<ArrayBuffer> | BigUint64Array<ArrayBuffer>,
): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/** A sampler chain. Create with `Sampler.create`; owned by its model. */
export class Sampler {
  #ptr: Deno.PointerValue;
  /** Freed once closed and no context call that uses it is in flight. */
  #life = new Lifetime(() => this.#free());
  #model: Model;
  #err = errorBuffer();
  #probTokens = new Int32Array(0);
  #probValues = new Float32Array(0);

  private constructor(ptr: Deno.PointerValue, model: Model) {
    this.#ptr = ptr;
    this.#model = model;
    model.adopt(this);
  }

  /** Builds a chain; unspecified parameters take llama.cpp's defaults. */
  static create(model: Model, params: Partial<SamplerParams> = {}): Sampler {
    const s = symbols();
    const b = new Uint8Array(SAMPLER_PARAMS.size);
    s.wnb_sampler_default_params(b);
    const scalars: Record<string, number | bigint | boolean | undefined> = {};
    for (const [k, v] of Object.entries(params)) {
      if (typeof v === "number" || typeof v === "boolean") scalars[k] = v;
    }
    if (params.ignore_eos !== undefined) {
      scalars.ignore_eos = Number(params.ignore_eos);
    }
    if (params.grammar_lazy !== undefined) {
      scalars.grammar_lazy = Number(params.grammar_lazy);
    }
    for (const k of Object.keys(scalars)) {
      if (
        !(k in SAMPLER_PARAMS.fields) ||
        SAMPLER_PARAMS.fields[k as never]["type"] === "ptr"
      ) {
        throw new LlamaError(
          Status.InvalidArgument,
          `unknown sampler parameter '${k}'`,
        );
      }
    }
    // Keep every buffer referenced until wnb_sampler_new returns (it copies them).
    const keep: (Uint8Array<ArrayBuffer> | BigUint64Array<ArrayBuffer>)[] = [];
    const str = (x: string) => {
      const c = cstr(x);
      keep.push(c);
      return ptr(c);
    };
    if (params.samplers) scalars.samplers = str(params.samplers.join(";"));
    if (params.grammar) scalars.grammar = str(params.grammar);
    if (params.dry_sequence_breakers) {
      const arr = new BigUint64Array(
        Math.max(1, params.dry_sequence_breakers.length),
      );
      params.dry_sequence_breakers.forEach((x, i) => arr[i] = str(x));
      keep.push(arr);
      scalars.dry_sequence_breakers = ptr(arr);
      scalars.n_dry_sequence_breakers = params.dry_sequence_breakers.length;
    }
    if (params.grammar_triggers?.length) {
      const t = new Uint8Array(16 * params.grammar_triggers.length);
      const v = new DataView(t.buffer);
      params.grammar_triggers.forEach((g, i) => {
        v.setInt32(16 * i, GRAMMAR_TRIGGER_TYPES.indexOf(g.type), true);
        v.setInt32(16 * i + 4, g.token ?? -1, true);
        v.setBigUint64(
          16 * i + 8,
          g.value === undefined ? 0n : str(g.value),
          true,
        );
      });
      keep.push(t);
      scalars.grammar_triggers = ptr(t);
      scalars.n_grammar_triggers = params.grammar_triggers.length;
    }
    if (params.logit_bias?.length) {
      const t = new Uint8Array(8 * params.logit_bias.length);
      const v = new DataView(t.buffer);
      params.logit_bias.forEach((l, i) => {
        v.setInt32(8 * i, l.token, true);
        v.setFloat32(8 * i + 4, l.bias, true);
      });
      keep.push(t);
      scalars.logit_bias = ptr(t);
      scalars.n_logit_bias = params.logit_bias.length;
    }
    writeStruct(SAMPLER_PARAMS, b, scalars as never);
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    const status = s.wnb_sampler_new(model.pointer, b, out, err);
    keep.length = 0;
    check(status, err, "creating the sampler");
    return new Sampler(Deno.UnsafePointer.create(out[0]), model);
  }

  /** The native handle; throws if closed. */
  get pointer(): Deno.PointerObject {
    if (this.#ptr === null || this.#life.closing) {
      throw new LlamaError(
        Status.Usage,
        "Sampler was closed (or its model was)",
      );
    }
    return this.#ptr;
  }

  /** The seed in use (the drawn one when the seed was random). */
  get seed(): number {
    return symbols().wnb_sampler_seed(this.pointer);
  }

  /** Forgets history and grammar state. */
  reset(): void {
    symbols().wnb_sampler_reset(this.pointer);
  }

  /** Adds a token the sampler did not choose (e.g. a prompt token) to its history. */
  accept(token: number): void {
    symbols().wnb_sampler_accept(this.pointer, token);
  }

  /**
   * Samples (and accepts) a token from the logits of batch index `idx` (-1 =
   * last) of `ctx`, a `Context` (only its native pointer is used, so this
   * file need not import `context.ts`, which imports it).
   */
  sample(ctx: { readonly pointer: Deno.PointerObject }, idx = -1): number {
    const t = symbols().wnb_sampler_sample(
      this.pointer,
      ctx.pointer,
      idx,
      this.#err,
    );
    if (t < 0) {
      check(
        new DataView(this.#err.buffer).getInt32(0, true) || 12,
        this.#err,
        "sampling",
      );
    }
    return t;
  }

  /** After a sample: the top `n` candidates with their probabilities. */
  probs(n: number): { token: number; prob: number }[] {
    if (this.#probTokens.length < n) {
      this.#probTokens = new Int32Array(n);
      this.#probValues = new Float32Array(n);
    }
    const m = symbols().wnb_sampler_probs(
      this.pointer,
      this.#probTokens,
      this.#probValues,
      n,
    );
    const out = [];
    for (let i = 0; i < m; i++) {
      out.push({ token: this.#probTokens[i], prob: this.#probValues[i] });
    }
    return out;
  }

  /** Frees the chain. Safe to call twice. */
  close(): void {
    this.#life.close();
  }

  /**
   * Marks a non-blocking call that uses this sampler in flight (Context.step
   * does): it is not freed before the returned function is called.
   */
  pin(): () => void {
    void this.pointer; // the use-after-close error
    return this.#life.pin();
  }

  #free(): void {
    if (this.#ptr === null) return;
    symbols().wnb_sampler_free(this.#ptr);
    this.#ptr = null;
    this.#model.release(this);
  }

  /** Frees the chain at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }
}
