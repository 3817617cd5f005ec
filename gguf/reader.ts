/**
 * Reading GGUF files: the header, every metadata key/value (all thirteen
 * value types, arrays included), the tensor-info table and the alignment.
 *
 * From a path only the header is read (a growing prefix of the file), so the
 * metadata of a multi-gigabyte model costs about as much as its vocabulary.
 * Tensor data is read on request with {@linkcode readTensorData}.
 *
 * Supports GGUF versions 2 and 3, little-endian. Malformed input throws a
 * {@linkcode GgufError} naming the file and what was wrong.
 *
 * @example
 * ```ts
 * import { GgufWriter, parseGguf } from "./mod.ts";
 *
 * const w = new GgufWriter();
 * w.setMetadata("general.architecture", { type: "string", value: "llama" });
 * const file = parseGguf(await w.toBytes());
 * console.log(file.version, file.metadata.get("general.architecture")?.value);
 * ```
 * @module
 */

import { fromFileUrl } from "../_internal/file_url.ts";
import { ByteReader, NeedMoreBytes } from "./_byte_reader.ts";
import { GgufError } from "./error.ts";
import { ggmlTypeLayout, ggmlTypeName, tensorByteLength } from "./ggml_type.ts";
import type {
  GgufArrayValue,
  GgufTensorInfo,
  GgufValue,
  GgufValueTypeName,
} from "./types.ts";

/**
 * The magic at the start of every GGUF file (`"GGUF"`, read as a little-endian u32).
 *
 * @example
 * ```ts
 * import { GGUF_MAGIC } from "./reader.ts";
 * const bytes = new TextEncoder().encode("GGUF");
 * console.log(new DataView(bytes.buffer).getUint32(0, true) === GGUF_MAGIC); // true
 * ```
 */
export const GGUF_MAGIC = 0x46554747;
/**
 * The alignment used when `general.alignment` is absent.
 *
 * @example
 * ```ts
 * import { GGUF_DEFAULT_ALIGNMENT, GgufWriter } from "./mod.ts";
 * console.log(new GgufWriter().alignment === GGUF_DEFAULT_ALIGNMENT); // true
 * ```
 */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/**
 * The most dimensions a tensor may have (`GGML_MAX_DIMS`).
 *
 * @example
 * ```ts
 * import { GGML_MAX_DIMS } from "./reader.ts";
 * console.log(GGML_MAX_DIMS); // 4
 * ```
 */
export const GGML_MAX_DIMS = 4;

/** A parsed GGUF header. */
export interface GgufFile {
  /** The file path it came from, or `<bytes>`. */
  source: string;
  /** Format version (2 or 3). */
  version: number;
  /** Data alignment in bytes (`general.alignment`, or 32). */
  alignment: number;
  /** Every metadata key/value, in file order. */
  metadata: Map<string, GgufValue>;
  /** The tensor-info table, in file order. */
  tensors: GgufTensorInfo[];
  /** Absolute byte offset where the tensor data section starts. */
  dataOffset: number;
  /** Total size of the file (or buffer) in bytes. */
  byteLength: number;
}

/** Options for {@linkcode parseGguf}. */
export interface ParseGgufOptions {
  /** Name used in error messages (default `<bytes>`). */
  source?: string;
  /**
   * Size of the whole file when `bytes` is only a prefix of it; reads past the
   * prefix (but inside the file) then throw an internal "need more" signal,
   * which {@linkcode readGguf} handles. Default: `bytes.length`.
   */
  fileSize?: number;
}

const VALUE_TYPE_NAMES: GgufValueTypeName[] = [
  "uint8",
  "int8",
  "uint16",
  "int16",
  "uint32",
  "int32",
  "float32",
  "bool",
  "string",
  "array",
  "uint64",
  "int64",
  "float64",
];

const ITEM_SIZE: Record<string, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  bool: 1,
  string: 8, // at least the length prefix
  array: 12, // at least item type + count
  uint64: 8,
  int64: 8,
  float64: 8,
};

function typeName(r: ByteReader, id: number, what: string, at: number) {
  const name = VALUE_TYPE_NAMES[id];
  if (name === undefined) {
    r.fail(`${what} has unknown value type id ${id}`, at);
  }
  return name;
}

function readScalar(
  r: ByteReader,
  type: Exclude<GgufValueTypeName, "array">,
  what: string,
): GgufValue {
  switch (type) {
    case "uint8":
      return { type, value: r.u8(what) };
    case "int8":
      return { type, value: r.i8(what) };
    case "uint16":
      return { type, value: r.u16(what) };
    case "int16":
      return { type, value: r.i16(what) };
    case "uint32":
      return { type, value: r.u32(what) };
    case "int32":
      return { type, value: r.i32(what) };
    case "float32":
      return { type, value: r.f32(what) };
    case "float64":
      return { type, value: r.f64(what) };
    case "uint64":
      return { type, value: r.u64(what) };
    case "int64":
      return { type, value: r.i64(what) };
    case "bool": {
      const at = r.pos;
      const b = r.u8(what);
      if (b > 1) r.fail(`${what} is a bool with invalid byte ${b}`, at);
      return { type, value: b === 1 };
    }
    case "string":
      return { type, value: r.string(what) };
  }
}

function readArray(r: ByteReader, what: string, depth: number): GgufArrayValue {
  const at = r.pos;
  const itemType = typeName(r, r.u32(`item type of ${what}`), what, at);
  const countAt = r.pos;
  const count = r.size(`item count of ${what}`);
  const minBytes = count * ITEM_SIZE[itemType];
  if (r.pos + minBytes > r.fileSize) {
    r.fail(
      `truncated file: ${what} claims ${count} items of type ${itemType} ` +
        `at offset ${countAt + 8}, but the file is ${r.fileSize} bytes long`,
      countAt,
    );
  }
  switch (itemType) {
    case "uint8":
      return {
        type: "array",
        itemType,
        value: new Uint8Array(r.copy(count, what)),
      };
    case "int8":
      return {
        type: "array",
        itemType,
        value: new Int8Array(r.copy(count, what)),
      };
    case "uint16":
      return {
        type: "array",
        itemType,
        value: new Uint16Array(r.copy(count * 2, what)),
      };
    case "int16":
      return {
        type: "array",
        itemType,
        value: new Int16Array(r.copy(count * 2, what)),
      };
    case "uint32":
      return {
        type: "array",
        itemType,
        value: new Uint32Array(r.copy(count * 4, what)),
      };
    case "int32":
      return {
        type: "array",
        itemType,
        value: new Int32Array(r.copy(count * 4, what)),
      };
    case "float32":
      return {
        type: "array",
        itemType,
        value: new Float32Array(r.copy(count * 4, what)),
      };
    case "float64":
      return {
        type: "array",
        itemType,
        value: new Float64Array(r.copy(count * 8, what)),
      };
    case "uint64":
      return {
        type: "array",
        itemType,
        value: new BigUint64Array(r.copy(count * 8, what)),
      };
    case "int64":
      return {
        type: "array",
        itemType,
        value: new BigInt64Array(r.copy(count * 8, what)),
      };
    case "bool": {
      const bytes = new Uint8Array(r.copy(count, what));
      const value = new Array<boolean>(count);
      for (let i = 0; i < count; i++) {
        if (bytes[i] > 1) {
          r.fail(`${what}[${i}] is a bool with invalid byte ${bytes[i]}`);
        }
        value[i] = bytes[i] === 1;
      }
      return { type: "array", itemType, value };
    }
    case "string": {
      const value = new Array<string>(count);
      for (let i = 0; i < count; i++) {
        value[i] = r.string(() => `${what}[${i}]`);
      }
      return { type: "array", itemType, value };
    }
    case "array": {
      if (depth >= 8) r.fail(`${what} nests arrays more than 8 deep`, at);
      const value = new Array<GgufArrayValue>(count);
      for (let i = 0; i < count; i++) {
        value[i] = readArray(r, `${what}[${i}]`, depth + 1);
      }
      return { type: "array", itemType, value };
    }
  }
}

/**
 * Parses the header of a GGUF file held in memory (the whole file, or a
 * prefix of it together with `options.fileSize`).
 *
 * @example
 * ```ts
 * import { GgufWriter, GgmlType, parseGguf } from "./mod.ts";
 *
 * const w = new GgufWriter();
 * w.addTensor({ name: "x", dims: [4], type: GgmlType.F32, data: new Float32Array(4) });
 * const file = parseGguf(await w.toBytes());
 * console.log(file.tensors[0].name, file.tensors[0].byteLength); // "x" 16
 * ```
 */
export function parseGguf(
  bytes: Uint8Array,
  options: ParseGgufOptions = {},
): GgufFile {
  const source = options.source ?? "<bytes>";
  const fileSize = options.fileSize ?? bytes.length;
  const r = new ByteReader(bytes, source, fileSize);

  if (fileSize < 4) {
    r.fail(`not a GGUF file: only ${fileSize} bytes long`, 0);
  }
  r.need(4, "magic");
  const magic = r.u32("magic");
  if (magic !== GGUF_MAGIC) {
    const shown = Array.from(
      bytes.subarray(0, 4),
      (b) =>
        b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c
          ? String.fromCharCode(b)
          : `\\x${b.toString(16).padStart(2, "0")}`,
    ).join("");
    r.fail(`not a GGUF file: magic is "${shown}", expected "GGUF"`, 0);
  }
  const version = r.u32("version");
  if (version !== 2 && version !== 3) {
    if ((version & 0xffff) === 0 && version !== 0) {
      r.fail(
        `big-endian GGUF files are not supported (version field ${version})`,
        4,
      );
    }
    r.fail(`unsupported GGUF version ${version} (supported: 2, 3)`, 4);
  }
  const nTensors = r.size("tensor count");
  const nKv = r.size("metadata key/value count");
  // Each KV needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor
  // info at least 8 + 4 + 4 + 8.
  if (24 + nKv * 13 + nTensors * 24 > fileSize) {
    r.fail(
      `truncated or corrupt header: it declares ${nKv} key/values and ` +
        `${nTensors} tensors, which cannot fit in ${fileSize} bytes`,
      8,
    );
  }

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const keyAt = r.pos;
    const key = r.string(`key of metadata entry ${i}`);
    if (metadata.has(key)) r.fail(`duplicate metadata key "${key}"`, keyAt);
    const typeAt = r.pos;
    const type = typeName(
      r,
      r.u32(`value type of "${key}"`),
      `metadata "${key}"`,
      typeAt,
    );
    const value = type === "array"
      ? readArray(r, `metadata "${key}"`, 0)
      : readScalar(r, type, `value of "${key}"`);
    metadata.set(key, value);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const align = metadata.get("general.alignment");
  if (align !== undefined) {
    if (align.type !== "uint32") {
      r.fail(`general.alignment must be uint32, found ${align.type}`, 8);
    }
    const a = align.value as number;
    if (a === 0 || (a & (a - 1)) !== 0) {
      r.fail(`general.alignment is ${a}, not a power of two`, 8);
    }
    alignment = a;
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const at = r.pos;
    const name = r.string(`name of tensor ${i}`);
    if (names.has(name)) r.fail(`duplicate tensor name "${name}"`, at);
    names.add(name);
    const nDimsAt = r.pos;
    const nDims = r.u32(`dimension count of tensor "${name}"`);
    if (nDims > GGML_MAX_DIMS) {
      r.fail(
        `tensor "${name}" has ${nDims} dimensions (at most ${GGML_MAX_DIMS})`,
        nDimsAt,
      );
    }
    const dims: number[] = [];
    let nElements = 1;
    for (let d = 0; d < nDims; d++) {
      const n = r.size(`dimension ${d} of tensor "${name}"`);
      dims.push(n);
      nElements *= n;
    }
    const typeAt = r.pos;
    const type = r.u32(`type of tensor "${name}"`);
    if (!ggmlTypeLayout(type)) {
      r.fail(`tensor "${name}" has unknown ggml type id ${type}`, typeAt);
    }
    let byteLength = 0;
    try {
      byteLength = tensorByteLength(type, dims);
    } catch (e) {
      r.fail(`tensor "${name}": ${(e as Error).message}`, typeAt);
    }
    const offsetAt = r.pos;
    const offset = r.size(`data offset of tensor "${name}"`);
    if (offset % alignment !== 0) {
      r.fail(
        `tensor "${name}" data offset ${offset} is not a multiple of the ` +
          `alignment ${alignment}`,
        offsetAt,
      );
    }
    tensors.push({ name, dims, type, offset, nElements, byteLength });
  }

  const headerEnd = r.pos;
  const dataOffset = nTensors === 0
    ? headerEnd
    : Math.ceil(headerEnd / alignment) * alignment;
  for (const t of tensors) {
    const end = dataOffset + t.offset + t.byteLength;
    if (end > fileSize) {
      r.fail(
        `truncated file: tensor "${t.name}" (${ggmlTypeName(t.type)}, ` +
          `${t.byteLength} bytes at offset ${dataOffset + t.offset}) ends at ` +
          `${end}, but the file is ${fileSize} bytes long`,
        dataOffset + t.offset,
      );
    }
  }

  return {
    source,
    version,
    alignment,
    metadata,
    tensors,
    dataOffset,
    byteLength: fileSize,
  };
}

async function readPrefix(file: Deno.FsFile, length: number) {
  const buf = new Uint8Array(length);
  await file.seek(0, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

function pathOf(source: string | URL): string {
  return source instanceof URL ? fromFileUrl(source) : source;
}

/**
 * Reads the header of a GGUF file from a path (only as much of the file as
 * the header needs) or from bytes already in memory.
 *
 * @example
 * ```ts
 * import { GgufWriter, readGguf } from "./mod.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".gguf" });
 * const w = new GgufWriter();
 * w.setMetadata("general.name", { type: "string", value: "demo" });
 * await w.writeFile(path);
 * const file = await readGguf(path);
 * console.log(file.metadata.get("general.name")?.value); // "demo"
 * await Deno.remove(path);
 * ```
 */
export async function readGguf(
  source: string | URL | Uint8Array,
): Promise<GgufFile> {
  if (source instanceof Uint8Array) return parseGguf(source);
  const path = pathOf(source);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw new GgufError(path, `cannot open: ${(e as Error).message}`);
  }
  try {
    const size = (await file.stat()).size;
    let want = Math.min(size, 1 << 20);
    for (;;) {
      const prefix = await readPrefix(file, want);
      if (prefix.length < want) {
        throw new GgufError(path, "the file shrank while being read");
      }
      try {
        return parseGguf(prefix, { source: path, fileSize: size });
      } catch (e) {
        if (!(e instanceof NeedMoreBytes)) throw e;
        // Re-parse with a longer prefix; small files are read whole.
        want = size <= 32 << 20
          ? size
          : Math.min(size, Math.max(want * 4, e.needed + (1 << 20)));
      }
    }
  } finally {
    file.close();
  }
}

/**
 * Reads one tensor's raw bytes (in its ggml type) from the file the header
 * came from, or from the bytes it was parsed from.
 *
 * @example
 * ```ts
 * import { GgmlType, GgufWriter, readGguf, readTensorData } from "./mod.ts";
 *
 * const w = new GgufWriter();
 * w.addTensor({ name: "v", dims: [2], type: GgmlType.F32, data: new Float32Array([1, 2]) });
 * const bytes = await w.toBytes();
 * const file = await readGguf(bytes);
 * const data = await readTensorData(bytes, file, "v");
 * console.log(new Float32Array(data.buffer)); // Float32Array [1, 2]
 * ```
 */
export async function readTensorData(
  source: string | URL | Uint8Array,
  file: GgufFile,
  tensor: string | GgufTensorInfo,
): Promise<Uint8Array> {
  const info = typeof tensor === "string"
    ? file.tensors.find((t) => t.name === tensor)
    : tensor;
  if (!info) {
    throw new GgufError(file.source, `no tensor named "${tensor}"`);
  }
  const start = file.dataOffset + info.offset;
  if (source instanceof Uint8Array) {
    if (start + info.byteLength > source.length) {
      throw new GgufError(
        file.source,
        `truncated: tensor "${info.name}" ends past the end of the buffer`,
        start,
      );
    }
    return source.slice(start, start + info.byteLength);
  }
  const path = pathOf(source);
  const f = await Deno.open(path, { read: true });
  try {
    await f.seek(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(info.byteLength);
    let got = 0;
    while (got < buf.length) {
      const n = await f.read(buf.subarray(got));
      if (n === null) {
        throw new GgufError(
          path,
          `truncated file: tensor "${info.name}" needs ${info.byteLength} ` +
            `bytes at offset ${start}, got ${got}`,
          start,
        );
      }
      got += n;
    }
    return buf;
  } finally {
    f.close();
  }
}
