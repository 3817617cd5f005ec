/**
 * Library-wide facts and the llama.cpp log: what the library was built with,
 * which devices it sees, and the captured log records.
 *
 * @example
 * ```ts ignore
 * import { backendInfo, drainLog, setLogLevel } from "./backend.ts";
 * setLogLevel("info");
 * console.log(backendInfo().backends, drainLog().length);
 * ```
 * @module
 */

import { libraryPath, symbols } from "./_library.ts";
import { readSized, utf8 } from "./_buffers.ts";
import type { BackendInfo, LogLevel, LogRecord } from "./types.ts";

let cached: BackendInfo | undefined;

/** Build and device facts (`wnb_info_json`); devices' free memory is read fresh each call. */
export function backendInfo(): BackendInfo {
  const s = symbols();
  cached = JSON.parse(utf8(readSized((b, c) => s.wnb_info_json(b, c), 8192)));
  return cached!;
}

/** The path of the loaded library. */
export function loadedLibraryPath(): string {
  symbols();
  return libraryPath();
}

const LEVELS = { debug: 1, info: 2, warn: 3, error: 4 } as const;
const NAMES = ["debug", "debug", "info", "warn", "error"] as const;

/** The least severe llama.cpp log level that is kept (default "warn"). */
export function setLogLevel(level: LogLevel): void {
  symbols().wnb_log_set_level(LEVELS[level]);
}

const drainBuf = new Uint8Array(1 << 16);

/** Takes the captured llama.cpp log records (oldest first). */
export function drainLog(): LogRecord[] {
  const s = symbols();
  const out: LogRecord[] = [];
  for (;;) {
    const n = s.wnb_log_drain(drainBuf, drainBuf.length);
    if (n <= 0) break;
    for (const line of utf8(drainBuf.subarray(0, n)).split("\n")) {
      if (!line) continue;
      const lvl = Number(line[1]);
      out.push({ level: NAMES[lvl] ?? "info", message: line.slice(3) });
    }
    if (n < drainBuf.length / 2) break;
  }
  return out;
}
