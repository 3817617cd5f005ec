/**
 * Writing GGUF files (version 3): metadata of every value type, and tensors
 * given as raw bytes of any ggml type or as float32 values that the writer
 * encodes as F32, F16, BF16 or Q8_0.
 *
 * Tensor data may be supplied lazily (a function called at write time), and
 * {@linkcode GgufWriter.writeFile} streams tensor by tensor, so writing a
 * large model needs memory for one tensor at a time, not for the whole file.
 *
 * @example
 * ```ts
 * import { GgmlType, GgufWriter, readGguf } from "./mod.ts";
 *
 * const w = new GgufWriter();
 * w.setMetadata("general.architecture", { type: "string", value: "llama" });
 * w.setMetadata("llama.block_count", { type: "uint32", value: 2 });
 * w.addTensor({
 *   name: "output_norm.weight",
 *   dims: [64],
 *   type: GgmlType.F32,
 *   data: () => new Float32Array(64).fill(1),
 * });
 * const path = await Deno.makeTempFile({ suffix: ".gguf" });
 * await w.writeFile(path);
 * console.log((await readGguf(path)).tensors.length); // 1
 * await Deno.remove(path);
 * ```
 * @module
 */

import { fromFileUrl } from "../_internal/file_url.ts";
import { ByteWriter } from "./_byte_writer.ts";
import { encodeFloats } from "./_encode.ts";
import { ggmlTypeLayout, ggmlTypeName, tensorByteLength } from "./ggml_type.ts";
import { GGML_MAX_DIMS, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC } from "./reader.ts";
import {
  GGUF_VALUE_TYPE_IDS,
  type GgufArrayValue,
  type GgufTensorInfo,
  type GgufValue,
  type GgufValueTypeName,
} from "./types.ts";

/**
 * Tensor data: raw bytes already in the tensor's ggml type, or float32 values
 * that the writer encodes (for F32, F16, BF16 and Q8_0 tensors).
 */
export type GgufTensorData = Uint8Array | Float32Array;

/** Tensor data, or a function producing it when the tensor is written. */
export type GgufTensorSource =
  | GgufTensorData
  | (() => GgufTensorData | Promise<GgufTensorData>);

/** A tensor to write. */
export interface GgufTensorInput {
  /** Tensor name (unique in the file). */
  name: string;
  /** Dimensions in ggml order (`dims[0]` innermost), 1 to 4 of them. */
  dims: readonly number[];
  /** ggml type id (see `GgmlType`). */
  type: number;
  /** The data, or a function that produces it at write time. */
  data: GgufTensorSource;
}

/** Options for {@linkcode GgufWriter}. */
export interface GgufWriterOptions {
  /**
   * Data alignment (a power of two). Anything but 32 is also recorded as
   * `general.alignment`. Default 32.
   */
  alignment?: number;
}

/** Progress callback for {@linkcode GgufWriter.writeFile}. */
export interface GgufWriteOptions {
  /** Called after each tensor is written. */
  onTensor?: (name: string, index: number, count: number) => void;
}

const INT_RANGES: Record<string, [number, number]> = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
};

const TYPED_ARRAYS: Record<string, unknown> = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
  uint64: BigUint64Array,
  int64: BigInt64Array,
};

function checkValue(key: string, v: GgufValue): void {
  const bad = (what: string): never => {
    throw new RangeError(`metadata "${key}": ${what}`);
  };
  const type: string = v.type;
  if (!(type in GGUF_VALUE_TYPE_IDS)) bad(`unknown value type "${type}"`);
  if (v.type === "array") {
    checkArray(v, bad);
    return;
  }
  const range = INT_RANGES[v.type];
  if (range) {
    const n = v.value as number;
    if (
      typeof n !== "number" || !Number.isInteger(n) || n < range[0] ||
      n > range[1]
    ) {
      bad(`${String(v.value)} is not a valid ${v.type}`);
    }
  } else if (v.type === "uint64" || v.type === "int64") {
    if (typeof v.value !== "bigint") bad(`${type} values must be bigint`);
    const b = v.value;
    const ok = v.type === "uint64"
      ? b >= 0n && b < 1n << 64n
      : b >= -(1n << 63n) && b < 1n << 63n;
    if (!ok) bad(`${b} is not a valid ${v.type}`);
  } else if (v.type === "float32" || v.type === "float64") {
    if (typeof v.value !== "number") bad(`${type} values must be numbers`);
  } else if (v.type === "bool") {
    if (typeof v.value !== "boolean") bad("bool values must be booleans");
  } else if (v.type === "string") {
    if (typeof v.value !== "string") bad("string values must be strings");
  }
}

function checkArray(v: GgufArrayValue, bad: (what: string) => never): void {
  const ctor = TYPED_ARRAYS[v.itemType];
  if (ctor) {
    if (!(v.value instanceof (ctor as typeof Uint8Array))) {
      bad(
        `an array of ${v.itemType} must be a ${
          (ctor as { name: string }).name
        }`,
      );
    }
    return;
  }
  if (!Array.isArray(v.value)) {
    bad(`an array of ${v.itemType} must be an Array`);
  }
  if (v.itemType === "bool") {
    for (const b of v.value) {
      if (typeof b !== "boolean") bad("bool array item is not a boolean");
    }
  } else if (v.itemType === "string") {
    for (const s of v.value) {
      if (typeof s !== "string") bad("string array item is not a string");
    }
  } else if (v.itemType === "array") {
    for (const inner of v.value) {
      if (inner?.type !== "array") {
        bad("nested array item is not an array value");
      }
      checkArray(inner, bad);
    }
  } else {
    bad(`unknown array item type "${(v as { itemType: string }).itemType}"`);
  }
}

function typeId(name: GgufValueTypeName): number {
  return GGUF_VALUE_TYPE_IDS[name];
}

function writeArrayBody(w: ByteWriter, v: GgufArrayValue): void {
  w.u32(typeId(v.itemType));
  w.u64(v.value.length);
  switch (v.itemType) {
    case "bool":
      for (const b of v.value) w.u8(b ? 1 : 0);
      return;
    case "string":
      for (const s of v.value) w.string(s);
      return;
    case "array":
      for (const inner of v.value) writeArrayBody(w, inner);
      return;
    default: {
      const a = v.value;
      // Typed arrays hold host-order (little-endian on supported hosts) items.
      w.bytes(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    }
  }
}

function writeValue(w: ByteWriter, v: GgufValue): void {
  w.u32(typeId(v.type));
  switch (v.type) {
    case "uint8":
      return w.u8(v.value);
    case "int8":
      return w.i8(v.value);
    case "uint16":
      return w.u16(v.value);
    case "int16":
      return w.i16(v.value);
    case "uint32":
      return w.u32(v.value);
    case "int32":
      return w.i32(v.value);
    case "float32":
      return w.f32(v.value);
    case "float64":
      return w.f64(v.value);
    case "uint64":
      return w.u64(v.value);
    case "int64":
      return w.i64(v.value);
    case "bool":
      return w.u8(v.value ? 1 : 0);
    case "string":
      return w.string(v.value);
    case "array":
      return writeArrayBody(w, v);
  }
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/**
 * Builds a GGUF file: set metadata, add tensors, then write it to a file
 * ({@linkcode GgufWriter.writeFile}) or to memory ({@linkcode GgufWriter.toBytes}).
 * Metadata keys keep the order in which they were first set.
 *
 * @example
 * ```ts
 * import { GgmlType, GgufWriter, parseGguf } from "./mod.ts";
 *
 * const w = new GgufWriter({ alignment: 64 });
 * w.setMetadata("tokenizer.ggml.tokens", {
 *   type: "array",
 *   itemType: "string",
 *   value: ["<unk>", "<s>", "</s>"],
 * });
 * w.addTensor({ name: "w", dims: [32, 2], type: GgmlType.Q8_0, data: new Float32Array(64) });
 * const file = parseGguf(await w.toBytes());
 * console.log(file.alignment, file.tensors[0].byteLength); // 64 68
 * ```
 */
export class GgufWriter {
  #metadata = new Map<string, GgufValue>();
  #tensors: GgufTensorInput[] = [];
  #names = new Set<string>();

  /**
   * Creates an empty writer.
   *
   * @example
   * ```ts
   * import { GgufWriter } from "./mod.ts";
   * const w = new GgufWriter({ alignment: 64 });
   * console.log(w.metadata.get("general.alignment")); // { type: "uint32", value: 64 }
   * ```
   */
  constructor(options: GgufWriterOptions = {}) {
    const a = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    if (a !== GGUF_DEFAULT_ALIGNMENT) {
      this.setMetadata("general.alignment", { type: "uint32", value: a });
    }
  }

  /**
   * The data alignment in bytes (`general.alignment`, or 32).
   *
   * @example
   * ```ts
   * import { GgufWriter } from "./mod.ts";
   * console.log(new GgufWriter().alignment); // 32
   * ```
   */
  get alignment(): number {
    const a = this.#metadata.get("general.alignment");
    return a ? a.value as number : GGUF_DEFAULT_ALIGNMENT;
  }

  /**
   * The metadata set so far, in write order.
   *
   * @example
   * ```ts
   * import { GgufWriter } from "./mod.ts";
   * const w = new GgufWriter().setMetadata("a", { type: "bool", value: true });
   * console.log([...w.metadata.keys()]); // ["a"]
   * ```
   */
  get metadata(): ReadonlyMap<string, GgufValue> {
    return this.#metadata;
  }

  /**
   * Sets (or replaces, keeping its position) one metadata key/value. Throws
   * a `RangeError` for a value that does not fit its type.
   *
   * @example
   * ```ts
   * import { GgufWriter } from "./mod.ts";
   * const w = new GgufWriter();
   * w.setMetadata("llama.context_length", { type: "uint32", value: 2048 });
   * w.setMetadata("general.size", { type: "uint64", value: 1n << 40n });
   * ```
   */
  setMetadata(key: string, value: GgufValue): this {
    if (key.length === 0) {
      throw new RangeError("metadata key must not be empty");
    }
    checkValue(key, value);
    if (key === "general.alignment") {
      const a = value.value as number;
      if (value.type !== "uint32" || a === 0 || (a & (a - 1)) !== 0) {
        throw new RangeError(
          "general.alignment must be a uint32 power of two, got " +
            `${value.type} ${String(value.value)}`,
        );
      }
    }
    this.#metadata.set(key, value);
    return this;
  }

  /**
   * Removes a metadata key; returns whether it was present.
   *
   * @example
   * ```ts
   * import { GgufWriter } from "./mod.ts";
   * const w = new GgufWriter().setMetadata("x", { type: "int8", value: -1 });
   * console.log(w.deleteMetadata("x"), w.deleteMetadata("x")); // true false
   * ```
   */
  deleteMetadata(key: string): boolean {
    return this.#metadata.delete(key);
  }

  /**
   * Adds a tensor. Its size is checked now; its data (if a function) is
   * produced only when the file is written.
   *
   * @example
   * ```ts
   * import { GgmlType, GgufWriter } from "./mod.ts";
   * const w = new GgufWriter();
   * w.addTensor({ name: "a", dims: [4, 2], type: GgmlType.F16, data: new Float32Array(8) });
   * w.addTensor({ name: "b", dims: [3], type: GgmlType.I8, data: new Uint8Array([1, 2, 3]) });
   * w.addTensor({ name: "c", dims: [32], type: GgmlType.Q8_0, data: () => new Float32Array(32) });
   * ```
   */
  addTensor(tensor: GgufTensorInput): this {
    const { name, dims, type } = tensor;
    if (this.#names.has(name)) {
      throw new RangeError(`duplicate tensor "${name}"`);
    }
    if (dims.length < 1 || dims.length > GGML_MAX_DIMS) {
      throw new RangeError(
        `tensor "${name}": 1 to ${GGML_MAX_DIMS} dimensions, got ${dims.length}`,
      );
    }
    for (const d of dims) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new RangeError(`tensor "${name}": bad dimension ${d}`);
      }
    }
    if (!ggmlTypeLayout(type)) {
      throw new RangeError(`tensor "${name}": unknown ggml type id ${type}`);
    }
    try {
      tensorByteLength(type, dims);
    } catch (e) {
      throw new RangeError(`tensor "${name}": ${(e as Error).message}`);
    }
    this.#names.add(name);
    this.#tensors.push({ ...tensor, dims: [...dims] });
    return this;
  }

  /**
   * The tensor-info table as it will be written (offsets relative to the data section).
   *
   * @example
   * ```ts
   * import { GgmlType, GgufWriter } from "./mod.ts";
   * const w = new GgufWriter()
   *   .addTensor({ name: "a", dims: [3], type: GgmlType.F32, data: new Float32Array(3) })
   *   .addTensor({ name: "b", dims: [3], type: GgmlType.F32, data: new Float32Array(3) });
   * console.log(w.tensors.map((t) => t.offset)); // [0, 32]
   * ```
   */
  get tensors(): GgufTensorInfo[] {
    const alignment = this.alignment;
    let offset = 0;
    return this.#tensors.map((t) => {
      const byteLength = tensorByteLength(t.type, t.dims);
      const info: GgufTensorInfo = {
        name: t.name,
        dims: [...t.dims],
        type: t.type,
        offset,
        nElements: t.dims.reduce((a, b) => a * b, 1),
        byteLength,
      };
      offset = alignUp(offset + byteLength, alignment);
      return info;
    });
  }

  #header(infos: GgufTensorInfo[]): Uint8Array {
    const w = new ByteWriter();
    w.u32(GGUF_MAGIC);
    w.u32(3);
    w.u64(infos.length);
    w.u64(this.#metadata.size);
    for (const [key, value] of this.#metadata) {
      w.string(key);
      writeValue(w, value);
    }
    for (const t of infos) {
      w.string(t.name);
      w.u32(t.dims.length);
      for (const d of t.dims) w.u64(d);
      w.u32(t.type);
      w.u64(t.offset);
    }
    if (infos.length > 0) w.pad(this.alignment);
    return w.result();
  }

  /**
   * The size of the file that will be written, in bytes.
   *
   * @example
   * ```ts
   * import { GgmlType, GgufWriter } from "./mod.ts";
   * const w = new GgufWriter();
   * w.addTensor({ name: "a", dims: [8], type: GgmlType.F32, data: new Float32Array(8) });
   * console.log(w.byteLength() === (await w.toBytes()).length); // true
   * ```
   */
  byteLength(): number {
    const infos = this.tensors;
    const header = this.#header(infos).length;
    if (infos.length === 0) return header;
    const last = infos[infos.length - 1];
    return header + alignUp(last.offset + last.byteLength, this.alignment);
  }

  async #tensorBytes(t: GgufTensorInput, info: GgufTensorInfo) {
    const data = typeof t.data === "function" ? await t.data() : t.data;
    let bytes: Uint8Array;
    if (data instanceof Float32Array) {
      if (data.length !== info.nElements) {
        throw new RangeError(
          `tensor "${t.name}": ${data.length} values given, ` +
            `${info.nElements} expected`,
        );
      }
      bytes = encodeFloats(data, t.type);
    } else if (data instanceof Uint8Array) {
      bytes = data;
    } else {
      throw new TypeError(
        `tensor "${t.name}": data must be a Uint8Array or a Float32Array`,
      );
    }
    if (bytes.length !== info.byteLength) {
      throw new RangeError(
        `tensor "${t.name}" (${ggmlTypeName(t.type)} [${
          t.dims.join(", ")
        }]): ` +
          `${bytes.length} bytes given, ${info.byteLength} expected`,
      );
    }
    return bytes;
  }

  /**
   * Writes the file, streaming one tensor at a time. The file is created or
   * truncated; on failure a partial file may remain (write to a temporary
   * name and rename for atomicity).
   *
   * @example
   * ```ts
   * import { GgmlType, GgufWriter } from "./mod.ts";
   * const w = new GgufWriter();
   * w.addTensor({ name: "a", dims: [8], type: GgmlType.F16, data: () => new Float32Array(8).fill(0.5) });
   * const path = await Deno.makeTempFile({ suffix: ".gguf" });
   * await w.writeFile(path, { onTensor: (name, i, n) => console.log(`${i + 1}/${n} ${name}`) });
   * await Deno.remove(path);
   * ```
   */
  async writeFile(
    path: string | URL,
    options: GgufWriteOptions = {},
  ): Promise<void> {
    const p = path instanceof URL ? fromFileUrl(path) : path;
    const infos = this.tensors;
    const alignment = this.alignment;
    const file = await Deno.open(p, {
      write: true,
      create: true,
      truncate: true,
    });
    try {
      await writeAll(file, this.#header(infos));
      const zeros = new Uint8Array(alignment);
      for (let i = 0; i < infos.length; i++) {
        const bytes = await this.#tensorBytes(this.#tensors[i], infos[i]);
        await writeAll(file, bytes);
        const pad = alignUp(bytes.length, alignment) - bytes.length;
        if (pad > 0) await writeAll(file, zeros.subarray(0, pad));
        options.onTensor?.(infos[i].name, i, infos.length);
      }
    } finally {
      file.close();
    }
  }

  /**
   * Builds the whole file in memory.
   *
   * @example
   * ```ts
   * import { GgufWriter } from "./mod.ts";
   * const bytes = await new GgufWriter().toBytes();
   * console.log(bytes.length); // 24: magic, version, two counts
   * ```
   */
  async toBytes(): Promise<Uint8Array> {
    const infos = this.tensors;
    const header = this.#header(infos);
    const out = new Uint8Array(this.byteLength());
    out.set(header, 0);
    for (let i = 0; i < infos.length; i++) {
      const bytes = await this.#tensorBytes(this.#tensors[i], infos[i]);
      out.set(bytes, header.length + infos[i].offset);
    }
    return out;
  }
}
