/**
 * Where llama.cpp puts a model's weights when it has devices besides the CPU
 * (RPC servers' devices, then local GPUs): mirrored from `llama_model::
 * load_tensors` so that the memory checks can count each part where it goes,
 * before anything loads. The token embeddings stay on the CPU; the last
 * `n_gpu_layers` layers (the output layer counting as one past the repeating
 * ones) go to the devices, layer by layer, at the cumulative `tensor_split`
 * points (by default the devices' free memory); `split_mode` "none" puts them
 * all on `main_gpu`. Sizes come from the GGUF header's tensors.
 *
 * @example
 * ```ts
 * import { layerDevices } from "./_model_split.ts";
 * // 4 layers and the output layer, all offloaded, split 1:1 over two devices.
 * console.log(layerDevices(4, { nGpuLayers: 99, weights: [1, 1] })); // [0, 0, 0, 1, 1]
 * ```
 * @module
 */

import { backendInfo, rpcServerMemory } from "../../bindings/mod.ts";
import { readGguf } from "../../gguf/mod.ts";
import { fileSize } from "./_memory.ts";

/**
 * The tensors outside the repeating blocks that llama.cpp loads with the
 * output layer (`LLM_TENSOR_LAYER_OUTPUT` in src/llama-arch.cpp, by their
 * GGUF names); every other one stays with the input layer, on the CPU.
 * tests/wasi_nn/host/model_split_test.ts checks it against the checkout.
 */
export const OUTPUT_TENSORS: ReadonlySet<string> = new Set([
  "output",
  "output_norm",
  "cls",
  "cls.output",
  "cls.norm",
  "dense_2",
  "dense_3",
  "dec.output_norm",
  "enc.output_norm",
  "output_hc_fn",
  "output_hc_base",
  "output_hc_scale",
  "output_hc_norm",
  "output_hc_down",
  "output_hc_up",
  "output_res_score",
  "altup_proj",
  "altup_unembd_proj",
  "nextn.post_projection",
  "fc",
  "d2t",
  "markov_w1",
  "markov_w2",
  "conf_proj",
  "selector_predecessor",
  "selector_successor",
  "selector_hidden",
]);

/**
 * The tensors outside the repeating blocks that stay on the CPU with the
 * input layer (`LLM_TENSOR_LAYER_INPUT` in src/llama-arch.cpp). Any other
 * one belongs to a repeating layer: the first (BERT's `token_embd_norm`),
 * and the per-layer copies of {@linkcode PER_LAYER_COPIES} to each layer's
 * device.
 */
export const INPUT_TENSORS: ReadonlySet<string> = new Set([
  "token_embd",
  "position_embd",
  "token_types",
  "per_layer_token_embd",
  "masked_embd_centroids",
  "masked_embd_ordering",
]);

/** Tensors every layer uses, that llama.cpp copies to each device holding a layer (`TENSOR_DUPLICATED` for layers past the first). */
const PER_LAYER_COPIES: ReadonlySet<string> = new Set([
  "rope_freqs",
  "rope_factors_long",
  "rope_factors_short",
]);

/** The architectures whose `token_embd_norm` is their output norm (`LLM_TENSOR_OUTPUT_NORM_LFM2`). */
export const LFM2_NORM_ARCHS: ReadonlySet<string> = new Set([
  "lfm2",
  "lfm2moe",
]);

/** A tensor's name without its `.weight`/`.bias` suffix. */
function tensorBase(name: string): string {
  return name.replace(/\.(weight|bias)$/, "");
}

/** One device a model can use: an RPC server's (with its endpoint), or a local GPU's. */
export interface SplitDevice {
  /** How messages name it: `RPC server 127.0.0.1:50052` (with ` device 1` on a multi-device server), or the GPU's name. */
  label: string;
  /** The RPC endpoint; undefined for a local GPU. */
  endpoint?: string;
  /** Free bytes on it; undefined when it could not be read. */
  free?: number;
}

/**
 * A model's devices with RPC servers, as llama.cpp orders them: each
 * server's devices (in list order, each with its free memory), then the
 * local GPUs (a CPU build has none; what goes there counts here). A server
 * that does not answer within `timeoutMs` (another process's model holds
 * it, and its load says so) counts as one device of unknown free memory.
 */
export async function splitDevices(
  endpoints: readonly string[],
  timeoutMs: number,
): Promise<SplitDevice[]> {
  const remote = await Promise.all(endpoints.map(async (ep) => {
    try {
      const mem = await rpcServerMemory(ep, { timeoutMs });
      return mem.map((m, i): SplitDevice => ({
        label: `RPC server ${ep}${mem.length > 1 ? ` device ${i}` : ""}`,
        endpoint: ep,
        free: m.free,
      }));
    } catch {
      return [{ label: `RPC server ${ep}`, endpoint: ep }];
    }
  }));
  const gpus = backendInfo().devices.filter((d) => d.model_device);
  return [
    ...remote.flat(),
    ...gpus.map((d): SplitDevice => ({ label: d.name, free: d.memory_free })),
  ];
}

/** One RPC device's part of a model. */
export interface DeviceShare extends SplitDevice {
  /** Weight bytes that go there. */
  bytes: number;
}

/** Where a model's weights go: this machine, and each RPC device. */
export interface ModelSplit {
  /** Bytes that stay here: on the CPU, or on a local GPU (counted here too). */
  local: number;
  /** Bytes that go to RPC servers. */
  remote: number;
  /** Each RPC device's part. */
  shares: DeviceShare[];
}

/** How a load places its layers (llama.cpp's model parameters). */
export interface LayerPlacement {
  /** `n_gpu_layers` (undefined or negative: all, llama.cpp's default). */
  nGpuLayers?: number;
  /** `split_mode` (default "layer"). */
  splitMode?: "none" | "layer" | "row";
  /** `main_gpu`: the device of `split_mode` "none" (-1: none, the CPU). */
  mainGpu?: number;
  /** Each device's weight in the split: `tensor_split`, else their free memory. */
  weights: readonly number[];
}

/**
 * The device index of each layer (0..nLayer-1, then the output layer), or
 * -1 for the CPU, as llama.cpp assigns them (float32 split points, each
 * layer to the first device whose point lies past the layer's fraction).
 */
export function layerDevices(nLayer: number, o: LayerPlacement): number[] {
  let devices = o.weights.map((_, i) => i);
  if (o.splitMode === "none") {
    const main = o.mainGpu ?? 0;
    devices = main < 0 ? [] : devices.slice(main, main + 1);
  }
  const weights = devices.map((i) => o.weights[i]);
  const ngl = o.nGpuLayers === undefined || o.nGpuLayers < 0
    ? nLayer + 1
    : o.nGpuLayers;
  const start = Math.max(nLayer + 1 - ngl, 0);
  const act = devices.length === 0 ? 0 : Math.min(ngl, nLayer + 1);
  const sum = weights.reduce((a, w) => Math.fround(a + w), 0);
  let acc = 0;
  const points = weights.map((w) => {
    acc = Math.fround(acc + w);
    return Math.fround(acc / sum);
  });
  return Array.from({ length: nLayer + 1 }, (_, il) => {
    if (il < start || il - start >= act) return -1;
    const x = Math.fround((il - start) / act);
    const k = points.findIndex((p) => p > x);
    return devices[k < 0 ? devices.length - 1 : k];
  });
}

/** The options of {@linkcode modelSplit}: a load's placement keys. */
export interface SplitOptions {
  /** `n_gpu_layers`: `"auto"` lets llama.cpp's fit decide (then all of it counts here). */
  nGpuLayers?: number | "auto";
  /** `split_mode`. */
  splitMode?: "none" | "layer" | "row";
  /** `main_gpu`. */
  mainGpu?: number;
  /** `tensor_split` (none, or all zero: by the devices' free memory). */
  tensorSplit?: readonly number[];
}

/**
 * How much of a model stays here and how much goes to each RPC device, from
 * the GGUF header. `devices`: the model's devices in llama.cpp's order
 * (when one's free memory is unknown, the default split counts them as
 * equal). `"auto"`, no devices, a `main_gpu` the load refuses, or a
 * header that does not read: all of it here.
 */
export async function modelSplit(
  path: string,
  o: SplitOptions,
  devices: readonly SplitDevice[],
): Promise<ModelSplit> {
  const size = fileSize(path);
  const all = { local: size, remote: 0, shares: [] };
  const n = devices.length;
  if (n === 0 || o.nGpuLayers === "auto" || o.nGpuLayers === 0) return all;
  if (o.splitMode === "none" && (o.mainGpu ?? 0) >= n) return all;
  let file;
  try {
    file = await readGguf(path);
  } catch {
    return all;
  }
  const arch = file.metadata.get("general.architecture")?.value;
  const nLayer = Number(file.metadata.get(`${arch}.block_count`)?.value ?? 0);
  const given = o.tensorSplit?.some((w) => w > 0) ?? false;
  const byFree = devices.every((d) => d.free !== undefined);
  const where = layerDevices(nLayer, {
    nGpuLayers: o.nGpuLayers,
    splitMode: o.splitMode,
    mainGpu: o.mainGpu,
    weights: devices.map((d, i) =>
      given ? o.tensorSplit![i] ?? 0 : byFree ? d.free! : 1
    ),
  });
  const bytes = new Array<number>(n).fill(0);
  let moved = 0; // bytes that leave the CPU
  const lfm2 = LFM2_NORM_ARCHS.has(String(arch));
  const bases = new Set(file.tensors.map((t) => tensorBase(t.name)));
  // A head (an output norm) without an output matrix reuses token_embd, and
  // llama.cpp copies it to the output layer's device. Encoders (BERT) have
  // no head.
  const tied = !bases.has("output") &&
    (bases.has("output_norm") || (lfm2 && bases.has("token_embd_norm")));
  const layerDevs = new Set(where.slice(0, nLayer).filter((d) => d >= 0));
  for (const t of file.tensors) {
    const blk = /^(?:enc\.|dec\.)?blk\.(\d+)\./.exec(t.name);
    const base = tensorBase(t.name);
    if (!blk && PER_LAYER_COPIES.has(base)) {
      for (const d of layerDevs) bytes[d] += t.byteLength;
      if (where[0] >= 0) moved += t.byteLength;
      continue;
    }
    const layer = blk
      ? Number(blk[1])
      : OUTPUT_TENSORS.has(base) || (lfm2 && base === "token_embd_norm")
      ? nLayer
      : INPUT_TENSORS.has(base)
      ? -1
      : 0;
    const dev = layer >= 0 && layer <= nLayer ? where[layer] : -1;
    if (dev >= 0) {
      bytes[dev] += t.byteLength;
      moved += t.byteLength;
    }
    if (tied && base === "token_embd" && where[nLayer] >= 0) {
      bytes[where[nLayer]] += t.byteLength;
    }
  }
  let remote = 0, localGpu = 0;
  const shares: DeviceShare[] = [];
  devices.forEach((d, i) => {
    if (d.endpoint === undefined) localGpu += bytes[i];
    else {
      remote += bytes[i];
      shares.push({ ...d, bytes: bytes[i] });
    }
  });
  return { local: Math.max(0, size - moved) + localGpu, remote, shares };
}
