import assert from "node:assert/strict";
import {
  GgmlType,
  GgufError,
  type GgufValue,
  GgufWriter,
  parseGguf,
  readGguf,
  readTensorData,
  tensorByteLength,
} from "../../gguf/mod.ts";

const SCALARS: Record<string, GgufValue> = {
  "t.u8": { type: "uint8", value: 255 },
  "t.i8": { type: "int8", value: -128 },
  "t.u16": { type: "uint16", value: 65535 },
  "t.i16": { type: "int16", value: -32768 },
  "t.u32": { type: "uint32", value: 4294967295 },
  "t.i32": { type: "int32", value: -2147483648 },
  "t.f32": { type: "float32", value: 1.5 },
  "t.f64": { type: "float64", value: Math.PI },
  "t.u64": { type: "uint64", value: (1n << 64n) - 1n },
  "t.i64": { type: "int64", value: -(1n << 63n) },
  "t.true": { type: "bool", value: true },
  "t.false": { type: "bool", value: false },
  "t.str": { type: "string", value: "h\u00e9llo \u4e16\u754c \ud83d\ude00" },
  "t.empty": { type: "string", value: "" },
};

const ARRAYS: Record<string, GgufValue> = {
  "a.u8": {
    type: "array",
    itemType: "uint8",
    value: new Uint8Array([0, 1, 255]),
  },
  "a.i8": {
    type: "array",
    itemType: "int8",
    value: new Int8Array([-128, 0, 127]),
  },
  "a.u16": {
    type: "array",
    itemType: "uint16",
    value: new Uint16Array([0, 65535]),
  },
  "a.i16": {
    type: "array",
    itemType: "int16",
    value: new Int16Array([-32768, 7]),
  },
  "a.u32": {
    type: "array",
    itemType: "uint32",
    value: new Uint32Array([1, 4294967295]),
  },
  "a.i32": {
    type: "array",
    itemType: "int32",
    value: new Int32Array([-1, 2, 3]),
  },
  "a.f32": {
    type: "array",
    itemType: "float32",
    value: new Float32Array([0.5, -2, 1e-9]),
  },
  "a.f64": {
    type: "array",
    itemType: "float64",
    value: new Float64Array([Math.E, -0]),
  },
  "a.u64": {
    type: "array",
    itemType: "uint64",
    value: new BigUint64Array([0n, (1n << 64n) - 1n]),
  },
  "a.i64": {
    type: "array",
    itemType: "int64",
    value: new BigInt64Array([-(1n << 63n), 5n]),
  },
  "a.bool": { type: "array", itemType: "bool", value: [true, false, true] },
  "a.str": {
    type: "array",
    itemType: "string",
    value: ["<s>", "", "\u2581the"],
  },
  "a.empty": { type: "array", itemType: "float32", value: new Float32Array(0) },
  "a.nested": {
    type: "array",
    itemType: "array",
    value: [
      { type: "array", itemType: "int32", value: new Int32Array([1, 2]) },
      { type: "array", itemType: "string", value: ["x"] },
      { type: "array", itemType: "array", value: [] },
    ],
  },
};

function allMetadataWriter(alignment?: number): GgufWriter {
  const w = new GgufWriter(alignment ? { alignment } : {});
  for (const [k, v] of Object.entries({ ...SCALARS, ...ARRAYS })) {
    w.setMetadata(k, v);
  }
  return w;
}

function ramp(n: number, scale = 0.01): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.37) * scale * (1 + (i % 7));
  return a;
}

Deno.test("gguf: every metadata value type round-trips", async () => {
  const bytes = await allMetadataWriter().toBytes();
  const file = parseGguf(bytes);
  assert.equal(file.version, 3);
  assert.equal(file.alignment, 32);
  assert.equal(file.tensors.length, 0);
  const expected = { ...SCALARS, ...ARRAYS };
  assert.deepEqual([...file.metadata.keys()], Object.keys(expected));
  for (const [k, v] of Object.entries(expected)) {
    const got = file.metadata.get(k);
    if (v.type === "float32") {
      assert.equal(got?.type, "float32");
      assert.equal(got?.value, Math.fround(v.value));
    } else {
      assert.deepEqual(got, v, k);
    }
  }
});

Deno.test("gguf: tensors of several types, ranks and alignments round-trip", async () => {
  for (const alignment of [32, 64, 256]) {
    const f32 = ramp(3 * 5);
    const f16 = ramp(64 * 3);
    const bf16 = ramp(16);
    const q8 = ramp(32 * 4, 0.5);
    const q4Bytes = new Uint8Array(tensorByteLength(GgmlType.Q4_0, [64, 2]));
    q4Bytes.forEach((_, i) => q4Bytes[i] = (i * 31) & 0xff);
    const i32 = new Uint8Array(
      new Int32Array([1, -2, 3, -4, 5, -6, 7, -8]).buffer,
    );
    let lazyCalls = 0;
    const w = allMetadataWriter(alignment)
      .addTensor({ name: "f32", dims: [3, 5], type: GgmlType.F32, data: f32 })
      .addTensor({
        name: "f16",
        dims: [64, 3],
        type: GgmlType.F16,
        data: () => {
          lazyCalls++;
          return f16;
        },
      })
      .addTensor({
        name: "bf16",
        dims: [2, 2, 2, 2],
        type: GgmlType.BF16,
        data: bf16,
      })
      .addTensor({
        name: "q8",
        dims: [32, 2, 2],
        type: GgmlType.Q8_0,
        data: () => Promise.resolve(q8),
      })
      .addTensor({
        name: "q4raw",
        dims: [64, 2],
        type: GgmlType.Q4_0,
        data: q4Bytes,
      })
      .addTensor({ name: "i32", dims: [8], type: GgmlType.I32, data: i32 });

    const path = await Deno.makeTempFile({ suffix: ".gguf" });
    try {
      await w.writeFile(path);
      const fromMem = await w.toBytes();
      const fromDisk = await Deno.readFile(path);
      assert.deepEqual(fromDisk, fromMem, "writeFile and toBytes agree");
      assert.equal(fromDisk.length, w.byteLength());
      assert.equal(lazyCalls, 2);

      const file = await readGguf(path);
      assert.equal(file.alignment, alignment);
      assert.equal(file.dataOffset % alignment, 0);
      assert.equal(file.byteLength, fromDisk.length);
      assert.deepEqual(
        file.tensors.map((t) => [t.name, t.dims, t.type]),
        [
          ["f32", [3, 5], GgmlType.F32],
          ["f16", [64, 3], GgmlType.F16],
          ["bf16", [2, 2, 2, 2], GgmlType.BF16],
          ["q8", [32, 2, 2], GgmlType.Q8_0],
          ["q4raw", [64, 2], GgmlType.Q4_0],
          ["i32", [8], GgmlType.I32],
        ],
      );
      for (const t of file.tensors) {
        assert.equal(t.offset % alignment, 0, t.name);
      }
      assert.deepEqual(file.tensors, w.tensors);

      const read = async (name: string) => {
        const a = await readTensorData(path, file, name);
        const b = await readTensorData(fromMem, file, name);
        assert.deepEqual(a, b);
        return a;
      };
      assert.deepEqual(new Float32Array((await read("f32")).buffer), f32);
      assert.deepEqual(
        new Float32Array(new Float16Array((await read("f16")).buffer)),
        new Float32Array(new Float16Array(f16)),
      );
      const bf = new Uint16Array((await read("bf16")).buffer);
      for (let i = 0; i < bf16.length; i++) {
        const back = new Float32Array(new Uint32Array([bf[i] << 16]).buffer)[0];
        assert.ok(
          Math.abs(back - bf16[i]) <= Math.abs(bf16[i]) / 128,
          `bf16[${i}]`,
        );
      }
      const q = await read("q8");
      assert.equal(q.length, 4 * 34);
      const qv = new DataView(q.buffer);
      for (let b = 0; b < 4; b++) {
        const d = qv.getFloat16(b * 34, true);
        for (let j = 0; j < 32; j++) {
          const x = q8[b * 32 + j];
          assert.ok(
            Math.abs(qv.getInt8(b * 34 + 2 + j) * d - x) <= d * 0.51 + 1e-6,
          );
        }
      }
      assert.deepEqual(await read("q4raw"), q4Bytes);
      assert.deepEqual(await read("i32"), i32);
    } finally {
      await Deno.remove(path);
    }
  }
});

Deno.test("gguf: a header larger than the first read chunk is read in full", async () => {
  const tokens = Array.from(
    { length: 60000 },
    (_, i) => `token-${i}-${"x".repeat(i % 40)}`,
  );
  const w = new GgufWriter()
    .setMetadata("tokenizer.ggml.tokens", {
      type: "array",
      itemType: "string",
      value: tokens,
    })
    .addTensor({
      name: "w",
      dims: [32, 8192],
      type: GgmlType.F16,
      data: ramp(32 * 8192),
    });
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    await w.writeFile(path);
    const file = await readGguf(path);
    assert.ok(file.dataOffset > 2 << 20, "header is over 2 MiB");
    assert.deepEqual(file.metadata.get("tokenizer.ggml.tokens")?.value, tokens);
    assert.equal(file.tensors[0].byteLength, 32 * 8192 * 2);
    assert.equal(file.byteLength, (await Deno.stat(path)).size);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("gguf: setMetadata replaces in place; deleteMetadata removes", async () => {
  const w = new GgufWriter()
    .setMetadata("a", { type: "uint32", value: 1 })
    .setMetadata("b", { type: "uint32", value: 2 })
    .setMetadata("a", { type: "string", value: "one" });
  assert.equal(w.deleteMetadata("b"), true);
  assert.equal(w.deleteMetadata("b"), false);
  const file = parseGguf(await w.toBytes());
  assert.deepEqual([...file.metadata], [["a", {
    type: "string",
    value: "one",
  }]]);
});

Deno.test("gguf: the writer rejects invalid values and tensors", async () => {
  const w = new GgufWriter();
  assert.throws(
    () => w.setMetadata("k", { type: "uint8", value: 256 }),
    RangeError,
  );
  assert.throws(
    () => w.setMetadata("k", { type: "int32", value: 1.5 }),
    RangeError,
  );
  assert.throws(
    () => w.setMetadata("k", { type: "uint64", value: -1n }),
    RangeError,
  );
  assert.throws(
    () =>
      w.setMetadata(
        "k",
        {
          type: "array",
          itemType: "int32",
          value: new Uint32Array(1),
        } as never,
      ),
    RangeError,
  );
  assert.throws(
    () => w.setMetadata("general.alignment", { type: "uint32", value: 48 }),
    RangeError,
  );
  assert.throws(() => new GgufWriter({ alignment: 3 }), RangeError);
  assert.throws(
    () =>
      w.addTensor({
        name: "q",
        dims: [33],
        type: GgmlType.Q8_0,
        data: new Uint8Array(),
      }),
    RangeError,
  );
  assert.throws(
    () =>
      w.addTensor({
        name: "t",
        dims: [1, 1, 1, 1, 1],
        type: GgmlType.F32,
        data: new Uint8Array(),
      }),
    RangeError,
  );
  assert.throws(
    () =>
      w.addTensor({ name: "u", dims: [4], type: 99, data: new Uint8Array() }),
    RangeError,
  );
  w.addTensor({
    name: "t",
    dims: [4],
    type: GgmlType.F32,
    data: new Uint8Array(15),
  });
  assert.throws(
    () =>
      w.addTensor({
        name: "t",
        dims: [4],
        type: GgmlType.F32,
        data: new Uint8Array(16),
      }),
    RangeError,
  );
  await assert.rejects(
    () => w.toBytes(),
    /tensor "t" \(F32 \[4\]\): 15 bytes given, 16 expected/,
  );
  const w2 = new GgufWriter().addTensor({
    name: "v",
    dims: [4],
    type: GgmlType.F32,
    data: new Float32Array(3),
  });
  await assert.rejects(() => w2.toBytes(), /3 values given, 4 expected/);
  const w3 = new GgufWriter().addTensor({
    name: "v",
    dims: [32],
    type: GgmlType.Q4_0,
    data: new Float32Array(32),
  });
  await assert.rejects(() => w3.toBytes(), /cannot encode floats as Q4_0/);
});

async function sample(): Promise<Uint8Array> {
  return await new GgufWriter()
    .setMetadata("general.architecture", { type: "string", value: "llama" })
    .setMetadata("tokenizer.ggml.tokens", {
      type: "array",
      itemType: "string",
      value: ["a", "b"],
    })
    .addTensor({ name: "w", dims: [8, 4], type: GgmlType.F32, data: ramp(32) })
    .toBytes();
}

async function expectGgufError(
  bytes: Uint8Array,
  pattern: RegExp,
): Promise<GgufError> {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    await Deno.writeFile(path, bytes);
    let caught: unknown;
    try {
      await readGguf(path);
    } catch (e) {
      caught = e;
    }
    assert.ok(
      caught instanceof GgufError,
      `expected a GgufError, got ${caught}`,
    );
    assert.ok(caught.message.startsWith(`${path}: `), caught.message);
    assert.match(caught.message, pattern);
    assert.equal(caught.source, path);
    // the same error from memory names <bytes>
    assert.throws(
      () => parseGguf(bytes),
      (e: unknown) =>
        e instanceof GgufError && e.message.startsWith("<bytes>: "),
    );
    return caught;
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("gguf: corrupt input gives a GgufError naming the file and the problem", async () => {
  const good = await sample();
  const file = parseGguf(good);

  await expectGgufError(
    new Uint8Array(0),
    /not a GGUF file: only 0 bytes long/,
  );
  await expectGgufError(
    new TextEncoder().encode("hello world, not gguf"),
    /not a GGUF file: magic is "hell", expected "GGUF"/,
  );
  await expectGgufError(
    new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]),
    /magic is "\\x7fELF"/,
  );

  const v7 = good.slice();
  new DataView(v7.buffer).setUint32(4, 7, true);
  await expectGgufError(v7, /unsupported GGUF version 7 \(supported: 2, 3\)/);
  const v1 = good.slice();
  new DataView(v1.buffer).setUint32(4, 1, true);
  await expectGgufError(v1, /unsupported GGUF version 1/);
  const be = good.slice();
  new DataView(be.buffer).setUint32(4, 3, false);
  await expectGgufError(be, /big-endian GGUF files are not supported/);

  // Truncated inside the counts, the metadata, the tensor infos, and the data.
  await expectGgufError(
    good.slice(0, 10),
    /truncated file: tensor count needs 8 bytes at offset 8, but the file is 10 bytes long/,
  );
  await expectGgufError(good.slice(0, 40), /truncated/);
  // The tensor info of "w": u64 name length 1, "w", n_dims, 2 dims, type, offset.
  let info = -1;
  for (let i = 0; i + 9 <= good.length; i++) {
    if (
      good[i] === 1 && good.subarray(i + 1, i + 8).every((b) => b === 0) &&
      good[i + 8] === 0x77
    ) {
      info = i;
      break;
    }
  }
  assert.ok(info > 0);
  await expectGgufError(
    good.slice(0, info + 9 + 4 + 16 + 4 + 3),
    /truncated file: data offset of tensor "w" needs 8 bytes/,
  );
  await expectGgufError(
    good.slice(0, file.dataOffset + 100),
    /truncated file: tensor "w" \(F32, 128 bytes at offset \d+\) ends at \d+, but the file is \d+ bytes long/,
  );

  // An unknown value type id.
  const badType = good.slice();
  const keyLen = "general.architecture".length;
  new DataView(badType.buffer).setUint32(24 + 8 + keyLen, 42, true);
  await expectGgufError(
    badType,
    /metadata "general.architecture" has unknown value type id 42/,
  );

  // A string length far beyond the end of the file.
  const hugeString = good.slice();
  new DataView(hugeString.buffer).setBigUint64(
    24 + 8 + keyLen + 4,
    1n << 40n,
    true,
  );
  await expectGgufError(
    hugeString,
    /value of "general.architecture" claims 1099511627776 bytes/,
  );
});

Deno.test("gguf: readGguf of a missing file names it", async () => {
  await assert.rejects(
    () => readGguf("/nonexistent/dir/model.gguf"),
    (e: unknown) => {
      assert.ok(e instanceof GgufError);
      assert.match(e.message, /^\/nonexistent\/dir\/model\.gguf: cannot open/);
      return true;
    },
  );
});
