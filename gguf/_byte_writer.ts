/**
 * Internal: a growable little-endian byte buffer for building GGUF headers.
 * @module
 */

const encoder = new TextEncoder();

/** Appends little-endian values to a growing buffer. */
export class ByteWriter {
  #buf = new Uint8Array(1 << 16);
  #view = new DataView(this.#buf.buffer);
  #len = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  #reserve(n: number): number {
    const at = this.#len;
    const need = at + n;
    if (need > this.#buf.length) {
      let cap = this.#buf.length * 2;
      while (cap < need) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(0, at));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    this.#len = need;
    return at;
  }

  u8(v: number): void {
    const at = this.#reserve(1);
    this.#view.setUint8(at, v);
  }
  i8(v: number): void {
    const at = this.#reserve(1);
    this.#view.setInt8(at, v);
  }
  u16(v: number): void {
    const at = this.#reserve(2);
    this.#view.setUint16(at, v, true);
  }
  i16(v: number): void {
    const at = this.#reserve(2);
    this.#view.setInt16(at, v, true);
  }
  u32(v: number): void {
    const at = this.#reserve(4);
    this.#view.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.#reserve(4);
    this.#view.setInt32(at, v, true);
  }
  f32(v: number): void {
    const at = this.#reserve(4);
    this.#view.setFloat32(at, v, true);
  }
  f64(v: number): void {
    const at = this.#reserve(8);
    this.#view.setFloat64(at, v, true);
  }
  u64(v: bigint | number): void {
    const at = this.#reserve(8);
    this.#view.setBigUint64(at, BigInt(v), true);
  }
  i64(v: bigint): void {
    const at = this.#reserve(8);
    this.#view.setBigInt64(at, v, true);
  }
  bytes(b: Uint8Array): void {
    const at = this.#reserve(b.length);
    this.#buf.set(b, at);
  }
  /** A GGUF string: u64 byte length, then UTF-8. */
  string(s: string): void {
    const b = encoder.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  /** Zero bytes up to a multiple of `alignment`. */
  pad(alignment: number): void {
    const rem = this.#len % alignment;
    if (rem !== 0) this.#reserve(alignment - rem); // new bytes are zero
  }

  /** The bytes written (a view, not a copy). */
  result(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
}
