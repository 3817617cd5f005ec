/**
 * `wnb_model_params` from model options, for the load, the memory estimate
 * and the fit: the scalar fields, and the caller-owned tensor split and RPC
 * endpoint list the struct points to (kept alive as long as the struct's
 * bytes are).
 * @module
 */

import { symbols } from "./_library.ts";
import { cstr } from "./_buffers.ts";
import { MODEL_PARAMS, writeStruct } from "./_struct.ts";
import { LlamaError, Status } from "./errors.ts";
import { parseRpcList } from "./_rpc_endpoints.ts";

/** The placement part of the model options (devices, split). */
export interface PlacementOptions {
  /** Layers to offload to the GPUs and RPC devices: -1 all, 0 none. */
  nGpuLayers?: number;
  /**
   * The device of splitMode "none": an index into the model's devices (the
   * `rpcServers`' first, then the local GPUs), or -1 for none (the CPU
   * only). One past them is LlamaError(InvalidArgument) naming the devices.
   */
  mainGpu?: number;
  /**
   * How to split across devices: "layer" (default) gives each device whole
   * layers, "none" puts them all on `mainGpu`, "row" splits each tensor's
   * rows (CUDA GPUs only: with any other device, RPC's included, the load
   * is LlamaError(InvalidArgument) naming it).
   */
  splitMode?: "none" | "layer" | "row";
  /**
   * Each device's share of the offloaded layers (rows with "row"), in the
   * model's device order: the `rpcServers`' devices first, then the local
   * GPUs (llama.cpp's `--tensor-split`); at most 16 values >= 0. Default:
   * by free memory.
   */
  tensorSplit?: readonly number[];
  /**
   * RPC endpoints (`host:port`) whose devices the model uses, in this
   * order (llama.cpp's `--rpc`). Each is probed before llama.cpp connects:
   * one that does not answer fails the load with LlamaError(Unreachable)
   * naming it. Without them no RPC device is used.
   */
  rpcServers?: readonly string[];
  /** Limit of each endpoint probe in ms (default 5000). */
  rpcTimeoutMs?: number;
}

/** The most values of a tensor split (llama_max_devices()). */
export const MAX_DEVICES = 16;

// The struct's pointers point into these: alive while the struct is.
const KEEP = new WeakMap<Uint8Array, unknown[]>();

/**
 * Writes the placement fields of `params` (a `wnb_model_params` already
 * holding the defaults). Throws LlamaError(InvalidArgument) for a bad split
 * or endpoint list. Returns the split array the struct points to (the fit
 * writes its choice back into it), if any.
 */
export function writePlacement(
  params: Uint8Array,
  options: PlacementOptions,
): Float32Array<ArrayBuffer> | undefined {
  const split = { none: 0, layer: 1, row: 2 } as const;
  writeStruct(MODEL_PARAMS, params, {
    n_gpu_layers: options.nGpuLayers,
    main_gpu: options.mainGpu,
    split_mode: options.splitMode && split[options.splitMode],
    rpc_timeout_ms: options.rpcTimeoutMs,
  });
  const keep: unknown[] = [];
  let tensorSplit: Float32Array<ArrayBuffer> | undefined;
  if (options.tensorSplit && options.tensorSplit.length > 0) {
    const values = options.tensorSplit;
    if (values.length > MAX_DEVICES) {
      throw new LlamaError(
        Status.InvalidArgument,
        `tensorSplit has ${values.length} values; at most ${MAX_DEVICES} (one per device)`,
      );
    }
    values.forEach((v, i) => {
      if (!Number.isFinite(v) || v < 0) {
        throw new LlamaError(
          Status.InvalidArgument,
          `tensorSplit[${i}] must be a finite number >= 0, got ${v}`,
        );
      }
    });
    // Room for every device, so that the fit can hand its split back.
    tensorSplit = new Float32Array(MAX_DEVICES);
    tensorSplit.set(values);
    keep.push(tensorSplit);
    writeStruct(MODEL_PARAMS, params, {
      n_tensor_split: MAX_DEVICES,
      tensor_split: Deno.UnsafePointer.value(
        Deno.UnsafePointer.of(tensorSplit),
      ),
    });
  }
  if (options.rpcServers && options.rpcServers.length > 0) {
    const list = cstr(parseRpcList(options.rpcServers).join(","));
    keep.push(list);
    writeStruct(MODEL_PARAMS, params, {
      rpc_servers: Deno.UnsafePointer.value(Deno.UnsafePointer.of(list)),
    });
  }
  if (keep.length) KEEP.set(params, keep);
  return tensorSplit;
}

/** A `wnb_model_params` with llama.cpp's defaults and the given placement. */
export function placementParams(
  options: PlacementOptions,
): {
  params: Uint8Array<ArrayBuffer>;
  tensorSplit?: Float32Array<ArrayBuffer>;
} {
  const params = new Uint8Array(MODEL_PARAMS.size);
  symbols().wnb_model_default_params(params);
  const tensorSplit = writePlacement(params, options);
  return { params, tensorSplit };
}
