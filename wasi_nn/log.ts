/**
 * Logging in the core: one level type, one callback, and the escaping that
 * keeps every message one line. The core never decides where lines go: the
 * host, the imports and the guest runner take a {@linkcode Logger} callback,
 * and the embedder writes the lines (the command line writes them through
 * LogTape, in `cli/logging.ts`). Every message reaches the callback as one
 * line: control characters are shown as escapes (`\n`, `\x1b`; see
 * {@linkcode escapeLogText}), and llama.cpp's log comes one line per call.
 *
 * @example
 * ```ts
 * import { escapingLog, type Logger } from "./log.ts";
 * const log: Logger = escapingLog((level, message, category) =>
 *   console.error(`[${category ?? "host"}] ${level}: ${message}`)
 * );
 * log("warn", "model 'x\n[ERR] forged' not found"); // one line, \n shown as an escape
 * ```
 * @module
 */

import type { LogLevel } from "../bindings/types.ts";
export { LOG_LEVELS, type LogLevel } from "../bindings/types.ts";

/**
 * Where a message comes from. `"llama"`: llama.cpp's own log and the
 * per-request timings, which the host forwards only when a config's
 * `enable_log` / `enable_debug_log` asks for them (errors always), so a
 * logger should show them whatever its level. `"host"` (the default): the
 * host, the imports and the guest runner.
 *
 * @example
 * ```ts
 * import type { LogCategory } from "./log.ts";
 * const category: LogCategory = "llama";
 * console.log(category);
 * ```
 */
export type LogCategory = "host" | "llama";

/**
 * The one logger callback of the core: a level, a one-line message and,
 * optionally, its {@linkcode LogCategory} (default `"host"`).
 *
 * @example
 * ```ts
 * import type { Logger } from "./log.ts";
 * const log: Logger = (level, message, category = "host") => {
 *   if (level !== "debug") console.error(`${category} ${level}: ${message}`);
 * };
 * log("info", "model loaded");
 * ```
 */
export type Logger = (
  level: LogLevel,
  message: string,
  category?: LogCategory,
) => void;

export {
  escapedLines,
  escapeJsonLine,
  escapeLogText,
  escapingLog,
} from "./_log_escape.ts";
