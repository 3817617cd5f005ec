/**
 * The layer stack of a configuration, lowest first:
 *
 * 1. `default`: llama.cpp's defaults (the sampling ones read from the built
 *    library's `common_params_sampling`);
 * 2. `model`: the model's recommended `general.sampling.*` GGUF metadata
 *    (as llama.cpp's `common_init_sampler_from_model` reads it);
 * 3. `backend`: the host's config (`--config`, `LlamaHost` options);
 * 4. `load`: the graph's load config (`load_by_name_with_config`, builder 1);
 * 5. `session`: the execution context's config (`set_input(1)`);
 * 6. `runtime`: the per-call config.
 *
 * {@linkcode explainConfig} shows each resolved value and the layer it came
 * from, with the values it overrode.
 *
 * @example
 * ```ts
 * import { explainConfig, formatExplain, resolveConfig } from "./layers.ts";
 * const layers = [
 *   { name: "default", values: { temp: 0.8, top_k: 40 } },
 *   { name: "load", values: { temp: 0.5 } },
 *   { name: "runtime", values: { temp: 0.1 } },
 * ];
 * console.log(resolveConfig(layers)); // { temp: 0.1, top_k: 40 }
 * console.log(formatExplain(explainConfig(layers)));
 * // temp = 0.1   (runtime; overrides load 0.5, default 0.8)
 * // top_k = 40   (default)
 * ```
 * @module
 */

import {
  defaultSamplerParams,
  type Model,
  type ModelInfo,
} from "../../bindings/mod.ts";
import {
  type ConfigValues,
  type KeyName,
  KEYS,
  type KeyScope,
  mergeConfig,
  validateValue,
} from "./parse.ts";
import { setValue, SPECS } from "./_keys.ts";

/**
 * The standard layer names, lowest first.
 *
 * @example
 * ```ts
 * import { LAYER_ORDER } from "./layers.ts";
 * console.log(LAYER_ORDER.join(" < ")); // default < model < backend < load < session < runtime
 * ```
 */
export const LAYER_ORDER = [
  "default",
  "model",
  "backend",
  "load",
  "session",
  "runtime",
] as const;

/**
 * One standard layer name.
 *
 * @example
 * ```ts
 * import type { LayerName } from "./layers.ts";
 * const l: LayerName = "session";
 * console.log(l);
 * ```
 */
export type LayerName = typeof LAYER_ORDER[number];

/**
 * One layer: a name (a standard one or any label) and its values.
 *
 * @example
 * ```ts
 * import type { ConfigLayer } from "./layers.ts";
 * const layer: ConfigLayer = { name: "load", values: { ctx_size: 2048 } };
 * console.log(layer.name);
 * ```
 */
export interface ConfigLayer {
  /** Layer name, shown by the explain view. */
  name: LayerName | string;
  /** Values by canonical name (from `parseConfig`); undefined = empty. */
  values: ConfigValues | undefined;
}

const SAMPLER_TO_KEY: Readonly<Record<string, KeyName>> = {
  seed: "seed",
  n_probs: "n_probs",
  min_keep: "min_keep",
  top_k: "top_k",
  top_p: "top_p",
  min_p: "min_p",
  xtc_probability: "xtc_probability",
  xtc_threshold: "xtc_threshold",
  typ_p: "typical_p",
  temp: "temp",
  dynatemp_range: "dynatemp_range",
  dynatemp_exponent: "dynatemp_exponent",
  penalty_last_n: "repeat_last_n",
  penalty_repeat: "repeat_penalty",
  penalty_freq: "frequency_penalty",
  penalty_present: "presence_penalty",
  dry_multiplier: "dry_multiplier",
  dry_base: "dry_base",
  dry_allowed_length: "dry_allowed_length",
  dry_penalty_last_n: "dry_penalty_last_n",
  mirostat: "mirostat",
  mirostat_tau: "mirostat_tau",
  mirostat_eta: "mirostat_eta",
  top_n_sigma: "top_n_sigma",
  adaptive_target: "adaptive_target",
  adaptive_decay: "adaptive_decay",
  ignore_eos: "ignore_eos",
};

/** A float32 read back as the shortest decimal that round-trips (0.949999988 -> 0.95). */
function f32(v: number): number {
  if (Number.isInteger(v)) return v;
  for (let p = 1; p <= 9; p++) {
    const r = Number(v.toPrecision(p));
    if (Math.fround(r) === Math.fround(v)) return r;
  }
  return v;
}

/**
 * llama.cpp's defaults for every key that has one: the table's values, with
 * the sampling ones read from the built library (`common_params_sampling`),
 * so the `default` layer is what llama.cpp itself would use. Needs the
 * library (FFI).
 *
 * @example
 * ```ts
 * import { defaultConfig } from "./layers.ts";
 * const d = defaultConfig();
 * console.log(d.temp, d.top_k, d.top_p, d.seed, d.n_predict); // 0.8 40 0.95 -1 -1
 * ```
 */
export function defaultConfig(): ConfigValues {
  const out: ConfigValues = {};
  for (const k of SPECS) {
    if (k.default !== undefined) {
      setValue(out, k.name, structuredClone(k.default));
    }
  }
  const s = defaultSamplerParams() as unknown as Record<
    string,
    number | boolean
  >;
  for (const [field, key] of Object.entries(SAMPLER_TO_KEY)) {
    const v = s[field];
    if (v === undefined) continue;
    setValue(out, key, typeof v === "number" ? f32(v) : v);
  }
  if (out.seed === 0xFFFFFFFF) out.seed = -1;
  return out;
}

/** `general.sampling.*` metadata keys and the config keys they set. */
const MODEL_SAMPLING: Record<
  string,
  { key: KeyName; int?: boolean; list?: boolean }
> = {
  "general.sampling.sequence": { key: "samplers", list: true },
  "general.sampling.top_k": { key: "top_k", int: true },
  "general.sampling.top_p": { key: "top_p" },
  "general.sampling.min_p": { key: "min_p" },
  "general.sampling.xtc_probability": { key: "xtc_probability" },
  "general.sampling.xtc_threshold": { key: "xtc_threshold" },
  "general.sampling.temp": { key: "temp" },
  "general.sampling.penalty_last_n": { key: "repeat_last_n", int: true },
  "general.sampling.penalty_repeat": { key: "repeat_penalty" },
  "general.sampling.mirostat": { key: "mirostat", int: true },
  "general.sampling.mirostat_tau": { key: "mirostat_tau" },
  "general.sampling.mirostat_eta": { key: "mirostat_eta" },
};

/**
 * The model layer: the model's recommended sampling settings from its
 * `general.sampling.*` GGUF metadata, parsed as llama.cpp parses them
 * (`strtol` / `strtof` prefixes; an unparsable value is skipped) and
 * validated like any config (a bad value is a warning, never an error).
 *
 * @example
 * ```ts
 * import { modelConfig } from "./layers.ts";
 * const { values, warnings } = modelConfig({
 *   "general.sampling.temp": "0.600000",
 *   "general.sampling.top_k": "20",
 *   "general.sampling.sequence": "top_k;min_p;temperature",
 *   "general.sampling.top_p": "1.5",
 * });
 * console.log(values); // { samplers: ["top_k", "min_p", "temperature"], top_k: 20, top_p: 1, temp: 0.6 }
 * console.log(warnings.length); // 1 (top_p clamped)
 * ```
 */
export function modelConfig(
  source: Model | ModelInfo | Record<string, string>,
): { values: ConfigValues; warnings: string[] } {
  const meta: Record<string, string> =
    "info" in source && typeof source.info === "object"
      ? (source as Model).info.metadata
      : "metadata" in source && typeof source.metadata === "object"
      ? (source as ModelInfo).metadata
      : source as Record<string, string>;
  const values: ConfigValues = {};
  const warnings: string[] = [];
  for (const [mkey, m] of Object.entries(MODEL_SAMPLING)) {
    const raw = meta[mkey];
    if (raw === undefined) continue;
    let v: unknown;
    if (m.list) {
      const list = String(raw).split(";").map((s) => s.trim()).filter(Boolean);
      if (list.length === 0) continue;
      v = list;
    } else {
      const n = m.int ? parseInt(String(raw), 10) : parseFloat(String(raw));
      if (Number.isNaN(n)) {
        warnings.push(
          `model metadata '${mkey}' = ${
            JSON.stringify(raw)
          } is not a number; ignored`,
        );
        continue;
      }
      v = m.int ? n : f32(n);
    }
    try {
      const w: string[] = [];
      const out = validateValue(m.key, v, w);
      for (const x of w) {
        warnings.push(
          `model metadata '${mkey}': ${x.replace(/^Field '[^']*': /, "")}`,
        );
      }
      if (out !== undefined) setValue(values, m.key, out);
    } catch (e) {
      warnings.push(
        `model metadata '${mkey}' ignored: ${(e as Error).message}`,
      );
    }
  }
  return { values, warnings };
}

/**
 * The standard stack from its parts: `default` (llama.cpp's, needs the
 * library), `model` (from the model's metadata, when a model is given), then
 * `backend`, `load`, `session`, `runtime`. Model-metadata warnings are pushed
 * to `warnings` when given.
 *
 * @example
 * ```ts
 * import { resolveConfig, standardLayers } from "./layers.ts";
 * const layers = standardLayers({ backend: { n_predict: 128 }, session: { temp: 0.2 } });
 * const cfg = resolveConfig(layers);
 * console.log(layers.map((l) => l.name), cfg.temp, cfg.n_predict, cfg.top_k); // [default, backend, session] 0.2 128 40
 * ```
 */
export function standardLayers(
  parts: {
    model?: Model | ModelInfo;
    backend?: ConfigValues;
    load?: ConfigValues;
    session?: ConfigValues;
    runtime?: ConfigValues;
  },
  warnings?: string[],
): ConfigLayer[] {
  const layers: ConfigLayer[] = [{ name: "default", values: defaultConfig() }];
  if (parts.model) {
    const m = modelConfig(parts.model);
    warnings?.push(...m.warnings);
    layers.push({ name: "model", values: m.values });
  }
  for (const name of ["backend", "load", "session", "runtime"] as const) {
    if (parts[name]) layers.push({ name, values: parts[name] });
  }
  return layers;
}

/**
 * The resolved config of a layer stack (lowest first), as `mergeConfig`.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "./layers.ts";
 * console.log(resolveConfig([{ name: "a", values: { temp: 1 } }, { name: "b", values: { temp: 0 } }])); // { temp: 0 }
 * ```
 */
export function resolveConfig(layers: readonly ConfigLayer[]): ConfigValues {
  return mergeConfig(...layers.map((l) => l.values));
}

/**
 * One resolved value and where it came from.
 *
 * @example
 * ```ts
 * import { explainConfig, type ExplainedValue } from "./layers.ts";
 * const [e]: ExplainedValue[] = explainConfig([{ name: "load", values: { temp: 0.3 } }]);
 * console.log(e.key, e.value, e.layer, e.scope); // temp 0.3 load sampling
 * ```
 */
export interface ExplainedValue {
  /** Canonical key. */
  key: string;
  /** The resolved value. */
  value: unknown;
  /** The layer that set it. */
  layer: string;
  /** What the key configures. */
  scope: KeyScope | "unknown";
  /** Values of lower layers it replaced, nearest first. */
  overridden: { layer: string; value: unknown }[];
}

/**
 * Each resolved value with the layer it came from and the lower-layer values
 * it overrode, in the key table's order.
 *
 * @example
 * ```ts
 * import { explainConfig } from "./layers.ts";
 * const e = explainConfig([
 *   { name: "default", values: { temp: 0.8 } },
 *   { name: "load", values: { grammar: 'root ::= "a"' } },
 *   { name: "runtime", values: { temp: 0.1, json_schema: { type: "string" } } },
 * ]);
 * console.log(e.map((x) => `${x.key}@${x.layer}`)); // ["temp@runtime", "json_schema@runtime"]
 * ```
 */
export function explainConfig(
  layers: readonly ConfigLayer[],
): ExplainedValue[] {
  const final: Readonly<Record<string, unknown>> = resolveConfig(layers);
  const history = new Map<string, { layer: string; value: unknown }[]>();
  for (const l of layers) {
    for (const [k, v] of Object.entries(l.values ?? {})) {
      if (v === undefined) continue;
      if (!history.has(k)) history.set(k, []);
      history.get(k)!.push({ layer: l.name, value: v });
    }
  }
  const order = new Map(KEYS.map((k, i) => [k.name, i]));
  const scope = new Map(KEYS.map((k) => [k.name, k.scope]));
  return Object.keys(final)
    .sort((a, b) =>
      (order.get(a) ?? 1e9) - (order.get(b) ?? 1e9) || a.localeCompare(b)
    )
    .map((key) => {
      const h = history.get(key) ?? [];
      const top = h[h.length - 1];
      return {
        key,
        value: final[key],
        layer: top?.layer ?? "?",
        scope: scope.get(key) ?? "unknown",
        overridden: h.slice(0, -1).reverse(),
      };
    });
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined
    ? String(v)
    : s.length > 60
    ? s.slice(0, 57) + "..."
    : s;
}

/**
 * The explain view as aligned text, one key a line:
 * `key = value   (layer; overrides lower 1, lowest 2)`.
 *
 * @example
 * ```ts
 * import { explainConfig, formatExplain } from "./layers.ts";
 * console.log(formatExplain(explainConfig([{ name: "default", values: { n_predict: -1 } }, { name: "cli", values: { n_predict: 8 } }])));
 * // n_predict = 8   (cli; overrides default -1)
 * ```
 */
export function formatExplain(entries: readonly ExplainedValue[]): string {
  const left = entries.map((e) => `${e.key} = ${show(e.value)}`);
  const width = Math.max(0, ...left.map((s) => s.length));
  return entries.map((e, i) => {
    const over = e.overridden.length
      ? `; overrides ${
        e.overridden.map((o) => `${o.layer} ${show(o.value)}`).join(", ")
      }`
      : "";
    return `${left[i].padEnd(width)}   (${e.layer}${over})`;
  }).join("\n");
}
