/**
 * Hand-assembled wasm for the tests: LEB128 numbers, names, sections and
 * vectors, and the parameter count of each WASI-NN import (every one takes
 * i32s and returns an i32 errno).
 *
 * @module
 */

import type { WasiNnFunctionName } from "../wasi_nn/abi/guest_imports.ts";

/** The number of i32 parameters of each WASI-NN function. */
export const NN_PARAMS: Record<WasiNnFunctionName, number> = {
  load: 5,
  load_by_name: 3,
  load_by_name_with_config: 5,
  init_execution_context: 2,
  set_input: 3,
  compute: 1,
  get_output: 5,
  get_output_single: 5,
  compute_single: 1,
  fini_single: 1,
  unload: 1,
  finalize_execution_context: 1,
};

const enc = new TextEncoder();

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** A name: its UTF-8 length, then its bytes. */
export const str = (s: string): number[] => {
  const b = enc.encode(s);
  return [...uleb(b.length), ...b];
};

/** A section: its id, its length, its body. */
export const section = (id: number, body: number[]): number[] => [
  id,
  ...uleb(body.length),
  ...body,
];

/** A vector: its length, then its items. */
export const vec = (items: number[][]): number[] => [
  ...uleb(items.length),
  ...items.flat(),
];
