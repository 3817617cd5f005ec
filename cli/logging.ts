/**
 * The command line's logging, on LogTape (`npm:@logtape/logtape`): levels,
 * categories (`wasi_nn.host`, `wasi_nn.llama`, ...), text or JSON lines, on
 * stderr and optionally a file. The core only calls a
 * {@linkcode Logger} callback; {@linkcode logFunction} and
 * {@linkcode cliLogger} adapt LogTape to it. llama.cpp's own log arrives
 * under `wasi_nn.llama`, one record per line. Every record is written as one
 * line: control characters in messages and properties are shown as escapes
 * (`\n`, `\x1b`; see `wasi_nn/log.ts`).
 *
 * This is the only module that imports LogTape.
 *
 * @example
 * ```ts
 * import { configureLogging, logger } from "./logging.ts";
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
import {
  escapedLines,
  escapeJsonLine,
  escapeLogText,
  type Logger,
  type LogLevel,
} from "../wasi_nn/log.ts";
import { parseConfig } from "../wasi_nn/config/parse.ts";
import { CliUsageError } from "./args.ts";
import { openLogFile } from "./log_file.ts";

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
 *
 * @example
 * ```ts
 * import { configureLogging } from "./logging.ts";
 * await configureLogging({ level: "debug", format: "text" });
 * ```
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

/**
 * The logger of a category under `wasi_nn`.
 *
 * @example
 * ```ts
 * import { logger } from "./logging.ts";
 * logger("host").warn("model {name} not found", { name: "default" });
 * ```
 */
export function logger(category: string): CategoryLogger {
  return getLogger(["wasi_nn", category]);
}

/**
 * A {@linkcode Logger} writing plain text to one category. Category
 * "llama" (llama.cpp's log) is split into one record per line.
 *
 * @example
 * ```ts
 * import { logFunction } from "./logging.ts";
 * logFunction("host")("warn", "text with {braces} is written as it is");
 * ```
 */
export function logFunction(category: string): Logger {
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

/**
 * The guest runner's logger: LogTape, text lines on stderr by default. The
 * host config's `logging` section may set `level`, `format` ("text" or
 * "json") and `file`; `level` (`--log-level`) wins over its `level`.
 * llama.cpp's own log (category "llama") shows when a config's `enable_log`
 * asks for it. Throws {@linkcode CliUsageError} for a config that does not
 * validate or a `log_file` that cannot be opened.
 *
 * @example
 * ```ts
 * import { cliLogger } from "./logging.ts";
 * const log = await cliLogger("info", { log_format: "json" });
 * log("info", "model loaded");
 * ```
 */
export async function cliLogger(
  level: LogLevel | undefined,
  hostConfig: Record<string, unknown> | undefined,
): Promise<Logger> {
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
