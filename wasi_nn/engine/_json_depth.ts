/**
 * The nesting depth of a JSON value, measured without recursion: llama.cpp's
 * JSON parser (nlohmann) recurses once per level and overflows the stack on
 * deep input, so depth is checked here before any JSON reaches it.
 *
 * @example
 * ```ts
 * import { jsonDepth } from "./_json_depth.ts";
 * console.log(jsonDepth({ a: [[1]] })); // 3
 * ```
 * @module
 */

/**
 * The nesting depth of arrays and objects in a JSON value (a scalar is 0),
 * counted without recursion and up to `stopAbove + 1`.
 *
 * @example
 * ```ts
 * import { jsonDepth } from "./_json_depth.ts";
 * console.log(jsonDepth([{ a: [1] }]), jsonDepth("x")); // 3 0
 * ```
 */
export function jsonDepth(value: unknown, stopAbove = Infinity): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (d > max) max = d;
    if (max > stopAbove) return max;
    for (const x of Array.isArray(v) ? v : Object.values(v)) {
      if (x !== null && typeof x === "object") stack.push([x, d + 1]);
    }
  }
  return max;
}
