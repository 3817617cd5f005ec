/**
 * Cross-parameter checks of a resolved config, with what the model and the
 * machine tell us: the rules llama.cpp's server and context apply across
 * keys (a lazy grammar needs triggers, n_keep fits the context, the physical
 * batch fits the logical one, ...). Hard problems throw ConfigError; the
 * rest are warnings, with the value adjusted where llama.cpp adjusts it.
 *
 * @example
 * ```ts
 * import { checkConfig } from "./check.ts";
 * const { values, warnings } = checkConfig(
 *   { ctx_size: 8192, ubatch_size: 1024, batch_size: 512, threads: 64 },
 *   { nCtxTrain: 4096, cpus: 2 },
 * );
 * console.log(values.ubatch_size, warnings.length); // 512 3
 * ```
 * @module
 */

import { ConfigError, type ConfigValues, type KeyName, KEYS } from "./parse.ts";

/**
 * What is known about the model and the machine when checking.
 *
 * @example
 * ```ts
 * import type { CheckFacts } from "./check.ts";
 * const facts: CheckFacts = { nCtxTrain: 2048, cpus: navigator.hardwareConcurrency, nVocab: 32000 };
 * console.log(facts.nCtxTrain);
 * ```
 */
export interface CheckFacts {
  /** The model's training context (`Model.nCtxTrain`). */
  nCtxTrain?: number;
  /** The actual context size, when a context exists (`Context.nCtx`). */
  nCtx?: number;
  /** The vocabulary size (`Model.nVocab`), to check token ids. */
  nVocab?: number;
  /** CPU cores (`navigator.hardwareConcurrency`). */
  cpus?: number;
}

const DEFAULTS = new Map(KEYS.map((k) => [k.name, k.default]));
const CHAIN_KEYS: readonly KeyName[] = [
  "top_k",
  "top_p",
  "min_p",
  "typical_p",
  "top_n_sigma",
  "xtc_probability",
  "dry_multiplier",
  "repeat_penalty",
  "presence_penalty",
  "frequency_penalty",
  "dynatemp_range",
];

/**
 * Checks a resolved config (all layers merged) against itself and the facts.
 * Returns the values to use (a copy, adjusted where llama.cpp adjusts) and
 * warnings; throws ConfigError (rule "requires" or "conflict") where
 * llama.cpp would fail.
 *
 * @example
 * ```ts
 * import { checkConfig } from "./check.ts";
 * try {
 *   checkConfig({ grammar: 'root ::= "a"', grammar_lazy: true });
 * } catch (e) {
 *   console.log((e as Error).message); // Field 'grammar_lazy': no triggers set for lazy grammar (...)
 * }
 * ```
 */
export function checkConfig(
  cfg: ConfigValues,
  facts: CheckFacts = {},
): { values: ConfigValues; warnings: string[] } {
  const v: ConfigValues = { ...cfg };
  const warnings: string[] = [];
  const hasGrammar = (typeof v.grammar === "string" && v.grammar !== "") ||
    v.json_schema !== undefined;

  if (
    typeof v.grammar === "string" && v.grammar !== "" &&
    v.json_schema !== undefined
  ) {
    throw new ConfigError(
      "json_schema",
      v.json_schema,
      "cannot be combined with 'grammar'",
      "keep one of them: json_schema is turned into a grammar",
      "conflict",
    );
  }
  const triggers = v.grammar_triggers;
  if (v.grammar_lazy === true) {
    if (!triggers || triggers.length === 0) {
      throw new ConfigError(
        "grammar_lazy",
        true,
        "no triggers set for lazy grammar",
        "add grammar_triggers, or set grammar_lazy to false",
        "requires",
      );
    }
    if (!hasGrammar) {
      warnings.push(
        "grammar_lazy is set but there is no grammar or json_schema to apply",
      );
    }
  } else if (triggers && triggers.length > 0) {
    warnings.push(
      "grammar_triggers have no effect unless grammar_lazy is true",
    );
  }

  // context
  const nCtxTrain = facts.nCtxTrain;
  const ctxSize = v.ctx_size;
  if (
    nCtxTrain !== undefined && nCtxTrain > 0 && ctxSize !== undefined &&
    ctxSize > nCtxTrain
  ) {
    warnings.push(
      `ctx_size ${ctxSize} exceeds the model's training context (${nCtxTrain}); output quality may degrade beyond ${nCtxTrain} tokens`,
    );
  }
  const nCtx = facts.nCtx ??
    (ctxSize !== undefined && ctxSize > 0 ? ctxSize : nCtxTrain);
  const batch = v.batch_size, ubatch = v.ubatch_size;
  if (batch !== undefined && ubatch !== undefined && ubatch > batch) {
    warnings.push(
      `ubatch_size ${ubatch} exceeds batch_size ${batch}; llama.cpp uses ${batch}`,
    );
    v.ubatch_size = batch;
  }
  if (
    batch !== undefined && nCtx !== undefined && nCtx > 0 && batch > nCtx &&
    !v.embedding
  ) {
    warnings.push(
      `batch_size ${batch} exceeds the context (${nCtx}); llama.cpp uses ${nCtx}`,
    );
  }
  const nKeep = v.n_keep;
  if (
    nKeep !== undefined && nCtx !== undefined && nCtx > 4 && nKeep > nCtx - 4
  ) {
    warnings.push(
      `n_keep ${nKeep} does not fit the context (${nCtx}); ${
        nCtx - 4
      } tokens are kept`,
    );
    v.n_keep = nCtx - 4;
  }
  const nPredict = v.n_predict;
  if (
    nPredict !== undefined && nCtx !== undefined && nCtx > 0 &&
    nPredict > nCtx && !v.ctx_shift
  ) {
    warnings.push(
      `n_predict ${nPredict} exceeds the context (${nCtx}); generation stops when the context is full`,
    );
  }
  for (const k of ["threads", "threads_batch"] as const) {
    const t = v[k];
    if (
      t !== undefined && facts.cpus !== undefined && facts.cpus > 0 &&
      t > facts.cpus
    ) {
      // More threads than CPUs only spin against each other: use the CPUs.
      v[k] = facts.cpus;
      warnings.push(
        `${k} ${t} exceeds the ${facts.cpus} CPU cores; using ${facts.cpus} (oversubscribed threads slow llama.cpp down)`,
      );
    }
  }

  // sampling
  if ((v.mirostat ?? 0) !== 0) {
    const ignored = CHAIN_KEYS.filter((k) =>
      v[k] !== undefined &&
      JSON.stringify(v[k]) !== JSON.stringify(DEFAULTS.get(k))
    );
    if (ignored.length) {
      warnings.push(
        `mirostat ${v.mirostat} replaces the sampler chain: ${
          ignored.join(", ")
        } ${ignored.length === 1 ? "has" : "have"} no effect`,
      );
    }
  }
  if (
    (v.xtc_probability ?? 0) > 0 && (v.xtc_threshold ?? 0.1) > 0.5
  ) {
    warnings.push(`XTC is off: xtc_threshold ${v.xtc_threshold} is above 0.5`);
  }
  if (facts.nVocab !== undefined && v.logit_bias !== undefined) {
    const ids: unknown[] = Array.isArray(v.logit_bias)
      ? v.logit_bias.map((e) => e[0])
      : Object.keys(v.logit_bias).map((k) => /^\d+$/.test(k) ? Number(k) : k);
    for (const id of ids) {
      if (typeof id === "number" && (id < 0 || id >= facts.nVocab)) {
        throw new ConfigError(
          "logit_bias",
          id,
          `token ${id} is outside the vocabulary (0..${facts.nVocab - 1})`,
          undefined,
          "range",
        );
      }
    }
  }
  return { values: v, warnings };
}
