/**
 * The handle-level host API: the operations of the original C++ backend
 * (`load_by_name_with_config`, `init_execution_context`, `set_input`,
 * `compute`, `get_output`, ...), with u32 handles as guests see them.
 *
 * The guest imports (`guest_imports.ts`) translate guest pointers into calls on
 * this interface and nothing else; `LlamaHost` (`host.ts`) implements it
 * on llama.cpp. Every method reports failure by throwing a `WasiNnError`
 * whose `errno` the guest receives.
 *
 * @example
 * ```ts
 * import type { WasiNnHostApi } from "./api.ts";
 * async function oneShot(host: WasiNnHostApi, prompt: string): Promise<string> {
 *   const graph = await host.loadByName("default", '{"n-predict":8}');
 *   const ctx = host.initExecutionContext(graph);
 *   await host.setInput(ctx, 0, { dims: [1], type: 3, data: new TextEncoder().encode(prompt) });
 *   await host.compute(ctx);
 *   return new TextDecoder().decode(host.getOutput(ctx, 0));
 * }
 * ```
 * @module
 */

import { Errno, WasiNnError } from "../errno.ts";

/**
 * Refuses a config of more bytes than the host takes, before a byte of it
 * is read from guest memory: the one config limit the guest side checks.
 */
export { checkConfigBytes } from "../config/parse.ts";

/** Tensor type names by number (the low byte of the guest's field): 0 F16 ... 5 I64. */
export const TENSOR_TYPES = ["F16", "F32", "F64", "U8", "I32", "I64"] as const;

/** The tensor types WasmEdge's `set_input` accepts: F16, F32, U8, I32. */
const ACCEPTED_TENSOR_TYPES: ReadonlySet<number> = new Set([0, 1, 3, 4]);

/**
 * Throws InvalidArgument unless `set_input` accepts this tensor type
 * (WasmEdge refuses F64 and I64 before the backend sees them).
 *
 * @example
 * ```ts
 * import { checkTensorType } from "./api.ts";
 * checkTensorType(3); // U8: fine
 * try { checkTensorType(2); } catch (e) { console.log((e as Error).message); }
 * ```
 */
export function checkTensorType(type: number): void {
  if (ACCEPTED_TENSOR_TYPES.has(type)) return;
  throw new WasiNnError(
    Errno.InvalidArgument,
    `tensor.type: ${type} (${
      TENSOR_TYPES[type] ?? "unknown"
    }) is not accepted; use U8 (3) for text (F16, F32 and I32 are also accepted)`,
  );
}

/** A tensor as passed to `set_input`: dims, type (low byte of the guest's field) and bytes. */
export interface TensorInput {
  /** Dimensions; ignored for text (guests send `[1]` for any length). */
  dims: readonly number[];
  /** Tensor type: 0 F16, 1 F32, 2 F64, 3 U8, 4 I32, 5 I64. */
  type: number;
  /** The bytes. May be a view into guest memory: copy it if you keep it. */
  data: Uint8Array;
}

/** The operations guests reach through `wasi_ephemeral_nn`. All throw `WasiNnError`. */
export interface WasiNnHostApi {
  /** `load`: builders[0] = model bytes or `preload:<path>`, builders[1] = optional config JSON. Encoding 5 or 6 is GGML. */
  load(
    builders: Uint8Array[],
    encoding: number,
    target: number,
  ): Promise<number>;
  /** `load_by_name` / `load_by_name_with_config`: a preloaded name (or an allowed path). */
  loadByName(name: string, config?: string): Promise<number>;
  /** `init_execution_context`: a new context handle for a graph. */
  initExecutionContext(graph: number): number;
  /** `set_input`: index 0 = prompt (UTF-8), index 1 = metadata/config JSON. */
  setInput(ctx: number, index: number, tensor: TensorInput): Promise<void>;
  /** `compute`: runs generation (or embedding) to completion. */
  compute(ctx: number): Promise<void>;
  /** `get_output`: index 0 = text or embedding JSON, index 1 = metadata JSON. */
  getOutput(ctx: number, index: number): Uint8Array;
  /** `compute_single`: one token; throws errno 100 (EndOfSequence) at the end. */
  computeSingle(ctx: number): Promise<void>;
  /** `get_output_single`: index 0 = the latest token's piece, index 1 = metadata JSON. */
  getOutputSingle(ctx: number, index: number): Uint8Array;
  /** `fini_single`: leaves streaming mode. */
  finiSingle(ctx: number): void;
  /** `unload`: detaches a graph and drops its name from the cache. */
  unload(graph: number): void;
  /** `finalize_execution_context`: drops one context. */
  finalizeExecutionContext(ctx: number): void;
  /**
   * Optional: the host as one guest instance sees it, within that guest's
   * quotas (the `guest_max_*` host keys; over one, a call throws TooLarge).
   * `label` names the guest in the host log; `folders` are its preopens
   * (guest path -> host folder), where files its prompts name (the `image`
   * key) are read, and nowhere else. The guest imports call it once per
   * instance and send every call of that instance through the view.
   */
  forGuest?(
    label: string,
    folders?: Readonly<Record<string, string>>,
  ): WasiNnHostApi;
}
