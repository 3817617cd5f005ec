/**
 * Internal: encoding float32 values into the bytes of a ggml tensor type
 * (F32, F16, BF16, Q8_0), matching ggml's reference conversions.
 * @module
 */

import { GgmlType, ggmlTypeName } from "./ggml_type.ts";

/** The ggml types {@linkcode encodeFloats} can produce. */
export const ENCODABLE_TYPES: readonly number[] = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q8_0,
];

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** float32 -> bfloat16 bits, as `GGML_FP32_TO_BF16` (round to nearest even). */
function toBf16(values: Float32Array): Uint8Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i];
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = (x >>> 16) | 64; // NaN
    else out[i] = ((x + (0x7fff + ((x >>> 16) & 1))) >>> 16) & 0xffff;
  }
  return bytesOf(out);
}

/**
 * Q8_0 as `quantize_row_q8_0_ref`: blocks of 32 values, an f16 scale
 * `d = amax / 127` and 32 int8 `round(x / d)`. Float32 arithmetic is
 * reproduced with `Math.fround` so the bytes match llama-quantize's.
 */
function toQ8_0(values: Float32Array): Uint8Array {
  const nBlocks = values.length / 32;
  const out = new Uint8Array(nBlocks * 34);
  const view = new DataView(out.buffer);
  const f = Math.fround;
  for (let b = 0; b < nBlocks; b++) {
    const base = b * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(values[base + j]);
      if (a > amax) amax = a;
    }
    const d = f(amax / 127);
    const id = d !== 0 ? f(1 / d) : 0;
    const o = b * 34;
    view.setFloat16(o, d, true);
    for (let j = 0; j < 32; j++) {
      const x0 = f(values[base + j] * id);
      const q = x0 < 0 ? -Math.round(-x0) : Math.round(x0);
      view.setInt8(o + 2 + j, q);
    }
  }
  return out;
}

/**
 * Encodes float32 values as the bytes of ggml type `type` (F32, F16, BF16
 * or Q8_0). Q8_0 needs a length that is a multiple of 32.
 */
export function encodeFloats(values: Float32Array, type: number): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return bytesOf(values);
    case GgmlType.F16:
      return bytesOf(new Float16Array(values));
    case GgmlType.BF16:
      return toBf16(values);
    case GgmlType.Q8_0:
      if (values.length % 32 !== 0) {
        throw new RangeError(
          `Q8_0 needs a multiple of 32 values, got ${values.length}`,
        );
      }
      return toQ8_0(values);
    default:
      throw new RangeError(
        `cannot encode floats as ${ggmlTypeName(type)}: give raw bytes ` +
          `(a Uint8Array) for this type`,
      );
  }
}
