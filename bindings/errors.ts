/**
 * The error the bindings throw: a `wnb_status` code from the shim plus its
 * message.
 *
 * @example
 * ```ts
 * import { LlamaError, Status } from "./errors.ts";
 * const e = new LlamaError(Status.FileNotFound, "model file not found: x.gguf");
 * console.log(e.code === Status.FileNotFound, e.statusName);
 * ```
 * @module
 */

/** `enum wnb_status` of the shim. */
export const Status = {
  Ok: 0,
  InvalidArgument: 1,
  FileNotFound: 2,
  FileUnreadable: 3,
  InvalidModel: 4,
  OutOfMemory: 5,
  Decode: 6,
  NoKvSpace: 7,
  Cancelled: 8,
  Grammar: 9,
  Template: 10,
  State: 11,
  Internal: 12,
  /** An RPC endpoint does not answer (the message names it). */
  Unreachable: 13,
  /** Not from the shim: the library is missing, or an object was used after close. */
  Usage: 100,
} as const;

/** One status value. */
export type Status = typeof Status[keyof typeof Status];

/** An error from libwasi_nn_backend.so (or from misuse of the bindings). */
export class LlamaError extends Error {
  /** The `wnb_status` code. */
  readonly code: Status;

  /** Creates an error with a status code and a message. */
  constructor(code: Status, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LlamaError";
    this.code = code;
  }

  /** The status's name, e.g. "FileNotFound". */
  get statusName(): string {
    return Object.entries(Status).find(([, v]) => v === this.code)?.[0] ??
      `Status${this.code}`;
  }
}
