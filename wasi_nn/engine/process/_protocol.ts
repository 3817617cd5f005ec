/**
 * The wire between the host and an engine process: length-prefixed frames on
 * the child's stdin and stdout. Control messages (requests, replies, task
 * events, log records) are JSON frames; the hot path, the tokens of one
 * decode step, is one binary frame for every streaming session in the batch.
 *
 * Frame: `u32 length (LE) | u8 kind | payload` (length counts kind and payload).
 * A step frame's payload is a list of entries:
 * `u32 task | u8 what | i32 token | u32 n | n bytes`, where `what` is
 * {@linkcode StepKind}: a token's bytes, released text, a streamed token, or
 * the end of a stream.
 *
 * @example
 * ```ts
 * import { decodeStep, encodeStep, FrameKind, FrameReader, frame } from "./_protocol.ts";
 * const bytes = frame(FrameKind.Step, encodeStep([{ task: 1, what: 0, token: 42, bytes: new Uint8Array([104]) }]));
 * const reader = new FrameReader(ReadableStream.from([bytes]));
 * const f = await reader.next();
 * console.log(f?.kind === FrameKind.Step, decodeStep(f!.payload)[0].token); // true 42
 * ```
 * @module
 */

import { Errno, toWasiNn, WasiNnError } from "../../errno.ts";

/** What a frame carries. */
export enum FrameKind {
  /** Host -> engine: `{ id, op, ...args }` (JSON); `id` 0 wants no reply. */
  Request = 1,
  /** Engine -> host: `{ id, value }` or `{ id, error }` (JSON). */
  Reply = 2,
  /** Engine -> host: one decode step's tokens (binary, {@linkcode encodeStep}). */
  Step = 3,
  /** Engine -> host: a task ended, or a load's progress (JSON). */
  Event = 4,
  /** Engine -> host: llama.cpp's log records (JSON). */
  Log = 5,
}

/** What a step entry is. */
export enum StepKind {
  /** A generated token and its bytes (onToken tasks). */
  Token = 0,
  /** Text released by the stopping criteria (onText tasks). */
  Text = 1,
  /** The token an on-demand task was asked for. */
  Next = 2,
  /** An on-demand stream ended (no more tokens). */
  End = 3,
}

/** One entry of a step frame. */
export interface StepEntry {
  /** The task's id. */
  task: number;
  /** What it is. */
  what: StepKind;
  /** The token (Token entries; -1 otherwise). */
  token: number;
  /** The token's bytes, or the text's UTF-8. */
  bytes: Uint8Array;
}

/** An error as it crosses the wire. */
export interface WireError {
  /** The WASI-NN errno. */
  errno: number;
  /** The message. */
  message: string;
}

/** A frame: its kind and payload bytes. */
export function frame(kind: FrameKind, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 1 + payload.length, true);
  out[4] = kind;
  out.set(payload, 5);
  return out;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Marks the numbers JSON cannot hold (a logit bias of -Infinity). */
const NON_FINITE = "\u0000num:";

/** JSON bytes of a message; Infinity and NaN survive the trip. */
export function encodeJson(value: unknown): Uint8Array {
  return enc.encode(
    JSON.stringify(
      value,
      (_k, v) =>
        typeof v === "number" && !Number.isFinite(v)
          ? `${NON_FINITE}${v}`
          : v instanceof Int32Array || v instanceof Float32Array
          ? Array.from(v)
          : v,
    ),
  );
}

/** The message in JSON bytes written by {@linkcode encodeJson}. */
export function decodeJson<T>(bytes: Uint8Array): T {
  return JSON.parse(
    dec.decode(bytes),
    (_k, v) =>
      typeof v === "string" && v.startsWith(NON_FINITE)
        ? Number(v.slice(NON_FINITE.length))
        : v,
  ) as T;
}

/** A step frame's payload. */
export function encodeStep(entries: StepEntry[]): Uint8Array {
  let size = 0;
  for (const e of entries) size += 13 + e.bytes.length;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  for (const e of entries) {
    v.setUint32(at, e.task, true);
    out[at + 4] = e.what;
    v.setInt32(at + 5, e.token, true);
    v.setUint32(at + 9, e.bytes.length, true);
    out.set(e.bytes, at + 13);
    at += 13 + e.bytes.length;
  }
  return out;
}

/** The entries of a step frame's payload. */
export function decodeStep(payload: Uint8Array): StepEntry[] {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const out: StepEntry[] = [];
  for (let at = 0; at + 13 <= payload.length;) {
    const n = v.getUint32(at + 9, true);
    out.push({
      task: v.getUint32(at, true),
      what: payload[at + 4] as StepKind,
      token: v.getInt32(at + 5, true),
      bytes: payload.slice(at + 13, at + 13 + n),
    });
    at += 13 + n;
  }
  return out;
}

/** An error for the wire: a WasiNnError's errno, or RuntimeError. */
export function toWire(e: unknown): WireError {
  const w = toWasiNn(e);
  return { errno: w.errno, message: w.message };
}

/** The error a wire error stands for. */
export function fromWire(e: WireError): WasiNnError {
  return new WasiNnError(e.errno as Errno, e.message);
}

/** Reads frames from a byte stream. */
export class FrameReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);

  /** Frames of `stream`. */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** The next frame, or null at the end of the stream. */
  async next(): Promise<{ kind: FrameKind; payload: Uint8Array } | null> {
    for (;;) {
      if (this.#buf.length >= 4) {
        const v = new DataView(this.#buf.buffer, this.#buf.byteOffset, 4);
        const len = v.getUint32(0, true);
        if (this.#buf.length >= 4 + len) {
          const kind = this.#buf[4] as FrameKind;
          const payload = this.#buf.slice(5, 4 + len);
          this.#buf = this.#buf.subarray(4 + len);
          return { kind, payload };
        }
      }
      const { value, done } = await this.#reader.read();
      if (done) return null;
      if (this.#buf.length === 0) this.#buf = value;
      else {
        const both = new Uint8Array(this.#buf.length + value.length);
        both.set(this.#buf);
        both.set(value, this.#buf.length);
        this.#buf = both;
      }
    }
  }

  /** Stops reading. */
  cancel(): void {
    this.#reader.cancel().catch(() => {});
  }
}

/** Writes frames in order to a byte sink. */
export class FrameWriter {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #last: Promise<void> = Promise.resolve();
  #broken = false;

  /** Frames to `stream`. */
  constructor(stream: WritableStream<Uint8Array>) {
    this.#writer = stream.getWriter();
  }

  /** Queues a frame; a broken pipe is ignored (the reader side sees the end). */
  send(kind: FrameKind, payload: Uint8Array): void {
    if (this.#broken) return;
    const bytes = frame(kind, payload);
    this.#last = this.#last.then(() => this.#writer.write(bytes)).catch(() => {
      this.#broken = true;
    });
  }

  /** A JSON frame. */
  json(kind: FrameKind, value: unknown): void {
    this.send(kind, encodeJson(value));
  }

  /** Closes the sink once the queued frames are written. */
  async close(): Promise<void> {
    await this.#last;
    await this.#writer.close().catch(() => {});
  }
}

/** Thrown for a frame the other side should never send. */
export function protocolError(what: string): WasiNnError {
  return new WasiNnError(
    Errno.RuntimeError,
    `engine process protocol: ${what}`,
  );
}
