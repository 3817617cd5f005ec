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
 * Run `--help` for the options and exit codes. This file parses and
 * dispatches; the commands live in `cli/` and load only when they run.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = await main(["--version"]);
 * console.log(code); // 0
 * ```
 * @module
 */

import { CliUsageError, helpText, parseCliArgs } from "./cli/args.ts";
import { EXIT_CODES } from "./cli/exit_codes.ts";

export { EXIT_CODES };

/**
 * Runs the command line `args` (without the script name) and resolves to the
 * process exit code: the guest's own, or one of {@linkcode EXIT_CODES}.
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
    case "version": {
      const { versionText } = await import("./cli/version.ts");
      console.log(await versionText());
      return 0;
    }
    case "generate": {
      const { generateCommand } = await import("./cli/generate.ts");
      return await generateCommand(cmd.args);
    }
    case "demo": {
      const { demoCommand } = await import("./cli/demo.ts");
      return await demoCommand(cmd.args);
    }
    case "run": {
      const { runCommand } = await import("./cli/run.ts");
      return await runCommand(cmd);
    }
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
