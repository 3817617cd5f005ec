/**
 * Type declarations for JS Promise Integration (JSPI), which V8 (and so Deno)
 * ships without a flag but Deno's TypeScript lib does not declare yet:
 * `WebAssembly.Suspending` wraps an async import so that a guest suspends
 * while it awaits, and `WebAssembly.promising` wraps an export so that calling
 * it returns a promise.
 *
 * @example
 * ```ts
 * import { hasJspi } from "./_jspi.ts";
 * console.log(hasJspi()); // true on Deno 2.x
 * ```
 * @module
 */

declare global {
  namespace WebAssembly {
    /** Wraps an async function as a wasm import that suspends the caller. */
    class Suspending {
      /** Wraps `fn`; the guest resumes with the value its promise resolves to. */
      constructor(fn: (...args: never[]) => unknown);
    }
    /** Wraps a wasm export so that calling it returns a promise. */
    function promising<A extends unknown[], R>(
      fn: (...args: A) => R,
    ): (...args: A) => Promise<Awaited<R>>;
  }
}

/**
 * Whether this runtime supports JSPI (`WebAssembly.Suspending` and
 * `WebAssembly.promising`).
 *
 * @example
 * ```ts
 * import { hasJspi } from "./_jspi.ts";
 * const mode = hasJspi() ? "jspi" : "sync";
 * console.log(mode);
 * ```
 */
export function hasJspi(): boolean {
  const wasm = WebAssembly as unknown as Record<string, unknown>;
  return typeof wasm.Suspending === "function" &&
    typeof wasm.promising === "function";
}
