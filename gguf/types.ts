/**
 * The value model of GGUF metadata: the thirteen value types of the format and
 * the typed values the reader returns and the writer accepts.
 *
 * Every metadata value carries its GGUF type, so a value read from one file
 * can be written to another unchanged. Scalars of 64-bit integer types are
 * `bigint`; arrays of numbers are typed arrays; arrays of strings, bools and
 * nested arrays are plain arrays.
 *
 * @example
 * ```ts
 * import type { GgufValue } from "./types.ts";
 * import { GGUF_VALUE_TYPE_IDS } from "./types.ts";
 *
 * const ctx: GgufValue = { type: "uint32", value: 2048 };
 * const scores: GgufValue = {
 *   type: "array",
 *   itemType: "float32",
 *   value: new Float32Array([0, -1.5]),
 * };
 * console.log(GGUF_VALUE_TYPE_IDS[ctx.type], scores.value.length);
 * ```
 * @module
 */

/**
 * The GGUF metadata value types by name, with their numeric ids in the file.
 *
 * @example
 * ```ts
 * import { GGUF_VALUE_TYPE_IDS } from "./types.ts";
 * console.log(GGUF_VALUE_TYPE_IDS.string, GGUF_VALUE_TYPE_IDS.array); // 8 9
 * ```
 */
export const GGUF_VALUE_TYPE_IDS = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

/** The name of one GGUF metadata value type (`"uint32"`, `"string"`, `"array"`, ...). */
export type GgufValueTypeName = keyof typeof GGUF_VALUE_TYPE_IDS;

/** Value types whose scalar is a JavaScript `number`. */
export type GgufNumberTypeName =
  | "uint8"
  | "int8"
  | "uint16"
  | "int16"
  | "uint32"
  | "int32"
  | "float32"
  | "float64";

/** Value types whose scalar is a `bigint`. */
export type GgufBigIntTypeName = "uint64" | "int64";

/** The typed array used for an array of each numeric item type. */
export interface GgufTypedArrays {
  /** `uint8` items. */
  uint8: Uint8Array;
  /** `int8` items. */
  int8: Int8Array;
  /** `uint16` items. */
  uint16: Uint16Array;
  /** `int16` items. */
  int16: Int16Array;
  /** `uint32` items. */
  uint32: Uint32Array;
  /** `int32` items. */
  int32: Int32Array;
  /** `float32` items. */
  float32: Float32Array;
  /** `float64` items. */
  float64: Float64Array;
  /** `uint64` items. */
  uint64: BigUint64Array;
  /** `int64` items. */
  int64: BigInt64Array;
}

/** A scalar whose value is a `number`. */
export interface GgufNumberValue {
  /** The GGUF type it is stored as. */
  type: GgufNumberTypeName;
  /** The value; integers must fit the type. */
  value: number;
}

/** A scalar whose value is a `bigint` (64-bit integer types). */
export interface GgufBigIntValue {
  /** The GGUF type it is stored as. */
  type: GgufBigIntTypeName;
  /** The value; must fit the type. */
  value: bigint;
}

/** A `bool` scalar. */
export interface GgufBoolValue {
  /** Always `"bool"`. */
  type: "bool";
  /** The value. */
  value: boolean;
}

/** A `string` scalar (UTF-8 in the file). */
export interface GgufStringValue {
  /** Always `"string"`. */
  type: "string";
  /** The value. */
  value: string;
}

/** An array of one numeric item type, held in the matching typed array. */
export type GgufNumericArrayValue = {
  [K in keyof GgufTypedArrays]: {
    /** Always `"array"`. */
    type: "array";
    /** The item type. */
    itemType: K;
    /** The items. */
    value: GgufTypedArrays[K];
  };
}[keyof GgufTypedArrays];

/** An array of `bool` items. */
export interface GgufBoolArrayValue {
  /** Always `"array"`. */
  type: "array";
  /** Always `"bool"`. */
  itemType: "bool";
  /** The items. */
  value: boolean[];
}

/** An array of `string` items. */
export interface GgufStringArrayValue {
  /** Always `"array"`. */
  type: "array";
  /** Always `"string"`. */
  itemType: "string";
  /** The items. */
  value: string[];
}

/** An array of arrays (allowed by the format; llama.cpp itself rejects them). */
export interface GgufNestedArrayValue {
  /** Always `"array"`. */
  type: "array";
  /** Always `"array"`. */
  itemType: "array";
  /** The inner arrays. */
  value: GgufArrayValue[];
}

/** Any GGUF array value. */
export type GgufArrayValue =
  | GgufNumericArrayValue
  | GgufBoolArrayValue
  | GgufStringArrayValue
  | GgufNestedArrayValue;

/** Any GGUF metadata value, tagged with its type. */
export type GgufValue =
  | GgufNumberValue
  | GgufBigIntValue
  | GgufBoolValue
  | GgufStringValue
  | GgufArrayValue;

/** One tensor's entry in the GGUF tensor-info table. */
export interface GgufTensorInfo {
  /** Tensor name, e.g. `blk.0.attn_q.weight`. */
  name: string;
  /** Dimensions in ggml order: `dims[0]` is the innermost (contiguous) one. */
  dims: number[];
  /** The ggml type id (see {@linkcode GgmlType}). */
  type: number;
  /** Byte offset of the data, relative to the start of the data section. */
  offset: number;
  /** Number of elements (product of `dims`). */
  nElements: number;
  /** Size of the data in bytes. */
  byteLength: number;
}
