/**
 * Config values (canonical names) to the sampler chain's parameters.
 * @module
 */

import { jsonSchemaToGrammar, type Model, type SamplerParams } from "../bindings/mod.ts";
import { ConfigError, type ConfigValues } from "./config.ts";

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
  min_keep: "min_keep",
  n_probs: "n_probs",
  ignore_eos: "ignore_eos",
  samplers: "samplers",
  dry_sequence_breakers: "dry_sequence_breakers",
};

/** Builds sampler parameters from resolved config values. */
export function samplerParams(
  model: Model,
  cfg: ConfigValues,
  nCtx: number,
): Partial<SamplerParams> {
  const p: Record<string, unknown> = {};
  for (const [k, target] of Object.entries(DIRECT)) {
    if (cfg[k] !== undefined) p[target] = cfg[k];
  }
  if (cfg.repeat_last_n !== undefined) {
    p.penalty_last_n = cfg.repeat_last_n === -1 ? nCtx : cfg.repeat_last_n;
  }
  if (cfg.dry_penalty_last_n !== undefined) {
    p.dry_penalty_last_n = cfg.dry_penalty_last_n === -1 ? nCtx : cfg.dry_penalty_last_n;
  }
  if (cfg.seed !== undefined) {
    p.seed = cfg.seed === -1 ? 0xFFFFFFFF : cfg.seed;
  }
  if (typeof cfg.grammar === "string" && cfg.grammar !== "") {
    if (cfg.json_schema !== undefined) {
      throw new ConfigError(
        "grammar",
        cfg.grammar,
        "grammar and json_schema cannot both be set",
        "keep one of them",
      );
    }
    p.grammar = cfg.grammar;
  } else if (cfg.json_schema !== undefined && cfg.json_schema !== "") {
    try {
      p.grammar = jsonSchemaToGrammar(cfg.json_schema);
    } catch (e) {
      throw new ConfigError("json_schema", cfg.json_schema, (e as Error).message);
    }
  }
  if (cfg.logit_bias !== undefined) p.logit_bias = logitBias(model, cfg.logit_bias);
  return p as Partial<SamplerParams>;
}

function biasValue(v: unknown): number {
  if (v === false) return -Infinity;
  if (typeof v === "number" && Number.isFinite(v)) return v;
  throw new ConfigError("logit_bias", v, "a bias must be a number or false");
}

/** Parses the server's logit_bias forms: [[tok|str, bias]...] or {tok|str: bias}. */
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
        );
      }
      out.push({ token: key, bias });
    } else if (typeof key === "string" && /^\d+$/.test(key)) {
      add(Number(key), bias);
    } else if (typeof key === "string") {
      for (const t of model.tokenize(key, { addSpecial: false })) out.push({ token: t, bias });
    } else {
      throw new ConfigError("logit_bias", key, "a key must be a token id or a string");
    }
  };
  if (Array.isArray(v)) {
    for (const e of v) {
      if (!Array.isArray(e) || e.length !== 2) {
        throw new ConfigError("logit_bias", e, "entries must be [token or string, bias]");
      }
      add(e[0], biasValue(e[1]));
    }
  } else if (v && typeof v === "object") {
    for (const [k, b] of Object.entries(v)) add(k, biasValue(b));
  } else {
    throw new ConfigError("logit_bias", v, "expected an array or an object");
  }
  return out;
}
