/**
 * Parses what `abi_probe.wasm` prints: one line per host call,
 *
 * ```text
 * op=get_output case=before ctx=0 index=1 cap=24576 errno=0 written=88 text="{\"input_tokens\": 3, ...}"
 * ```
 *
 * Values that are decimal integers become numbers, JSON strings (`text=`)
 * are decoded, everything else (`hex=`, `canary=`, `step=`, `case=`) stays a
 * string. `hex=` is always a string, even when its digits look like a number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findLine, parseProbeOutput } from "./probe_output.ts";
 * const lines = parseProbeOutput(
 *   'op=load_by_name errno=8 graph=4294967295\nop=end\n',
 * );
 * assert.deepStrictEqual(findLine(lines, "load_by_name").errno, 8);
 * ```
 * @module
 */

/** One value of a probe line. */
export type ProbeValue = string | number;

/** One line: `op` plus every other `key=value` pair. */
export interface ProbeLine {
  /** The host call (`set_input`, `get_output`, ...) or `end` / `abort` / `stream_end`. */
  readonly op: string;
  /** The other fields: `case`, `errno`, `graph`, `ctx`, `written`, `text`, `hex`, ... */
  readonly [key: string]: ProbeValue;
}

/** The value of `written=` (or `graph=`, `ctx=`) when the host wrote nothing. */
export const NOT_WRITTEN = 4294967295;

const STRING_KEYS = new Set(["hex", "op", "case", "step", "canary"]);

/** Parses the probe's whole stdout. Lines that do not start with `op=` are ignored (e.g. host logging). */
export function parseProbeOutput(stdout: string): ProbeLine[] {
  return stdout.split("\n").filter((line) => line.startsWith("op="))
    .map(parseProbeLine);
}

/** Parses one `op=... key=value ...` line. */
export function parseProbeLine(line: string): ProbeLine {
  const fields: Record<string, ProbeValue> = {};
  let i = 0;
  while (i < line.length) {
    while (line[i] === " ") i++;
    if (i >= line.length) break;
    const eq = line.indexOf("=", i);
    if (eq < 0) throw new SyntaxError(`abi_probe: no '=' at ${i} in: ${line}`);
    const key = line.slice(i, eq);
    let value: ProbeValue;
    if (line[eq + 1] === '"') {
      let j = eq + 2;
      while (j < line.length && line[j] !== '"') j += line[j] === "\\" ? 2 : 1;
      if (j >= line.length) {
        throw new SyntaxError(`abi_probe: unterminated string in: ${line}`);
      }
      value = JSON.parse(line.slice(eq + 1, j + 1));
      i = j + 1;
    } else {
      let j = line.indexOf(" ", eq + 1);
      if (j < 0) j = line.length;
      const raw = line.slice(eq + 1, j);
      value = !STRING_KEYS.has(key) && /^-?\d+$/.test(raw) ? Number(raw) : raw;
      i = j;
    }
    fields[key] = value;
  }
  if (typeof fields.op !== "string") {
    throw new SyntaxError(`abi_probe: line without op=: ${line}`);
  }
  return fields as ProbeLine;
}

/** The bytes of a `hex=` value. */
export function hexBytes(hex: ProbeValue | undefined): Uint8Array {
  if (typeof hex !== "string" || hex.length % 2 !== 0) {
    throw new TypeError(`not a hex= value: ${hex}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** Every line with this `op` (and `case`, when given). */
export function findLines(
  lines: readonly ProbeLine[],
  op: string,
  caseLabel?: string,
): ProbeLine[] {
  return lines.filter((l) =>
    l.op === op && (caseLabel === undefined || l.case === caseLabel)
  );
}

/** The only line with this `op` (and `case`); throws when there is not exactly one. */
export function findLine(
  lines: readonly ProbeLine[],
  op: string,
  caseLabel?: string,
): ProbeLine {
  const found = findLines(lines, op, caseLabel);
  if (found.length !== 1) {
    const what = caseLabel === undefined ? op : `${op} case=${caseLabel}`;
    throw new Error(`expected one '${what}' line, found ${found.length}`);
  }
  return found[0];
}
