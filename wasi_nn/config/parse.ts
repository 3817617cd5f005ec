/**
 * One configuration model for every key style our users write, validated
 * with the rules of llama.cpp's server:
 *
 * - WasmEdge's kebab-case (`ctx-size`, `n-predict`, `json-schema`);
 * - the original project's flat snake_case (`ctx_size`, `temp`) and its nested
 *   sections (`backend`, `model`, `sampling` with `dynatemp`, `stopping`,
 *   `memory` / `memory_management`, `logging`, `performance`);
 * - llama.cpp server request names and aliases (`temperature`, `max_tokens`,
 *   `repeat_last_n`, `logprobs`).
 *
 * Every key is normalised to one canonical name and checked for its JSON type
 * (strictly, as WasmEdge does: an int key rejects 1.5 and "1") and its range:
 * hard limits are rejected with the server's message shape
 * (`Field 'n_predict': Value must be between -1 <= value <= 2147483647, but
 * got -5`), soft limits are clamped where the server clamps. `null` means
 * "not set here" (a lower layer or the default applies). Unknown keys are
 * warnings with a "did you mean" (errors in strict mode). Layers merge with
 * {@linkcode mergeConfig}; see config_layers.ts for the layer stack and the
 * explain view, config_check.ts for cross-parameter checks and
 * config_schema.ts for the JSON Schema.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./parse.ts";
 * const { values, warnings } = parseConfig(
 *   '{"ctx-size":1024,"sampling":{"temperature":0.2,"dynatemp":{"range":0.5}},"llama3":false}',
 * );
 * console.log(values.ctx_size, values.temp, values.dynatemp_range, warnings.length); // 1024 0.2 0.5 1
 * ```
 * @module
 */

import { ConfigError, type ConfigRule, Errno, WasiNnError } from "../errno.ts";
import {
  allSpellings,
  type AnyKeySpec,
  type ConfigValue,
  type ConfigValues,
  type ConfigValueTypes,
  describeValue,
  type KeyDef,
  type KeyName,
  type KeyScope,
  type KeyType,
  type KvCacheType,
  OBJECT_KEYS,
  SECTIONS,
  setValue,
  specIn,
  SPECS,
} from "./_keys.ts";
import {
  MAX_CONFIG_BYTES,
  MAX_CONFIG_KEYS,
  MAX_KEY_SUGGESTIONS,
  shortKey,
  utf8Length,
} from "./_limits.ts";
import { closest, SpellingIndex } from "./_key_suggest.ts";

export type {
  ConfigValue,
  ConfigValues,
  ConfigValueTypes,
  KeyDef,
  KeyName,
  KeyScope,
  KeyType,
  KvCacheType,
};
export { ConfigError, type ConfigRule };

/**
 * Every key we understand, with its type, range, default and doc.
 *
 * @example
 * ```ts
 * import { KEYS } from "./parse.ts";
 * const temp = KEYS.find((k) => k.name === "temp")!;
 * console.log(temp.aliases, temp.min, temp.clamp, temp.default); // ["temperature"] 0 true 0.8
 * ```
 */
export const KEYS: readonly KeyDef[] = SPECS;

/** Every spelling, indexed once for suggestions. */
let spellingIndex: SpellingIndex | undefined;

/**
 * The closest known spelling (of any style, or a section name) to an unknown
 * key, if one is close.
 *
 * @example
 * ```ts
 * import { suggestKey } from "./parse.ts";
 * console.log(suggestKey("temprature"), suggestKey("ctx-sise"), suggestKey("llama3")); // temperature ctx-size undefined
 * ```
 */
export function suggestKey(key: string): string | undefined {
  spellingIndex ??= new SpellingIndex(allSpellings());
  return closest(key, spellingIndex);
}

/**
 * Looks a key up under any spelling (canonical, alias, kebab-case).
 *
 * @example
 * ```ts
 * import { keyDef } from "./parse.ts";
 * console.log(keyDef("max_tokens")?.name, keyDef("ctx-size")?.name, keyDef("nope")); // n_predict ctx_size undefined
 * ```
 */
export function keyDef(spelling: string): KeyDef | undefined {
  return specIn(undefined, spelling);
}

/**
 * Result of parsing one config layer.
 *
 * @example
 * ```ts
 * import { type ParsedConfig, parseConfig } from "./parse.ts";
 * const p: ParsedConfig = parseConfig({ mmproj: "x.gguf", top_p: 2 });
 * console.log(p.values.top_p, p.notes.length); // 1 1
 * console.log(p.warnings); // ["Field 'top_p': 2 is outside 0 <= value <= 1; clamped to 1"]
 * ```
 */
export interface ParsedConfig {
  /** Values by canonical name (`null` values are left out: null means "not set here"). */
  values: ConfigValues;
  /** Unknown keys (with a suggestion where one is close), clamped values, ignored values. */
  warnings: string[];
  /** Keys accepted for compatibility that have no effect in this host. */
  notes: string[];
}

/**
 * Options of {@linkcode parseConfig}.
 *
 * @example
 * ```ts
 * import { type ParseOptions, parseConfig } from "./parse.ts";
 * const opts: ParseOptions = { strict: true };
 * console.log(parseConfig({ temp: 0.5 }, opts).values.temp); // 0.5
 * ```
 */
export interface ParseOptions {
  /** Unknown keys are errors (ConfigError, rule "unknown_key") instead of warnings. */
  strict?: boolean;
}

const utf8 = new TextDecoder();

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

function typeSuggestion(def: AnyKeySpec, v: unknown): string | undefined {
  if (typeof v === "string") {
    const t = v.trim();
    if (
      (def.type === "int" || def.type === "number") && t !== "" &&
      !isNaN(Number(t))
    ) {
      return `write ${t} without quotes`;
    }
    if (def.type === "bool" && (t === "true" || t === "false")) {
      return `write ${t} without quotes`;
    }
  }
  if (def.type === "bool" && (v === 0 || v === 1)) {
    return `write ${v === 1} instead of ${v}`;
  }
  if (def.type === "int" && typeof v === "number" && Number.isFinite(v)) {
    return `write a whole number such as ${Math.round(v)}`;
  }
  return undefined;
}

/**
 * After the schema accepted the value: the key's hook (see `KeySpec.hook`),
 * else the clamp warning of a soft range. `undefined` drops the value.
 */
function normalize(
  field: string,
  def: AnyKeySpec,
  input: unknown,
  v: unknown,
  warnings: string[],
): unknown {
  if (def.hook) return def.hook(v, { field, def, warnings });
  if (def.clamp && typeof input === "number" && v !== input) {
    const n = (x: number) =>
      Number.isFinite(x) ? String(x) : x > 0 ? "inf" : "-inf";
    warnings.push(
      `Field '${field}': ${input} is outside ${n(def.min!)} <= value <= ${
        n(def.max!)
      }; clamped to ${v}`,
    );
  }
  return v;
}

/**
 * Validates one value of one key (any spelling, or a dotted path such as
 * `logging.level`) as {@linkcode parseConfig} does. Returns the value to use
 * (clamped, normalised; `undefined` = ignored); warnings are pushed to
 * `warnings`; messages name the field as `label` (default: the key).
 *
 * @example
 * ```ts
 * import { validateValue } from "./parse.ts";
 * const warnings: string[] = [];
 * console.log(validateValue("top_p", 1.5, warnings), warnings.length); // 1 1
 * console.log(validateValue("samplers", "kmt")); // ["top_k", "min_p", "temperature"]
 * ```
 */
export function validateValue<K extends KeyName>(
  field: K,
  value: unknown,
  warnings?: string[],
  label?: string,
): ConfigValue<K> | undefined;
/** Validates one value of a key given by any spelling or a dotted path. */
export function validateValue(
  field: string,
  value: unknown,
  warnings?: string[],
  label?: string,
): unknown;
export function validateValue(
  field: string,
  value: unknown,
  warnings: string[] = [],
  label: string = field,
): unknown {
  const parts = field.split(".");
  const key = parts.pop()!;
  const section = parts.length ? SECTIONS[parts[parts.length - 1]] : undefined;
  const def = specIn(section, key);
  if (!def) {
    const s = suggestKey(field);
    throw new ConfigError(
      label,
      value,
      "unknown key",
      s ? `did you mean '${s}'?` : undefined,
      "unknown_key",
    );
  }
  return check(label, def, value, warnings);
}

function check(
  field: string,
  def: AnyKeySpec,
  v: unknown,
  warnings: string[],
): unknown {
  const r = def.schema.safeParse(v);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue.path.length
      ? issue.path.map((p) =>
        typeof p === "number" ? `[${p}]` : `.${String(p)}`
      ).join("")
      : "";
    const rule: ConfigRule =
      issue.code === "too_small" || issue.code === "too_big"
        ? "range"
        : issue.code === "invalid_value" && typeof v === "string"
        ? "enum"
        : "type";
    let suggestion = rule === "type" ? typeSuggestion(def, v) : undefined;
    if (rule === "enum" && def.oneOf && typeof v === "string") {
      const s = closest(v, def.oneOf);
      if (s) suggestion = `did you mean '${s}'?`;
    }
    throw new ConfigError(
      `${field}${path}`,
      v,
      issue.message,
      suggestion,
      rule,
    );
  }
  return normalize(field, def, v, r.data, warnings);
}

/**
 * Refuses a config layer whose JSON text is over `MAX_CONFIG_BYTES` (4 MiB)
 * of UTF-8: ConfigError (InvalidArgument, rule "limit", field "config").
 * {@linkcode parseConfig} calls it; callers holding the bytes (a guest's
 * buffer) may call it before decoding them.
 *
 * @example
 * ```ts
 * import { checkConfigBytes, ConfigError } from "./parse.ts";
 * checkConfigBytes(4096); // fine
 * try {
 *   checkConfigBytes(5 * 1048576);
 * } catch (e) {
 *   console.log((e as ConfigError).rule); // limit
 * }
 * ```
 */
export function checkConfigBytes(bytes: number): void {
  if (bytes > MAX_CONFIG_BYTES) throw tooLarge(bytes, "");
}

function tooLarge(bytes: number, atLeast: string): ConfigError {
  return new ConfigError(
    "config",
    bytes,
    `${atLeast}${bytes} bytes is over the limit of ${MAX_CONFIG_BYTES} bytes (${
      MAX_CONFIG_BYTES / 1048576
    } MiB) for one config`,
    "real grammars, JSON schemas and chat templates are far smaller: check what is sent as the config",
    "limit",
  );
}

function checkConfigText(text: string): void {
  // One UTF-16 code unit is 1 to 3 UTF-8 bytes: count only when it matters.
  if (text.length > MAX_CONFIG_BYTES) throw tooLarge(text.length, "at least ");
  else if (text.length * 3 > MAX_CONFIG_BYTES) {
    checkConfigBytes(utf8Length(text));
  }
}

function checkKeyCount(count: number, path: string): void {
  if (count <= MAX_CONFIG_KEYS) return;
  throw new ConfigError(
    "config",
    count,
    `more than ${MAX_CONFIG_KEYS} keys (counting the keys inside sections; the ${
      MAX_CONFIG_KEYS + 1
    }th is '${shortKey(path)}') is over the limit for one config`,
    "each key is set once and there are about 300 spellings: send only the keys you set",
    "limit",
  );
}

/**
 * Parses and validates one config layer (JSON text or an object).
 *
 * - Over 4 MiB of JSON text or 1024 keys (sections included; see
 *   _config_limits.ts): ConfigError (InvalidArgument, rule "limit"), checked
 *   before the text is decoded or parsed.
 * - Malformed JSON, or JSON that is not an object: WasiNnError(InvalidEncoding).
 * - A wrong type or a value out of a hard range: ConfigError (InvalidArgument).
 * - Soft ranges are clamped (with a warning); `dry_base` < 1 is dropped (warning).
 * - Nested sections are flattened; unknown keys are warnings (errors with
 *   `strict`): the first 16 each with a "did you mean", the rest in one.
 * - A key given twice under two spellings: the later one wins, with a warning.
 * - `grammar` and `json_schema` together in one layer: ConfigError (rule "conflict").
 *
 * @example
 * ```ts
 * import { parseConfig } from "./parse.ts";
 * const { values } = parseConfig({ "n-predict": 32, max_tokens: null, top_k: -3, stopping: { stop: "\n" } });
 * console.log(values); // { n_predict: 32, top_k: 0, stop: ["\n"] }
 * ```
 */
export function parseConfig(
  input: string | Uint8Array | Record<string, unknown> | undefined,
  options: ParseOptions = {},
): ParsedConfig {
  const values: ConfigValues = {};
  const warnings: string[] = [];
  const notes: string[] = [];
  if (input === undefined) return { values, warnings, notes };
  if (input instanceof Uint8Array) {
    checkConfigBytes(input.byteLength);
    input = utf8.decode(input);
  }
  let obj: unknown = input;
  if (typeof input === "string") {
    checkConfigText(input);
    if (input.trim() === "") return { values, warnings, notes };
    try {
      obj = JSON.parse(input);
    } catch (e) {
      throw new WasiNnError(
        Errno.InvalidEncoding,
        `config is not valid JSON: ${(e as Error).message}`,
      );
    }
  }
  if (!isObject(obj)) {
    throw new WasiNnError(
      Errno.InvalidEncoding,
      `config must be a JSON object, but is ${describeValue(obj)}`,
    );
  }
  const seen = new Map<KeyName, string>();
  // Unknown keys past the first MAX_KEY_SUGGESTIONS: no search, one warning.
  const moreUnknown: string[] = [];
  let nUnknown = 0;
  let nKeys = 0;
  const unknown = (path: string, key: string, v: unknown) => {
    if (!options.strict && ++nUnknown > MAX_KEY_SUGGESTIONS) {
      moreUnknown.push(path);
      return;
    }
    const s = suggestKey(key);
    if (options.strict) {
      throw new ConfigError(
        shortKey(path),
        v,
        "unknown key",
        s ? `did you mean '${s}'?` : undefined,
        "unknown_key",
      );
    }
    warnings.push(
      `unknown config key '${shortKey(path)}'${
        s ? `; did you mean '${s}'?` : ""
      }`,
    );
  };
  const visit = (
    o: Record<string, unknown>,
    prefix: string,
    section: string | undefined,
    depth: number,
  ) => {
    const keys = Object.keys(o);
    checkKeyCount(
      nKeys + keys.length,
      `${prefix}${keys[MAX_CONFIG_KEYS - nKeys]}`,
    );
    nKeys += keys.length;
    for (const key of keys) {
      const v = o[key];
      const path = `${prefix}${key}`;
      const sec = SECTIONS[key] ?? SECTIONS[key.replaceAll("-", "_")];
      const def = specIn(section, key);
      if (
        sec && isObject(v) && !(def && OBJECT_KEYS.has(def.name)) && depth < 4
      ) {
        visit(v, `${path}.`, sec, depth + 1);
        continue;
      }
      if (!def) {
        if (sec && v !== null) {
          // e.g. an OpenAI-style request's "model": "name": not a section here
          const msg = `type must be object (a section of keys), but is ${
            describeValue(v)
          }`;
          if (options.strict) {
            throw new ConfigError(path, v, msg, undefined, "type");
          }
          warnings.push(`Field '${path}': ${msg}; ignored`);
          continue;
        }
        unknown(path, key, v);
        continue;
      }
      if (v === null) continue;
      const value = check(path, def, v, warnings);
      if (def.noEffect) {
        notes.push(`'${path}' has no effect here: ${def.noEffect}`);
      }
      const before = seen.get(def.name);
      if (before !== undefined) {
        warnings.push(
          `'${before}' and '${path}' both set ${def.name}; the later one ('${path}') is used`,
        );
      }
      seen.set(def.name, path);
      if (value === undefined) delete values[def.name];
      else setValue(values, def.name, value);
    }
  };
  visit(obj, "", undefined, 0);
  if (moreUnknown.length > 0) {
    warnings.push(
      `${moreUnknown.length} more unknown config key${
        moreUnknown.length === 1 ? "" : "s"
      } (no suggestions past the first ${MAX_KEY_SUGGESTIONS}): ${
        moreUnknown.slice(0, 5).map((k) => `'${shortKey(k)}'`).join(", ")
      }${moreUnknown.length > 5 ? ", …" : ""}`,
    );
  }
  if (
    values.grammar !== undefined && values.grammar !== "" &&
    values.json_schema !== undefined
  ) {
    throw new ConfigError(
      seen.get("json_schema")!,
      values.json_schema,
      `cannot be combined with '${seen.get("grammar")}' in one config`,
      "keep one of them: json_schema is turned into a grammar",
      "conflict",
    );
  }
  return { values, warnings, notes };
}

/** Keys that replace each other across layers: a layer setting one clears the others below it. */
const EXCLUSIVE: readonly (readonly KeyName[])[] = [["grammar", "json_schema"]];

/**
 * Merges layers, lowest first: each key takes the value of the highest layer
 * that sets it. A layer that sets `grammar` or `json_schema` also clears the
 * other one from the layers below it.
 *
 * @example
 * ```ts
 * import { mergeConfig } from "./parse.ts";
 * const cfg = mergeConfig({ temp: 0.8, grammar: 'root ::= "a"' }, undefined, { temp: 0.1, json_schema: { type: "string" } });
 * console.log(cfg.temp, cfg.grammar, cfg.json_schema); // 0.1 undefined { type: "string" }
 * ```
 */
export function mergeConfig(
  ...layers: (ConfigValues | undefined)[]
): ConfigValues {
  const out: ConfigValues = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const group of EXCLUSIVE) {
      if (group.some((k) => layer[k] !== undefined)) {
        for (const k of group) delete out[k];
      }
    }
    Object.assign(out, layer);
  }
  return out;
}

/**
 * The scopes whose keys differ between two configs (what must be rebuilt).
 *
 * @example
 * ```ts
 * import { changedScopes } from "./parse.ts";
 * console.log([...changedScopes({ temp: 0.1, ctx_size: 512 }, { temp: 0.2, ctx_size: 512 })]); // ["sampling"]
 * ```
 */
export function changedScopes(a: ConfigValues, b: ConfigValues): Set<KeyScope> {
  const out = new Set<KeyScope>();
  for (const k of SPECS) {
    if (JSON.stringify(a[k.name]) !== JSON.stringify(b[k.name])) {
      out.add(k.scope);
    }
  }
  return out;
}
