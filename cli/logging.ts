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
 * This is the only module that imports LogTape, and it loads it only when
 * something is written: {@linkcode configureLogging} loads it, and
 * {@linkcode cliLogger} without a log file defers that to the first record
 * that passes the level (a run that logs nothing never loads it).
 *
 * @example
 * ```ts
 * import { configureLogging, logger } from "./logging.ts";
 * await configureLogging({ level: "info", format: "json" });
 * logger("host").info("loaded {name}", { name: "default" });
 * ```
 * @module
 */

import type { LogRecord, Sink } from "@logtape/logtape";
import {
  escapedLines,
  escapeJsonLine,
  escapeLogText,
  LOG_LEVELS,
  type Logger,
  type LogLevel,
} from "../wasi_nn/log.ts";
import { type ConfigValues, parseConfig } from "../wasi_nn/config/parse.ts";
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

type LogTape = typeof import("@logtape/logtape");
let logtape: LogTape | undefined;

/** LogTape, imported on first use. */
async function loadLogTape(): Promise<LogTape> {
  return logtape ??= await import("@logtape/logtape");
}

/**
 * A category's LogTape logger, looked up when it is first used after
 * {@linkcode configureLogging} has loaded LogTape; undefined before, when
 * nothing is configured and LogTape would drop the record anyway.
 */
function lazyLogger(
  category: string,
): () => ReturnType<LogTape["getLogger"]> | undefined {
  let l: ReturnType<LogTape["getLogger"]> | undefined;
  return () => l ??= logtape?.getLogger(["wasi_nn", category]);
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
  const { configure, getTextFormatter, jsonLinesFormatter } =
    await loadLogTape();
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
 * The logger of a category under `wasi_nn` (records logged before
 * {@linkcode configureLogging} go nowhere, as in LogTape).
 *
 * @example
 * ```ts
 * import { logger } from "./logging.ts";
 * logger("host").warn("model {name} not found", { name: "default" });
 * ```
 */
export function logger(category: string): CategoryLogger {
  const l = lazyLogger(category);
  return {
    debug: (m, p) => l()?.debug(m, p),
    info: (m, p) => l()?.info(m, p),
    warn: (m, p) => l()?.warn(m, p),
    error: (m, p) => l()?.error(m, p),
  };
}

/**
 * A {@linkcode Logger} writing plain text to one category. Category
 * "llama" (llama.cpp's log) is split into one record per line (records
 * before {@linkcode configureLogging} go nowhere, as in LogTape).
 *
 * @example
 * ```ts
 * import { logFunction } from "./logging.ts";
 * logFunction("host")("warn", "text with {braces} is written as it is");
 * ```
 */
export function logFunction(category: string): Logger {
  const l = lazyLogger(category);
  const write = (level: LogLevel, msg: string) => {
    // Plain text: escape LogTape's {placeholder} braces.
    l()?.[level](msg.replaceAll("{", "{{").replaceAll("}", "}}"));
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
 * With a `log_file` or at level info or debug (records are expected),
 * LogTape is configured (and the file opened) before this resolves. At
 * warn or error (the default) without a file, LogTape loads when the first
 * record that passes the level arrives: the records until it has loaded
 * wait, in order, and {@linkcode CliLogger.flush} waits until they are
 * written.
 *
 * @example
 * ```ts
 * import { cliLogger } from "./logging.ts";
 * const log = await cliLogger("info", { log_format: "json" });
 * log("info", "model loaded");
 * await log.flush();
 * ```
 */
export async function cliLogger(
  level: LogLevel | undefined,
  hostConfig: Record<string, unknown> | undefined,
): Promise<CliLogger> {
  let v: ConfigValues;
  try {
    v = parseConfig(hostConfig).values;
  } catch (err) {
    throw new CliUsageError(`--config: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const fromConfig = v.log_level === "fatal" ? "error" : v.log_level;
  const options: LoggingOptions = {
    level: level ?? fromConfig ?? "warn",
    format: v.log_format === "json" ? "json" : "text",
    file: typeof v.log_file === "string" ? v.log_file : undefined,
  };
  const eager = options.file !== undefined ||
    LOG_LEVELS.indexOf(options.level!) < LOG_LEVELS.indexOf("warn");
  if (eager) {
    try {
      await configureLogging(options);
    } catch (err) {
      throw new CliUsageError(`--config: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return Object.assign(routedLogger(), { flush: () => Promise.resolve() });
  }
  return deferredLogger(options);
}

/** The host's and llama.cpp's records to their categories (LogTape loaded). */
function routedLogger(): Logger {
  const host = logFunction("host");
  const llama = logFunction("llama");
  return (at, message, category) =>
    category === "llama" ? llama(at, message) : host(at, message);
}

/**
 * A {@linkcode Logger} with a way to wait until every record it was given
 * has been written.
 *
 * @example
 * ```ts
 * import { cliLogger, type CliLogger } from "./logging.ts";
 * const log: CliLogger = await cliLogger("warn", undefined);
 * log("warn", "low memory");
 * await log.flush(); // written
 * ```
 */
export type CliLogger = Logger & {
  /** Resolves once every record logged so far is written. */
  flush(): Promise<void>;
};

/**
 * {@linkcode cliLogger} without a log file: drops what the level filters
 * out, as LogTape's configuration does (category "llama" always passes:
 * the host forwards it only when asked), and loads LogTape on the first
 * record that passes.
 */
function deferredLogger(options: LoggingOptions): CliLogger {
  const least = LOG_LEVELS.indexOf(options.level ?? "warn");
  let direct: Logger | undefined;
  let waiting: Parameters<Logger>[] = [];
  let loading: Promise<void> | undefined;
  const log: Logger = (at, message, category) => {
    if (direct) return direct(at, message, category);
    if (category !== "llama" && LOG_LEVELS.indexOf(at) < least) return;
    waiting.push([at, message, category]);
    loading ??= configureLogging(options).then(routedLogger, (err) => {
      // Cannot happen without a file; the records are written all the same.
      console.error(`error: logging: ${escapeLogText(String(err))}`);
      return ((a, m) => console.error(`${a}: ${escapeLogText(m)}`)) as Logger;
    }).then((d) => {
      for (const r of waiting) d(...r);
      waiting = [];
      direct = d;
    });
  };
  return Object.assign(log, { flush: () => loading ?? Promise.resolve() });
}
