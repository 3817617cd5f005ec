/**
 * The error thrown for malformed or unsupported GGUF input.
 *
 * @example
 * ```ts
 * import { GgufError } from "./error.ts";
 * const err = new GgufError("model.gguf", "not a GGUF file (magic is \"\\x7fELF\")");
 * console.log(err.message); // "model.gguf: not a GGUF file (magic is "\x7fELF")"
 * ```
 * @module
 */

/**
 * A GGUF file (or buffer) is malformed or uses something unsupported. The
 * message starts with the file's path (or `<bytes>` for an in-memory buffer)
 * and says what was wrong and where.
 *
 * @example
 * ```ts
 * import { GgufError } from "./error.ts";
 * try {
 *   throw new GgufError("/tmp/x.gguf", "unsupported GGUF version 7", 4);
 * } catch (e) {
 *   if (e instanceof GgufError) console.log(e.source, e.offset);
 * }
 * ```
 */
export class GgufError extends Error {
  /** The file path, or `<bytes>` for an in-memory buffer. */
  readonly source: string;
  /** Byte offset where the problem was found, when known. */
  readonly offset?: number;

  /**
   * Creates the error; `message` becomes `"<source>: <what>"`.
   *
   * @example
   * ```ts
   * import { GgufError } from "./error.ts";
   * console.log(new GgufError("<bytes>", "bad").message); // "<bytes>: bad"
   * ```
   */
  constructor(source: string, what: string, offset?: number) {
    super(`${source}: ${what}`);
    this.name = "GgufError";
    this.source = source;
    this.offset = offset;
  }
}
