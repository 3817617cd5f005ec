/**
 * Structured logging for the host, on LogTape (`npm:@logtape/logtape`):
 * levels, categories (`wasi_nn.host`, `wasi_nn.llama`, `wasi_nn.scheduler`,
 * ...), text or JSON lines, on stderr and optionally a file. llama.cpp's own
 * log arrives under `wasi_nn.llama` with its levels mapped, one record per
 * line. Every record is written as one line: control characters in messages
 * and properties are shown as escapes (`\n`, `\x1b`; see _log_escape.ts).
 *
 * @example
 * ```ts
 * import { configureLogging, logger } from "./log.ts";
 * await configureLogging({ level: "info", format: "json" });
 * logger("host").info("loaded {name}", { name: "default" });
 * ```
 * @module
 */

import {
  configure,
  getLogger,
  getTextFormatter,
  jsonLinesFormatter,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";
import { escapedLines, escapeJsonLine, escapeLogText } from "./_log_escape.ts";

/** Log levels, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** The `logging` config section. */
export interface LoggingOptions {
  /** Least severe level written (default "warn"). */
  level?: LogLevel;
  /** "text" (default) or "json" (one JSON object per line). */
  format?: "text" | "json";
  /** Also append to this file. */
  file?: string;
  /** Write to stderr (default true). */
  stderr?: boolean;
}

const LT_LEVEL = {
  debug: "debug",
  info: "info",
  warn: "warning",
  error: "error",
} as const;

/**
 * Opens the config's `log_file` for appending (created if missing); throws
 * an Error naming `log_file`, the path and why it cannot be opened.
 *
 * @example
 * ```ts ignore
 * import { openLogFile } from "./log.ts";
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

function fileSink(path: string, format: (r: LogRecord) => string): Sink {
  const f = openLogFile(path);
  const enc = new TextEncoder();
  const sink = (r: LogRecord) => {
    f.writeSync(enc.encode(format(r)));
  };
  return Object.assign(sink, { [Symbol.dispose]: () => f.close() });
}

function stderrSink(format: (r: LogRecord) => string): Sink {
  const enc = new TextEncoder();
  return (r: LogRecord) => {
    Deno.stderr.writeSync(enc.encode(format(r)));
  };
}

/** A formatter whose every record is one line (control characters escaped). */
function oneLine(
  format: (r: LogRecord) => string,
  json: boolean,
): (r: LogRecord) => string {
  return (r) => {
    const line = format(r);
    const body = line.endsWith("\n") ? line.slice(0, -1) : line;
    return `${json ? escapeJsonLine(body) : escapeLogText(body)}\n`;
  };
}

/**
 * Configures where and how the host logs. Call again to reconfigure. Throws
 * an Error naming `log_file` when the file cannot be opened for appending.
 */
export async function configureLogging(
  options: LoggingOptions = {},
): Promise<void> {
  const format = oneLine(
    options.format === "json"
      ? jsonLinesFormatter
      : getTextFormatter({ timestamp: "time", category: "." }),
    options.format === "json",
  );
  const sinks: Record<string, Sink> = {};
  if (options.stderr !== false) sinks.stderr = stderrSink(format);
  if (options.file) sinks.file = fileSink(options.file, format);
  await configure({
    reset: true,
    sinks,
    loggers: [
      {
        category: ["wasi_nn"],
        lowestLevel: LT_LEVEL[options.level ?? "warn"],
        sinks: Object.keys(sinks),
      },
      {
        // llama.cpp's own log and the per-request timings: the host forwards
        // them only when a config's enable_log / enable_debug_log asks (and
        // errors always), so they pass whatever the level.
        category: ["wasi_nn", "llama"],
        lowestLevel: "debug",
        sinks: Object.keys(sinks),
        parentSinks: "override",
      },
      {
        category: ["logtape", "meta"],
        lowestLevel: "warning",
        sinks: Object.keys(sinks),
      },
    ],
  });
}

/** A category's logger: message templates with `{placeholders}` filled from properties. */
export interface CategoryLogger {
  /** Debug message. */
  debug(message: string, properties?: Record<string, unknown>): void;
  /** Info message. */
  info(message: string, properties?: Record<string, unknown>): void;
  /** Warning. */
  warn(message: string, properties?: Record<string, unknown>): void;
  /** Error. */
  error(message: string, properties?: Record<string, unknown>): void;
}

/** The logger of a category under `wasi_nn`. */
export function logger(category: string): CategoryLogger {
  return getLogger(["wasi_nn", category]);
}

/**
 * A `(level, message)` function writing to a category; the shape hosts and
 * runners take. Category "llama" (llama.cpp's log) is split into one record
 * per line.
 */
export function logFunction(
  category: string,
): (level: LogLevel, msg: string) => void {
  const l = getLogger(["wasi_nn", category]);
  const write = (level: LogLevel, msg: string) => {
    // Plain text: escape LogTape's {placeholder} braces.
    l[level](msg.replaceAll("{", "{{").replaceAll("}", "}}"));
  };
  if (category !== "llama") return write;
  return (level, msg) => {
    for (const line of escapedLines(msg)) write(level, line);
  };
}
