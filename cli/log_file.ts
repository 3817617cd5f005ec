/**
 * The config's `log_file`, opened for appending by the command line's
 * loggers (`cli/logging.ts` for the guest runner, `generate`'s diagnostics).
 *
 * @example
 * ```ts ignore
 * import { openLogFile } from "./log_file.ts";
 * using f = openLogFile("/tmp/wasi-nn.log");
 * f.writeSync(new TextEncoder().encode("hello\n"));
 * ```
 * @module
 */

/**
 * Opens the config's `log_file` for appending (created if missing); throws
 * an Error naming `log_file`, the path and why it cannot be opened.
 *
 * @example
 * ```ts ignore
 * import { openLogFile } from "./log_file.ts";
 * using f = openLogFile("/tmp/wasi-nn.log");
 * f.writeSync(new TextEncoder().encode("hello\n"));
 * ```
 */
export function openLogFile(path: string): Deno.FsFile {
  try {
    return Deno.openSync(path, { append: true, create: true });
  } catch (cause) {
    throw new Error(
      `log_file '${path}': cannot open it for appending: ${
        (cause as Error).message
      } (give a file in an existing, writable folder)`,
      { cause },
    );
  }
}
