/**
 * Small helpers for passing strings and errors across the FFI.
 * @module
 */

import { LlamaError, type Status } from "./errors.ts";
import { ERROR_SIZE } from "./_struct.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A NUL-terminated UTF-8 copy of a string. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  const b = enc.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** A fresh wnb_error buffer. */
export function errorBuffer(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(ERROR_SIZE);
}

/** Reads the message of a wnb_error buffer. */
export function errorMessage(err: Uint8Array): string {
  const msg = err.subarray(4);
  const end = msg.indexOf(0);
  return dec.decode(msg.subarray(0, end < 0 ? msg.length : end));
}

/** Throws a LlamaError when status is not 0. */
export function check(status: number, err: Uint8Array, what: string): void {
  if (status === 0) return;
  const msg = errorMessage(err) || `${what} failed with status ${status}`;
  throw new LlamaError(status as Status, msg);
}

/**
 * Calls a "size-returning" shim function: it returns the size it needs and
 * writes only when the buffer is big enough. Retries once with the right size.
 */
export function readSized(
  call: (buf: Uint8Array<ArrayBuffer>, cap: number) => number,
  initial = 4096,
): Uint8Array {
  let buf = new Uint8Array(initial);
  let n = call(buf, buf.length);
  if (n > buf.length) {
    buf = new Uint8Array(n);
    n = call(buf, buf.length);
  }
  return buf.subarray(0, Math.max(0, Math.min(n, buf.length)));
}

/** Decodes UTF-8 bytes. */
export function utf8(bytes: Uint8Array): string {
  return dec.decode(bytes);
}

/**
 * Like readSized, for shim functions that return a negative wnb_status on
 * failure (with err filled): throws the LlamaError instead.
 */
export function readSizedChecked(
  call: (buf: Uint8Array<ArrayBuffer>, cap: number) => number,
  err: Uint8Array,
  what: string,
  initial = 4096,
): Uint8Array {
  const checked = (b: Uint8Array<ArrayBuffer>, c: number) => {
    const n = call(b, c);
    if (n < 0) check(-n, err, what);
    return n;
  };
  return readSized(checked, initial);
}
