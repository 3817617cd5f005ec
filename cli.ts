/**
 * Command-line runner for WASI-NN guests on llama.cpp, with WasmEdge's options:
 *
 * ```sh
 * deno run -A cli.ts --dir .:. --nn-preload default:GGML:AUTO:model.gguf \
 *   wasmedge-ggml-llama.wasm default "Once upon a time"
 * deno run -A cli.ts generate --prompt "Once upon a time"
 * deno run -A cli.ts --help
 * ```
 *
 * Run `--help` for the options and exit codes.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * const code = await main(["--version"]);
 * console.log(code); // 0
 * ```
 * @module
 */

import { LLAMA_CPP_COMMIT, PACKAGE_VERSION } from "./paths.ts";
import {
  CliUsageError,
  EXIT_CODES,
  helpText,
  type LogLevel,
  parseCliArgs,
  parseHostConfig,
  type RunArgs,
} from "./wasi_nn/_cli_args.ts";
import type { TensorInput, WasiNnHostApi } from "./wasi_nn/host_api.ts";
import type { HostLog } from "./wasi_nn/host.ts";
import { ModelRegistry } from "./wasi_nn/registry.ts";
import { GuestLinkError, PreopenError, runGuest } from "./wasi_nn/run_guest.ts";
import { checkPreopens } from "./wasi_nn/_preopens.ts";
import { escapeLogText } from "./wasi_nn/_log_escape.ts";

/**
 * Runs the command line `args` (without the script name) and resolves to the
 * process exit code: the guest's own, or one of the codes listed by `--help`.
 * Errors are reported on stderr, never thrown.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * Deno.exit(await main(["--nn-preload", "default:GGML:AUTO:m.gguf", "guest.wasm", "default"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let cmd;
  try {
    cmd = parseCliArgs(args);
  } catch (err) {
    if (!(err instanceof CliUsageError)) throw err;
    console.error(`error: ${err.message}`);
    return EXIT_CODES.usage;
  }
  switch (cmd.command) {
    case "help":
      console.log(helpText());
      return 0;
    case "version":
      console.log(
        `wasi-nn-llamacpp ${PACKAGE_VERSION}\nllama.cpp ${await llamaCommit()}`,
      );
      return 0;
    case "generate": {
      const { generateCommand } = await import("./wasi_nn/_cli_generate.ts");
      return await generateCommand(cmd.args);
    }
    case "demo": {
      const { demoCommand } = await import("./wasi_nn/_cli_demo.ts");
      return await demoCommand(cmd.args);
    }
    case "run":
      return await runCommand(cmd);
  }
}

/** An error message as one line of stderr (control characters escaped). */
function oneLine(message: string): string {
  return escapeLogText(message);
}

/** A WasiNnError (config, guest input), without importing the bindings. */
function isWasiNnError(err: unknown): err is Error & { errno: number } {
  return err instanceof Error &&
    typeof (err as { errno?: unknown }).errno === "number" &&
    err.name.startsWith("WasiNnError");
}

/** `--dir` folders must exist: checked before anything starts. */
function checkDirs(preopens: Record<string, string>): void {
  try {
    checkPreopens(preopens);
  } catch (err) {
    if (!(err instanceof PreopenError)) throw err;
    const arg = err.guestPath === err.hostPath
      ? err.hostPath
      : `${err.guestPath}:${err.hostPath}`;
    throw new CliUsageError(
      `--dir ${arg}: ${err.reason} (--dir GUEST:HOST gives the guest the existing host folder HOST as GUEST; --dir PATH the folder PATH as itself)`,
      { cause: err },
    );
  }
}

/** llama.cpp's commit, from the library when it loads, else the pinned one. */
async function llamaCommit(): Promise<string> {
  try {
    const { LlamaHost } = await import("./wasi_nn/host.ts");
    const host = await LlamaHost.create({ registry: new ModelRegistry() });
    try {
      const { commit, number } = host.llamaBuild;
      return `${commit} (build ${number})`;
    } finally {
      host.close();
    }
  } catch {
    return `${LLAMA_CPP_COMMIT} (pinned; the library did not load)`;
  }
}

async function runCommand(cmd: RunArgs): Promise<number> {
  const registry = new ModelRegistry();
  let hostConfig: Record<string, unknown> | undefined;
  let log: HostLog;
  try {
    for (const preload of cmd.preloads) registry.preload(preload);
    for (const dir of cmd.allowDirs) registry.allowDir(dir);
    if (cmd.config !== undefined) hostConfig = parseHostConfig(cmd.config);
    checkDirs(cmd.preopens);
    log = await hostLogger(cmd.logLevel, hostConfig);
  } catch (err) {
    console.error(`error: ${oneLine((err as Error).message)}`);
    return EXIT_CODES.usage;
  }

  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(await Deno.readFile(cmd.wasm));
  } catch (err) {
    console.error(
      `error: cannot load guest '${cmd.wasm}': ${(err as Error).message}`,
    );
    return EXIT_CODES.noInput;
  }

  const progress = new LoadProgress();
  let host;
  try {
    const { LlamaHost } = await import("./wasi_nn/host.ts");
    host = await LlamaHost.create({
      registry,
      hostConfig,
      log,
      onLoadProgress: (name, fraction) => progress.update(name, fraction),
    });
  } catch (err) {
    if (isWasiNnError(err)) {
      // checked above already; kept so that no config error reads as a build problem
      console.error(`error: --config: ${oneLine(err.message)}`);
      return EXIT_CODES.usage;
    }
    console.error(
      `error: the llama.cpp host could not start: ${
        oneLine((err as Error).message)
      } (build the library with \`deno task build\`, and run with -A or --allow-ffi)`,
    );
    return EXIT_CODES.unavailable;
  }

  const interrupts = new InterruptHandler(() => host.cancelAll(), progress);
  try {
    return await runGuest({
      wasm: module,
      argv0: cmd.wasm,
      args: cmd.guestArgs,
      env: cmd.env,
      preopens: cmd.preopens,
      host: interrupts.wrap(host),
      log,
    });
  } catch (err) {
    progress.clear();
    if (err instanceof PreopenError) {
      console.error(`error: --dir ${oneLine(err.message)}`);
      return EXIT_CODES.usage;
    }
    if (err instanceof GuestLinkError) {
      console.error(`error: ${oneLine(err.message)}`);
    } else {
      console.error(
        `error: internal error: ${
          oneLine(err instanceof Error ? err.message : String(err))
        } (the stack trace is logged at --log-level debug)`,
      );
      log("debug", `stack: ${(err as Error)?.stack ?? err}`);
    }
    return EXIT_CODES.software;
  } finally {
    interrupts.dispose();
    progress.clear();
    host.close();
  }
}

/**
 * The host's logger: LogTape, text lines on stderr by default. The config's
 * `logging` section may set `level`, `format` ("text" or "json") and `file`;
 * --log-level wins over its `level`. llama.cpp's own log (category "llama")
 * shows when a config's `enable_log` asks for it. Throws CliUsageError for
 * a config that does not validate or a `log_file` that cannot be opened.
 */
async function hostLogger(
  level: LogLevel | undefined,
  hostConfig: Record<string, unknown> | undefined,
): Promise<HostLog> {
  const { configureLogging, logFunction } = await import("./wasi_nn/log.ts");
  const { parseConfig } = await import("./wasi_nn/config.ts");
  let v: Record<string, unknown>;
  try {
    v = parseConfig(hostConfig).values;
  } catch (err) {
    throw new CliUsageError(`--config: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const fromConfig = v.log_level === "fatal" ? "error" : v.log_level;
  try {
    await configureLogging({
      level: level ?? (fromConfig as LogLevel | undefined) ?? "warn",
      format: v.log_format === "json" ? "json" : "text",
      file: typeof v.log_file === "string" ? v.log_file : undefined,
    });
  } catch (err) {
    throw new CliUsageError(`--config: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const host = logFunction("host");
  const llama = logFunction("llama");
  return (at, message, category) =>
    category === "llama" ? llama(at, message) : host(at, message);
}

/** A one-line model load progress display on stderr, only on a terminal. */
class LoadProgress {
  #enabled = Deno.stderr.isTerminal();
  #shown = "";
  #encoder = new TextEncoder();

  update(name: string, fraction: number): void {
    if (!this.#enabled) return;
    if (fraction >= 1) return this.clear();
    const line = `loading model '${name}': ${Math.floor(fraction * 100)}%`;
    if (line === this.#shown) return;
    this.#shown = line;
    Deno.stderr.writeSync(this.#encoder.encode(`\r\x1b[2K${line}`));
  }

  clear(): void {
    if (this.#shown === "") return;
    this.#shown = "";
    Deno.stderr.writeSync(this.#encoder.encode("\r\x1b[2K"));
  }
}

/**
 * Ctrl-C handling. The SIGINT listener is registered only while a host call
 * is in flight (loading, set_input, compute): the first Ctrl-C cancels
 * generation, a second one exits with 130. At all other times (e.g. the guest
 * blocked reading stdin, when no JS can run) Ctrl-C keeps its default effect
 * and ends the process at once.
 */
class InterruptHandler {
  #cancel: () => void;
  #progress: LoadProgress;
  #inFlight = 0;
  #presses = 0;
  #listening = false;
  #onSignal = () => {
    this.#presses++;
    this.#progress.clear();
    if (this.#presses === 1) {
      console.error("\n^C: stopping generation (press Ctrl-C again to exit)");
      this.#cancel();
    } else {
      console.error("^C: exiting");
      Deno.exit(EXIT_CODES.interrupted);
    }
  };

  constructor(cancel: () => void, progress: LoadProgress) {
    this.#cancel = cancel;
    this.#progress = progress;
  }

  async #track<T>(newTurn: boolean, call: () => Promise<T>): Promise<T> {
    if (newTurn) this.#presses = 0;
    if (this.#inFlight++ === 0 && !this.#listening) {
      Deno.addSignalListener("SIGINT", this.#onSignal);
      this.#listening = true;
    }
    try {
      return await call();
    } finally {
      if (--this.#inFlight === 0) this.#stopListening();
    }
  }

  #stopListening(): void {
    if (!this.#listening) return;
    this.#listening = false;
    Deno.removeSignalListener("SIGINT", this.#onSignal);
  }

  /** A host whose async calls are covered by the handler. */
  wrap(host: WasiNnHostApi): WasiNnHostApi {
    return {
      load: (b: Uint8Array[], e: number, t: number) =>
        this.#track(true, () => host.load(b, e, t)),
      loadByName: (name: string, config?: string) =>
        this.#track(true, () => host.loadByName(name, config)),
      initExecutionContext: (graph: number) => host.initExecutionContext(graph),
      setInput: (ctx: number, index: number, tensor: TensorInput) =>
        this.#track(true, () => host.setInput(ctx, index, tensor)),
      compute: (ctx: number) => this.#track(false, () => host.compute(ctx)),
      getOutput: (ctx: number, index: number) => host.getOutput(ctx, index),
      computeSingle: (ctx: number) =>
        this.#track(false, () => host.computeSingle(ctx)),
      getOutputSingle: (ctx: number, index: number) =>
        host.getOutputSingle(ctx, index),
      finiSingle: (ctx: number) => host.finiSingle(ctx),
      unload: (graph: number) => host.unload(graph),
      finalizeExecutionContext: (ctx: number) =>
        host.finalizeExecutionContext(ctx),
    };
  }

  dispose(): void {
    this.#inFlight = 0;
    this.#stopListening();
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
