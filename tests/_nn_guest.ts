/**
 * A minimal WASI-NN guest for tests that drive the guest imports by hand: a
 * wasm module, assembled byte by byte, that imports the twelve
 * `wasi_ephemeral_nn` functions and exports `call_<name>` wrappers that
 * forward their arguments. It has no memory of its own: the imports read the
 * memory their `getMemory` returns. Its calls are entered through
 * `WebAssembly.promising`, so the heavy imports (JSPI `Suspending`) suspend
 * it as they do a real guest.
 *
 * @example
 * ```ts ignore
 * import { nnCaller } from "./_nn_guest.ts";
 * import { createWasiNnImports } from "../wasi_nn/abi/guest_imports.ts";
 * declare const host: Parameters<typeof createWasiNnImports>[0];
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const call = nnCaller(createWasiNnImports(host, { getMemory: () => memory }));
 * console.log(await call("compute", 0)); // 1: this guest holds no context 0
 * ```
 * @module
 */

import {
  WASI_NN_FUNCTIONS,
  type WasiNnFunctionName,
  type WasiNnImports,
} from "../wasi_nn/abi/guest_imports.ts";
import { NN_PARAMS, section, str, uleb, vec } from "./_wasm.ts";

const PARAMS = NN_PARAMS;

let compiled: WebAssembly.Module | undefined;

/** The forwarding module (compiled once). */
function forwarder(): WebAssembly.Module {
  if (compiled) return compiled;
  const i32 = 0x7f;
  const n = WASI_NN_FUNCTIONS.length;
  const types = WASI_NN_FUNCTIONS.map((name) => [
    0x60,
    ...uleb(PARAMS[name]),
    ...new Array(PARAMS[name]).fill(i32),
    0x01,
    i32,
  ]);
  const imports = WASI_NN_FUNCTIONS.map((name, i) => [
    ...str("wasi_ephemeral_nn"),
    ...str(name),
    0x00,
    ...uleb(i),
  ]);
  const funcs = WASI_NN_FUNCTIONS.map((_, i) => uleb(i));
  const exports = WASI_NN_FUNCTIONS.map((name, i) => [
    ...str(`call_${name}`),
    0x00,
    ...uleb(n + i),
  ]);
  const bodies = WASI_NN_FUNCTIONS.map((name, i) => {
    const code: number[] = [0x00]; // no locals
    for (let p = 0; p < PARAMS[name]; p++) code.push(0x20, ...uleb(p));
    code.push(0x10, ...uleb(i), 0x0b); // call import i; end
    return [...uleb(code.length), ...code];
  });
  const bytes = new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(2, vec(imports)),
    ...section(3, vec(funcs)),
    ...section(7, vec(exports)),
    ...section(10, vec(bodies)),
  ]);
  compiled = new WebAssembly.Module(bytes);
  return compiled;
}

/** Calls one `wasi_ephemeral_nn` function as a guest would; resolves to its errno. */
export type NnCall = (
  name: WasiNnFunctionName,
  ...args: number[]
) => Promise<number>;

/**
 * Instantiates the forwarding guest over `imports` and returns a caller of
 * its twelve functions, each entered through `WebAssembly.promising`.
 *
 * @example
 * ```ts ignore
 * import { nnCaller } from "./_nn_guest.ts";
 * import type { WasiNnImports } from "../wasi_nn/abi/guest_imports.ts";
 * declare const imports: WasiNnImports;
 * const call = nnCaller(imports);
 * console.log(await call("unload", 0));
 * ```
 */
export function nnCaller(imports: WasiNnImports): NnCall {
  const instance = new WebAssembly.Instance(forwarder(), imports);
  const exports = instance.exports as Record<
    string,
    (...args: number[]) => number
  >;
  const entries = new Map(
    WASI_NN_FUNCTIONS.map((name) => [
      name,
      WebAssembly.promising(exports[`call_${name}`]),
    ]),
  );
  return (name, ...args) => entries.get(name)!(...args);
}
