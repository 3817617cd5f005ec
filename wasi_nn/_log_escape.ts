/**
 * One log message, one line: the control characters a guest (or a model
 * file) can put into a message are shown as visible escapes, so that no text
 * can start a forged log line, move the cursor or recolour the terminal.
 *
 * Escaped: every C0 control (U+0000-U+001F: `\n`, `\r`, `\t` by name, the
 * others as `\xHH`, e.g. `\x1b` for ESC), DEL (`\x7f`), the C1 controls
 * (U+0080-U+009F, `\x85`) and the Unicode line and paragraph separators
 * (`\u2028`, `\u2029`). Backslashes are left alone, so escaping twice changes
 * nothing. llama.cpp's own log is split into its lines first (one record per
 * line), then each line is escaped.
 *
 * @example
 * ```ts
 * import { escapeLogText } from "./_log_escape.ts";
 * console.log(escapeLogText("x\n[ERR] forged\x1b[31m")); // x\n[ERR] forged\x1b[31m (visible, one line)
 * ```
 * @module
 */

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

const NAMED: Readonly<Record<string, string>> = {
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code > 0xff
    ? `\\u${code.toString(16).padStart(4, "0")}`
    : `\\x${code.toString(16).padStart(2, "0")}`;
}

/**
 * `text` with every control character shown as an escape (see the module
 * doc); text without one comes back as it is.
 *
 * @example
 * ```ts
 * import { escapeLogText } from "./_log_escape.ts";
 * console.log(escapeLogText("a\tb\u2028c") === "a\\tb\\u2028c"); // true
 * ```
 */
export function escapeLogText(text: string): string {
  CONTROL.lastIndex = 0;
  return CONTROL.test(text) ? text.replace(CONTROL, escapeChar) : text;
}

/**
 * The lines of a multi-line message (llama.cpp's log), each escaped; a final
 * newline makes no empty last line.
 *
 * @example
 * ```ts
 * import { escapedLines } from "./_log_escape.ts";
 * console.log(escapedLines("load: one\r\nload: two\x1b[0m\n")); // ["load: one", "load: two\\x1b[0m"]
 * ```
 */
export function escapedLines(text: string): string[] {
  const lines = text.replace(/\r?\n$/, "").split(/\r?\n/);
  return lines.map(escapeLogText);
}

/**
 * Wraps a `(level, message, category?)` logger so that every message reaches
 * it as single lines: messages of category `"llama"` are split into their
 * lines (one call each), all others escaped whole.
 *
 * @example
 * ```ts
 * import { escapingLog } from "./_log_escape.ts";
 * const lines: string[] = [];
 * const log = escapingLog((_level: string, msg: string) => void lines.push(msg));
 * log("warn", "name 'x\n[ERR] forged'");
 * console.log(lines); // ["name 'x\\n[ERR] forged'"]
 * ```
 */
export function escapingLog<L extends string, C extends string>(
  log: (level: L, msg: string, category?: C) => void,
): (level: L, msg: string, category?: C) => void {
  return (level, msg, category) => {
    if (category === "llama") {
      for (const line of escapedLines(msg)) log(level, line, category);
    } else log(level, escapeLogText(msg), category);
  };
}

// Characters JSON.stringify leaves raw that still break or colour a line.
const JSON_RAW = /[\u007f-\u009f\u2028\u2029]/g;

/**
 * A JSON text with DEL, C1 and U+2028/U+2029 written as `\uXXXX` (JSON
 * escapes C0 itself); still valid JSON with the same value.
 *
 * @example
 * ```ts
 * import { escapeJsonLine } from "./_log_escape.ts";
 * console.log(escapeJsonLine(JSON.stringify({ m: "a\u2028b" }))); // {"m":"a\u2028b"}
 * ```
 */
export function escapeJsonLine(json: string): string {
  JSON_RAW.lastIndex = 0;
  return JSON_RAW.test(json)
    ? json.replace(
      JSON_RAW,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    )
    : json;
}
