/**
 * `cli.ts GUEST.wasm ...`: runs a WASI-NN guest on a fresh llama.cpp host,
 * with WasmEdge's options (`--nn-preload`, `--dir`, `--env`), LogTape
 * logging, Ctrl-C handling and a load progress line. Every error is one line
 * on stderr and an {@linkcode EXIT_CODES} code.
 *
 * What a run needs beyond parsing loads when the run gets there: the guest
 * is read and compiled (on V8's background threads) while the logging and
 * config modules load, then the host and the guest runner.
 *
 * @example
 * ```ts ignore
 * import { parseCliArgs } from "./args.ts";
 * import { runCommand } from "./run.ts";
 * const cmd = parseCliArgs(["--nn-preload", "default:GGML:AUTO:m.gguf", "guest.wasm", "default"]);
 * if (cmd.command === "run") Deno.exit(await runCommand(cmd));
 * ```
 * @module
 */

import { CliUsageError, parseHostConfig, type RunArgs } from "./args.ts";
import { EXIT_CODES } from "./exit_codes.ts";
import { InterruptHandler } from "./interrupt.ts";
import { LoadProgress } from "./load_progress.ts";
import type { CliLogger } from "./logging.ts";
import { escapeLogText } from "../wasi_nn/log.ts";
import { ModelRegistry } from "../wasi_nn/host/registry.ts";
import type { TRAP_EXIT_CODE } from "../wasi_nn/abi/run_guest.ts";
import { checkPreopens, PreopenError } from "../wasi_nn/abi/_preopens.ts";

// The runner's trap code is the one EXIT_CODES documents (checked by the type checker).
const _trapCodesAgree: typeof TRAP_EXIT_CODE extends typeof EXIT_CODES.trap
  ? true
  : never = true;

/** The guest file compiled, or why it could not be. */
async function compileGuest(
  path: string,
): Promise<{ module: WebAssembly.Module } | { error: unknown }> {
  try {
    return { module: await WebAssembly.compile(await Deno.readFile(path)) };
  } catch (error) {
    return { error };
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

/**
 * Runs the guest of a parsed run command line and resolves to the process
 * exit code: the guest's own, or one of {@linkcode EXIT_CODES}. Errors are
 * reported on stderr, never thrown.
 *
 * @example
 * ```ts ignore
 * import { parseCliArgs } from "./args.ts";
 * import { runCommand } from "./run.ts";
 * const cmd = parseCliArgs(["guest.wasm"]);
 * if (cmd.command === "run") console.log(await runCommand(cmd));
 * ```
 */
export async function runCommand(cmd: RunArgs): Promise<number> {
  // Reported in its turn, after the usage errors.
  const guest = compileGuest(cmd.wasm);
  const registry = new ModelRegistry();
  let hostConfig: Record<string, unknown> | undefined;
  let log: CliLogger;
  const { cliLogger } = await import("./logging.ts");
  try {
    for (const preload of cmd.preloads) registry.preload(preload);
    for (const dir of cmd.allowDirs) registry.allowDir(dir);
    if (cmd.config !== undefined) hostConfig = parseHostConfig(cmd.config);
    // --guest-max-* options: host keys above --config's.
    if (cmd.guestLimits) hostConfig = { ...hostConfig, ...cmd.guestLimits };
    if (cmd.engine) hostConfig = { ...hostConfig, engine: cmd.engine };
    if (cmd.rpc) hostConfig = { ...hostConfig, rpc: cmd.rpc };
    checkDirs(cmd.preopens);
    log = await cliLogger(cmd.logLevel, hostConfig);
  } catch (err) {
    console.error(`error: ${oneLine((err as Error).message)}`);
    return EXIT_CODES.usage;
  }
  try {
    return await runCompiled(cmd, registry, hostConfig, log, await guest);
  } finally {
    // Records that waited for LogTape to load are written before the exit.
    await log.flush();
  }
}

async function runCompiled(
  cmd: RunArgs,
  registry: ModelRegistry,
  hostConfig: Record<string, unknown> | undefined,
  log: CliLogger,
  guest: { module: WebAssembly.Module } | { error: unknown },
): Promise<number> {
  if ("error" in guest) {
    console.error(
      `error: cannot load guest '${cmd.wasm}': ${
        (guest.error as Error).message
      }`,
    );
    return EXIT_CODES.noInput;
  }
  const module = guest.module;
  const { GuestLinkError, runGuest } = await import(
    "../wasi_nn/abi/run_guest.ts"
  );

  const progress = new LoadProgress();
  let host;
  try {
    const { LlamaHost } = await import("../wasi_nn/host/host.ts");
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

  // Whatever the host logged on its way up comes before the guest's output.
  await log.flush();
  const interrupts = new InterruptHandler({
    cancel: () => host.cancelAll(),
    beforeMessage: () => progress.clear(),
  });
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
    // A decode a Ctrl-C cancelled may still be returning: wait for it.
    await host.shutdown();
  }
}
