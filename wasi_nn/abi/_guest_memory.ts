/**
 * Bounds-checked access to a guest's linear memory.
 *
 * Views over `memory.buffer` are detached when the guest grows its memory, so
 * every access checks whether the buffer changed and re-creates the views.
 * Pointers and lengths are taken as unsigned 32-bit values (guests pass `i32`),
 * and every range check is overflow-safe. A bad range throws
 * `WasiNnError(InvalidArgument)` naming the argument and the memory size.
 *
 * @example
 * ```ts
 * import { GuestMemory } from "./_guest_memory.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const guest = new GuestMemory(memory);
 * guest.writeU32(8, 42, "out_ptr");
 * console.log(guest.readU32(8, "out_ptr")); // 42
 * ```
 * @module
 */

import { Errno, WasiNnError } from "../errno.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A guest's exported memory, with bounds-checked reads and writes. Every
 * method takes the argument's name (`what`) for error messages.
 *
 * @example
 * ```ts
 * import { GuestMemory } from "./_guest_memory.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const guest = new GuestMemory(memory);
 * guest.write(100, new TextEncoder().encode("default"), "name");
 * memory.grow(1); // detaches old views; GuestMemory re-creates its own
 * console.log(guest.readString(100, 7, "name")); // "default"
 * ```
 */
export class GuestMemory {
  readonly #memory: WebAssembly.Memory;
  #buffer: ArrayBufferLike | undefined;
  #bytes: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(new ArrayBuffer(0));

  /** Wraps a `WebAssembly.Memory`. */
  constructor(memory: WebAssembly.Memory) {
    this.#memory = memory;
  }

  /**
   * The wrapped memory.
   *
   * @example
   * ```ts
   * import { GuestMemory } from "./_guest_memory.ts";
   * const memory = new WebAssembly.Memory({ initial: 1 });
   * console.log(new GuestMemory(memory).memory === memory); // true
   * ```
   */
  get memory(): WebAssembly.Memory {
    return this.#memory;
  }

  /**
   * The current size of the memory in bytes.
   *
   * @example
   * ```ts
   * import { GuestMemory } from "./_guest_memory.ts";
   * console.log(new GuestMemory(new WebAssembly.Memory({ initial: 2 })).byteLength); // 131072
   * ```
   */
  get byteLength(): number {
    return this.#refresh().length;
  }

  #refresh(): Uint8Array {
    const buffer = this.#memory.buffer;
    if (
      buffer !== this.#buffer || this.#bytes.byteLength !== buffer.byteLength
    ) {
      this.#buffer = buffer;
      this.#bytes = new Uint8Array(buffer);
      this.#view = new DataView(buffer);
    }
    return this.#bytes;
  }

  /**
   * Checks that `[ptr, ptr + len)` lies inside the memory and returns `ptr`
   * as an unsigned number. Throws `WasiNnError(InvalidArgument)` otherwise.
   *
   * @example
   * ```ts
   * import { GuestMemory } from "./_guest_memory.ts";
   * const guest = new GuestMemory(new WebAssembly.Memory({ initial: 1 }));
   * console.log(guest.check(65532, 4, "out_ptr")); // 65532
   * try { guest.check(-4, 4, "out_ptr"); } catch (err) { console.log((err as Error).message); }
   * ```
   */
  check(ptr: number, len: number, what: string): number {
    const bytes = this.#refresh();
    const start = ptr >>> 0;
    // Guest lengths arrive as i32 (negative above 2^31); computed lengths
    // (count * size) may exceed 2^32 and must stay as they are.
    const length = unsigned(len);
    const size = bytes.length;
    if (length > size || start > size - length) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `${what}: ${length} byte${length === 1 ? "" : "s"} at 0x${
          start.toString(16)
        } (${start}) run past the end of guest memory (${size} bytes)`,
      );
    }
    return start;
  }

  /**
   * Reads a little-endian u32 at `ptr`.
   *
   * @example
   * ```ts
   * import { GuestMemory } from "./_guest_memory.ts";
   * const memory = new WebAssembly.Memory({ initial: 1 });
   * new Uint8Array(memory.buffer).set([1, 2, 0, 0], 16);
   * console.log(new GuestMemory(memory).readU32(16, "tensor.dims_len")); // 513
   * ```
   */
  readU32(ptr: number, what: string): number {
    const start = this.check(ptr, 4, what);
    return this.#view.getUint32(start, true);
  }

  /**
   * Writes `value` as a little-endian u32 at `ptr`.
   *
   * @example
   * ```ts
   * import { GuestMemory } from "./_guest_memory.ts";
   * const memory = new WebAssembly.Memory({ initial: 1 });
   * new GuestMemory(memory).writeU32(0, 0x01020304, "out_graph_ptr");
   * console.log([...new Uint8Array(memory.buffer, 0, 4)]); // [4, 3, 2, 1]
   * ```
   */
  writeU32(ptr: number, value: number, what: string): void {
    const start = this.check(ptr, 4, what);
    this.#view.setUint32(start, value >>> 0, true);
  }

  /**
   * A view (no copy) of `len` bytes at `ptr`. It stays valid only until the
   * memory grows: copy it to keep it.
   *
   * @example
   * ```ts
   * import { GuestMemory } from "./_guest_memory.ts";
   * const guest = new GuestMemory(new WebAssembly.Memory({ initial: 1 }));
   * console.log(guest.view(0, 3, "data").length); // 3
   * ```
   */
  view(ptr: number, len: number, what: string): Uint8Array {
    const start = this.check(ptr, len, what);
    return this.#bytes.subarray(start, start + unsigned(len));
  }

  /**
   * A copy of `len` bytes at `ptr`.
   *
   * @example
   * ```ts
   * import { GuestMemory } from "./_guest_memory.ts";
   * const guest = new GuestMemory(new WebAssembly.Memory({ initial: 1 }));
   * const copy = guest.copy(0, 3, "data");
   * guest.write(0, [9], "data");
   * console.log(copy[0]); // 0
   * ```
   */
  copy(ptr: number, len: number, what: string): Uint8Array {
    return this.view(ptr, len, what).slice();
  }

  /**
   * Writes `data` at `ptr`.
   *
   * @example
   * ```ts
   * import { GuestMemory } from "./_guest_memory.ts";
   * const guest = new GuestMemory(new WebAssembly.Memory({ initial: 1 }));
   * guest.write(10, new Uint8Array([1, 2, 3]), "out_buf");
   * console.log([...guest.view(10, 3, "out_buf")]); // [1, 2, 3]
   * ```
   */
  write(ptr: number, data: ArrayLike<number>, what: string): void {
    const start = this.check(ptr, data.length, what);
    this.#bytes.set(data, start);
  }

  /**
   * Decodes `len` bytes at `ptr` as UTF-8. Invalid UTF-8 throws
   * `WasiNnError(InvalidArgument)`.
   *
   * @example
   * ```ts
   * import { GuestMemory } from "./_guest_memory.ts";
   * const guest = new GuestMemory(new WebAssembly.Memory({ initial: 1 }));
   * guest.write(0, new TextEncoder().encode("héllo"), "name");
   * console.log(guest.readString(0, 6, "name")); // "héllo"
   * ```
   */
  readString(ptr: number, len: number, what: string): string {
    const bytes = this.view(ptr, len, what);
    try {
      return utf8.decode(bytes);
    } catch (cause) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `${what}: the ${bytes.length} bytes at 0x${
          (ptr >>> 0).toString(16)
        } are not valid UTF-8`,
        { cause },
      );
    }
  }
}

function unsigned(len: number): number {
  return Number.isSafeInteger(len) && len >= 0 ? len : len >>> 0;
}

/**
 * Wraps the memory a getter returns, or throws `WasiNnError(MissingMemory)`
 * (errno 3) when there is none. WasmEdge traps in that case; we report it.
 *
 * @example
 * ```ts
 * import { requireGuestMemory } from "./_guest_memory.ts";
 * import { WasiNnError } from "../errno.ts";
 * try {
 *   requireGuestMemory(undefined);
 * } catch (err) {
 *   console.log((err as WasiNnError).errno); // 3
 * }
 * ```
 */
export function requireGuestMemory(memory: unknown): GuestMemory {
  if (!(memory instanceof WebAssembly.Memory)) {
    throw new WasiNnError(
      Errno.MissingMemory,
      "the guest exports no memory named 'memory' (or it is not available yet), so wasi_ephemeral_nn cannot read its arguments",
    );
  }
  return new GuestMemory(memory);
}
