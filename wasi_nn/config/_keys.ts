/**
 * The one definition of every configuration key: names and spellings, JSON
 * type, range (hard = rejected, soft = clamped, as in llama.cpp's
 * `tools/server/server-schema.cpp`), default, scope, doc, and the key's own
 * logic where it has some (its hook: warnings, normalisation, checks). The
 * zod schema of each key is built from the same entry; parsing (parse.ts)
 * and the JSON Schema (schema.ts) both read it from here.
 * `ConfigValueTypes` states each key's value type for the public API, and
 * `deno check` fails unless it is what the entries give.
 *
 * @module
 */

import {
  GRAMMAR_TRIGGER_TYPES,
  POOLING_TYPES,
  type PoolingName,
} from "../../bindings/types.ts";
import type { GrammarTrigger } from "../../bindings/mod.ts";
import { parseRpcList } from "../../bindings/_rpc_endpoints.ts";
import { z } from "zod";
import { ConfigError } from "../errno.ts";
import { LOG_LEVELS } from "../log.ts";
import { closest } from "./_key_suggest.ts";

/** JSON types a key accepts ("json": a structured value, see the key's doc). */
export type KeyType = "int" | "number" | "bool" | "string" | "string[]" | "any";

/** Which object a key configures (what must be rebuilt when it changes). */
export type KeyScope = "model" | "context" | "sampling" | "run" | "host";

/** The definition of one configuration key. */
export interface KeyDef {
  /** Canonical snake_case name. */
  name: string;
  /** JSON type. */
  type: KeyType;
  /** What it configures. */
  scope: KeyScope;
  /** Other accepted spellings (kebab-case of each is accepted too). A dotted alias (`logging.level`) applies inside that section only. */
  aliases?: string[];
  /** Inclusive lower bound for numbers. */
  min?: number;
  /** Inclusive upper bound for numbers. */
  max?: number;
  /** Clamp into range instead of rejecting (where llama.cpp's server clamps). */
  clamp?: boolean;
  /** Allowed strings. */
  oneOf?: readonly string[];
  /** The default (llama.cpp's `common_params` value where it has one). */
  default?: unknown;
  /** One line for docs and --help. */
  doc: string;
  /** A field of llama.cpp's server completion request. */
  server?: boolean;
  /** Accepted for compatibility but without effect in this host: why. */
  noEffect?: string;
  /**
   * The operator's alone: read from the host config only; in a request's
   * config (a guest's load or session config) it is dropped with a warning.
   */
  operatorOnly?: boolean;
}

/** What a key's hook gets besides the value. */
export interface HookContext {
  /** The field as written (a dotted path inside sections), for messages. */
  field: string;
  /** The key's entry. */
  def: KeyDef;
  /** Where warnings go. */
  warnings: string[];
}

/**
 * A key plus its zod schema and hook (internal). `N` is the canonical name
 * and `V` the type of the value parsing stores for it, both at the type
 * level; `ConfigValueTypes` must be exactly what the table's entries give.
 */
export interface KeySpec<N extends string = string, V = unknown>
  extends KeyDef {
  /** Canonical snake_case name. */
  name: N;
  /** The default (llama.cpp's `common_params` value where it has one). */
  default?: V;
  /** Validates (and for soft ranges clamps) one value. */
  schema: z.ZodType;
  /** A float key: messages print numbers as C's `std::to_string(float)` does. */
  float?: boolean;
  /**
   * The key's own logic once the schema has accepted the value (called with
   * the schema's output): warnings, normalisation, checks that throw
   * ConfigError. Returns the value to store; `undefined` drops it (a lower
   * layer's value or the default applies). Keys without one store the
   * schema's output, with a warning where a soft range clamped it.
   */
  hook?(value: unknown, ctx: HookContext): V | undefined;
}

/** INT32_MAX, the server's usual upper bound. */
export const I32_MAX = 2147483647;
const FLT_MAX = 3.4028234663852886e38;

/** Formats a number as llama.cpp's messages do: ints plainly, floats with 6 decimals. */
export function fmtNum(v: number, float: boolean): string {
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  return float ? v.toFixed(6) : String(v);
}

/** Short description of a JSON value for messages. */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `array ${JSON.stringify(v).slice(0, 40)}`;
  if (typeof v === "object") return "object";
  if (typeof v === "string") {
    return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  }
  return `${typeof v} ${String(v)}`;
}

const typeError =
  (expected: string) => (iss: { code?: string; input?: unknown }) =>
    iss.code === "invalid_type" || iss.code === "invalid_union" ||
      iss.code === "invalid_value"
      ? `type must be ${expected}, but is ${describeValue(iss.input)}`
      : undefined;

const rangeMsg =
  (min: number, max: number, float: boolean) => (iss: { input?: unknown }) =>
    `Value must be between ${fmtNum(min, float)} <= value <= ${
      fmtNum(max, float)
    }, but got ${fmtNum(Number(iss.input), float)}`;

/** The TypeScript type of each JSON type, as the default schema of a key of that type gives it. */
interface ValueTypes {
  int: number;
  number: number;
  bool: boolean;
  string: string;
  "string[]": string | string[];
  any: unknown;
}

/** What a key's schema gives its hook: the output of its own schema, else its `oneOf` strings, else its JSON type's. */
type Parsed<T extends KeyType, S, O> = S extends z.ZodType ? z.output<S>
  : O extends readonly string[] ? O[number]
  : ValueTypes[T];

interface Opts<In, O, S, V> {
  aliases?: string[];
  min?: number;
  max?: number;
  soft?: boolean;
  oneOf?: O;
  default?: NoInfer<V>;
  server?: boolean;
  noEffect?: string;
  operatorOnly?: boolean;
  schema?: S;
  hook?: (value: In, ctx: HookContext) => V | undefined;
}

interface NumericOpts {
  min?: number;
  max?: number;
  soft?: boolean;
}

function numeric(int: boolean, o: NumericOpts): z.ZodType<number> {
  const float = !int;
  const min = o.min ?? -Infinity, max = o.max ?? Infinity;
  const msg = rangeMsg(min, max, float);
  let s: z.ZodNumber = int
    ? z.int({
      // z.int() also checks the safe-integer range: report that as our range
      error: (iss) =>
        iss.code === "invalid_type" ? typeError("an integer")(iss) : msg(iss),
    }) as unknown as z.ZodNumber
    : z.number({ error: typeError("a number") });
  const meta: Record<string, unknown> = {};
  if (o.soft) {
    if (Number.isFinite(min)) meta.minimum = min;
    if (Number.isFinite(max)) meta.maximum = max;
    meta["x-clamped"] = true;
    return s.overwrite((v) => Math.min(max, Math.max(min, v))).meta(meta);
  }
  if (Number.isFinite(min)) s = s.min(min, { error: msg });
  if (Number.isFinite(max)) s = s.max(max, { error: msg });
  return s;
}

/**
 * One entry of the table. The value type is the hook's result where the key
 * has a hook, else what its schema gives (see {@linkcode Parsed}).
 */
function spec<
  N extends string,
  T extends KeyType,
  S extends z.ZodType | undefined = undefined,
  const O extends readonly string[] | undefined = undefined,
  V = Parsed<T, S, O>,
>(
  name: N,
  type: T,
  scope: KeyScope,
  doc: string,
  o: Opts<Parsed<T, S, O>, O, S, V> = {},
): KeySpec<N, V> {
  let schema: z.ZodType | undefined = o.schema;
  if (!schema) {
    switch (type) {
      case "int":
        schema = numeric(true, o);
        break;
      case "number":
        schema = numeric(false, o);
        break;
      case "bool":
        schema = z.boolean({ error: typeError("boolean (true or false)") });
        break;
      case "string":
        schema = o.oneOf
          ? z.enum(o.oneOf as [string, ...string[]], {
            error: (iss) =>
              typeof iss.input === "string"
                ? `must be one of ${o.oneOf!.join(", ")}, but got ${
                  JSON.stringify(iss.input)
                }`
                : `type must be string, but is ${describeValue(iss.input)}`,
          })
          : z.string({ error: typeError("string") });
        break;
      case "string[]":
        schema = z.union([z.string(), z.array(z.string())], {
          error: typeError("a string or an array of strings"),
        });
        break;
      case "any":
        schema = z.unknown();
        break;
    }
  }
  const def: KeySpec<N, V> = { name, type, scope, doc, schema: schema! };
  if (o.aliases) def.aliases = o.aliases;
  if (o.min !== undefined) def.min = o.min;
  if (o.max !== undefined) def.max = o.max;
  if (o.soft) def.clamp = true;
  if (o.oneOf) def.oneOf = o.oneOf;
  if (o.default !== undefined) def.default = o.default;
  if (o.server) def.server = true;
  if (o.noEffect) def.noEffect = o.noEffect;
  if (o.operatorOnly) def.operatorOnly = true;
  if (type === "number") def.float = true;
  if (o.hook) def.hook = o.hook;
  return def;
}

// ---- structured value schemas -------------------------------------------------

const BIAS = z.union([z.number(), z.literal(false)]);
const LOGIT_BIAS = z.union([
  z.array(z.tuple([z.union([z.int(), z.string()]), BIAS])),
  z.record(z.string(), BIAS),
], {
  error: (iss) =>
    `must be an array of [token id or string, bias] pairs or an object {"token id or string": bias}; a bias is a number or false (ban), but got ${
      describeValue(iss.input)
    }`,
});

const JSON_SCHEMA = z.union([
  z.string(),
  z.boolean(),
  z.record(z.string(), z.unknown()),
], {
  error: (iss) =>
    `must be a JSON schema (an object, or a string holding one), but got ${
      describeValue(iss.input)
    }`,
});

const TRIGGER = z.union([
  z.string(),
  z.object({
    type: z.union([
      z.int().min(0).max(3),
      z.enum(GRAMMAR_TRIGGER_TYPES),
    ]),
    value: z.string().optional(),
    token: z.int().optional(),
  }),
]);
const TRIGGERS = z.array(TRIGGER, {
  error: (iss) =>
    `must be an array of triggers: a word (string) or {"type": "word"|"pattern"|"pattern_full"|"token" (or 1, 2, 3, 0), "value": string, "token": id}, but got ${
      describeValue(iss.input)
    }`,
});

const SAMPLERS = z.union([z.array(z.string()), z.string()], {
  error: (iss) =>
    `must be an array of sampler names (e.g. ["top_k", "min_p", "temperature"]) or a string of sampler letters (e.g. "kmt"), but got ${
      describeValue(iss.input)
    }`,
});

const BREAKERS = z.array(
  z.string({
    error: (iss) => `must be a string, but is ${describeValue(iss.input)}`,
  }),
  {
    error: (iss) =>
      `must be a non-empty array of strings, but got ${
        describeValue(iss.input)
      }`,
  },
).min(1, { error: "must be a non-empty array of strings" });

const FLASH = z.union([
  z.boolean(),
  z.enum(["on", "off", "auto", "enabled", "disabled"]),
], {
  error: (iss) =>
    `must be true, false, "on", "off" or "auto", but got ${
      describeValue(iss.input)
    }`,
});

const poolingMsg = (iss: { input?: unknown }) =>
  `must be -1 (model default), 0 none, 1 mean, 2 cls, 3 last, 4 rank (or the name), but got ${
    describeValue(iss.input)
  }`;
const POOLING = z.union([
  z.int({ error: poolingMsg }).min(-1, { error: poolingMsg }).max(4, {
    error: poolingMsg,
  }),
  z.enum(POOLING_TYPES),
], { error: poolingMsg });

const TENSOR_SPLIT = z.union([z.string(), z.array(z.number())], {
  error: typeError('a string such as "3,2" or an array of numbers'),
});

const NUMA = z.union([
  z.boolean(),
  z.enum(["disabled", "distribute", "isolate", "numactl", "mirror"]),
], {
  error: typeError(
    "a boolean or one of disabled, distribute, isolate, numactl, mirror",
  ),
});

const CACHE_TYPES = [
  "f32",
  "f16",
  "bf16",
  "q8_0",
  "q4_0",
  "q4_1",
  "iq4_nl",
  "q5_0",
  "q5_1",
] as const;

/** ggml_type numbers of the KV cache types (for `wnb_context_params.type_k/type_v`). */
export const GGML_CACHE_TYPE: Readonly<Record<string, number>> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q4_1: 3,
  q5_0: 6,
  q5_1: 7,
  q8_0: 8,
  iq4_nl: 20,
  bf16: 30,
};

const NOT_HERE = "this host does not implement it";

// ---- per-key hooks (see KeySpec.hook) ----------------------------------------

/** `dry_base`: below 1 the value is ignored, as llama.cpp's server ignores it. */
function dryBase(
  v: number,
  { field, def, warnings }: HookContext,
): number | undefined {
  if (v < 1) {
    warnings.push(
      `Field '${field}': ${v} is below 1.0 and is ignored (the default ${def.default} or a lower layer's value applies)`,
    );
    return undefined;
  }
  return v;
}

/** `tensor_split`: `"3,2"` (or `"3/2"`, as llama.cpp splits it) or numbers, each >= 0, at most 16. */
function tensorSplit(
  v: string | number[],
  { field }: HookContext,
): number[] {
  const values = typeof v === "string"
    ? v.split(/[,/]/).map((s) => s.trim())
    : v;
  if (values.length > 16) {
    throw new ConfigError(
      field,
      v,
      `has ${values.length} values; at most 16 (one per device)`,
      undefined,
      "range",
    );
  }
  return values.map((x, i) => {
    const n = typeof x === "string" && x !== "" ? Number(x) : x;
    if (typeof n !== "number" || !Number.isFinite(n) || n < 0) {
      throw new ConfigError(
        field,
        v,
        `value ${i + 1} (${JSON.stringify(x)}) must be a finite number >= 0`,
        'e.g. "3,2": three fifths on the first device, two on the second',
        "format",
      );
    }
    return n;
  });
}

/** `rpc`: llama.cpp's --rpc list, checked entry by entry (bindings/_rpc_endpoints.ts). */
function rpcList(v: string | string[], { field }: HookContext): string[] {
  try {
    return parseRpcList(v);
  } catch (e) {
    throw new ConfigError(
      field,
      v,
      (e as Error).message,
      'e.g. "127.0.0.1:50052,127.0.0.1:50053"',
      "format",
    );
  }
}

/** `repeat_penalty`: must be greater than 0 (1 is off). */
function positivePenalty(v: number, { field }: HookContext): number {
  if (!(v > 0)) {
    throw new ConfigError(
      field,
      v,
      `Value must be finite and greater than 0, but got ${fmtNum(v, true)}`,
      "1.0 disables the penalty",
      "range",
    );
  }
  return v;
}

/** `samplers`: names (an array, or a string split at `;` or `,`) or a string of letters, to canonical names. */
function samplerList(v: string[] | string, { field }: HookContext): string[] {
  if (typeof v === "string" && !/[;,]/.test(v)) {
    const out: string[] = [];
    for (const c of v) {
      const name = SAMPLER_CHARS[c];
      if (!name) {
        throw new ConfigError(
          field,
          v,
          `unknown sampler letter '${c}'`,
          `letters: ${
            Object.entries(SAMPLER_CHARS).map(([k, n]) => `${k} ${n}`).join(
              ", ",
            )
          }`,
          "enum",
        );
      }
      out.push(name);
    }
    return out;
  }
  const names = typeof v === "string"
    ? v.split(/[;,]/).map((s) => s.trim()).filter(Boolean)
    : v;
  return names.map((n) => {
    const name = SAMPLER_NAMES[n.toLowerCase()];
    if (!name) {
      const s = closest(n, SAMPLER_SPELLINGS);
      throw new ConfigError(
        field,
        n,
        `unknown sampler '${n}'`,
        s
          ? `did you mean '${s}'?`
          : `samplers: ${
            [...new Set(Object.values(SAMPLER_NAMES))].join(", ")
          }`,
        "enum",
      );
    }
    return name;
  });
}

/** `stop`: one string or a list, empty strings left out. */
function stopList(v: string | string[]): string[] {
  return (typeof v === "string" ? [v] : v).filter((s) => s !== "");
}

/** `pooling_type`: a name to llama.cpp's number. */
function poolingNumber(v: number | PoolingName): number {
  return typeof v === "string" ? POOLING_TYPES.indexOf(v) : v;
}

/** `json_schema`: a string must hold valid JSON; an empty one is no schema. */
function jsonSchemaText(
  v: z.output<typeof JSON_SCHEMA>,
  { field }: HookContext,
): z.output<typeof JSON_SCHEMA> | undefined {
  if (typeof v === "string") {
    if (v.trim() === "") return undefined;
    try {
      JSON.parse(v);
    } catch (e) {
      throw new ConfigError(
        field,
        v,
        `not valid JSON: ${(e as Error).message}`,
        "send the schema as a JSON object or as a string holding valid JSON",
        "format",
      );
    }
  }
  return v;
}

/** `grammar_triggers`: words and numbered types to `{type, value}` / `{type, token}`, each with what its type needs. */
function triggerList(
  v: z.output<typeof TRIGGERS>,
  { field }: HookContext,
): GrammarTrigger[] {
  return v.map((t, i): GrammarTrigger => {
    if (typeof t === "string") return { type: "word", value: t };
    const type = typeof t.type === "number"
      ? GRAMMAR_TRIGGER_TYPES[t.type]
      : t.type;
    if (type === "token" ? t.token === undefined : t.value === undefined) {
      throw new ConfigError(
        `${field}[${i}]`,
        t,
        type === "token"
          ? `a "token" trigger needs "token": <id>`
          : `a "${type}" trigger needs "value": <string>`,
        undefined,
        "requires",
      );
    }
    return type === "token"
      ? { type, token: t.token }
      : { type, value: t.value };
  });
}

/** `logit_bias`: token ids of the pair form are >= 0. */
function logitBiasIds(
  v: z.output<typeof LOGIT_BIAS>,
  { field }: HookContext,
): z.output<typeof LOGIT_BIAS> {
  if (Array.isArray(v)) {
    for (const [tok] of v) {
      if (typeof tok === "number" && tok < 0) {
        throw new ConfigError(
          field,
          tok,
          `token ids are >= 0, but got ${tok}`,
          undefined,
          "range",
        );
      }
    }
  }
  return v;
}

// ---- the table ------------------------------------------------------------------

/** The KV cache types llama.cpp takes (`cache_type_k`, `cache_type_v`). */
export type KvCacheType =
  | "f32"
  | "f16"
  | "bf16"
  | "q8_0"
  | "q4_0"
  | "q4_1"
  | "iq4_nl"
  | "q5_0"
  | "q5_1";

/**
 * Every key's canonical name and the type of the value parsing stores for it
 * (after the key's schema and hook), in the table's order: the type-level
 * half of the key table. `deno check` fails unless it is exactly what the
 * table's entries give (see `_TableMatchesTypes` below), so a key added,
 * dropped or retyped in one place must be in the other too.
 *
 * @example
 * ```ts
 * import type { ConfigValueTypes } from "./_keys.ts";
 * const split: ConfigValueTypes["split_mode"] = "row";
 * const samplers: ConfigValueTypes["samplers"] = ["top_k", "temperature"];
 * console.log(split, samplers.length); // row 2
 * ```
 */
export type ConfigValueTypes = {
  // model
  n_gpu_layers: number | "auto";
  main_gpu: number;
  split_mode: "none" | "layer" | "row";
  tensor_split: number[];
  use_mmap: boolean;
  use_mlock: boolean;
  check_tensors: boolean;
  numa: boolean | "disabled" | "distribute" | "isolate" | "numactl" | "mirror";
  mmproj: string;
  // run
  image: string;
  // model
  cpu_moe: boolean;
  n_cpu_moe: number;
  // context
  ctx_size: number;
  batch_size: number;
  ubatch_size: number;
  threads: number;
  threads_batch: number;
  poll: number;
  flash_attn: boolean | "auto" | "on" | "off" | "enabled" | "disabled";
  embedding: boolean;
  pooling_type: number;
  cache_type_k: KvCacheType;
  cache_type_v: KvCacheType;
  rope_freq_base: number;
  rope_freq_scale: number;
  no_kv_offload: boolean;
  swa_full: boolean;
  kv_unified: boolean;
  parallel: number;
  // sampling
  temp: number;
  dynatemp_range: number;
  dynatemp_exponent: number;
  top_k: number;
  top_p: number;
  min_p: number;
  typical_p: number;
  top_n_sigma: number;
  xtc_probability: number;
  xtc_threshold: number;
  repeat_penalty: number;
  presence_penalty: number;
  frequency_penalty: number;
  repeat_last_n: number;
  dry_multiplier: number;
  dry_base: number;
  dry_allowed_length: number;
  dry_penalty_last_n: number;
  dry_sequence_breakers: string[];
  mirostat: number;
  mirostat_tau: number;
  mirostat_eta: number;
  adaptive_target: number;
  adaptive_decay: number;
  seed: number;
  n_probs: number;
  min_keep: number;
  ignore_eos: boolean;
  grammar: string;
  json_schema: string | boolean | Record<string, unknown>;
  response_format: {
    type: "text" | "json_object" | "json_schema";
    schema?: Record<string, unknown>;
    json_schema?: { schema?: Record<string, unknown>; [key: string]: unknown };
    [key: string]: unknown;
  };
  grammar_lazy: boolean;
  grammar_triggers: GrammarTrigger[];
  samplers: string[];
  logit_bias:
    | [string | number, number | false][]
    | Record<string, number | false>;
  backend_sampling: boolean;
  // run
  n_predict: number;
  stop: string[];
  reverse_prompt: string;
  stop_token_ids: number[];
  loop_max_cycle: number;
  loop_repeats: number;
  priority: number;
  queue_timeout_ms: number;
  n_keep: number;
  n_discard: number;
  ctx_shift: boolean;
  t_max_predict_ms: number;
  cache_prompt: boolean;
  n_cache_reuse: number;
  n_indent: number;
  stream: boolean;
  post_sampling_probs: boolean;
  stream_stdout: boolean;
  enable_log: boolean;
  enable_debug_log: boolean;
  // host
  log_level: "debug" | "info" | "warn" | "error" | "fatal";
  log_file: string;
  log_format: "text" | "json";
  log_timestamps: boolean;
  log_colors: boolean;
  // run
  embd_normalize: number;
  chat_template: string;
  chat_parse_special: boolean;
  // host
  chat_template_timeout_ms: number;
  chat_template_max_memory_mb: number;
  chat_template_max_output_bytes: number;
  max_sessions: number;
  idle_timeout_ms: number;
  auto_cleanup: boolean;
  max_queue: number;
  default_task_timeout_ms: number;
  priority_scheduling_enabled: boolean;
  fair_scheduling_enabled: boolean;
  auto_queue_cleanup: boolean;
  queue_warning_threshold: number;
  queue_reject_threshold: number;
  cache_strategy: "lru" | "fifo" | "smart";
  cache_deletion_strategy: "lru" | "fifo" | "smart";
  max_cache_tokens: number;
  enable_partial_cache_deletion: boolean;
  enable_token_cache_reuse: boolean;
  max_memory_mb: number;
  max_load_mb: number;
  max_image_mb: number;
  guest_max_tokens: number;
  guest_max_compute_ms: number;
  guest_max_contexts: number;
  guest_max_kv_tokens: number;
  guest_max_load_mb: number;
  engine: "in_process" | "process";
  rpc: string[];
  memory_pressure_threshold: number;
  batch_processing: boolean;
  batch_timeout_ms: number;
};

/**
 * The canonical name of a key.
 *
 * @example
 * ```ts
 * import type { KeyName } from "./_keys.ts";
 * const k: KeyName = "n_predict";
 * console.log(k);
 * ```
 */
export type KeyName = keyof ConfigValueTypes;

/**
 * The type of the value parsing stores for key `K` (after its schema and
 * hook): `ConfigValue<"n_predict">` is `number`, `ConfigValue<"samplers">`
 * is `string[]`, `ConfigValue<"split_mode">` is `"none" | "layer" | "row"`.
 *
 * @example
 * ```ts
 * import type { ConfigValue } from "./_keys.ts";
 * const n: ConfigValue<"n_predict"> = 64;
 * console.log(n);
 * ```
 */
export type ConfigValue<K extends KeyName> = ConfigValueTypes[K];

/**
 * Resolved values by canonical name, each of its key's type (`null` and
 * unset keys are absent).
 *
 * @example
 * ```ts
 * import type { ConfigValues } from "./_keys.ts";
 * const cfg: ConfigValues = { temp: 0.2, n_predict: 64 };
 * console.log(Object.keys(cfg).length); // 2
 * ```
 */
export type ConfigValues = { [K in KeyName]?: ConfigValue<K> };

/** Any entry of the table, its name typed. */
export type AnyKeySpec = KeySpec<KeyName, unknown>;

/** Every key, in documentation order (with each entry's name and value type). */
const TABLE = [
  // model (a change reloads the model)
  spec(
    "n_gpu_layers",
    "int",
    "model",
    'layers offloaded to the GPU (-1 = all, "auto" = as many as fit)',
    {
      aliases: ["ngl", "gpu_layers"],
      min: -1,
      max: I32_MAX,
      default: -1,
      schema: z.union([
        numeric(true, { min: -1, max: I32_MAX }),
        z.literal("auto"),
      ], {
        error: (iss) => {
          const v = iss.input;
          if (typeof v === "number" && Number.isInteger(v)) {
            return rangeMsg(-1, I32_MAX, false)(iss);
          }
          return `type must be an integer or "auto", but is ${
            describeValue(v)
          }`;
        },
      }),
    },
  ),
  spec(
    "main_gpu",
    "int",
    "model",
    "the device of split_mode none: an index into the model's devices (the rpc servers' first, then local GPUs)",
    {
      min: 0,
      max: I32_MAX,
      default: 0,
    },
  ),
  spec(
    "split_mode",
    "string",
    "model",
    "how to split the model across devices: layer (whole layers each), none (all on main_gpu), row (CUDA GPUs only)",
    {
      oneOf: ["none", "layer", "row"],
      default: "layer",
    },
  ),
  spec(
    "tensor_split",
    "any",
    "model",
    "share of the offloaded layers per device, e.g. \"3,2\" (llama.cpp's --tensor-split; the devices: the rpc servers' first, then local GPUs)",
    {
      schema: TENSOR_SPLIT,
      hook: tensorSplit,
    },
  ),
  spec("use_mmap", "bool", "model", "memory-map the model file", {
    default: true,
  }),
  spec("use_mlock", "bool", "model", "lock the model in RAM", {
    default: false,
  }),
  spec("check_tensors", "bool", "model", "validate tensor data while loading", {
    default: false,
  }),
  spec("numa", "any", "model", "NUMA strategy", {
    schema: NUMA,
    noEffect: NOT_HERE,
  }),
  spec(
    "mmproj",
    "string",
    "model",
    'multimodal projector GGUF for the model (llava, gemma3, ...): a preloaded name or a file inside an allowed folder (--nn-allow-dir); its prompts take images (and audio) by the image key or inline <img src="data:image/...;base64,..."> tags, each at a <image> marker',
    {},
  ),
  spec(
    "image",
    "string",
    "run",
    "image (or audio) file for the next prompt: a guest's path inside the folders it was given (--dir); the prompt's <image> marker says where it goes (in front when there is none)",
    {},
  ),
  spec("cpu_moe", "bool", "model", "keep all MoE experts on the CPU", {
    noEffect: NOT_HERE,
  }),
  spec(
    "n_cpu_moe",
    "int",
    "model",
    "keep the MoE experts of the first N layers on the CPU",
    {
      min: 0,
      max: I32_MAX,
      noEffect: NOT_HERE,
    },
  ),
  // context (a change recreates the llama context)
  spec(
    "ctx_size",
    "int",
    "context",
    "context length in tokens of each session (0 = the model's training context; unset = that, up to 4096)",
    {
      aliases: ["n_ctx", "context_size"],
      min: 0,
      max: I32_MAX,
      default: 0,
    },
  ),
  spec(
    "batch_size",
    "int",
    "context",
    "logical batch: most tokens per decode call",
    {
      aliases: ["n_batch"],
      min: 1,
      max: I32_MAX,
      default: 2048,
    },
  ),
  spec("ubatch_size", "int", "context", "physical batch size", {
    aliases: ["n_ubatch", "ub"],
    min: 1,
    max: I32_MAX,
    default: 512,
  }),
  spec(
    "threads",
    "int",
    "context",
    "generation threads (<= 0 = llama.cpp's default)",
    {
      aliases: ["n_threads"],
      min: -1,
      max: 1024,
    },
  ),
  spec(
    "threads_batch",
    "int",
    "context",
    "prompt processing threads (<= 0 = same as threads)",
    {
      aliases: ["n_threads_batch", "tb"],
      min: -1,
      max: 1024,
    },
  ),
  spec(
    "poll",
    "int",
    "context",
    "thread-pool polling level 0..100 (llama.cpp's tools: 50)",
    {
      min: 0,
      max: 100,
      default: 50,
    },
  ),
  spec(
    "flash_attn",
    "any",
    "context",
    'flash attention: true/false or "on"/"off"/"auto"',
    {
      aliases: ["fa"],
      schema: FLASH,
      default: "auto",
    },
  ),
  spec("embedding", "bool", "context", "compute embeddings instead of text", {
    aliases: ["embeddings"],
    default: false,
  }),
  spec(
    "pooling_type",
    "any",
    "context",
    "-1 model default, 0 none, 1 mean, 2 cls, 3 last, 4 rank (or the name)",
    {
      aliases: ["pooling"],
      schema: POOLING,
      default: -1,
      hook: poolingNumber,
    },
  ),
  spec("cache_type_k", "string", "context", "KV cache type of K", {
    aliases: ["type_k", "ctk"],
    oneOf: CACHE_TYPES,
    default: "f16",
  }),
  spec("cache_type_v", "string", "context", "KV cache type of V", {
    aliases: ["type_v", "ctv"],
    oneOf: CACHE_TYPES,
    default: "f16",
  }),
  spec(
    "rope_freq_base",
    "number",
    "context",
    "RoPE base frequency (0 = the model's)",
    { min: 0, default: 0 },
  ),
  spec(
    "rope_freq_scale",
    "number",
    "context",
    "RoPE frequency scale (0 = the model's)",
    { min: 0, default: 0 },
  ),
  spec("no_kv_offload", "bool", "context", "keep the KV cache in host memory", {
    default: false,
  }),
  spec(
    "swa_full",
    "bool",
    "context",
    "full-size sliding-window cache: old positions stay (more memory); otherwise checkpoints serve the prompt cache",
    { default: false },
  ),
  spec(
    "kv_unified",
    "bool",
    "context",
    "one KV buffer shared by all sequences",
    {
      default: false,
      noEffect:
        "every session has KV cells of its own here, so that no session can starve another",
    },
  ),
  spec(
    "parallel",
    "int",
    "context",
    "sequences (session slots) sharing one context (host default 4)",
    {
      aliases: ["n_parallel", "np", "max_concurrent"],
      min: 1,
      max: 256,
    },
  ),
  // sampling (a change rebuilds the sampler)
  spec("temp", "number", "sampling", "temperature (0 = greedy)", {
    aliases: ["temperature"],
    min: 0,
    max: Infinity,
    soft: true,
    default: 0.8,
    server: true,
  }),
  spec(
    "dynatemp_range",
    "number",
    "sampling",
    "dynamic temperature range: temp +- range (0 = off)",
    {
      default: 0,
      server: true,
    },
  ),
  spec(
    "dynatemp_exponent",
    "number",
    "sampling",
    "dynamic temperature exponent",
    { default: 1, server: true },
  ),
  spec("top_k", "int", "sampling", "keep the K most likely tokens (0 = off)", {
    min: 0,
    max: I32_MAX,
    soft: true,
    default: 40,
    server: true,
  }),
  spec("top_p", "number", "sampling", "nucleus sampling (1 = off)", {
    min: 0,
    max: 1,
    soft: true,
    default: 0.95,
    server: true,
  }),
  spec(
    "min_p",
    "number",
    "sampling",
    "minimum probability relative to the top token (0 = off)",
    {
      min: 0,
      max: 1,
      soft: true,
      default: 0.05,
      server: true,
    },
  ),
  spec(
    "typical_p",
    "number",
    "sampling",
    "locally typical sampling (1 = off)",
    {
      aliases: ["typ_p", "typical"],
      default: 1,
      server: true,
    },
  ),
  spec(
    "top_n_sigma",
    "number",
    "sampling",
    "keep tokens within n standard deviations of the top logit (< 0 = off)",
    {
      default: -1,
      server: true,
    },
  ),
  spec(
    "xtc_probability",
    "number",
    "sampling",
    "XTC: chance of removing the top tokens (0 = off)",
    {
      min: 0,
      max: 1,
      soft: true,
      default: 0,
      server: true,
    },
  ),
  spec(
    "xtc_threshold",
    "number",
    "sampling",
    "XTC: probability threshold (> 0.5 = off)",
    {
      min: 0,
      max: 1,
      soft: true,
      default: 0.1,
      server: true,
    },
  ),
  spec(
    "repeat_penalty",
    "number",
    "sampling",
    "repetition penalty (1 = off; must be > 0)",
    {
      aliases: ["penalty_repeat"],
      default: 1,
      server: true,
      hook: positivePenalty,
    },
  ),
  spec("presence_penalty", "number", "sampling", "presence penalty (0 = off)", {
    aliases: ["penalty_present"],
    default: 0,
    server: true,
  }),
  spec(
    "frequency_penalty",
    "number",
    "sampling",
    "frequency penalty (0 = off)",
    {
      aliases: ["penalty_freq"],
      default: 0,
      server: true,
    },
  ),
  spec(
    "repeat_last_n",
    "int",
    "sampling",
    "penalty window in tokens (0 = off, -1 = the context size)",
    {
      aliases: ["penalty_last_n", "last_n_penalty"],
      min: -1,
      max: I32_MAX,
      default: 64,
      server: true,
    },
  ),
  spec(
    "dry_multiplier",
    "number",
    "sampling",
    "DRY repetition penalty multiplier (0 = off)",
    {
      default: 0,
      server: true,
    },
  ),
  spec(
    "dry_base",
    "number",
    "sampling",
    "DRY base (>= 1; a smaller value falls back to the default)",
    {
      default: 1.75,
      server: true,
      hook: dryBase,
    },
  ),
  spec(
    "dry_allowed_length",
    "int",
    "sampling",
    "DRY: repeats longer than this are penalised",
    {
      min: 0,
      max: I32_MAX,
      default: 2,
      server: true,
    },
  ),
  spec(
    "dry_penalty_last_n",
    "int",
    "sampling",
    "DRY window in tokens (0 = off, -1 = the context size)",
    {
      min: -1,
      max: I32_MAX,
      default: 64,
      server: true,
    },
  ),
  spec(
    "dry_sequence_breakers",
    "string[]",
    "sampling",
    "DRY sequence breakers (non-empty array of strings)",
    {
      schema: BREAKERS,
      default: ["\n", ":", '"', "*"],
      server: true,
    },
  ),
  spec("mirostat", "int", "sampling", "0 off, 1 Mirostat, 2 Mirostat 2.0", {
    min: 0,
    max: 2,
    soft: true,
    default: 0,
    server: true,
  }),
  spec("mirostat_tau", "number", "sampling", "Mirostat target entropy", {
    default: 5,
    server: true,
  }),
  spec("mirostat_eta", "number", "sampling", "Mirostat learning rate", {
    default: 0.1,
    server: true,
  }),
  spec(
    "adaptive_target",
    "number",
    "sampling",
    "adaptive-p target probability 0..1 (< 0 = off)",
    {
      min: -FLT_MAX,
      max: 1,
      soft: true,
      default: -1,
      server: true,
    },
  ),
  spec("adaptive_decay", "number", "sampling", "adaptive-p EMA decay", {
    min: 0,
    max: 0.99,
    default: 0.9,
    server: true,
  }),
  spec("seed", "int", "sampling", "RNG seed (-1 = random)", {
    min: -1,
    max: 4294967295,
    default: -1,
    server: true,
  }),
  spec(
    "n_probs",
    "int",
    "sampling",
    "return the top N token probabilities with each generated token (0 = off)",
    {
      aliases: ["logprobs", "top_logprobs"],
      min: 0,
      max: I32_MAX,
      soft: true,
      default: 0,
      server: true,
    },
  ),
  spec(
    "min_keep",
    "int",
    "sampling",
    "samplers keep at least this many candidates (0 = off)",
    {
      min: 0,
      max: I32_MAX,
      default: 0,
      server: true,
    },
  ),
  spec(
    "ignore_eos",
    "bool",
    "sampling",
    "never stop at end-of-generation tokens (they are banned)",
    {
      default: false,
      server: true,
    },
  ),
  spec(
    "grammar",
    "string",
    "sampling",
    "GBNF grammar constraining the output",
    { default: "", server: true },
  ),
  spec(
    "json_schema",
    "any",
    "sampling",
    "JSON schema (object, or a string holding one) turned into a grammar",
    {
      schema: JSON_SCHEMA,
      server: true,
      hook: jsonSchemaText,
    },
  ),
  spec(
    "response_format",
    "any",
    "sampling",
    "OpenAI response_format: {type: text | json_object | json_schema}",
    {
      schema: z.object({
        type: z.enum(["text", "json_object", "json_schema"], {
          error: (iss) =>
            `must be "text", "json_object" or "json_schema", but got ${
              describeValue(iss.input)
            }`,
        }),
        schema: z.record(z.string(), z.unknown()).optional(),
        json_schema: z.looseObject({
          schema: z.record(z.string(), z.unknown()).optional(),
        }).optional(),
      }, {
        error: (iss) =>
          `must be {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema": {...}}}, but got ${
            describeValue(iss.input)
          }`,
      }).loose(),
    },
  ),
  spec(
    "grammar_lazy",
    "bool",
    "sampling",
    "apply the grammar only after a trigger",
    {
      default: false,
      server: true,
    },
  ),
  spec(
    "grammar_triggers",
    "any",
    "sampling",
    "triggers of a lazy grammar: words or {type, value, token}",
    {
      schema: TRIGGERS,
      server: true,
      hook: triggerList,
    },
  ),
  spec(
    "samplers",
    "any",
    "sampling",
    "sampler order: names or a string of letters",
    {
      aliases: ["sampler_order", "sampling_seq", "sampler_seq"],
      schema: SAMPLERS,
      default: [
        "penalties",
        "dry",
        "top_n_sigma",
        "top_k",
        "typ_p",
        "top_p",
        "min_p",
        "xtc",
        "temperature",
      ],
      server: true,
      hook: samplerList,
    },
  ),
  spec(
    "logit_bias",
    "any",
    "sampling",
    "[[token or string, bias], ...] or {token or string: bias}; false bans",
    {
      schema: LOGIT_BIAS,
      server: true,
      hook: logitBiasIds,
    },
  ),
  spec("backend_sampling", "bool", "sampling", "sample on the backend device", {
    server: true,
    noEffect: NOT_HERE,
  }),
  // run (read per generation)
  spec(
    "n_predict",
    "int",
    "run",
    "most tokens to generate (-1 = until the context is full)",
    {
      aliases: [
        "max_tokens",
        "max_completion_tokens",
        "n_predicts",
        "max_new_tokens",
      ],
      min: -1,
      max: I32_MAX,
      default: -1,
      server: true,
    },
  ),
  spec("stop", "string[]", "run", "stop strings (a string or an array)", {
    aliases: ["stop_sequences"],
    server: true,
    hook: stopList,
  }),
  spec(
    "reverse_prompt",
    "string",
    "run",
    "stop when the output contains this text (WasmEdge)",
    {
      aliases: ["antiprompt"],
    },
  ),
  spec(
    "stop_token_ids",
    "any",
    "run",
    "stop when one of these tokens is generated",
    {
      aliases: ["stop_tokens"],
      schema: z.array(
        z.int({
          error: (iss) =>
            `must be a token id, but is ${describeValue(iss.input)}`,
        })
          .min(0, {
            error: (iss) =>
              `must be a token id (>= 0), but is ${describeValue(iss.input)}`,
          }),
        {
          error: (iss) =>
            `must be an array of token ids (integers >= 0), but got ${
              describeValue(iss.input)
            }`,
        },
      ),
    },
  ),
  spec(
    "loop_max_cycle",
    "int",
    "run",
    "stop on a repetition loop of up to this many tokens (0 = off)",
    {
      min: 0,
      max: 4096,
      default: 0,
    },
  ),
  spec(
    "loop_repeats",
    "int",
    "run",
    "repeats of a cycle that count as a loop",
    { min: 2, max: 1024, default: 4 },
  ),
  spec(
    "priority",
    "int",
    "run",
    "scheduling priority level (higher runs first)",
    {
      min: -I32_MAX - 1,
      max: I32_MAX,
      default: 0,
    },
  ),
  spec(
    "queue_timeout_ms",
    "int",
    "run",
    "longest wait for a slot in ms before Busy",
    { min: 0, max: I32_MAX },
  ),
  spec(
    "n_keep",
    "int",
    "run",
    "prompt tokens kept when the context shifts (-1 = all)",
    {
      aliases: ["n_keep_tokens"],
      min: -1,
      max: I32_MAX,
      default: 0,
      server: true,
    },
  ),
  spec(
    "n_discard",
    "int",
    "run",
    "tokens discarded per context shift (0 = half)",
    {
      aliases: ["n_discard_tokens"],
      min: 0,
      max: I32_MAX,
      default: 0,
      server: true,
    },
  ),
  spec(
    "ctx_shift",
    "bool",
    "run",
    "shift the context instead of stopping when it is full",
    {
      aliases: ["context_shift", "context_shifting"],
      default: false,
    },
  ),
  spec(
    "t_max_predict_ms",
    "int",
    "run",
    "time limit of the generation phase in ms (-1 = none); a hard limit here, where the server waits for the next newline",
    {
      min: -1,
      max: Number.MAX_SAFE_INTEGER,
      default: -1,
      server: true,
    },
  ),
  spec(
    "cache_prompt",
    "bool",
    "run",
    "reuse the KV cache of a common prompt prefix",
    {
      default: true,
      server: true,
    },
  ),
  spec(
    "n_cache_reuse",
    "int",
    "run",
    "min chunk size reused from the cache via KV shifting",
    {
      min: 0,
      max: I32_MAX,
      default: 0,
      server: true,
    },
  ),
  spec("n_indent", "int", "run", "minimum line indentation of the output", {
    min: 0,
    max: I32_MAX,
    default: 0,
    server: true,
  }),
  spec("stream", "bool", "run", "stream tokens as they are generated", {
    default: false,
    server: true,
    noEffect:
      "guests stream with compute_single; compute returns the whole output",
  }),
  spec(
    "post_sampling_probs",
    "bool",
    "run",
    "n_probs after the sampler chain (this host always reports those)",
    {
      default: false,
      server: true,
      noEffect:
        "n_probs always reports the probabilities after the sampler chain",
    },
  ),
  spec(
    "stream_stdout",
    "bool",
    "run",
    "print each token to the host's stdout during compute",
    { default: false },
  ),
  spec("enable_log", "bool", "run", "log info and llama.cpp messages", {
    default: false,
  }),
  spec("enable_debug_log", "bool", "run", "log debug messages", {
    aliases: ["enable_debug"],
    default: false,
  }),
  spec("log_level", "string", "host", "minimum log level", {
    aliases: ["logging.level"],
    oneOf: [...LOG_LEVELS, "fatal"], // "fatal" means "error"
  }),
  spec(
    "log_file",
    "string",
    "host",
    "log file path (appended to, besides stderr)",
    { operatorOnly: true, aliases: ["logging.file"] },
  ),
  spec(
    "log_format",
    "string",
    "host",
    "log line format: text or json (one JSON object per line)",
    {
      aliases: ["logging.format"],
      oneOf: ["text", "json"],
    },
  ),
  spec("log_timestamps", "bool", "host", "timestamps in log lines", {
    aliases: ["logging.timestamps"],
    noEffect: NOT_HERE,
  }),
  spec("log_colors", "bool", "host", "colored log output", {
    aliases: ["logging.colors"],
    noEffect: NOT_HERE,
  }),
  spec(
    "embd_normalize",
    "int",
    "run",
    "embedding normalisation: -1 none, 0 max-abs, 1 taxicab, 2 euclidean, >2 p-norm",
    {
      min: -1,
      max: I32_MAX,
      default: 2,
    },
  ),
  spec(
    "chat_template",
    "string",
    "run",
    "Jinja chat template used instead of the model's",
    {},
  ),
  spec(
    "chat_parse_special",
    "bool",
    "run",
    "let chat message text contain control tokens (default: treated as text)",
    {
      default: false,
    },
  ),
  // host: limits of the chat-template sandbox (defaults: TEMPLATE_LIMITS in _chat_sandbox.ts)
  spec(
    "chat_template_timeout_ms",
    "int",
    "host",
    "wall-clock limit of one prompt's chat-template rendering (host default 2000)",
    { operatorOnly: true, min: 100, max: 600000 },
  ),
  spec(
    "chat_template_max_memory_mb",
    "int",
    "host",
    "memory limit of the chat-template renderer in MiB (host default 256)",
    { operatorOnly: true, min: 32, max: 65536 },
  ),
  spec(
    "chat_template_max_output_bytes",
    "int",
    "host",
    "most bytes one prompt's chat-template rendering may produce (host default 4194304)",
    { operatorOnly: true, min: 1024, max: 1073741824 },
  ),
  // host: the original project's `backend`, `memory` and `performance` sections
  spec("max_sessions", "int", "host", "most open sessions (host default 100)", {
    min: 1,
    max: 10000,
  }),
  spec(
    "idle_timeout_ms",
    "int",
    "host",
    "idle session timeout in ms (host default 300000)",
    {
      min: 1000,
      max: 86400000,
    },
  ),
  spec("auto_cleanup", "bool", "host", "close idle sessions automatically", {}),
  spec(
    "max_queue",
    "int",
    "host",
    "tasks allowed to wait for a slot (host default 256)",
    {
      aliases: ["queue_size"],
      min: 1,
      max: I32_MAX,
    },
  ),
  spec("default_task_timeout_ms", "int", "host", "task timeout in ms", {
    min: 1000,
    max: 600000,
  }),
  spec(
    "priority_scheduling_enabled",
    "bool",
    "host",
    "priority-based scheduling",
    {},
  ),
  spec(
    "fair_scheduling_enabled",
    "bool",
    "host",
    "fair scheduling across users",
    {
      noEffect:
        "a session has at most one task at a time, so FIFO within a priority level (with aging) is already fair",
    },
  ),
  spec("auto_queue_cleanup", "bool", "host", "drop expired tasks", {
    noEffect: "tasks waiting longer than queue_timeout_ms are always dropped",
  }),
  spec(
    "queue_warning_threshold",
    "int",
    "host",
    "queue length that logs a warning",
    {
      min: 1,
      max: 10000,
    },
  ),
  spec(
    "queue_reject_threshold",
    "int",
    "host",
    "queue length that rejects new tasks",
    {
      min: 1,
      max: 10000,
    },
  ),
  spec(
    "cache_strategy",
    "string",
    "host",
    "session cache replacement strategy",
    {
      oneOf: ["lru", "fifo", "smart"],
      noEffect:
        "idle sessions' caches are always replaced least recently used first",
    },
  ),
  spec(
    "cache_deletion_strategy",
    "string",
    "host",
    "session cache deletion strategy",
    {
      oneOf: ["lru", "fifo", "smart"],
      noEffect:
        "idle sessions' caches are always deleted least recently used first",
    },
  ),
  spec(
    "max_cache_tokens",
    "int",
    "host",
    "most tokens idle sessions keep cached per model and context shape (least recently used go first)",
    { min: 1024, max: 1000000 },
  ),
  spec(
    "enable_partial_cache_deletion",
    "bool",
    "host",
    "allow partial cache deletion",
    {
      noEffect:
        "a session's cache is always cut where the new prompt differs, and the rest kept",
    },
  ),
  spec(
    "enable_token_cache_reuse",
    "bool",
    "host",
    "reuse cached tokens across sessions",
    {},
  ),
  spec("max_memory_mb", "int", "host", "memory limit in MB (0 = none)", {
    operatorOnly: true,
    min: 0,
    max: I32_MAX,
  }),
  spec(
    "max_image_mb",
    "int",
    "host",
    "largest image or audio file, in MiB, that a prompt may bring (the image key, or an inline base64 <img> tag); larger ones are refused with InvalidArgument before they are decoded",
    { operatorOnly: true, min: 1, max: 4096, default: 32 },
  ),
  spec(
    "max_load_mb",
    "int",
    "host",
    "largest model, in MiB, that a guest may pass as bytes to load (default 4096: all that a wasm32 guest's memory can hold); larger bytes are refused before any copy",
    { operatorOnly: true, min: 1, max: I32_MAX, default: 4096 },
  ),
  // host: where each model's engine runs (engine/model_engine.ts). Models
  // loaded from guest bytes always get an engine process.
  spec(
    "engine",
    "string",
    "host",
    "where each model's engine runs: in_process (the host's process), or process (a child process per model: a llama.cpp abort ends only that model's sessions; models from guest bytes always get one)",
    {
      operatorOnly: true,
      oneOf: ["in_process", "process"],
      default: "in_process",
    },
  ),
  // host: llama.cpp's --rpc list (bindings/rpc.ts). The operator's only:
  // read from the host config, never from a guest's (a guest could make the
  // host connect anywhere).
  spec(
    "rpc",
    "string[]",
    "host",
    "RPC servers whose devices models use (llama.cpp's --rpc: \"host:port,host:port\" or an array); operator only, a guest's config cannot set it; rpc-server has no authentication: 127.0.0.1 or a private network only",
    { operatorOnly: true, hook: rpcList },
  ),
  // host: quotas per guest instance (host/_quota.ts). Unset: no limit. Over
  // one, the call is refused with TooLarge (7) and the guest runs on.
  spec(
    "guest_max_tokens",
    "int",
    "host",
    "most tokens one guest instance may generate over all its computes (a compute that would pass it stops at it; the next is refused with TooLarge)",
    { operatorOnly: true, min: 1, max: I32_MAX },
  ),
  spec(
    "guest_max_compute_ms",
    "int",
    "host",
    "most wall time in ms one guest instance may spend in compute and compute_single (checked before each; the one that passes it finishes)",
    { operatorOnly: true, min: 1, max: I32_MAX },
  ),
  spec(
    "guest_max_contexts",
    "int",
    "host",
    "most execution contexts one guest instance may hold at once (finalizing one makes room)",
    { operatorOnly: true, min: 1, max: I32_MAX },
  ),
  spec(
    "guest_max_kv_tokens",
    "int",
    "host",
    "most KV cache tokens the sequences of one guest instance's contexts may hold together (checked before each compute: the prompt plus n_predict)",
    { operatorOnly: true, min: 1, max: I32_MAX },
  ),
  spec(
    "guest_max_load_mb",
    "int",
    "host",
    "most MiB of model bytes one guest instance may pass to load, over all its load calls (max_load_mb limits each call)",
    { operatorOnly: true, min: 1, max: I32_MAX },
  ),
  spec(
    "memory_pressure_threshold",
    "number",
    "host",
    "fraction of the machine's memory in use above which idle sessions lose their cache after each request",
    { min: 0.5, max: 0.95 },
  ),
  spec("batch_processing", "bool", "host", "batch requests together", {}),
  spec(
    "batch_timeout_ms",
    "int",
    "host",
    "longest wait in ms for more requests before an idle scheduler's first decode",
    { min: 10, max: 1000 },
  ),
] as const;

/** What the table's entries give: each name to its value type. */
type TableTypes = {
  [S in typeof TABLE[number] as S["name"]]: S extends KeySpec<string, infer V>
    ? V
    : never;
};

/** Whether two types are the same (not merely assignable). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends
  (<T>() => T extends B ? 1 : 2) ? true : false;

/** Keys whose declared type differs from the table's, or that only one of them has. */
type Mismatched = {
  [K in keyof TableTypes | KeyName]: K extends keyof TableTypes
    ? K extends KeyName
      ? Same<TableTypes[K], ConfigValueTypes[K]> extends true ? never : K
    : K
    : K;
}[keyof TableTypes | KeyName];

type Holds<T extends true> = T;
/** `ConfigValueTypes` is exactly what the table gives: an error here names the keys that differ. */
type _TableMatchesTypes = Holds<
  [Mismatched] extends [never] ? true : Mismatched
>;

/** Every key, in documentation order. */
export const SPECS: readonly AnyKeySpec[] = TABLE;

/**
 * Stores a value that its key's schema and hook accepted (or a value of the
 * key's type, such as a default): the one place where a value checked at
 * run time takes its key's static type.
 */
export function setValue(
  values: ConfigValues,
  key: KeyName,
  value: unknown,
): void {
  (values as Record<KeyName, unknown>)[key] = value;
}

/** Section names of the original project's nested style (and sub-sections such as `dynatemp`). */
export const SECTIONS: Readonly<Record<string, string>> = {
  backend: "backend",
  model: "model",
  sampling: "sampling",
  stopping: "stopping",
  memory: "memory",
  memory_management: "memory",
  logging: "logging",
  performance: "performance",
  dynatemp: "dynatemp",
  dry: "dry",
  xtc: "xtc",
  mirostat: "mirostat",
};

/** Keys whose value may itself be a JSON object (never descended into as a section). */
export const OBJECT_KEYS: ReadonlySet<string> = new Set([
  "logit_bias",
  "json_schema",
  "response_format",
]);

const BY_SPELLING = new Map<string, AnyKeySpec>();
const DOTTED = new Map<string, AnyKeySpec>();
for (const k of SPECS) {
  for (const s of [k.name, ...(k.aliases ?? [])]) {
    const map = s.includes(".") ? DOTTED : BY_SPELLING;
    map.set(s, k);
    map.set(s.replaceAll("_", "-"), k);
  }
}

/** Looks a key up under any top-level spelling. */
export function specOf(spelling: string): AnyKeySpec | undefined {
  return BY_SPELLING.get(spelling);
}

/**
 * Looks a key up inside a section: a dotted alias (`logging.level`), the
 * section prefix joined on (`dynatemp.range` -> `dynatemp_range`), then the
 * plain spelling.
 */
export function specIn(
  section: string | undefined,
  key: string,
): AnyKeySpec | undefined {
  if (section) {
    const k = key.replaceAll("-", "_");
    return DOTTED.get(`${section}.${k}`) ??
      BY_SPELLING.get(`${section}_${k}`) ?? BY_SPELLING.get(key);
  }
  return BY_SPELLING.get(key);
}

/** Every accepted spelling (for suggestions and the JSON Schema). */
export function allSpellings(): string[] {
  return [...BY_SPELLING.keys(), ...DOTTED.keys(), ...Object.keys(SECTIONS)];
}

/** Sampler names llama.cpp accepts (`common_sampler_types_from_names`), lower case, to the canonical name. */
export const SAMPLER_NAMES: Readonly<Record<string, string>> = (() => {
  const canonical = [
    "dry",
    "top_k",
    "top_p",
    "top_n_sigma",
    "typ_p",
    "min_p",
    "temperature",
    "xtc",
    "infill",
    "penalties",
    "adaptive_p",
  ];
  const out: Record<string, string> = {};
  for (const c of canonical) {
    out[c] = c;
    if (c.includes("_")) {
      out[c.replaceAll("_", "-")] = c;
      out[c.replaceAll("_", "")] = c;
    }
  }
  Object.assign(out, {
    nucleus: "top_p",
    temp: "temperature",
    typ: "typ_p",
    typical_p: "typ_p",
  });
  return out;
})();

const SAMPLER_SPELLINGS: readonly string[] = Object.keys(SAMPLER_NAMES);

/** Sampler letters (`common_sampler_type_to_chr`). */
export const SAMPLER_CHARS: Readonly<Record<string, string>> = {
  d: "dry",
  k: "top_k",
  y: "typ_p",
  p: "top_p",
  s: "top_n_sigma",
  m: "min_p",
  t: "temperature",
  x: "xtc",
  i: "infill",
  e: "penalties",
  a: "adaptive_p",
};
