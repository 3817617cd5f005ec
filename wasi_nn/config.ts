/**
 * One configuration model for every key style our users write: WasmEdge's
 * kebab-case (`ctx-size`), the original project's flat snake_case
 * (`ctx_size`), and llama.cpp server request names (`temperature`,
 * `max_tokens`). Every key is normalised to one canonical name, checked for
 * its JSON type (strictly, as WasmEdge does: an int key rejects 1.5 and "1")
 * and its range (with the message shape of llama.cpp's server), and merged
 * in layers: defaults < host < graph (load) < context (set_input 1) < call.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const { values, warnings } = parseConfig('{"ctx-size":1024,"temperature":0.2,"llama3":false}');
 * console.log(values.ctx_size, values.temp, warnings.length);
 * ```
 * @module
 */

import { Errno, WasiNnError } from "./errno.ts";

/** JSON types a key accepts. */
export type KeyType = "int" | "number" | "bool" | "string" | "string[]" | "any";

/** Which object a key configures (what must be rebuilt when it changes). */
export type KeyScope = "model" | "context" | "sampling" | "run";

/** The definition of one configuration key. */
export interface KeyDef {
  /** Canonical snake_case name. */
  name: string;
  /** JSON type. */
  type: KeyType;
  /** What it configures. */
  scope: KeyScope;
  /** Other accepted spellings (kebab-case of the name is always accepted). */
  aliases?: string[];
  /** Inclusive range for numbers. */
  min?: number;
  /** Inclusive range for numbers. */
  max?: number;
  /** Clamp into range instead of rejecting (where llama.cpp's server clamps). */
  clamp?: boolean;
  /** Allowed strings. */
  oneOf?: readonly string[];
  /** One line for docs and --help. */
  doc: string;
}

const I32_MAX = 2147483647;

/** Every key we understand. */
export const KEYS: readonly KeyDef[] = [
  // model
  { name: "n_gpu_layers", type: "int", scope: "model", aliases: ["ngl", "gpu_layers"], min: -1, max: I32_MAX, doc: "layers offloaded to the GPU (-1 = all)" },
  { name: "main_gpu", type: "int", scope: "model", min: 0, max: 255, doc: "GPU for split_mode none" },
  { name: "split_mode", type: "string", scope: "model", oneOf: ["none", "layer", "row"], doc: "how to split across GPUs" },
  { name: "use_mmap", type: "bool", scope: "model", doc: "memory-map the model file" },
  { name: "use_mlock", type: "bool", scope: "model", doc: "lock the model in RAM" },
  // context
  { name: "ctx_size", type: "int", scope: "context", aliases: ["n_ctx", "context_size"], min: 0, max: I32_MAX, doc: "context length in tokens (0 = the model's)" },
  { name: "batch_size", type: "int", scope: "context", aliases: ["n_batch"], min: 1, max: I32_MAX, doc: "logical batch size" },
  { name: "ubatch_size", type: "int", scope: "context", aliases: ["n_ubatch"], min: 1, max: I32_MAX, doc: "physical batch size" },
  { name: "threads", type: "int", scope: "context", aliases: ["n_threads"], min: 1, max: 1024, doc: "generation threads" },
  { name: "threads_batch", type: "int", scope: "context", aliases: ["n_threads_batch"], min: 1, max: 1024, doc: "prompt threads" },
  { name: "poll", type: "int", scope: "context", min: 0, max: 100, doc: "thread-pool polling level (llama.cpp tools: 50)" },
  { name: "flash_attn", type: "any", scope: "context", doc: "flash attention: on, off, auto (or true/false)" },
  { name: "embedding", type: "bool", scope: "context", aliases: ["embeddings"], doc: "compute embeddings instead of text" },
  { name: "pooling_type", type: "int", scope: "context", min: -1, max: 4, doc: "-1 model default, 0 none, 1 mean, 2 cls, 3 last, 4 rank" },
  // sampling
  { name: "temp", type: "number", scope: "sampling", aliases: ["temperature"], min: 0, max: Infinity, clamp: true, doc: "temperature (0 = greedy)" },
  { name: "top_k", type: "int", scope: "sampling", min: 0, max: I32_MAX, doc: "top-k (0 = vocabulary)" },
  { name: "top_p", type: "number", scope: "sampling", min: 0, max: 1, clamp: true, doc: "nucleus sampling (1 = off)" },
  { name: "min_p", type: "number", scope: "sampling", min: 0, max: 1, clamp: true, doc: "min-p (0 = off)" },
  { name: "typical_p", type: "number", scope: "sampling", aliases: ["typ_p"], min: 0, max: 1, clamp: true, doc: "locally typical (1 = off)" },
  { name: "top_n_sigma", type: "number", scope: "sampling", min: -1, max: Infinity, doc: "top-n-sigma (-1 = off)" },
  { name: "xtc_probability", type: "number", scope: "sampling", min: 0, max: 1, doc: "XTC probability" },
  { name: "xtc_threshold", type: "number", scope: "sampling", min: 0, max: 1, doc: "XTC threshold" },
  { name: "dynatemp_range", type: "number", scope: "sampling", min: 0, max: Infinity, doc: "dynamic temperature range" },
  { name: "dynatemp_exponent", type: "number", scope: "sampling", min: 0, max: Infinity, doc: "dynamic temperature exponent" },
  { name: "repeat_penalty", type: "number", scope: "sampling", aliases: ["penalty_repeat"], min: 0, max: Infinity, clamp: true, doc: "repetition penalty (1 = off)" },
  { name: "repeat_last_n", type: "int", scope: "sampling", aliases: ["penalty_last_n", "last_n_penalty"], min: -1, max: I32_MAX, doc: "penalty window (-1 = context size)" },
  { name: "presence_penalty", type: "number", scope: "sampling", aliases: ["penalty_present"], min: 0, max: Infinity, clamp: true, doc: "presence penalty" },
  { name: "frequency_penalty", type: "number", scope: "sampling", aliases: ["penalty_freq"], min: 0, max: Infinity, clamp: true, doc: "frequency penalty" },
  { name: "dry_multiplier", type: "number", scope: "sampling", min: 0, max: Infinity, doc: "DRY multiplier (0 = off)" },
  { name: "dry_base", type: "number", scope: "sampling", min: 0, max: Infinity, doc: "DRY base" },
  { name: "dry_allowed_length", type: "int", scope: "sampling", min: 0, max: I32_MAX, doc: "DRY allowed length" },
  { name: "dry_penalty_last_n", type: "int", scope: "sampling", min: -1, max: I32_MAX, doc: "DRY window (-1 = context size)" },
  { name: "dry_sequence_breakers", type: "string[]", scope: "sampling", doc: "DRY sequence breakers" },
  { name: "mirostat", type: "int", scope: "sampling", min: 0, max: 2, doc: "0 off, 1 Mirostat, 2 Mirostat 2.0" },
  { name: "mirostat_tau", type: "number", scope: "sampling", min: 0, max: Infinity, doc: "Mirostat target entropy" },
  { name: "mirostat_eta", type: "number", scope: "sampling", min: 0, max: Infinity, doc: "Mirostat learning rate" },
  { name: "min_keep", type: "int", scope: "sampling", min: 0, max: I32_MAX, doc: "minimum candidates kept" },
  { name: "n_probs", type: "int", scope: "sampling", min: 0, max: 1024, doc: "top-N probabilities per token" },
  { name: "seed", type: "int", scope: "sampling", min: -1, max: 4294967295, doc: "RNG seed (-1 = random)" },
  { name: "ignore_eos", type: "bool", scope: "sampling", doc: "do not stop at end-of-generation tokens" },
  { name: "grammar", type: "string", scope: "sampling", doc: "GBNF grammar" },
  { name: "json_schema", type: "any", scope: "sampling", doc: "JSON schema (object or string) turned into a grammar" },
  { name: "samplers", type: "string[]", scope: "sampling", doc: "sampler order" },
  { name: "logit_bias", type: "any", scope: "sampling", doc: "[[token, bias], ...] or {token: bias}; false bans" },
  // run
  { name: "n_predict", type: "int", scope: "run", aliases: ["max_tokens", "n_predicts"], min: -1, max: I32_MAX, doc: "max tokens to generate (-1 = until the context is full)" },
  { name: "reverse_prompt", type: "string", scope: "run", aliases: ["antiprompt"], doc: "stop when the output contains this text" },
  { name: "stop", type: "string[]", scope: "run", doc: "stop strings" },
  { name: "stream_stdout", type: "bool", scope: "run", doc: "print each token to the host's stdout during compute" },
  { name: "enable_log", type: "bool", scope: "run", doc: "log info and llama.cpp messages" },
  { name: "enable_debug_log", type: "bool", scope: "run", doc: "log debug messages" },
  { name: "embd_normalize", type: "int", scope: "run", min: -1, max: I32_MAX, doc: "-1 none, 0 max-abs, 1 taxicab, 2 euclidean, >2 p-norm" },
  { name: "chat_template", type: "string", scope: "run", doc: "Jinja chat template override" },
];

const BY_SPELLING = new Map<string, KeyDef>();
for (const k of KEYS) {
  for (const s of [k.name, ...(k.aliases ?? [])]) {
    BY_SPELLING.set(s, k);
    BY_SPELLING.set(s.replaceAll("_", "-"), k);
  }
}

/** Resolved values by canonical name. */
export type ConfigValues = Record<string, unknown>;

/** What a config failed on. Guests get errno InvalidArgument (1). */
export class ConfigError extends WasiNnError {
  /** The key as written. */
  readonly field: string;
  /** The offending value. */
  readonly value: unknown;
  /** A hint to fix it. */
  readonly suggestion?: string;

  /** Creates a config error. */
  constructor(field: string, value: unknown, message: string, suggestion?: string) {
    super(
      Errno.InvalidArgument,
      `Field '${field}': ${message}${suggestion ? ` (${suggestion})` : ""}`,
    );
    this.field = field;
    this.value = value;
    this.suggestion = suggestion;
  }
}

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
  }
  return d[a.length][b.length];
}

/** The closest known spelling to an unknown key, if any is close. */
export function suggestKey(key: string): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const s of BY_SPELLING.keys()) {
    const d = levenshtein(key, s);
    if (d < bestD) {
      bestD = d;
      best = s;
    }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 4)) ? best : undefined;
}

/** Looks a key up under any spelling. */
export function keyDef(spelling: string): KeyDef | undefined {
  return BY_SPELLING.get(spelling);
}

function describe(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? "an array" : String(v);
}

function checkValue(field: string, def: KeyDef, v: unknown): unknown {
  switch (def.type) {
    case "int":
      if (typeof v !== "number" || !Number.isInteger(v)) {
        throw new ConfigError(
          field,
          v,
          `expected an integer, but got ${typeof v === "number" ? v : `${typeof v} ${describe(v)}`}`,
          typeof v === "string" && /^-?\d+$/.test(v) ? `write ${v} without quotes` : undefined,
        );
      }
      break;
    case "number":
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new ConfigError(
          field,
          v,
          `expected a number, but got ${typeof v} ${describe(v)}`,
          typeof v === "string" && !isNaN(Number(v)) ? `write ${v} without quotes` : undefined,
        );
      }
      break;
    case "bool":
      if (typeof v !== "boolean") {
        throw new ConfigError(
          field,
          v,
          `expected true or false, but got ${typeof v} ${describe(v)}`,
        );
      }
      return v;
    case "string":
      if (typeof v !== "string") {
        throw new ConfigError(field, v, `expected a string, but got ${typeof v} ${describe(v)}`);
      }
      if (def.oneOf && !def.oneOf.includes(v)) {
        throw new ConfigError(
          field,
          v,
          `must be one of ${def.oneOf.join(", ")}, but got ${JSON.stringify(v)}`,
        );
      }
      return v;
    case "string[]":
      if (typeof v === "string") return [v];
      if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
        throw new ConfigError(field, v, `expected a string or an array of strings`);
      }
      return v;
    case "any":
      return v;
  }
  const n = v as number;
  const min = def.min ?? -Infinity, max = def.max ?? Infinity;
  if (n < min || n > max) {
    if (def.clamp) return Math.min(max, Math.max(min, n));
    throw new ConfigError(
      field,
      v,
      `Value must be between ${min} <= value <= ${max}, but got ${n}`,
    );
  }
  return n;
}

/** Result of parsing one config layer. */
export interface ParsedConfig {
  /** Values by canonical name (null values removed: null means "default"). */
  values: ConfigValues;
  /** Unknown keys, with a suggestion where one is close. */
  warnings: string[];
}

/**
 * Parses and validates one config layer (JSON text or an object). Malformed
 * JSON throws WasiNnError(InvalidEncoding); a bad value throws ConfigError
 * (InvalidArgument). Nested sections of the original project (`sampling`,
 * `model`, `backend`, `stopping`, ...) are flattened. Unknown keys are
 * warnings, or errors with `strict`.
 */
export function parseConfig(
  input: string | Record<string, unknown> | undefined,
  options: { strict?: boolean } = {},
): ParsedConfig {
  const values: ConfigValues = {};
  const warnings: string[] = [];
  if (input === undefined) return { values, warnings };
  let obj: unknown = input;
  if (typeof input === "string") {
    if (input.trim() === "") return { values, warnings };
    try {
      obj = JSON.parse(input);
    } catch (e) {
      throw new WasiNnError(
        Errno.InvalidEncoding,
        `config is not valid JSON: ${(e as Error).message}`,
      );
    }
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new WasiNnError(Errno.InvalidEncoding, "config must be a JSON object");
  }
  const visit = (o: Record<string, unknown>, prefix: string) => {
    for (const [key, v] of Object.entries(o)) {
      const def = keyDef(key);
      if (!def && v !== null && typeof v === "object" && !Array.isArray(v)) {
        visit(v as Record<string, unknown>, `${prefix}${key}.`);
        continue;
      }
      if (!def) {
        const s = suggestKey(key);
        const msg = `unknown config key '${prefix}${key}'${s ? `; did you mean '${s}'?` : ""}`;
        if (options.strict) {
          throw new ConfigError(`${prefix}${key}`, v, "unknown key", s ? `did you mean '${s}'?` : undefined);
        }
        warnings.push(msg);
        continue;
      }
      if (v === null) continue;
      values[def.name] = checkValue(`${prefix}${key}`, def, v);
    }
  };
  visit(obj as Record<string, unknown>, "");
  return { values, warnings };
}

/** Merges layers, lowest first. */
export function mergeConfig(...layers: (ConfigValues | undefined)[]): ConfigValues {
  return Object.assign({}, ...layers.filter(Boolean));
}

/** The canonical keys of one scope whose values differ between two configs. */
export function changedScopes(a: ConfigValues, b: ConfigValues): Set<KeyScope> {
  const out = new Set<KeyScope>();
  for (const k of KEYS) {
    if (JSON.stringify(a[k.name]) !== JSON.stringify(b[k.name])) out.add(k.scope);
  }
  return out;
}
