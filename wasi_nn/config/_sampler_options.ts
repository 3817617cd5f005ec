/**
 * Resolved config values (canonical names) to the parameters of the shim's
 * sampler chain (llama.cpp's common sampler, the server's chain), applying
 * the server's rules: -1 windows mean the context size, `seed` -1 is random,
 * `json_schema` becomes a GBNF grammar, logit biases by token id or by
 * string (`false` bans), sampler order by names or letters, lazy grammars
 * with triggers.
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { samplerParams } from "./_sampler_options.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * const p = samplerParams(model, { temperature: 0.7, repeat_last_n: -1, seed: 7, logit_bias: { "2": false } }, 512);
 * console.log(p.temp, p.penalty_last_n, p.seed, p.logit_bias); // 0.7 512 7 [{ token: 2, bias: -Infinity }]
 * ```
 * @module
 */

import { GRAMMAR_TRIGGER_TYPES } from "../../bindings/types.ts";
import {
  type GrammarTrigger,
  jsonSchemaToGrammar,
  type Model,
  type SamplerParams,
} from "../../bindings/mod.ts";
import {
  ConfigError,
  type ConfigValues,
  mergeConfig,
  parseConfig,
  validateValue,
} from "./parse.ts";
import { setValue, specOf } from "./_keys.ts";
import { checkConfig } from "./check.ts";
import { checkGrammar, checkJsonSchema } from "./_grammar_limits.ts";

const DIRECT: Record<string, keyof SamplerParams> = {
  temp: "temp",
  top_k: "top_k",
  top_p: "top_p",
  min_p: "min_p",
  typical_p: "typ_p",
  top_n_sigma: "top_n_sigma",
  xtc_probability: "xtc_probability",
  xtc_threshold: "xtc_threshold",
  dynatemp_range: "dynatemp_range",
  dynatemp_exponent: "dynatemp_exponent",
  repeat_penalty: "penalty_repeat",
  presence_penalty: "penalty_present",
  frequency_penalty: "penalty_freq",
  dry_multiplier: "dry_multiplier",
  dry_base: "dry_base",
  dry_allowed_length: "dry_allowed_length",
  mirostat: "mirostat",
  mirostat_tau: "mirostat_tau",
  mirostat_eta: "mirostat_eta",
  adaptive_target: "adaptive_target",
  adaptive_decay: "adaptive_decay",
  min_keep: "min_keep",
  n_probs: "n_probs",
  ignore_eos: "ignore_eos",
  samplers: "samplers",
  dry_sequence_breakers: "dry_sequence_breakers",
  grammar_lazy: "grammar_lazy",
};

/**
 * Values that did not come through parseConfig (e.g. alias names) are
 * validated here; values under canonical names are taken as they are.
 */
function canonical(cfg: Readonly<Record<string, unknown>>): ConfigValues {
  const own: ConfigValues = {}, other: Record<string, unknown> = {};
  let foreign = false;
  for (const [k, v] of Object.entries(cfg)) {
    const def = specOf(k);
    if (def?.name === k) setValue(own, def.name, v);
    else {
      other[k] = v;
      foreign = true;
    }
  }
  return foreign ? mergeConfig(own, parseConfig(other).values) : own;
}

/**
 * Builds sampler parameters from resolved config values (any spelling is
 * accepted; canonical names are expected). Throws ConfigError for what the
 * sampler cannot take: a lazy grammar without triggers, a json_schema that
 * does not convert, a logit bias outside the vocabulary.
 *
 * @example
 * ```ts
 * import { Model, Sampler } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { samplerParams } from "./_sampler_options.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * const params = samplerParams(model, { json_schema: { type: "integer" }, samplers: "kt", seed: 1 }, 256);
 * console.log(params.samplers, params.grammar!.includes("root")); // ["top_k", "temperature"] true
 * using sampler = Sampler.create(model, params);
 * console.log(sampler.seed); // 1
 * ```
 */
export function samplerParams(
  model: Model,
  values: ConfigValues | Readonly<Record<string, unknown>>,
  nCtx: number,
): Partial<SamplerParams> {
  const cfg = canonical(values);
  checkConfig(cfg, { nVocab: model.nVocab });
  const p: Record<string, unknown> = {};
  const byName: Readonly<Record<string, unknown>> = cfg;
  for (const [k, target] of Object.entries(DIRECT)) {
    if (byName[k] !== undefined) p[target] = byName[k];
  }
  // A string of letters or names given under the canonical name (canonical()
  // takes those as they are): the list it stands for.
  if (typeof byName.samplers === "string") {
    p.samplers = validateValue("samplers", byName.samplers);
  }
  if (cfg.repeat_last_n !== undefined) {
    const lastN = cfg.repeat_last_n === -1 ? nCtx : cfg.repeat_last_n;
    p.penalty_last_n = lastN;
    // llama.cpp's arg parser keeps n_prev >= penalty_last_n
    p.n_prev = Math.max(64, lastN);
  }
  if (cfg.dry_penalty_last_n !== undefined) {
    p.dry_penalty_last_n = cfg.dry_penalty_last_n === -1
      ? nCtx
      : cfg.dry_penalty_last_n;
  }
  if (cfg.seed !== undefined) {
    p.seed = cfg.seed === -1 ? 0xFFFFFFFF : cfg.seed;
  }
  if (typeof cfg.grammar === "string" && cfg.grammar !== "") {
    checkGrammar(cfg.grammar);
    p.grammar = cfg.grammar;
  } else if (cfg.json_schema !== undefined && cfg.json_schema !== "") {
    checkJsonSchema(cfg.json_schema);
    try {
      const g = jsonSchemaToGrammar(cfg.json_schema);
      checkGrammar(g, "json_schema", true);
      p.grammar = g;
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError(
        "json_schema",
        cfg.json_schema,
        (e as Error).message.replace(/^converting the JSON schema: /, ""),
        "llama.cpp's converter supports most of JSON Schema draft 2020-12",
        "format",
      );
    }
  }
  if (p.grammar === undefined && cfg.response_format !== undefined) {
    // as llama.cpp's server does for OpenAI requests: json_object = any JSON
    // (or its "schema"), json_schema = json_schema.schema
    const rf = cfg.response_format;
    const schema = rf.type === "json_object"
      ? rf.schema ?? {}
      : rf.type === "json_schema"
      ? rf.json_schema?.schema ?? {}
      : undefined;
    if (schema !== undefined) {
      checkJsonSchema(schema, "response_format");
      const g = jsonSchemaToGrammar(schema);
      checkGrammar(g, "response_format", true);
      p.grammar = g;
    }
  }
  if (Array.isArray(cfg.grammar_triggers) && cfg.grammar_triggers.length > 0) {
    p.grammar_triggers = grammarTriggers(model, cfg.grammar_triggers);
  }
  const bias = cfg.logit_bias !== undefined
    ? logitBias(model, cfg.logit_bias)
    : [];
  if (cfg.ignore_eos === true) {
    // As llama.cpp's common_init_from_params (and the server's ignore_eos
    // handler): every end-of-generation token gets -inf in the logit biases,
    // so it is never sampled and the distribution is the one llama.cpp samples.
    for (const t of model.info.eog) bias.push({ token: t, bias: -Infinity });
  }
  if (bias.length > 0) p.logit_bias = bias;
  return p as Partial<SamplerParams>;
}

/**
 * Grammar triggers as the shim takes them. A word that is exactly one
 * control token (e.g. `<tool_call>`) becomes a token trigger, as llama.cpp's
 * server does for preserved tokens.
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { grammarTriggers } from "./_sampler_options.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * console.log(grammarTriggers(model, ["</s>", { type: "pattern", value: "x+" }]));
 * // [{ type: "token", token: 2, value: "</s>" }, { type: "pattern", value: "x+" }]
 * ```
 */
export function grammarTriggers(
  model: Model,
  triggers: readonly unknown[],
): GrammarTrigger[] {
  if (triggers.length > TRIGGER_LIMITS.count) {
    throw new ConfigError(
      "grammar_triggers",
      `${triggers.length} triggers`,
      `at most ${TRIGGER_LIMITS.count} triggers are allowed`,
      "merge patterns into one alternation",
      "limit",
    );
  }
  return triggers.map((t) => {
    const g: GrammarTrigger = typeof t === "string"
      ? { type: "word", value: t }
      : { ...(t as GrammarTrigger) };
    if (typeof g.type === "number") {
      g.type = GRAMMAR_TRIGGER_TYPES[g.type];
    }
    if (g.type === "word" && g.value) {
      const toks = model.tokenize(g.value, {
        addSpecial: false,
        parseSpecial: true,
      });
      if (toks.length === 1 && model.tokenBytes(toks[0], false).length === 0) {
        return { type: "token", token: toks[0], value: g.value };
      }
    }
    if (g.type === "pattern" || g.type === "pattern_full") {
      checkTriggerPattern(String(g.value ?? ""));
    }
    if (
      g.type === "token" &&
      (g.token === undefined || g.token < 0 || g.token >= model.nVocab)
    ) {
      throw new ConfigError(
        "grammar_triggers",
        t,
        `token ${g.token} is outside the vocabulary (0..${model.nVocab - 1})`,
        undefined,
        "range",
      );
    }
    return g;
  });
}

/**
 * Bounds of lazy-grammar trigger patterns: llama.cpp matches them with
 * std::regex, whose backtracking recurses, so a long or deeply nested
 * pattern (or a quantified group inside a quantified group) can overflow
 * the stack or run without end.
 */
export const TRIGGER_LIMITS = { count: 64, patternLength: 1024, depth: 8 };

function checkTriggerPattern(pattern: string): void {
  const refuse = (why: string) => {
    throw new ConfigError(
      "grammar_triggers",
      pattern.length > 80 ? `${pattern.slice(0, 80)}...` : pattern,
      why,
      "use a short pattern without nested repetition, or a word trigger",
      "limit",
    );
  };
  if (pattern.length > TRIGGER_LIMITS.patternLength) {
    refuse(
      `a pattern is at most ${TRIGGER_LIMITS.patternLength} characters (this one is ${pattern.length})`,
    );
  }
  // Group depth, and whether a repeated group holds a repetition.
  const stack: boolean[] = []; // per open group: it holds a quantifier
  let maxDepth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      i++;
      continue;
    }
    if (c === "[") {
      while (i < pattern.length && pattern[i] !== "]") {
        if (pattern[i] === "\\") i++;
        i++;
      }
      continue;
    }
    if (c === "(") {
      stack.push(false);
      maxDepth = Math.max(maxDepth, stack.length);
    } else if (c === ")") {
      const inner = stack.pop() ?? false;
      const next = pattern[i + 1];
      const repeated = next === "*" || next === "+" || next === "{";
      if (repeated && inner) {
        refuse(
          "a repeated group must not hold a repetition (nested quantifiers backtrack without bound)",
        );
      }
      if (stack.length > 0 && (inner || repeated)) {
        stack[stack.length - 1] = true;
      }
    } else if ((c === "*" || c === "+" || c === "{") && stack.length > 0) {
      stack[stack.length - 1] = true;
    }
  }
  if (maxDepth > TRIGGER_LIMITS.depth) {
    refuse(
      `groups nest at most ${TRIGGER_LIMITS.depth} deep (this one ${maxDepth})`,
    );
  }
}

function biasValue(v: unknown): number {
  if (v === false) return -Infinity;
  if (typeof v === "number" && Number.isFinite(v)) return v;
  throw new ConfigError(
    "logit_bias",
    v,
    "a bias must be a number or false",
    undefined,
    "type",
  );
}

/**
 * Parses the server's logit_bias forms: `[[token | string, bias], ...]` or
 * `{"token | string": bias}`. A string is tokenized (without special tokens)
 * and every token of it gets the bias; `false` bans (-Infinity).
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { logitBias } from "./_sampler_options.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * console.log(logitBias(model, [[2, false], ["Hello", 1.5]]).length > 1); // true
 * ```
 */
export function logitBias(
  model: Model,
  v: unknown,
): { token: number; bias: number }[] {
  const out: { token: number; bias: number }[] = [];
  const add = (key: unknown, bias: number) => {
    if (typeof key === "number" && Number.isInteger(key)) {
      if (key < 0 || key >= model.nVocab) {
        throw new ConfigError(
          "logit_bias",
          key,
          `token ${key} is outside the vocabulary (0..${model.nVocab - 1})`,
          undefined,
          "range",
        );
      }
      out.push({ token: key, bias });
    } else if (typeof key === "string" && /^\d+$/.test(key)) {
      add(Number(key), bias);
    } else if (typeof key === "string") {
      for (const t of model.tokenize(key, { addSpecial: false })) {
        out.push({ token: t, bias });
      }
    } else {
      throw new ConfigError(
        "logit_bias",
        key,
        "a key must be a token id or a string",
        undefined,
        "type",
      );
    }
  };
  if (Array.isArray(v)) {
    for (const e of v) {
      if (!Array.isArray(e) || e.length !== 2) {
        throw new ConfigError(
          "logit_bias",
          e,
          "entries must be [token or string, bias]",
          undefined,
          "type",
        );
      }
      add(e[0], biasValue(e[1]));
    }
  } else if (v && typeof v === "object") {
    for (const [k, b] of Object.entries(v)) add(k, biasValue(b));
  } else {
    throw new ConfigError(
      "logit_bias",
      v,
      "expected an array or an object",
      undefined,
      "type",
    );
  }
  return out;
}
