/**
 * Internal: a little-endian cursor over a prefix of a GGUF file. When a read
 * runs past the prefix but not past the file, it throws {@linkcode NeedMoreBytes}
 * so the caller can load a longer prefix and parse again; past the end of the
 * file it throws a {@linkcode GgufError} that says the file is truncated.
 * @module
 */

import { GgufError } from "./error.ts";

/** Thrown when the loaded prefix is too short; `needed` is the prefix length wanted. */
export class NeedMoreBytes extends Error {
  /** Prefix length (bytes from the file start) that would satisfy the read. */
  readonly needed: number;
  /** Creates the signal. */
  constructor(needed: number) {
    super(`need ${needed} bytes`);
    this.needed = needed;
  }
}

const decoder = new TextDecoder("utf-8", { fatal: false });
/** Bytes as a string of one character (code 0..255) per byte. */
function binaryString(b: Uint8Array): string {
  let out = "";
  // In chunks: fromCharCode takes its bytes as arguments.
  for (let i = 0; i < b.length; i += 4096) {
    out += String.fromCharCode.apply(
      null,
      b.subarray(i, i + 4096) as unknown as number[],
    );
  }
  return out;
}

/** What is being read, for error messages; a function defers building it. */
export type Label = string | (() => string);

function label(what: Label): string {
  return typeof what === "function" ? what() : what;
}

/** Reads little-endian values from a prefix of a file. */
export class ByteReader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly source: string;
  readonly fileSize: number;
  /** Reads may not end past this offset (the header's size bound). */
  readonly maxEnd: number;
  /** The longest string allowed, in bytes. */
  readonly maxString: number;
  /** Strings come back one character per byte (exact bytes), not UTF-8 decoded. */
  readonly binary: boolean;
  pos = 0;

  constructor(
    bytes: Uint8Array,
    source: string,
    fileSize: number,
    bounds: { maxEnd?: number; maxString?: number; binary?: boolean } = {},
  ) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.source = source;
    this.fileSize = fileSize;
    this.maxEnd = bounds.maxEnd ?? Infinity;
    this.maxString = bounds.maxString ?? Infinity;
    this.binary = bounds.binary ?? false;
  }

  /** Fails with a clear error. */
  fail(what: string, offset: number = this.pos): never {
    throw new GgufError(this.source, what, offset);
  }

  /** Ensures `n` more bytes are available for reading `what`. */
  need(n: number, what: Label): void {
    const end = this.pos + n;
    if (end > this.maxEnd && end <= this.fileSize) {
      this.fail(
        `the header is larger than ${this.maxEnd} bytes (reading ${
          label(what)
        } at offset ${this.pos}); headers of real models are a few MiB`,
      );
    }
    if (end <= this.bytes.length) return;
    if (end > this.fileSize) {
      this.fail(
        `truncated file: ${
          label(what)
        } needs ${n} bytes at offset ${this.pos}, ` +
          `but the file is ${this.fileSize} bytes long`,
      );
    }
    throw new NeedMoreBytes(end);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  i8(what: string): number {
    this.need(1, what);
    return this.view.getInt8(this.pos++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16(what: string): number {
    this.need(2, what);
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(what: string): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(what: string): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64(what: Label): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A u64 that must be a safe integer (counts, lengths, offsets, dims). */
  size(what: Label): number {
    const start = this.pos;
    this.need(8, what);
    // Two u32 halves: no BigInt on this hot path (every string has a length).
    const lo = this.view.getUint32(start, true);
    const hi = this.view.getUint32(start + 4, true);
    if (hi > 0x1fffff) {
      const v = this.view.getBigUint64(start, true);
      this.fail(`${label(what)} is ${v}, which is not a plausible size`, start);
    }
    this.pos += 8;
    return hi * 0x100000000 + lo;
  }

  /** A GGUF string: u64 byte length, then UTF-8 bytes. */
  string(what: Label): string {
    const start = this.pos;
    const len = this.size(() => `length of ${label(what)}`);
    this.checkLength(len, what, start);
    if (start + 8 + len > this.fileSize) {
      this.fail(
        `truncated file: ${label(what)} claims ${len} bytes at offset ${
          start + 8
        }, ` +
          `but the file is ${this.fileSize} bytes long`,
        start,
      );
    }
    this.need(len, what);
    const start2 = this.pos;
    this.pos += len;
    if (this.binary) return binaryString(this.bytes.subarray(start2, this.pos));
    if (len <= 64) {
      // Fast path for short ASCII strings (most vocabulary entries).
      let ascii = true;
      for (let i = start2; i < this.pos; i++) {
        if (this.bytes[i] >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) {
        return String.fromCharCode.apply(
          null,
          this.bytes.subarray(start2, this.pos) as unknown as number[],
        );
      }
    }
    return decoder.decode(this.bytes.subarray(start2, this.pos));
  }

  /** Fails when a string's length is over the bound. */
  checkLength(len: number, what: Label, at: number): void {
    if (len > this.maxString) {
      this.fail(
        `${
          label(what)
        } is ${len} bytes long; at most ${this.maxString} allowed`,
        at,
      );
    }
  }

  /** Steps over a GGUF string, checking its length like `string` does. */
  skipString(what: Label): void {
    const start = this.pos;
    // Fast path (no closures): a short string wholly inside the prefix.
    if (start + 8 <= this.bytes.length) {
      const len = this.view.getUint32(start, true);
      const end = start + 8 + len;
      if (
        this.view.getUint32(start + 4, true) === 0 && len <= this.maxString &&
        end <= this.bytes.length && end <= this.maxEnd
      ) {
        this.pos = end;
        return;
      }
    }
    const len = this.size(() => `length of ${label(what)}`);
    this.checkLength(len, what, start);
    this.need(len, what);
    this.pos += len;
  }

  /** Copies `n` bytes into a new, aligned buffer (for typed arrays). */
  copy(n: number, what: string): ArrayBuffer {
    this.need(n, what);
    const out = this.bytes.slice(this.pos, this.pos + n).buffer;
    this.pos += n;
    return out;
  }
}
