/**
 * ggml tensor types: their ids as stored in GGUF files, their names and block
 * layouts, and the byte size of a tensor of a given type and shape.
 *
 * @example
 * ```ts
 * import { GgmlType, ggmlTypeName, tensorByteLength } from "./ggml_type.ts";
 *
 * console.log(ggmlTypeName(GgmlType.Q8_0)); // "Q8_0"
 * console.log(tensorByteLength(GgmlType.Q8_0, [64, 10])); // 680
 * ```
 * @module
 */

/**
 * ggml tensor type ids (`enum ggml_type` of the pinned llama.cpp).
 *
 * @example
 * ```ts
 * import { GgmlType } from "./ggml_type.ts";
 * console.log(GgmlType.F16, GgmlType.Q8_0); // 1 8
 * ```
 */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
  NVFP4: 40,
  Q1_0: 41,
  Q2_0: 42,
} as const;

/** One ggml type id. */
export type GgmlType = typeof GgmlType[keyof typeof GgmlType];

/** The block layout of a ggml type. */
export interface GgmlTypeLayout {
  /** Elements per block (1 for plain types such as F32). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

const QK_K = 256;

/** Block layouts by type id (from gguf-py's `GGML_QUANT_SIZES`). */
const LAYOUTS: Record<number, GgmlTypeLayout> = {
  0: { blockSize: 1, typeSize: 4 },
  1: { blockSize: 1, typeSize: 2 },
  2: { blockSize: 32, typeSize: 2 + 16 },
  3: { blockSize: 32, typeSize: 2 + 2 + 16 },
  6: { blockSize: 32, typeSize: 2 + 4 + 16 },
  7: { blockSize: 32, typeSize: 2 + 2 + 4 + 16 },
  8: { blockSize: 32, typeSize: 2 + 32 },
  9: { blockSize: 32, typeSize: 4 + 4 + 32 },
  10: { blockSize: QK_K, typeSize: 2 + 2 + QK_K / 16 + QK_K / 4 },
  11: { blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 + 12 },
  12: { blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + 12 },
  13: { blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + QK_K / 8 + 12 },
  14: { blockSize: QK_K, typeSize: 2 + QK_K / 2 + QK_K / 4 + QK_K / 16 },
  15: { blockSize: QK_K, typeSize: 4 + QK_K + QK_K / 8 },
  16: { blockSize: QK_K, typeSize: 2 + QK_K / 4 },
  17: { blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 32 },
  18: { blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 },
  19: { blockSize: QK_K, typeSize: 2 + QK_K / 8 + QK_K / 16 },
  20: { blockSize: 32, typeSize: 2 + 16 },
  21: {
    blockSize: QK_K,
    typeSize: 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4,
  },
  22: { blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 16 },
  23: { blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + QK_K / 64 },
  24: { blockSize: 1, typeSize: 1 },
  25: { blockSize: 1, typeSize: 2 },
  26: { blockSize: 1, typeSize: 4 },
  27: { blockSize: 1, typeSize: 8 },
  28: { blockSize: 1, typeSize: 8 },
  29: { blockSize: QK_K, typeSize: QK_K / 8 + QK_K / 16 + QK_K / 32 },
  30: { blockSize: 1, typeSize: 2 },
  34: { blockSize: QK_K, typeSize: 2 + 4 * 13 },
  35: { blockSize: QK_K, typeSize: 2 + 64 },
  39: { blockSize: 32, typeSize: 1 + 16 },
  40: { blockSize: 64, typeSize: 4 + 32 },
  41: { blockSize: 128, typeSize: 2 + 16 },
  42: { blockSize: 64, typeSize: 2 + 16 },
};

/**
 * The block layout of a ggml type, or `undefined` for an unknown id.
 *
 * @example
 * ```ts
 * import { GgmlType, ggmlTypeLayout } from "./ggml_type.ts";
 * console.log(ggmlTypeLayout(GgmlType.Q8_0)); // { blockSize: 32, typeSize: 34 }
 * ```
 */
export function ggmlTypeLayout(type: number): GgmlTypeLayout | undefined {
  return LAYOUTS[type];
}

/**
 * The name of a ggml type id (`"F16"`, `"Q8_0"`, ...), or `"TYPE_<id>"` when unknown.
 *
 * @example
 * ```ts
 * import { ggmlTypeName } from "./ggml_type.ts";
 * console.log(ggmlTypeName(1)); // "F16"
 * ```
 */
export function ggmlTypeName(type: number): string {
  for (const [name, id] of Object.entries(GgmlType)) {
    if (id === type) return name;
  }
  return `TYPE_${type}`;
}

/**
 * The byte size of a tensor of `type` with dimensions `dims` (ggml order).
 * Throws a `RangeError` for an unknown type or when `dims[0]` is not a
 * multiple of the type's block size.
 *
 * @example
 * ```ts
 * import { GgmlType, tensorByteLength } from "./ggml_type.ts";
 * console.log(tensorByteLength(GgmlType.F16, [64, 32000])); // 4096000
 * ```
 */
export function tensorByteLength(
  type: number,
  dims: readonly number[],
): number {
  const layout = LAYOUTS[type];
  if (!layout) throw new RangeError(`unknown ggml type id ${type}`);
  const n0 = dims.length > 0 ? dims[0] : 1;
  if (n0 % layout.blockSize !== 0) {
    throw new RangeError(
      `${ggmlTypeName(type)} needs the first dimension to be a multiple of ` +
        `${layout.blockSize}, got ${n0}`,
    );
  }
  let rows = 1;
  for (let i = 1; i < dims.length; i++) rows *= dims[i];
  return (n0 / layout.blockSize) * layout.typeSize * rows;
}
