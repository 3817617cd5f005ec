/**
 * The `wasi_ephemeral_nn` import module that WASI-NN guests (WasmEdge GGML
 * plugin / WAMR llama.cpp backend flavour) call: it reads the guest's
 * arguments from its exported `memory`, calls a {@linkcode WasiNnHostApi}, and
 * writes results back, following the ABI exactly.
 *
 * Every function returns an errno (`i32`, 0 = success) and never throws into
 * the guest: a `WasiNnError` becomes its `errno`, any other exception becomes
 * RuntimeError (5) and is logged. Out-parameters are written only on success,
 * except `out_written` on TooLarge (7). TooLarge is also what a call gets past
 * one of the host's quotas per guest instance (`guest_max_*`).
 *
 * `load`, `load_by_name`, `load_by_name_with_config`, `set_input`, `compute`
 * and `compute_single` are `WebAssembly.Suspending` imports (JSPI), so the
 * guest suspends while the host works and the event loop stays live; the
 * guest must be entered through `WebAssembly.promising` (see `run_guest.ts`).
 * The other six are plain functions. A runtime without JSPI cannot run guests:
 * {@linkcode createWasiNnImports} throws there.
 *
 * @example
 * ```ts
 * import { createWasiNnImports } from "./guest_imports.ts";
 * import type { WasiNnHostApi } from "../host/api.ts";
 * async function instantiate(host: WasiNnHostApi, module: WebAssembly.Module) {
 *   const linked: { memory?: WebAssembly.Memory } = {};
 *   const imports = createWasiNnImports(host, { getMemory: () => linked.memory });
 *   const instance = await WebAssembly.instantiate(module, imports);
 *   linked.memory = instance.exports.memory as WebAssembly.Memory;
 *   return instance;
 * }
 * ```
 * @module
 */

import { Errno, errnoName, WasiNnError } from "../errno.ts";
import {
  checkConfigBytes,
  checkTensorType,
  type TensorInput,
  type WasiNnHostApi,
} from "../host/api.ts";
import { type GuestMemory, requireGuestMemory } from "./_guest_memory.ts";
import { requireJspi } from "./_jspi.ts";
import { GuestHandles } from "./_guest_handles.ts";
import type { Logger } from "../log.ts";

/** The import module name every WasmEdge GGML guest uses. */
export const WASI_NN_MODULE = "wasi_ephemeral_nn";

/**
 * The twelve functions of `wasi_ephemeral_nn`, in the ABI's order.
 *
 * @example
 * ```ts
 * import { WASI_NN_FUNCTIONS } from "./guest_imports.ts";
 * console.log(WASI_NN_FUNCTIONS.length); // 12
 * ```
 */
export const WASI_NN_FUNCTIONS = [
  "load",
  "load_by_name",
  "load_by_name_with_config",
  "init_execution_context",
  "set_input",
  "compute",
  "get_output",
  "get_output_single",
  "compute_single",
  "fini_single",
  "unload",
  "finalize_execution_context",
] as const;

/** The name of one `wasi_ephemeral_nn` function. */
export type WasiNnFunctionName = typeof WASI_NN_FUNCTIONS[number];

/** Options of {@linkcode createWasiNnImports}. */
export interface WasiNnImportsOptions {
  /**
   * Returns the guest's exported memory. Called on every call that touches
   * memory, so it may be set up after instantiation. Without it (or when it
   * returns no memory), those calls return MissingMemory (3).
   */
  getMemory?: () => WebAssembly.Memory | undefined;
  /** Receives diagnostics: every non-zero errno at `debug`, unexpected errors at `error`. */
  log?: Logger;
  /**
   * Names this guest instance in the host's log and quotas (default
   * `"guest"`; the host adds a number of its own). When the host offers
   * `forGuest`, every call of this instance goes through that view, so the
   * host's `guest_max_*` quotas count this instance alone.
   */
  guest?: string;
  /**
   * The folders this instance was given (its WASI preopens: guest path ->
   * host folder): the only places files its prompts name (the `image` key)
   * are read from. Default none.
   */
  preopens?: Readonly<Record<string, string>>;
}

/**
 * The import object: `{ wasi_ephemeral_nn: { load, load_by_name, ... } }`,
 * for one guest instance. Disposing it (when the instance has ended)
 * finalizes every context and unloads every graph the guest still holds.
 */
export interface WasiNnImports extends WebAssembly.Imports {
  /** The twelve functions (the six that call the host's async operations are `WebAssembly.Suspending`). */
  wasi_ephemeral_nn: Record<WasiNnFunctionName, WebAssembly.ImportValue>;
  /** Frees what the guest still holds on the host. Safe to call twice. */
  [Symbol.dispose](): void;
}

type Fn = (...args: number[]) => number;
type AsyncFn = (...args: number[]) => Promise<number>;

/** How a heavy import calls the host and writes the result back. */
interface Plan<T> {
  call: () => Promise<T>;
  done: (result: T) => number;
}

function isWasiNnError(err: unknown): err is WasiNnError {
  if (err instanceof WasiNnError) return true;
  // A WasiNnError from another copy of errno.ts (e.g. another version).
  return err instanceof Error && err.name.startsWith("WasiNnError") &&
    typeof (err as { errno?: unknown }).errno === "number";
}

/**
 * Creates the `wasi_ephemeral_nn` import object for one guest instance, on top
 * of `shared` (through its `forGuest` view when it has one: the host's
 * quotas per guest). See the module documentation for the errno rules. Throws a
 * TypeError when the runtime lacks JSPI.
 *
 * @example
 * ```ts
 * import { createWasiNnImports } from "./guest_imports.ts";
 * import { WasiNnError } from "../errno.ts";
 * import type { WasiNnHostApi } from "../host/api.ts";
 * const notFound = () => { throw new WasiNnError(8, "no models here"); };
 * const host = {
 *   load: notFound, loadByName: notFound, initExecutionContext: notFound,
 *   setInput: notFound, compute: notFound, getOutput: notFound,
 *   computeSingle: notFound, getOutputSingle: notFound, finiSingle: notFound,
 *   unload: notFound, finalizeExecutionContext: notFound,
 * } as unknown as WasiNnHostApi;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const imports = createWasiNnImports(host, { getMemory: () => memory });
 * const unload = imports.wasi_ephemeral_nn.unload as (graph: number) => number;
 * console.log(unload(0)); // 1: this guest holds no graph 0
 * ```
 */
export function createWasiNnImports(
  shared: WasiNnHostApi,
  options: WasiNnImportsOptions = {},
): WasiNnImports {
  requireJspi();
  const log: Logger = options.log ?? (() => {});
  // This instance's view of the host, within its own quotas (if the host has them).
  const host =
    shared.forGuest?.(options.guest ?? "guest", options.preopens ?? {}) ??
      shared;

  // This instance's own handles: other instances' handles do not exist here.
  const handles = new GuestHandles();
  let cached: GuestMemory | undefined;
  const memory = (): GuestMemory => {
    const current = options.getMemory?.();
    if (cached && cached.memory === current) return cached;
    cached = requireGuestMemory(current);
    return cached;
  };

  const toErrno = (name: WasiNnFunctionName, err: unknown): number => {
    if (isWasiNnError(err) && err.errno !== Errno.Success) {
      log(
        "debug",
        `${WASI_NN_MODULE}.${name}: errno ${err.errno} (${
          errnoName(err.errno)
        }): ${err.message}`,
      );
      return err.errno;
    }
    const detail = err instanceof Error
      ? (err.stack ?? err.message)
      : String(err);
    log(
      "error",
      `${WASI_NN_MODULE}.${name}: unexpected host error, returning RuntimeError (5): ${detail}`,
    );
    return Errno.RuntimeError;
  };

  /** An import that calls only the host's synchronous operations: a plain function. */
  const light = (name: WasiNnFunctionName, fn: Fn): Fn => (...args) => {
    try {
      return fn(...args);
    } catch (err) {
      return toErrno(name, err);
    }
  };

  /**
   * An import for a host operation that is async in `WasiNnHostApi`: a
   * Suspending import. `plan` validates and reads the guest's arguments
   * (synchronously), then says how to call the host and how to write the
   * result back.
   */
  const heavy = <T>(
    name: WasiNnFunctionName,
    plan: (...args: number[]) => Plan<T>,
  ): WebAssembly.ImportValue => {
    const fn: AsyncFn = async (...args) => {
      try {
        const steps = plan(...args);
        return steps.done(await steps.call());
      } catch (err) {
        return toErrno(name, err);
      }
    };
    return new WebAssembly.Suspending(fn) as unknown as WebAssembly.ImportValue;
  };

  const readName = (mem: GuestMemory, ptr: number, len: number): string => {
    let bytes = mem.view(ptr, len, "name");
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0) {
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    if (bytes.includes(0)) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `name: contains a NUL byte at offset ${
          bytes.indexOf(0)
        } of ${bytes.length}`,
      );
    }
    return mem.readString(ptr, bytes.length, "name");
  };

  /** Writes the guest's handle for a graph the host just loaded. */
  const writeGraph = (outGraph: number, name?: string) =>
  (
    hostGraph: number,
  ): number => {
    const g = handles.addGraph(hostGraph, name);
    memory().writeU32(outGraph, g, "out_graph_ptr");
    return Errno.Success;
  };
  const success = (): number => Errno.Success;

  /** Shared by load_by_name and load_by_name_with_config. */
  const loadByName = (
    namePtr: number,
    nameLen: number,
    configPtr: number,
    configLen: number,
    outGraph: number,
  ): Plan<number> => {
    const mem = memory();
    const name = readName(mem, namePtr, nameLen);
    // Refuse an oversized config before decoding it (InvalidArgument).
    try {
      checkConfigBytes(configLen >>> 0);
    } catch (err) {
      log("warn", `config of '${name}': ${(err as Error).message}`);
      throw err;
    }
    const config = (configLen >>> 0) > 0
      ? mem.readString(configPtr, configLen, "config")
      : undefined;
    mem.check(outGraph, 4, "out_graph_ptr");
    const loaded = handles.graphByName(name);
    if (loaded !== undefined) {
      // Still loaded by this guest: the same handle, the new config ignored (WasmEdge).
      const done = (g: number) => {
        memory().writeU32(outGraph, g, "out_graph_ptr");
        return Errno.Success;
      };
      return { call: () => Promise.resolve(loaded), done };
    }
    return {
      call: () => host.loadByName(name, config),
      done: writeGraph(outGraph, name),
    };
  };

  const getOutput = (name: WasiNnFunctionName, single: boolean) =>
    light(name, (ctx, index, bufPtr, bufMax, outWritten) => {
      const mem = memory();
      const max = bufMax >>> 0;
      mem.check(bufPtr, max, "out_buf");
      mem.check(outWritten, 4, "out_written_ptr");
      const c = handles.context(ctx >>> 0);
      const data = single
        ? host.getOutputSingle(c, index >>> 0)
        : host.getOutput(c, index >>> 0);
      const out = memory();
      if (data.length > max) {
        out.writeU32(outWritten, data.length, "out_written_ptr");
        log(
          "debug",
          `${WASI_NN_MODULE}.${name}: output ${
            index >>> 0
          } is ${data.length} bytes, the guest's buffer ${max}: TooLarge (7)`,
        );
        return Errno.TooLarge;
      }
      out.write(bufPtr, data, "out_buf");
      out.writeU32(outWritten, data.length, "out_written_ptr");
      return Errno.Success;
    });

  const functions: Record<WasiNnFunctionName, WebAssembly.ImportValue> = {
    load: heavy(
      "load",
      (buildersPtr, buildersLen, encoding, target, outGraph) => {
        const mem = memory();
        const count = buildersLen >>> 0;
        const base = mem.check(buildersPtr, count * 8, "builders");
        const builders: Uint8Array[] = [];
        for (let i = 0; i < count; i++) {
          const ptr = mem.readU32(base + 8 * i, `builders[${i}].ptr`);
          const len = mem.readU32(base + 8 * i + 4, `builders[${i}].len`);
          builders.push(mem.view(ptr, len, `builders[${i}]`));
        }
        mem.check(outGraph, 4, "out_graph_ptr");
        return {
          call: () => host.load(builders, encoding >>> 0, target >>> 0),
          done: writeGraph(outGraph),
        };
      },
    ),
    load_by_name: heavy(
      "load_by_name",
      (namePtr, nameLen, outGraph) =>
        loadByName(namePtr, nameLen, 0, 0, outGraph),
    ),
    load_by_name_with_config: heavy("load_by_name_with_config", loadByName),
    init_execution_context: light("init_execution_context", (graph, outCtx) => {
      memory().check(outCtx, 4, "out_ctx_ptr");
      const ctx = host.initExecutionContext(handles.graph(graph >>> 0));
      memory().writeU32(outCtx, handles.addContext(ctx), "out_ctx_ptr");
      return Errno.Success;
    }),
    set_input: heavy(
      "set_input",
      (guestCtx, index, tensorPtr) => {
        const ctx = handles.context(guestCtx >>> 0);
        const mem = memory();
        const base = mem.check(tensorPtr, 20, "tensor");
        const dimsPtr = mem.readU32(base, "tensor.dims_ptr");
        const dimsLen = mem.readU32(base + 4, "tensor.dims_len");
        const type = mem.readU32(base + 8, "tensor.type") & 0xff;
        const dataPtr = mem.readU32(base + 12, "tensor.data_ptr");
        const dataLen = mem.readU32(base + 16, "tensor.data_len");
        checkTensorType(type);
        const dimsBase = mem.check(dimsPtr, dimsLen * 4, "tensor.dims");
        const dims: number[] = [];
        for (let i = 0; i < dimsLen; i++) {
          dims.push(mem.readU32(dimsBase + 4 * i, `tensor.dims[${i}]`));
        }
        const tensor: TensorInput = {
          dims,
          type,
          data: mem.view(dataPtr, dataLen, "tensor.data"),
        };
        return {
          call: () => host.setInput(ctx, index >>> 0, tensor),
          done: success,
        };
      },
    ),
    compute: heavy("compute", (guestCtx) => {
      const ctx = handles.context(guestCtx >>> 0);
      return { call: () => host.compute(ctx), done: success };
    }),
    get_output: getOutput("get_output", false),
    get_output_single: getOutput("get_output_single", true),
    compute_single: heavy("compute_single", (guestCtx) => {
      const ctx = handles.context(guestCtx >>> 0);
      return { call: () => host.computeSingle(ctx), done: success };
    }),
    fini_single: light("fini_single", (ctx) => {
      host.finiSingle(handles.context(ctx >>> 0));
      return Errno.Success;
    }),
    unload: light("unload", (graph) => {
      host.unload(handles.graph(graph >>> 0));
      handles.removeGraph(graph >>> 0);
      return Errno.Success;
    }),
    finalize_execution_context: light("finalize_execution_context", (ctx) => {
      host.finalizeExecutionContext(handles.context(ctx >>> 0));
      handles.removeContext(ctx >>> 0);
      return Errno.Success;
    }),
  };
  const release = (): void => {
    const { graphs, contexts } = handles.held();
    handles.clear();
    for (const c of contexts) {
      try {
        host.finalizeExecutionContext(c);
      } catch { /* already gone (idle expiry, host closed) */ }
    }
    for (const g of graphs) {
      try {
        host.unload(g);
      } catch { /* already gone */ }
    }
  };
  return { [WASI_NN_MODULE]: functions, [Symbol.dispose]: release };
}
