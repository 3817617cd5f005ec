/**
 * Runs a WASI (preview 1) command module that uses WASI-NN: `node:wasi` for
 * the system interface, {@linkcode createWasiNnImports} for
 * `wasi_ephemeral_nn`, and JSPI so that the guest suspends while the host
 * loads models and generates text.
 *
 * Outcomes of {@linkcode runGuest}:
 * - the guest's exit code (`proc_exit(n)`, or 0 when `_start` returns);
 * - {@linkcode TRAP_EXIT_CODE} (134, like a native `abort()`) when the guest
 *   traps; the trap is printed to stderr, with a hint when it is an
 *   `unreachable` (how a Rust panic or a C `abort()` ends);
 * - a thrown {@linkcode GuestLinkError} before anything runs when the guest
 *   imports something this host does not provide, exports no `memory`, or has
 *   no `_start`; a thrown `WebAssembly.CompileError` for bytes that are not
 *   wasm; a thrown `Deno.errors.NotFound` for a missing file; a thrown
 *   {@linkcode PreopenError} for a preopened folder that is missing or not a
 *   folder; a thrown TypeError, before anything else, when the runtime lacks
 *   JSPI (guests run only with it).
 *
 * @example
 * ```ts ignore
 * import { runGuest } from "./run_guest.ts";
 * import { LlamaHost } from "../host/host.ts";
 * import { ModelRegistry } from "../host/registry.ts";
 * const registry = new ModelRegistry({ preloads: ["default:GGML:AUTO:model.gguf"] });
 * const host = await LlamaHost.create({ registry });
 * const code = await runGuest({
 *   wasm: "wasmedge-ggml-llama.wasm",
 *   args: ["default", "Once upon a time"],
 *   env: { n_predict: "32" },
 *   preopens: { ".": "." },
 *   host,
 * });
 * host.close();
 * console.log("exit code", code);
 * ```
 * @module
 */

import type { WASI } from "node:wasi";
import { createWasiNnImports, WASI_NN_MODULE } from "./guest_imports.ts";
import type { WasiNnHostApi } from "../host/api.ts";
import { requireJspi } from "./_jspi.ts";
import { escapingLog, type Logger } from "../log.ts";
import { checkPreopens } from "./_preopens.ts";

export { PreopenError } from "./_preopens.ts";

/** The exit code {@linkcode runGuest} returns when the guest traps (128 + SIGABRT). */
export const TRAP_EXIT_CODE = 134;

/** Options of {@linkcode runGuest}. */
export interface RunGuestOptions {
  /** The guest: a file path, the module's bytes, or a compiled module. */
  wasm: string | Uint8Array | WebAssembly.Module;
  /** The guest's arguments after argv[0] (WasmEdge GGML guests: `[name, prompt?]`). */
  args: string[];
  /** The guest's argv[0]; defaults to `wasm` when it is a path, else `"guest.wasm"`. */
  argv0?: string;
  /** The guest's environment (nothing of the host's is passed on). */
  env?: Record<string, string>;
  /** Folders the guest may open: guest path → host path (WasmEdge `--dir GUEST:HOST`). */
  preopens?: Record<string, string>;
  /** The WASI-NN host every `wasi_ephemeral_nn` call goes to. Not closed by runGuest. */
  host: WasiNnHostApi;
  /** Host file descriptor the guest reads as stdin (default 0). */
  stdin?: number;
  /** Host file descriptor the guest writes as stdout (default 1). */
  stdout?: number;
  /** Host file descriptor the guest writes as stderr (default 2). */
  stderr?: number;
  /** Diagnostics of the import layer and of the run. */
  log?: Logger;
}

/**
 * Thrown by {@linkcode runGuest} before the guest runs when it cannot be
 * linked: imports the host does not provide (listed in `missing` as
 * `module.name`), no exported `memory`, or no `_start`.
 *
 * @example
 * ```ts
 * import { GuestLinkError } from "./run_guest.ts";
 * const err = new GuestLinkError("guest.wasm cannot run here", ["wasi_nn.load"]);
 * console.log(err.missing); // ["wasi_nn.load"]
 * ```
 */
export class GuestLinkError extends Error {
  /** The imports (`module.name`) that the host does not provide. */
  readonly missing: string[];

  /** Creates the error with a message and the missing imports, if any. */
  constructor(message: string, missing: string[] = []) {
    super(message);
    this.name = "GuestLinkError";
    this.missing = missing;
  }
}

/**
 * Runs a WASI-NN guest to completion and returns its exit code (see the
 * module documentation for traps and link errors).
 *
 * The guest has its own graph and context handles (from 0, as in WasmEdge):
 * other guests on the same host cannot reach its handles, nor it theirs.
 * Contexts it did not finalize and graphs it did not unload are released
 * when it ends (a model loaded by name stays loaded for `idle_timeout_ms`,
 * for the next guest).
 *
 * @example
 * ```ts ignore
 * import { runGuest } from "./run_guest.ts";
 * import type { WasiNnHostApi } from "../host/api.ts";
 * declare const host: WasiNnHostApi;
 * const code = await runGuest({ wasm: "build/guests/basic.wasm", args: ["default", "Hi"], host });
 * Deno.exit(code);
 * ```
 */
export async function runGuest(options: RunGuestOptions): Promise<number> {
  requireJspi();
  // One line per message: guest-chosen text is escaped (see log.ts).
  const log: Logger = escapingLog(options.log ?? (() => {}));
  const argv0 = options.argv0 ??
    (typeof options.wasm === "string" ? options.wasm : "guest.wasm");

  const module = options.wasm instanceof WebAssembly.Module
    ? options.wasm
    : await WebAssembly.compile(
      typeof options.wasm === "string"
        ? await Deno.readFile(options.wasm)
        : options.wasm as Uint8Array<ArrayBuffer>,
    );

  checkPreopens(options.preopens ?? {});
  const wasi = await createWasi({
    version: "preview1",
    args: [argv0, ...options.args],
    env: options.env ?? {},
    preopens: options.preopens ?? {},
    returnOnExit: true,
    stdin: options.stdin,
    stdout: options.stdout,
    stderr: options.stderr,
  });

  // The memory exists only after instantiation: the imports read it lazily.
  const linked: { memory?: WebAssembly.Memory } = {};
  using nn = createWasiNnImports(options.host, {
    getMemory: () => linked.memory,
    log,
    guest: argv0,
    preopens: options.preopens ?? {},
  });
  const imports = {
    ...(wasi.getImportObject() as WebAssembly.Imports),
    ...nn,
  };

  checkLinkable(module, imports, argv0);
  const instance = await WebAssembly.instantiate(module, imports);
  linked.memory = instance.exports.memory as WebAssembly.Memory; // checked above
  const start = instance.exports._start as () => unknown;

  try {
    // wasi.start() cannot run a guest with Suspending imports: bind WASI to
    // the instance's memory, then enter _start through promising().
    (wasi as unknown as { finalizeBindings(i: WebAssembly.Instance): void })
      .finalizeBindings(instance);
    await WebAssembly.promising(start)();
    return 0;
  } catch (err) {
    const exit = exitCode(err);
    if (exit !== undefined) return exit;
    if (!isTrap(err)) throw err;
    reportTrap(err as Error, argv0, log);
    return TRAP_EXIT_CODE;
  }
}

/** Constructs node:wasi's WASI without its ExperimentalWarning. */
async function createWasi(
  options: ConstructorParameters<typeof WASI>[0],
): Promise<WASI> {
  // Loaded with the first guest: library users who never run one skip it.
  const { default: process } = await import("node:process");
  const original = process.emitWarning;
  // The warning is emitted on import in some versions and on construction in
  // others (Deno 2.9): filter it around both, let every other warning through.
  process.emitWarning = function (warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === "string" ? warning : warning?.message;
    if (String(text).startsWith("WASI is an experimental feature")) return;
    // deno-lint-ignore no-explicit-any
    return (original as any).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    const { WASI } = await import("node:wasi");
    return new WASI(options);
  } finally {
    process.emitWarning = original;
  }
}

/** Throws GuestLinkError unless every import is provided and the exports fit. */
function checkLinkable(
  module: WebAssembly.Module,
  imports: WebAssembly.Imports,
  name: string,
): void {
  const missing = WebAssembly.Module.imports(module)
    .filter((imp) => {
      const provided = imports[imp.module]?.[imp.name];
      if (provided === undefined) return true;
      return imp.kind !== "function"; // we provide functions only
    })
    .map((imp) =>
      `${imp.module}.${imp.name}${
        imp.kind === "function" ? "" : ` (${imp.kind})`
      }`
    );
  if (missing.length > 0) {
    const hints: string[] = [];
    if (missing.some((m) => m.startsWith("wasi_nn."))) {
      hints.push(
        "the legacy `wasi_nn` module is not supported: build the guest against `wasi_ephemeral_nn`",
      );
    }
    if (missing.some((m) => m.startsWith(`${WASI_NN_MODULE}.`))) {
      hints.push(
        `${WASI_NN_MODULE} here provides: ${
          Object.keys(imports[WASI_NN_MODULE]).join(", ")
        }`,
      );
    }
    if (missing.some((m) => m.includes("(memory)"))) {
      hints.push("guests must export their memory, not import it");
    }
    throw new GuestLinkError(
      `${name} imports ${missing.length} item${
        missing.length === 1 ? "" : "s"
      } this host does not provide: ${missing.join(", ")}${
        hints.length ? ` (${hints.join("; ")})` : ""
      }`,
      missing,
    );
  }
  const exports = new Map(
    WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]),
  );
  if (exports.get("memory") !== "memory") {
    throw new GuestLinkError(`${name} exports no memory named 'memory'`);
  }
  if (exports.get("_start") !== "function") {
    throw new GuestLinkError(
      `${name} has no _start function: only WASI command modules can run (not reactors or libraries)`,
    );
  }
}

function exitCode(err: unknown): number | undefined {
  if (
    typeof err === "object" && err !== null &&
    err.constructor?.name === "WASIProcExit" &&
    typeof (err as { code?: unknown }).code === "number"
  ) {
    return (err as { code: number }).code;
  }
  return undefined;
}

function isTrap(err: unknown): boolean {
  return err instanceof WebAssembly.RuntimeError ||
    (err instanceof RangeError && /call stack/i.test(err.message));
}

function reportTrap(err: Error, name: string, log: Logger): void {
  let message = `error: ${name} trapped: ${err.name}: ${err.message}`;
  if (/unreachable/.test(err.message)) {
    message +=
      "\nhint: the guest aborted. A Rust panic (its message, if any, " +
      "is printed above) or a C abort() ends in this `unreachable` trap; a " +
      "WASI-NN guest usually panics on an unexpected errno from an " +
      "`expect()` (e.g. 101 ContextFull: try a larger ctx_size or a smaller n_predict)";
  }
  console.error(message);
  log("debug", `trap stack: ${err.stack ?? "(none)"}`);
}
