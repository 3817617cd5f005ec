/**
 * WASI-NN error numbers as guests see them (`nn_errno`), shared by WasmEdge and
 * WAMR, plus the typed error the TypeScript API throws.
 *
 * @example
 * ```ts
 * import { Errno, WasiNnError } from "./errno.ts";
 * const err = new WasiNnError(Errno.NotFound, "no model named 'x' was preloaded");
 * console.log(err.errno === 8, err.name);
 * ```
 * @module
 */

import { LlamaError, Status } from "../bindings/mod.ts";

/** The errno values of the `wasi_ephemeral_nn` ABI (see docs: wasi-nn-abi.md §4.1). */
export const Errno = {
  Success: 0,
  InvalidArgument: 1,
  InvalidEncoding: 2,
  MissingMemory: 3,
  Busy: 4,
  RuntimeError: 5,
  UnsupportedOperation: 6,
  /** An output larger than the guest's buffer, or a call past one of the guest's quotas (`guest_max_*` host keys). */
  TooLarge: 7,
  NotFound: 8,
  EndOfSequence: 100,
  ContextFull: 101,
  PromptTooLong: 102,
  ModelNotFound: 103,
} as const;

/** One errno value. */
export type Errno = typeof Errno[keyof typeof Errno];

/** The name of an errno value, for messages: `errnoName(103) === "ModelNotFound"`. */
export function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(Errno)) {
    if (value === errno) return name;
  }
  return `Unknown(${errno})`;
}

/**
 * The error every WASI-NN operation throws. `errno` is what a guest receives;
 * `message` says what was wrong and what to do about it.
 */
export class WasiNnError extends Error {
  /** The errno a guest receives for this error. */
  readonly errno: Errno;
  /** Extra data, e.g. the partial output kept on ContextFull. */
  readonly detail?: Record<string, unknown>;

  /** Creates an error with an errno and a message. */
  constructor(
    errno: Errno,
    message: string,
    options?: { cause?: unknown; detail?: Record<string, unknown> },
  ) {
    super(message, { cause: options?.cause });
    this.name = `WasiNnError(${errnoName(errno)})`;
    this.errno = errno;
    this.detail = options?.detail;
  }
}

/**
 * Which rule a config value broke.
 *
 * @example
 * ```ts
 * import type { ConfigRule } from "./errno.ts";
 * const rule: ConfigRule = "range";
 * console.log(rule);
 * ```
 */
export type ConfigRule =
  | "type"
  | "range"
  | "enum"
  | "format"
  | "unknown_key"
  | "conflict"
  | "requires"
  | "limit";

/**
 * A config value that breaks a rule. Guests get errno InvalidArgument (1);
 * TypeScript callers get the field as written, the value, the rule and a
 * suggestion. Every layer may throw it (the config layer, and the engine for
 * chat templates and messages), so it lives here.
 *
 * @example
 * ```ts
 * import { ConfigError } from "./errno.ts";
 * import { parseConfig } from "./config/parse.ts";
 * try {
 *   parseConfig({ n_predict: -5 });
 * } catch (e) {
 *   const err = e as ConfigError;
 *   console.log(err.message); // Field 'n_predict': Value must be between -1 <= value <= 2147483647, but got -5
 *   console.log(err.field, err.value, err.rule, err.errno); // n_predict -5 range 1
 * }
 * ```
 */
export class ConfigError extends WasiNnError {
  /** The key as written (a dotted path inside sections). */
  readonly field: string;
  /** The offending value. */
  readonly value: unknown;
  /** The rule it broke. */
  readonly rule: ConfigRule;
  /** A hint to fix it. */
  readonly suggestion?: string;

  /** Creates a config error; the message reads `Field '<field>': <message> (<suggestion>)`. */
  constructor(
    field: string,
    value: unknown,
    message: string,
    suggestion?: string,
    rule: ConfigRule = "range",
  ) {
    super(
      Errno.InvalidArgument,
      `Field '${field}': ${message}${suggestion ? ` (${suggestion})` : ""}`,
    );
    this.field = field;
    this.value = value;
    this.suggestion = suggestion;
    this.rule = rule;
  }
}

/**
 * Maps an error of the bindings to the errno a guest gets: a full KV cache is
 * ContextFull, a bad argument or grammar InvalidArgument, the rest
 * RuntimeError. A WasiNnError passes through.
 *
 * @example
 * ```ts
 * import { LlamaError, Status } from "../bindings/mod.ts";
 * import { Errno, toWasiNn } from "./errno.ts";
 * const e = toWasiNn(new LlamaError(Status.NoKvSpace, "no KV slot"));
 * console.log(e.errno === Errno.ContextFull); // true
 * ```
 */
export function toWasiNn(e: unknown): WasiNnError {
  if (e instanceof WasiNnError) return e;
  if (e instanceof LlamaError) {
    const explained = explain(e.message);
    if (explained) {
      return new WasiNnError(Errno.InvalidArgument, explained, { cause: e });
    }
    const errno = e.code === Status.NoKvSpace
      ? Errno.ContextFull
      : e.code === Status.InvalidArgument || e.code === Status.Grammar
      ? Errno.InvalidArgument
      : Errno.RuntimeError;
    return new WasiNnError(errno, e.message, { cause: e });
  }
  return new WasiNnError(
    Errno.RuntimeError,
    String((e as Error)?.message ?? e),
    { cause: e },
  );
}

/**
 * llama.cpp refusals that come from a config value, in the config's words:
 * which field, which value, what is allowed.
 */
function explain(message: string): string | undefined {
  const cache = message.match(
    /([KV]) cache type (\w+) with block size (\d+) does not divide n_embd_head_[kv]=(\d+)/,
  );
  if (cache) {
    const [, kv, type, block, head] = cache;
    const field = kv === "K" ? "cache_type_k" : "cache_type_v";
    return `Field '${field}': ${type} stores blocks of ${block} values, but this model's attention heads have ${head}; use f16, bf16 or f32 for this model (${message})`;
  }
  return undefined;
}
