/**
 * `MemFile`: model bytes held in an anonymous, sealed memory file (Linux
 * `memfd_create`) instead of a temporary file. It has a path,
 * `/proc/self/fd/<fd>`, that `Model.load` can open while the file is open;
 * nothing ever reaches the disk, and the memory goes back when the file is
 * closed (a loaded model keeps its own mapping or copy) or when the process
 * ends, even by SIGKILL.
 *
 * @example
 * ```ts ignore
 * import { MemFile, Model } from "./mod.ts";
 * const bytes = await Deno.readFile(".cache/models/tiny.gguf");
 * using file = await MemFile.create(bytes);
 * using model = await Model.load(file.path);
 * file.close(); // the model keeps what it needs
 * console.log(model.nVocab);
 * ```
 * @module
 */

import { symbols } from "./_library.ts";
import { check, errorBuffer } from "./_buffers.ts";
import { LlamaError, Status } from "./errors.ts";

/** An open, read-only memory file holding a copy of some bytes. */
export class MemFile {
  #fd: number;
  /** The bytes it holds. */
  readonly size: number;

  private constructor(fd: number, size: number) {
    this.#fd = fd;
    this.size = size;
  }

  /**
   * Copies `bytes` into a new sealed memory file without blocking the event
   * loop. `bytes` must not change until the promise settles.
   */
  static async create(bytes: Uint8Array): Promise<MemFile> {
    const out = new Int32Array(1);
    const err = errorBuffer();
    const status = await symbols().wnb_memfile_create(
      bytes as Uint8Array<ArrayBuffer>,
      BigInt(bytes.length),
      out,
      err,
    );
    check(status, err, "creating a memory file");
    return new MemFile(out[0], bytes.length);
  }

  /** Blocking {@linkcode MemFile.create} (for hosts that cannot await). */
  static createSync(bytes: Uint8Array): MemFile {
    const out = new Int32Array(1);
    const err = errorBuffer();
    const status = symbols().wnb_memfile_create_sync(
      bytes as Uint8Array<ArrayBuffer>,
      BigInt(bytes.length),
      out,
      err,
    );
    check(status, err, "creating a memory file");
    return new MemFile(out[0], bytes.length);
  }

  /** The path that opens it (valid until `close()`). */
  get path(): string {
    if (this.#fd < 0) {
      throw new LlamaError(
        Status.Usage,
        "the memory file was closed; create it again",
      );
    }
    return `/proc/self/fd/${this.#fd}`;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Closes the descriptor (idempotent). */
  close(): void {
    if (this.#fd < 0) return;
    symbols().wnb_memfile_close(this.#fd);
    this.#fd = -1;
  }

  /** Closes at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }
}
