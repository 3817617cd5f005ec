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
  /**
   * The metadata arrays that `skipArray` kept out of `metadata`: where their
   * items lie in the file. Present only when `skipArray` was given.
   */
  skippedArrays?: Map<string, GgufArraySpan>;
}

/** Where the items of a metadata array lie in the file (see `skipArray`). */
export interface GgufArraySpan {
  /** The items' value type. */
  itemType: GgufValueTypeName;
  /** How many items. */
  count: number;
  /** Absolute byte offset of the first item. */
  offset: number;
  /** Absolute byte offset just past the last item. */
  end: number;
}

/**
 * Bounds a header must stay within, checked while it is parsed (before
 * anything is allocated for a count or a length). Each is unbounded when
 * absent; `validate.ts` holds the values the host uses.
 */
export interface GgufParseLimits {
  /** Most metadata key/values. */
  maxKeys?: number;
  /** Most tensors. */
  maxTensors?: number;
  /** Longest metadata key, in bytes. */
  maxKeyBytes?: number;
  /** Longest string (values, array items, tensor names), in bytes. */
  maxStringBytes?: number;
  /** Most items in one metadata array. */
  maxArrayItems?: number;
  /** Most bytes of header (everything before the tensor data). */
  maxHeaderBytes?: number;
}

/** Options for {@linkcode parseGguf}. */
export interface ParseGgufOptions {
  /** Bounds on counts and lengths (default: none). */
  limits?: GgufParseLimits;
  /**
   * Return every string one character per byte (exact bytes, no UTF-8
   * decoding): faster, and two strings are equal exactly when their bytes
   * are. For checks that compare strings as llama.cpp does.
   */
  binaryStrings?: boolean;
  /**
   * Metadata arrays for which this returns true are walked and checked
   * (counts, lengths, bounds) but not decoded: they go to
   * `GgufFile.skippedArrays` instead of `metadata`. Makes big vocabularies
   * cheap when only some keys matter.
   */
  skipArray?: (key: string, itemType: GgufValueTypeName) => boolean;
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

/**
 * Reads an array's item type and count, and refuses a count over `maxItems`
 * or one whose items cannot fit in the rest of the file.
 */
function arrayHeader(
  r: ByteReader,
  what: string,
  maxItems: number,
): { itemType: ReturnType<typeof typeName>; count: number } {
  const at = r.pos;
  const itemType = typeName(r, r.u32(`item type of ${what}`), what, at);
  const countAt = r.pos;
  const count = r.size(`item count of ${what}`);
  if (count > maxItems) {
    r.fail(`${what} has ${count} items; at most ${maxItems} allowed`, countAt);
  }
  if (r.pos + count * ITEM_SIZE[itemType] > r.fileSize) {
    r.fail(
      `truncated file: ${what} claims ${count} items of type ${itemType} ` +
        `at offset ${countAt + 8}, but the file is ${r.fileSize} bytes long`,
      countAt,
    );
  }
  return { itemType, count };
}

function readArray(
  r: ByteReader,
  what: string,
  depth: number,
  maxItems: number,
): GgufArrayValue {
  const at = r.pos;
  const { itemType, count } = arrayHeader(r, what, maxItems);
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
        value[i] = readArray(r, `${what}[${i}]`, depth + 1, maxItems);
      }
      return { type: "array", itemType, value };
    }
  }
}

/** Walks an array like readArray, checking the same things, without decoding it. */
function skipArray(
  r: ByteReader,
  what: string,
  depth: number,
  maxItems: number,
): GgufArraySpan {
  const at = r.pos;
  const { itemType, count } = arrayHeader(r, what, maxItems);
  const offset = r.pos;
  if (itemType === "string") {
    for (let i = 0; i < count; i++) r.skipString(what);
  } else if (itemType === "array") {
    if (depth >= 8) r.fail(`${what} nests arrays more than 8 deep`, at);
    for (let i = 0; i < count; i++) skipArray(r, what, depth + 1, maxItems);
  } else {
    const n = count * ITEM_SIZE[itemType];
    r.need(n, what);
    if (itemType === "bool") {
      for (let i = r.pos; i < r.pos + n; i++) {
        if (r.bytes[i] > 1) r.fail(`${what} has a bool with invalid byte`, i);
      }
    }
    r.pos += n;
  }
  return { itemType, count, offset, end: r.pos };
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
  const lim = options.limits ?? {};
  const r = new ByteReader(bytes, source, fileSize, {
    maxEnd: lim.maxHeaderBytes,
    maxString: lim.maxStringBytes,
    binary: options.binaryStrings,
  });

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
  if (lim.maxTensors !== undefined && nTensors > lim.maxTensors) {
    r.fail(
      `the header declares ${nTensors} tensors; at most ${lim.maxTensors} allowed`,
      8,
    );
  }
  if (lim.maxKeys !== undefined && nKv > lim.maxKeys) {
    r.fail(
      `the header declares ${nKv} metadata key/values; at most ${lim.maxKeys} allowed`,
      16,
    );
  }
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
  const skipped = options.skipArray
    ? new Map<string, GgufArraySpan>()
    : undefined;
  for (let i = 0; i < nKv; i++) {
    const keyAt = r.pos;
    const key = r.string(`key of metadata entry ${i}`);
    if (lim.maxKeyBytes !== undefined && r.pos - keyAt - 8 > lim.maxKeyBytes) {
      r.fail(
        `key of metadata entry ${i} is ${
          r.pos - keyAt - 8
        } bytes long; at most ${lim.maxKeyBytes} allowed`,
        keyAt,
      );
    }
    if (metadata.has(key) || skipped?.has(key)) {
      r.fail(`duplicate metadata key "${key}"`, keyAt);
    }
    const typeAt = r.pos;
    const type = typeName(
      r,
      r.u32(`value type of "${key}"`),
      `metadata "${key}"`,
      typeAt,
    );
    if (type === "array" && skipped) {
      const itemAt = r.pos;
      const item = typeName(r, r.u32(`item type of "${key}"`), key, itemAt);
      r.pos = itemAt;
      if (options.skipArray!(key, item)) {
        const max = lim.maxArrayItems ?? Infinity;
        skipped.set(key, skipArray(r, `metadata "${key}"`, 0, max));
        continue;
      }
    }
    const value = type === "array"
      ? readArray(r, `metadata "${key}"`, 0, lim.maxArrayItems ?? Infinity)
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
    ...(skipped ? { skippedArrays: skipped } : {}),
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

function readPrefixSync(file: Deno.FsFile, length: number) {
  const buf = new Uint8Array(length);
  file.seekSync(0, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = file.readSync(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

function pathOf(source: string | URL): string {
  return source instanceof URL ? fromFileUrl(source) : source;
}

/** Options of {@linkcode readGguf} and {@linkcode readGgufSync}. */
export interface ReadGgufOptions {
  /** Bounds on counts and lengths (default: none). */
  limits?: GgufParseLimits;
  /** See {@linkcode ParseGgufOptions.binaryStrings}. */
  binaryStrings?: boolean;
  /** See {@linkcode ParseGgufOptions.skipArray}. */
  skipArray?: ParseGgufOptions["skipArray"];
  /** Name used in error messages (default: the path, or `<bytes>`). */
  source?: string;
}

/** A parsed header and the bytes it was parsed from (a prefix of the file). */
export interface GgufHeader {
  /** The parsed header. */
  file: GgufFile;
  /** The first bytes of the file, at least the whole header. */
  bytes: Uint8Array;
}

/**
 * The prefix-growing parse shared by the async and the blocking reader: it
 * yields how many bytes from the start of the file it wants next and is sent
 * them, until the header parses.
 */
function* prefixParse(
  size: number,
  options: ReadGgufOptions & { source: string },
): Generator<number, GgufHeader, Uint8Array> {
  let want = Math.min(size, 1 << 20);
  for (;;) {
    const prefix = yield want;
    if (prefix.length < want) {
      throw new GgufError(options.source, "the file shrank while being read");
    }
    try {
      const file = parseGguf(prefix, {
        ...options,
        source: options.source,
        fileSize: size,
      });
      return { file, bytes: prefix };
    } catch (e) {
      if (!(e instanceof NeedMoreBytes)) throw e;
      // Re-parse with a longer prefix; small files are read whole.
      want = size <= 32 << 20
        ? size
        : Math.min(size, Math.max(want * 4, e.needed + (1 << 20)));
    }
  }
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
  options: ReadGgufOptions = {},
): Promise<GgufFile> {
  if (source instanceof Uint8Array) return parseGguf(source, options);
  return (await readGgufHeader(source, options)).file;
}

/**
 * Blocking {@linkcode readGguf} of a path, for callers that cannot await.
 *
 * @example
 * ```ts
 * import { GgufWriter, readGgufSync } from "./mod.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".gguf" });
 * await new GgufWriter().setMetadata("general.name", { type: "string", value: "demo" })
 *   .writeFile(path);
 * console.log(readGgufSync(path).metadata.get("general.name")?.value); // "demo"
 * await Deno.remove(path);
 * ```
 */
export function readGgufSync(
  source: string | URL,
  options: ReadGgufOptions = {},
): GgufFile {
  return readGgufHeaderSync(source, options).file;
}

/**
 * {@linkcode readGguf} of a path that also returns the bytes read (the
 * header's prefix of the file), for checks that look at raw bytes.
 *
 * @example
 * ```ts
 * import { GgufWriter, readGgufHeader } from "./mod.ts";
 * const path = await Deno.makeTempFile({ suffix: ".gguf" });
 * await new GgufWriter().writeFile(path);
 * const { file, bytes } = await readGgufHeader(path);
 * console.log(file.dataOffset <= bytes.length); // true
 * await Deno.remove(path);
 * ```
 */
export async function readGgufHeader(
  source: string | URL,
  options: ReadGgufOptions = {},
): Promise<GgufHeader> {
  const path = pathOf(source);
  const name = options.source ?? path;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw new GgufError(name, `cannot open: ${(e as Error).message}`);
  }
  try {
    const it = prefixParse((await file.stat()).size, {
      ...options,
      source: name,
    });
    let step = it.next();
    while (!step.done) step = it.next(await readPrefix(file, step.value));
    return step.value;
  } finally {
    file.close();
  }
}

/**
 * Blocking {@linkcode readGgufHeader}.
 *
 * @example
 * ```ts
 * import { GgufWriter, readGgufHeaderSync } from "./mod.ts";
 * const path = await Deno.makeTempFile({ suffix: ".gguf" });
 * await new GgufWriter().writeFile(path);
 * console.log(readGgufHeaderSync(path).file.version); // 3
 * await Deno.remove(path);
 * ```
 */
export function readGgufHeaderSync(
  source: string | URL,
  options: ReadGgufOptions = {},
): GgufHeader {
  const path = pathOf(source);
  const name = options.source ?? path;
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (e) {
    throw new GgufError(name, `cannot open: ${(e as Error).message}`);
  }
  try {
    const it = prefixParse(file.statSync().size, { ...options, source: name });
    let step = it.next();
    while (!step.done) step = it.next(readPrefixSync(file, step.value));
    return step.value;
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
