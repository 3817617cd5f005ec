/**
 * Test fixtures: malformed GGUF files, crafted byte by byte (a 192-byte
 * header-only model) or as mutations of the tiny model (truncated, a tensor
 * offset past the end, a wrong dimension, more layers than tensors, a
 * vocabulary shorter than the embedding, a duplicate token, ...).
 *
 * Every crafted file is a complete GGUF header (magic, version, counts,
 * key/values, tensor infos) followed by the data section, so each mutation
 * changes exactly one fact.
 * @module
 */

import {
  GGUF_MAGIC,
  type GgufTensorInfo,
  type GgufValue,
  GgufWriter,
  parseGguf,
} from "../../gguf/mod.ts";
import { ByteWriter } from "../../gguf/_byte_writer.ts";
import { tinyModel } from "../_helpers.ts";

/** One tensor info as written: offsets relative to the data section. */
export interface CraftTensor {
  /** Tensor name. */
  name: string;
  /** Dimensions, innermost first. */
  dims: number[];
  /** ggml type id. */
  type: number;
  /** Offset into the data section. */
  offset: number;
}

/** What {@linkcode craftGguf} writes. */
export interface CraftSpec {
  /** Metadata in write order. */
  metadata: [string, GgufValue][];
  /** Tensor infos. */
  tensors: CraftTensor[];
  /** The data section (after the aligned header). */
  data?: Uint8Array;
  /** Overrides the tensor count written in the header. */
  nTensors?: bigint;
  /** Overrides the key/value count written in the header. */
  nKv?: bigint;
  /** Alignment of the data section (default 32). */
  alignment?: number;
}

/** Encodes a GGUF file exactly as specified (no consistency checks). */
export async function craftGguf(spec: CraftSpec): Promise<Uint8Array> {
  const kv = new GgufWriter();
  for (const [k, v] of spec.metadata) kv.setMetadata(k, v);
  // A metadata-only file: 24 header bytes, then the key/values.
  const kvBytes = (await kv.toBytes()).subarray(24);
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(spec.nTensors ?? BigInt(spec.tensors.length));
  w.u64(spec.nKv ?? BigInt(spec.metadata.length));
  w.bytes(kvBytes);
  for (const t of spec.tensors) {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(BigInt(d));
    w.u32(t.type);
    w.u64(BigInt(t.offset));
  }
  if (spec.tensors.length > 0) w.pad(spec.alignment ?? 32);
  const head = w.result();
  const data = spec.data ?? new Uint8Array(0);
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

/** The tiny model taken apart: its metadata, tensor infos and data section. */
export interface TinyParts {
  /** The whole file. */
  bytes: Uint8Array;
  /** Metadata in file order. */
  metadata: [string, GgufValue][];
  /** Tensor infos in file order. */
  tensors: GgufTensorInfo[];
  /** The data section. */
  data: Uint8Array;
}

let parts: Promise<TinyParts> | undefined;

/** The tiny model's parts (read once). */
export function tinyParts(): Promise<TinyParts> {
  parts ??= (async () => {
    const bytes = await Deno.readFile(await tinyModel());
    const f = parseGguf(bytes);
    return {
      bytes,
      metadata: [...f.metadata],
      tensors: f.tensors,
      data: bytes.subarray(f.dataOffset),
    };
  })();
  return parts;
}

/** A spec equal to the tiny model, for a mutation to change. */
export async function tinySpec(): Promise<CraftSpec> {
  const p = await tinyParts();
  return {
    metadata: p.metadata.map(([k, v]) => [k, v]),
    tensors: p.tensors.map((t) => ({
      name: t.name,
      dims: [...t.dims],
      type: t.type,
      offset: t.offset,
    })),
    data: p.data,
  };
}

function setKv(spec: CraftSpec, key: string, value: GgufValue): void {
  const i = spec.metadata.findIndex(([k]) => k === key);
  if (i >= 0) spec.metadata[i] = [key, value];
  else spec.metadata.push([key, value]);
}

function tensor(spec: CraftSpec, name: string): CraftTensor {
  const t = spec.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`the tiny model has no tensor ${name}`);
  return t;
}

const str = (value: string): GgufValue => ({ type: "string", value });
const u32 = (value: number): GgufValue => ({ type: "uint32", value });

/**
 * A 192-byte llama GGUF: a header without tensors whose `block_count` is 0
 * (plus a one-byte pad key to make the size). llama.cpp asserts on it while
 * it reads the hyperparameters, before it looks for a single tensor.
 */
export function tiny192(): Promise<Uint8Array> {
  return craftGguf({
    metadata: [
      ["general.architecture", str("llama")],
      ["llama.context_length", u32(1)],
      ["llama.embedding_length", u32(1)],
      ["llama.block_count", u32(0)],
      ["pad", { type: "uint8", value: 0 }],
    ],
    tensors: [],
  });
}

/** Named malformed inputs: each a function giving the file's bytes. */
export const MUTATIONS: Record<string, () => Promise<Uint8Array>> = {
  "192-byte GGUF with block_count 0": tiny192,
  "truncated to half": async () => {
    const p = await tinyParts();
    return p.bytes.slice(0, p.bytes.length >> 1);
  },
  "tensor offset past the end": async () => {
    const s = await tinySpec();
    tensor(s, "output.weight").offset = 1 << 30;
    return craftGguf(s);
  },
  "wrong dimension (token_embd wider than its data)": async () => {
    const s = await tinySpec();
    tensor(s, "token_embd.weight").dims[1] *= 2;
    return craftGguf(s);
  },
  "zero dimension": async () => {
    const s = await tinySpec();
    tensor(s, "blk.0.attn_norm.weight").dims[0] = 0;
    return craftGguf(s);
  },
  "block_count larger than the tensors": async () => {
    const s = await tinySpec();
    setKv(s, "llama.block_count", u32(3));
    return craftGguf(s);
  },
  "block_count huge": async () => {
    const s = await tinySpec();
    setKv(s, "llama.block_count", u32(1_000_000));
    return craftGguf(s);
  },
  "vocabulary shorter than the embedding": async () => {
    const s = await tinySpec();
    for (
      const key of [
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.scores",
        "tokenizer.ggml.token_type",
      ]
    ) {
      const v = s.metadata.find(([k]) => k === key)![1];
      if (v.type !== "array") throw new Error(`${key} is not an array`);
      setKv(s, key, { ...v, value: v.value.slice(0, 1000) } as GgufValue);
    }
    return craftGguf(s);
  },
  "duplicate token string": async () => {
    const s = await tinySpec();
    const v = s.metadata.find(([k]) => k === "tokenizer.ggml.tokens")![1];
    if (v.type !== "array" || v.itemType !== "string") {
      throw new Error("tokens is not an array of strings");
    }
    const tokens = [...v.value];
    tokens[500] = tokens[501];
    setKv(s, "tokenizer.ggml.tokens", { ...v, value: tokens });
    return craftGguf(s);
  },
  "tensor count larger than the tensors": async () => {
    const s = await tinySpec();
    s.nTensors = BigInt(s.tensors.length + 5);
    return craftGguf(s);
  },
  "head_count zero": async () => {
    const s = await tinySpec();
    setKv(s, "llama.attention.head_count", u32(0));
    return craftGguf(s);
  },
  "expert_count past llama.cpp's maximum": async () => {
    const s = await tinySpec();
    setKv(s, "llama.expert_count", u32(5000));
    return craftGguf(s);
  },
  "expert_used_count without experts": async () => {
    const s = await tinySpec();
    setKv(s, "llama.expert_used_count", u32(2));
    return craftGguf(s);
  },
  "nextn_predict_layers past block_count": async () => {
    const s = await tinySpec();
    setKv(s, "llama.nextn_predict_layers", u32(7));
    return craftGguf(s);
  },
  "head_count_kv zero": async () => {
    const s = await tinySpec();
    setKv(s, "llama.attention.head_count_kv", u32(0));
    return craftGguf(s);
  },
  "unknown rope scaling type": async () => {
    const s = await tinySpec();
    setKv(s, "llama.rope.scaling.type", str("bogus"));
    return craftGguf(s);
  },
  "embedding_length mismatching token_embd": async () => {
    const s = await tinySpec();
    setKv(s, "llama.embedding_length", u32(96));
    return craftGguf(s);
  },
};

/**
 * A model whose header is valid and that llama.cpp loads, but whose first
 * layer's norm weight is declared I32 (the same size as F32, so every offset
 * stays right): its first decode aborts the process inside ggml
 * ("binary_op: unsupported types"). What an engine process must contain.
 */
export async function abortsAtDecode(): Promise<Uint8Array> {
  const s = await tinySpec();
  tensor(s, "blk.0.attn_norm.weight").type = 26; // GGML_TYPE_I32
  return craftGguf(s);
}
