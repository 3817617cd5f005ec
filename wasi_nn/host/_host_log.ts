/**
 * The host's messages: one escaped line each (guests choose names and text),
 * warnings a guest may repeat with every request logged once, llama.cpp's
 * queued log forwarded as the config asks, and configs parsed with their
 * warnings logged where they came from.
 *
 * @example
 * ```ts
 * import { HostLog } from "./_host_log.ts";
 * const log = new HostLog((level, msg) => console.log(level, msg));
 * const values = log.parse('{"temp":0.5}', "load config");
 * console.log(values.temp); // 0.5
 * ```
 * @module
 */

import { drainLog, setLogLevel } from "../../bindings/mod.ts";
import { type ConfigValues, parseConfig } from "../config/parse.ts";
import { specOf } from "../config/_keys.ts";
import { escapingLog, type Logger, type LogLevel } from "../log.ts";

/** Where host messages go without a logger: stderr for warnings and errors. */
function defaultLog(level: string, msg: string, category?: string): void {
  if (category === "llama") console.error(`[llama.cpp] ${msg}`);
  else if (level === "warn" || level === "error") {
    console.error(`[wasi_nn] ${level}: ${msg}`);
  }
}

/** The host's logger, with the helpers every part of the host shares. */
export class HostLog {
  /** Writes one message (escaped to one line). */
  readonly write: Logger;
  #logged = new Set<string>();

  /** Wraps `logger` (default: stderr for warn and error) so every message is one line. */
  constructor(logger?: Logger) {
    this.write = escapingLog(logger ?? defaultLog);
  }

  /** Logs a message. */
  log(level: LogLevel, msg: string): void {
    this.write(level, msg);
  }

  /** Logs a message the first time it comes (at most 1000 remembered). */
  once(level: "info" | "warn", msg: string): void {
    if (this.#logged.has(msg)) return;
    if (this.#logged.size >= 1000) this.#logged.clear();
    this.#logged.add(msg);
    this.write(level, msg);
  }

  /**
   * Parses a request's config (a load, a session or a run: JSON text or
   * bytes, or an object); its warnings and notes are logged once each (a
   * guest may send the same config with every request), and an invalid
   * config is logged before it is thrown. The operator's keys (`rpc`,
   * `engine`, the quotas, the size limits, `log_file`: `operatorOnly` in the
   * key table) are dropped here, with a warning.
   */
  parse(
    config: string | Uint8Array | Record<string, unknown> | undefined,
    where: string,
  ): ConfigValues {
    try {
      const { values, warnings, notes } = parseConfig(config);
      for (const w of warnings) this.once("warn", `${where}: ${w}`);
      for (const n of notes) this.once("info", `${where}: ${n}`);
      for (const k of Object.keys(values) as (keyof ConfigValues)[]) {
        if (!specOf(k)?.operatorOnly) continue;
        delete values[k];
        this.once(
          "warn",
          `${where}: '${k}' is the operator's key: only the host config (LlamaHost's hostConfig, cli.ts --config) sets it; ignored here`,
        );
      }
      return values;
    } catch (e) {
      this.write("warn", `${where}: ${(e as Error).message}`);
      throw e;
    }
  }

  /**
   * Model keys (n_gpu_layers, use_mmap, ...) apply when a model loads: in a
   * session's config they change nothing, so say so (once).
   */
  warnModelKeys(values: ConfigValues, where: string): void {
    for (const k of Object.keys(values)) {
      if (specOf(k)?.scope === "model") {
        this.once(
          "warn",
          `${where}: '${k}' applies when the model loads, not per session; put it in the load_by_name config (or --config) and load the model again`,
        );
      }
    }
  }

  /** What llama.cpp queues from now on: debug, info or warnings and errors, as the config asks. */
  nativeLevel(cfg: ConfigValues): void {
    setLogLevel(this.levelOf(cfg));
  }

  /** The llama.cpp log level a config asks for (also an engine process's). */
  levelOf(cfg: ConfigValues): LogLevel {
    return cfg.enable_debug_log ? "debug" : cfg.enable_log ? "info" : "warn";
  }

  /**
   * Forwards llama.cpp's queued log: all of it when the config asks
   * (`enable_log`, `enable_debug_log`), otherwise only errors.
   */
  flushLlama(cfg: ConfigValues): void {
    const enabled = Boolean(cfg.enable_log || cfg.enable_debug_log);
    for (const r of drainLog()) {
      if (enabled || r.level === "error") {
        this.write(r.level, r.message, "llama");
      }
    }
  }
}
