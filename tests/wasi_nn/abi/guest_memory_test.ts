import {
  deepStrictEqual,
  strictEqual as assertEquals,
  throws,
} from "node:assert/strict";
import {
  GuestMemory,
  requireGuestMemory,
} from "../../../wasi_nn/abi/_guest_memory.ts";
import { Errno, WasiNnError } from "../../../wasi_nn/errno.ts";

const PAGE = 65536;

function invalid(fn: () => unknown, ...parts: string[]) {
  throws(fn, (err: unknown) => {
    if (!(err instanceof WasiNnError)) return false;
    assertEquals(err.errno, Errno.InvalidArgument);
    for (const part of parts) {
      assertEquals(
        err.message.includes(part),
        true,
        `${err.message} lacks ${part}`,
      );
    }
    return true;
  });
}

Deno.test("check: exact bounds, as unsigned 32-bit, overflow-safe", () => {
  const guest = new GuestMemory(new WebAssembly.Memory({ initial: 1 }));
  assertEquals(guest.check(0, PAGE, "a"), 0);
  assertEquals(guest.check(PAGE - 4, 4, "a"), PAGE - 4);
  assertEquals(guest.check(PAGE, 0, "a"), PAGE); // empty range at the end
  invalid(() => guest.check(PAGE - 3, 4, "out_ptr"), "out_ptr", "65536 bytes");
  invalid(() => guest.check(0, PAGE + 1, "a"));
  invalid(() => guest.check(1, PAGE, "a"));
  invalid(() => guest.check(PAGE + 1, 0, "a"));
  invalid(() => guest.check(-1, 1, "a"), "0xffffffff"); // i32 -1 = 0xffffffff
  invalid(() => guest.check(-1, 2, "a")); // would wrap to 0 in 32 bits
  invalid(() => guest.check(4, -1, "a")); // length 0xffffffff
  invalid(() => guest.check(0, 2 ** 32, "a")); // computed length past 2^32
  invalid(() => guest.check(0, 2 ** 32 + 4, "a")); // must not wrap to 4
});

Deno.test("check: a negative pointer is a large unsigned one", () => {
  const guest = new GuestMemory(new WebAssembly.Memory({ initial: 1 }));
  invalid(() => guest.check(-PAGE, 0, "a")); // 0xffff0000 > size
});

Deno.test("u32 reads and writes are little-endian and unaligned-safe", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const guest = new GuestMemory(memory);
  guest.writeU32(1, 0x01020304, "p");
  deepStrictEqual([...new Uint8Array(memory.buffer, 0, 6)], [0, 4, 3, 2, 1, 0]);
  assertEquals(guest.readU32(1, "p"), 0x01020304);
  guest.writeU32(PAGE - 4, -1, "p"); // i32 -1 is written as 0xffffffff
  assertEquals(guest.readU32(PAGE - 4, "p"), 0xffffffff);
  invalid(() => guest.readU32(PAGE - 3, "tensor.type"), "tensor.type");
  invalid(() => guest.writeU32(PAGE - 1, 0, "out_graph_ptr"), "out_graph_ptr");
  assertEquals(new Uint8Array(memory.buffer)[PAGE - 1], 0xff); // untouched
});

Deno.test("view, copy, write and readString", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const guest = new GuestMemory(memory);
  guest.write(10, new TextEncoder().encode("héllo"), "buf");
  assertEquals(guest.readString(10, 6, "name"), "héllo");
  const view = guest.view(10, 6, "buf");
  const copy = guest.copy(10, 6, "buf");
  guest.write(10, [0x48], "buf");
  assertEquals(view[0], 0x48);
  assertEquals(copy[0], 0x68);
  assertEquals(view.byteOffset, 10);
  invalid(() => guest.write(PAGE - 2, [1, 2, 3], "out_buf"), "out_buf");
  deepStrictEqual([...guest.view(PAGE - 2, 2, "x")], [0, 0]); // nothing written
  guest.write(20, [0x61, 0xc3], "x"); // truncated 2-byte sequence
  invalid(() => guest.readString(20, 2, "name"), "name", "UTF-8");
  assertEquals(guest.readString(PAGE, 0, "name"), "");
});

Deno.test("growth detaches old views; GuestMemory re-creates its own", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const guest = new GuestMemory(memory);
  guest.writeU32(0, 7, "p");
  const old = guest.view(0, 4, "p");
  memory.grow(2);
  assertEquals(old.byteLength, 0); // detached
  assertEquals(guest.byteLength, 3 * PAGE);
  assertEquals(guest.readU32(0, "p"), 7);
  guest.writeU32(3 * PAGE - 4, 9, "p");
  assertEquals(new DataView(memory.buffer).getUint32(3 * PAGE - 4, true), 9);
  invalid(() => guest.check(3 * PAGE - 3, 4, "p"), "196608 bytes");
});

Deno.test("requireGuestMemory: anything but a Memory is MissingMemory (3)", () => {
  for (const value of [undefined, null, {}, new ArrayBuffer(8)]) {
    throws(
      () => requireGuestMemory(value),
      (err: unknown) =>
        err instanceof WasiNnError && err.errno === Errno.MissingMemory,
    );
  }
  const memory = new WebAssembly.Memory({ initial: 1 });
  assertEquals(requireGuestMemory(memory).memory, memory);
});
