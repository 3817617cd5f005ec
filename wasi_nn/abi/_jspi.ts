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
 * console.log(hasJspi()); // true on Deno 2.3.2 and later
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
 * console.log(hasJspi() ? "guests can run here" : "no JSPI");
 * ```
 */
export function hasJspi(): boolean {
  const wasm = WebAssembly as unknown as Record<string, unknown>;
  return typeof wasm.Suspending === "function" &&
    typeof wasm.promising === "function";
}

/**
 * The first Deno whose V8 (13.7, as Chrome 137) has JSPI on without a flag.
 * Guests run only with JSPI: there is no blocking mode.
 */
export const MIN_DENO_FOR_JSPI = "2.3.2";

/**
 * Throws a TypeError naming what is missing and the Deno release that has it,
 * unless this runtime supports JSPI.
 *
 * @example
 * ```ts
 * import { requireJspi } from "./_jspi.ts";
 * requireJspi(); // returns on Deno 2.3.2 and later
 * ```
 */
export function requireJspi(): void {
  if (hasJspi()) return;
  throw new TypeError(
    `WASI-NN guests need JSPI (WebAssembly.Suspending and WebAssembly.promising), which this runtime lacks: use Deno ${MIN_DENO_FOR_JSPI} or later (V8 13.7)`,
  );
}
