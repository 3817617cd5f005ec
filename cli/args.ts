/**
 * Command-line parsing for `cli.ts` (pure: no I/O except the injectable file
 * reader of {@linkcode parseHostConfig}). The options follow WasmEdge's
 * (`--nn-preload`, `--dir`, `--env`) so that its documented command lines for
 * the wasmedge-ggml examples work unchanged.
 *
 * @example
 * ```ts
 * import { parseCliArgs } from "./args.ts";
 * const cmd = parseCliArgs([
 *   "--dir", ".:.", "--nn-preload", "default:GGML:AUTO:model.gguf",
 *   "llama.wasm", "default", "Hello",
 * ]);
 * console.log(cmd.command === "run" && cmd.guestArgs); // ["default", "Hello"]
 * ```
 * @module
 */

import { type NnPreload, parseNnPreload } from "../wasi_nn/host/registry.ts";
import type { ConfigValueTypes, KeyName } from "../wasi_nn/config/_keys.ts";
import { LOG_LEVELS, type LogLevel } from "../wasi_nn/log.ts";
import { EXIT_CODES } from "./exit_codes.ts";
import { parseRpcList } from "../bindings/_rpc_endpoints.ts";

/** What `cli.ts` runs a guest with: the parsed form of the run command line. */
export interface RunArgs {
  /** `"run"`: run a guest. */
  command: "run";
  /** The guest's .wasm path (also its argv[0]). */
  wasm: string;
  /** The guest's arguments after argv[0]. */
  guestArgs: string[];
  /** `--nn-preload` entries, in order. */
  preloads: NnPreload[];
  /** `--dir`: guest path → host path. */
  preopens: Record<string, string>;
  /** `--env`: the guest's environment. */
  env: Record<string, string>;
  /** `--nn-allow-dir` folders. */
  allowDirs: string[];
  /** `--config`: a JSON object or a file holding one (read by {@linkcode parseHostConfig}). */
  config?: string;
  /** `--log-level`; unset: the config's `log_level`, else `warn`. */
  logLevel?: LogLevel;
  /**
   * The quotas per guest instance given as options (`--guest-max-tokens N`
   * is the host key `guest_max_tokens`): set on the host config, above
   * `--config`. Absent when none was given.
   */
  guestLimits?: Partial<Record<GuestLimitKey, number>>;
  /** `--engine`: the host key `engine` (where each model's engine runs), above `--config`. */
  engine?: ConfigValueTypes["engine"];
  /** `--rpc`: the host key `rpc` (llama.cpp's `--rpc` endpoint list, checked), above `--config`. */
  rpc?: string[];
}

/** `--engine`'s values (the type says every value of the host key `engine`) and what each means, for `--help`. */
const ENGINES: Record<ConfigValueTypes["engine"], string> = {
  in_process: "in this process (the default)",
  process: "a child process per model (an abort ends only its sessions)",
};

/** The host keys that limit each guest instance: `guest_max_tokens`, .... */
export type GuestLimitKey = Extract<KeyName, `guest_max_${string}`>;

/**
 * Each quota per guest instance: its value's name and what it limits, for
 * `--help`. The option is the key in kebab-case (`--guest-max-tokens`); the
 * type says this lists every such key of the key table.
 */
const GUEST_LIMITS: Record<GuestLimitKey, [string, string]> = {
  guest_max_tokens: ["N", "tokens it may generate, in all"],
  guest_max_compute_ms: ["MS", "wall time it may spend computing, in all"],
  guest_max_contexts: ["N", "execution contexts it may hold at once"],
  guest_max_kv_tokens: ["N", "KV cache tokens its contexts may hold together"],
  guest_max_load_mb: ["MB", "MiB of model bytes it may pass to load, in all"],
};

/** `--guest-max-tokens` -> `guest_max_tokens`, for every quota. */
const GUEST_LIMIT_OPTIONS: ReadonlyMap<string, GuestLimitKey> = new Map(
  (Object.keys(GUEST_LIMITS) as GuestLimitKey[]).map((k) => [
    `--${k.replaceAll("_", "-")}`,
    k,
  ]),
);

/** A parsed command line. */
export type CliCommand =
  | { command: "help" }
  | { command: "version" }
  | { command: "generate"; args: string[] }
  | { command: "demo"; args: string[] }
  | RunArgs;

/**
 * A command-line mistake; `cli.ts` prints the message and exits with
 * {@linkcode EXIT_CODES}.usage.
 *
 * @example
 * ```ts
 * import { CliUsageError, parseCliArgs } from "./args.ts";
 * try {
 *   parseCliArgs(["--bogus", "x.wasm"]);
 * } catch (err) {
 *   console.log(err instanceof CliUsageError, (err as Error).message);
 * }
 * ```
 */
export class CliUsageError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CliUsageError";
  }
}

const VALUE_OPTIONS = new Set([
  "--nn-preload",
  "--dir",
  "--env",
  "--nn-allow-dir",
  "--config",
  "--log-level",
  "--engine",
  "--rpc",
  ...GUEST_LIMIT_OPTIONS.keys(),
]);

/**
 * Parses `cli.ts`'s arguments.
 *
 * Options come first; the first argument that is not an option (or follows
 * `--`) is the guest's .wasm, and everything after it goes to the guest
 * unparsed. If that first positional is `generate`, the `generate` subcommand
 * gets every other argument. `--help`/`-h` and `--version`/`-v` win over
 * anything else before the guest. Options take their value as the next
 * argument or after `=`. Throws {@linkcode CliUsageError}.
 *
 * @example
 * ```ts
 * import { parseCliArgs } from "./args.ts";
 * console.log(parseCliArgs(["generate", "--prompt", "Hi"])); // { command: "generate", args: ["--prompt", "Hi"] }
 * const run = parseCliArgs(["--env", "n_predict=64", "--dir", "/data", "g.wasm", "--dir"]);
 * if (run.command === "run") console.log(run.env, run.preopens, run.guestArgs);
 * // { n_predict: "64" } { "/data": "/data" } ["--dir"]
 * ```
 */
export function parseCliArgs(args: readonly string[]): CliCommand {
  const run: RunArgs = {
    command: "run",
    wasm: "",
    guestArgs: [],
    preloads: [],
    preopens: {},
    env: {},
    allowDirs: [],
  };
  let help = false;
  let version = false;
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    if (arg === "--help" || arg === "-h") {
      help = true;
      continue;
    }
    if (arg === "--version" || arg === "-v") {
      version = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq > 0 && arg.startsWith("--") ? arg.slice(0, eq) : arg;
    if (!VALUE_OPTIONS.has(name)) {
      throw new CliUsageError(
        `unknown option '${name}'${
          name === arg ? "" : ` in '${arg}'`
        } (options go before the .wasm file; run with --help for the list)`,
      );
    }
    let value: string;
    if (name !== arg) {
      value = arg.slice(eq + 1);
    } else {
      if (i + 1 >= args.length) {
        throw new CliUsageError(`option ${name} needs a value`);
      }
      value = args[++i];
    }
    applyOption(run, name, value);
  }
  if (help) return { command: "help" };
  if (version) return { command: "version" };
  if (i >= args.length) {
    throw new CliUsageError(
      "missing the guest .wasm file (usage: cli.ts [OPTIONS] GUEST.wasm [ARGS...]; run with --help)",
    );
  }
  if (args[i] === "generate" || args[i] === "demo") {
    return {
      command: args[i] as "generate" | "demo",
      args: [...args.slice(0, i), ...args.slice(i + 1)],
    };
  }
  run.wasm = args[i];
  run.guestArgs = args.slice(i + 1);
  return run;
}

function applyOption(run: RunArgs, name: string, value: string): void {
  switch (name) {
    case "--nn-preload":
      try {
        run.preloads.push(parseNnPreload(value));
      } catch (cause) {
        throw new CliUsageError((cause as Error).message, { cause });
      }
      return;
    case "--dir": {
      // WasmEdge: --dir GUEST:HOST, or --dir PATH for the same path on both.
      const colon = value.indexOf(":");
      const guest = colon < 0 ? value : value.slice(0, colon);
      const host = colon < 0 ? value : value.slice(colon + 1);
      if (guest === "" || host === "") {
        throw new CliUsageError(
          `--dir '${value}': expected GUEST_PATH:HOST_PATH or PATH (e.g. --dir .:.)`,
        );
      }
      run.preopens[guest] = host;
      return;
    }
    case "--env": {
      const eq = value.indexOf("=");
      if (eq <= 0) {
        throw new CliUsageError(
          `--env '${value}': expected KEY=VALUE (e.g. --env n_predict=64)`,
        );
      }
      run.env[value.slice(0, eq)] = value.slice(eq + 1);
      return;
    }
    case "--nn-allow-dir":
      if (value === "") throw new CliUsageError("--nn-allow-dir: empty folder");
      run.allowDirs.push(value);
      return;
    case "--config":
      if (value.trim() === "") throw new CliUsageError("--config: empty value");
      run.config = value;
      return;
    case "--log-level":
      if (!(LOG_LEVELS as readonly string[]).includes(value)) {
        throw new CliUsageError(
          `--log-level '${value}': expected one of ${LOG_LEVELS.join(", ")}`,
        );
      }
      run.logLevel = value as LogLevel;
      return;
    case "--engine":
      if (!Object.hasOwn(ENGINES, value)) {
        throw new CliUsageError(
          `--engine '${value}': expected one of ${
            Object.keys(ENGINES).join(", ")
          } (the host key engine)`,
        );
      }
      run.engine = value as ConfigValueTypes["engine"];
      return;
    case "--rpc":
      try {
        run.rpc = parseRpcList(value);
      } catch (e) {
        throw new CliUsageError(
          `--rpc: ${(e as Error).message} (the host key rpc)`,
        );
      }
      return;
  }
  const key = GUEST_LIMIT_OPTIONS.get(name);
  if (key !== undefined) {
    const n = Number(value);
    if (!/^[0-9]+$/.test(value) || n < 1 || n > 2147483647) {
      throw new CliUsageError(
        `${name} '${value}': expected a whole number from 1 to 2147483647 (the host key ${key})`,
      );
    }
    (run.guestLimits ??= {})[key] = n;
  }
}

/** The `--help` lines of `--engine`'s values. */
function engineHelp(): string {
  return Object.entries(ENGINES).map(([k, what]) =>
    `${"".padEnd(24)}${k}: ${what}`
  ).join("\n");
}

/** The `--help` lines of the quota options. */
function guestLimitHelp(): string {
  return [...GUEST_LIMIT_OPTIONS].map(([option, key]) => {
    const [arg, what] = GUEST_LIMITS[key];
    const head = `  ${option} ${arg}`;
    return head.length < 24
      ? `${head.padEnd(24)}${what}`
      : `${head}\n${"".padEnd(24)}${what}`;
  }).join("\n");
}

/**
 * Reads `--config`: a JSON object given inline (text starting with `{`) or the
 * path of a file holding one. Throws {@linkcode CliUsageError} for an
 * unreadable file, bad JSON, or JSON that is not an object.
 *
 * @example
 * ```ts
 * import { parseHostConfig } from "./args.ts";
 * console.log(parseHostConfig('{"n-predict": 64, "temp": 0}')); // { "n-predict": 64, temp: 0 }
 * const fake = (_path: string) => '{"ctx-size": 2048}';
 * console.log(parseHostConfig("host.json", fake)); // { "ctx-size": 2048 }
 * ```
 */
export function parseHostConfig(
  value: string,
  readTextFile: (path: string) => string = Deno.readTextFileSync,
): Record<string, unknown> {
  const inline = value.trimStart().startsWith("{");
  let text = value;
  if (!inline) {
    try {
      text = readTextFile(value);
    } catch (cause) {
      throw new CliUsageError(
        `--config '${value}': not inline JSON (it does not start with '{') and the file cannot be read: ${
          (cause as Error).message
        }`,
        { cause },
      );
    }
  }
  const where = inline ? "--config" : `--config file '${value}'`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new CliUsageError(
      `${where}: invalid JSON: ${(cause as Error).message}`,
      { cause },
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CliUsageError(
      `${where}: expected a JSON object such as {"n-predict": 128}`,
    );
  }
  return parsed as Record<string, unknown>;
}

/**
 * The `--help` text.
 *
 * @example
 * ```ts
 * import { helpText } from "./args.ts";
 * console.log(helpText().split("\n")[0]);
 * ```
 */
export function helpText(): string {
  const c = EXIT_CODES;
  return `Run WASI-NN guests (WasmEdge GGML / WAMR llama.cpp flavour) on llama.cpp.

Usage:
  deno run -A cli.ts [OPTIONS] GUEST.wasm [GUEST_ARGS...]
  deno run -A cli.ts generate [OPTIONS]     (text generation without a guest;
                                            see: cli.ts generate --help)
  deno run -A cli.ts demo [OPTIONS]         (build what is missing and run the
                                            example chat guest; see demo --help)

Options end at the first argument that is not an option (the .wasm file, which
is also the guest's argv[0]); everything after it is passed to the guest. Use
'--' before a .wasm whose name starts with '-', and './generate' for a guest
file named 'generate'.

Options (WasmEdge-compatible where WasmEdge has them):
  --nn-preload NAME:ENCODING:TARGET:PATH
                        make model file PATH loadable as NAME (load_by_name).
                        ENCODING: GGML; TARGET: CPU, GPU, TPU or AUTO (any case).
                        Colons after TARGET belong to PATH. Repeatable.
  --dir GUEST:HOST      let the guest open host folder HOST as GUEST
  --dir PATH            (WasmEdge order: guest path first; PATH alone maps a
                        folder to itself, e.g. --dir .:. or --dir /data).
                        Repeatable. Needs read and write permission.
  --env KEY=VALUE       set a guest environment variable; the guest sees no
                        other (e.g. --env n_predict=64). Repeatable.
  --nn-allow-dir DIR    also let guests load GGUF files by path from DIR and
                        its subfolders (WAMR style: the model name is a path,
                        resolved on the host relative to the current folder;
                        symlinks leading outside DIR are refused). Repeatable.
  --config FILE|JSON    host default config (e.g. '{"n-predict":256}'), beneath
                        what the guest sends itself
  --log-level LEVEL     debug, info, warn (default) or error; logs go to stderr
  --engine KIND         where each model's engine runs (the host key engine):
${engineHelp()}
                        models loaded from guest bytes always get a process
  --rpc HOST:PORT,...   llama.cpp RPC servers (ggml-rpc-server) whose devices
                        models use (the host key rpc); no authentication:
                        127.0.0.1 or a private network only
  -h, --help            show this help
  -v, --version         show this tool's and llama.cpp's versions

Quotas per guest instance (each is the host key of the same name in snake_case,
e.g. guest_max_tokens, and wins over --config's; unset: no limit). Past one, the
call returns TooLarge (7), the log names the limit, and the guest runs on:
${guestLimitHelp()}

Example (a wasmedge-ggml example guest):
  deno run -A cli.ts --dir .:. --env n_predict=64 \\
    --nn-preload default:GGML:AUTO:model.gguf wasmedge-ggml-llama.wasm default 'Hi'

Ctrl-C while the guest generates stops the generation cleanly (the guest gets
what was generated so far); a second Ctrl-C exits with ${c.interrupted}.

Exit codes:
  the guest's own exit code (0 when _start returns), else:
  ${c.usage}     bad command line (unknown option, malformed value, missing .wasm),
        a bad --config (invalid JSON, a value out of range, a log_file that
        cannot be opened) or a --dir folder that does not exist
  ${c.noInput}    the .wasm file cannot be read or is not WebAssembly
  ${c.unavailable}    the llama.cpp host could not start (library not built? no --allow-ffi?)
  ${c.software}    the guest cannot run here (imports this host lacks, no memory or
        _start export) or an internal error
  ${c.interrupted}   interrupted by a second Ctrl-C
  ${c.trap}   the guest trapped (a Rust panic or C abort() ends this way)

generate and demo exit with 0 on success, ${c.usage} as above, and:
  ${c.failure}     a failure at run time (demo: a build that failed)
  ${c.modelLoad}     generate: the model could not be loaded`;
}
