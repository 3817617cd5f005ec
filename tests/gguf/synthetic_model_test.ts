import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import {
  ensureModel,
  GgmlType,
  LLAMA2_CHAT_TEMPLATE,
  readGguf,
  readTensorData,
  SYNTHETIC_GENERATOR_VERSION,
  SYNTHETIC_PRESETS,
  syntheticParamCount,
  writeSyntheticModel,
} from "../../gguf/mod.ts";
import { paths } from "../../paths.ts";

const vocabPath = `${paths().llamaCpp}/models/ggml-vocab-llama-spm.gguf`;
const noVocab = !existsSync(vocabPath);

/** The first llama.cpp tool binary found: build/bin, then the CMake build. */
function tool(name: string): string | undefined {
  const p = paths();
  return [`${p.referenceBin}/${name}`, `${p.cmakeBuild("cpu")}/bin/${name}`]
    .find((f) => existsSync(f));
}
const llamaSimple = tool("llama-simple");
const llamaQuantize = tool("llama-quantize");

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gguf-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("gguf: bench preset has ~60M parameters, tiny ~4M", () => {
  assert.equal(
    syntheticParamCount(SYNTHETIC_PRESETS.bench.shape, 32000),
    60039680,
  );
  assert.equal(
    syntheticParamCount(SYNTHETIC_PRESETS.tiny.shape, 32000),
    4202816,
  );
});

Deno.test({
  name: "gguf: the tiny model's metadata, tensors and tokenizer",
  ignore: noVocab,
  fn: () =>
    withTempDir(async (dir) => {
      const info = await ensureModel("tiny", { dir });
      assert.equal(info.generated, true);
      assert.equal(info.type, "q8_0");
      assert.equal(info.quantized, false);
      assert.equal(info.nVocab, 32000);
      assert.equal(
        info.path,
        `${dir}/synthetic-tiny-q8_0-s1-g${SYNTHETIC_GENERATOR_VERSION}.gguf`,
      );
      assert.ok(
        info.byteLength > 4.5e6 && info.byteLength < 6e6,
        `${info.byteLength} bytes`,
      );
      assert.deepEqual(
        [...Deno.readDirSync(dir)].map((e) => e.name),
        [info.path.split("/").pop()],
        "no temporary files left",
      );

      const file = await readGguf(info.path);
      const v = (k: string) => file.metadata.get(k)?.value;
      assert.equal(v("general.architecture"), "llama");
      assert.equal(v("general.name"), "synthetic-tiny");
      assert.equal(v("general.file_type"), 7);
      assert.equal(v("llama.context_length"), 2048);
      assert.equal(v("llama.embedding_length"), 64);
      assert.equal(v("llama.block_count"), 2);
      assert.equal(v("llama.feed_forward_length"), 192);
      assert.equal(v("llama.attention.head_count"), 4);
      assert.equal(v("llama.attention.head_count_kv"), 4);
      assert.equal(v("llama.rope.dimension_count"), 16);
      assert.equal(v("llama.vocab_size"), 32000);
      assert.equal(
        v("llama.attention.layer_norm_rms_epsilon"),
        Math.fround(1e-5),
      );
      assert.equal(v("tokenizer.chat_template"), LLAMA2_CHAT_TEMPLATE);
      assert.ok(
        ![...file.metadata.keys()].some((k) =>
          k.startsWith("general.sampling.")
        ),
      );

      const vocab = await readGguf(vocabPath);
      for (const [k, val] of vocab.metadata) {
        if (k.startsWith("tokenizer.")) {
          assert.deepEqual(file.metadata.get(k), val, k);
        }
      }

      assert.equal(file.tensors.length, 3 + 2 * 9);
      const byName = new Map(file.tensors.map((t) => [t.name, t]));
      assert.deepEqual(byName.get("token_embd.weight")?.dims, [64, 32000]);
      assert.deepEqual(byName.get("output.weight")?.dims, [64, 32000]);
      assert.deepEqual(byName.get("blk.1.ffn_down.weight")?.dims, [192, 64]);
      assert.deepEqual(byName.get("blk.1.ffn_up.weight")?.dims, [64, 192]);
      assert.equal(byName.get("blk.0.attn_q.weight")?.type, GgmlType.Q8_0);
      const norm = byName.get("blk.0.attn_norm.weight")!;
      assert.equal(norm.type, GgmlType.F32);
      const ones = new Float32Array(
        (await readTensorData(info.path, file, norm)).buffer,
      );
      assert.ok(ones.every((x) => x === 1));

      const again = await ensureModel("tiny", { dir });
      assert.equal(again.generated, false);
      assert.equal(again.path, info.path);
      assert.equal(again.byteLength, info.byteLength);
    }),
});

Deno.test({
  name: "gguf: chat template and sampling options",
  ignore: noVocab,
  fn: () =>
    withTempDir(async (dir) => {
      const info = await ensureModel("tiny", {
        dir,
        chatTemplate: false,
        sampling: { topK: 20, temp: 0.7, sequence: "top_k;temp" },
        shape: { nLayer: 1 },
      });
      assert.match(
        info.path,
        /synthetic-tiny-q8_0-s1-g\d+-h[0-9a-f]{8}\.gguf$/,
      );
      const file = await readGguf(info.path);
      assert.equal(file.metadata.has("tokenizer.chat_template"), false);
      assert.deepEqual(file.metadata.get("general.sampling.top_k"), {
        type: "int32",
        value: 20,
      });
      assert.deepEqual(file.metadata.get("general.sampling.temp"), {
        type: "float32",
        value: Math.fround(0.7),
      });
      assert.deepEqual(file.metadata.get("general.sampling.sequence"), {
        type: "string",
        value: "top_k;temp",
      });
      assert.equal(file.metadata.get("llama.block_count")?.value, 1);
    }),
});

Deno.test({
  name: "gguf: generation is deterministic per seed",
  ignore: noVocab,
  fn: () =>
    withTempDir(async (dir) => {
      const a = await writeSyntheticModel(`${dir}/a.gguf`, "tiny", { seed: 5 });
      const b = await writeSyntheticModel(`${dir}/b.gguf`, "tiny", { seed: 5 });
      const c = await writeSyntheticModel(`${dir}/c.gguf`, "tiny", { seed: 6 });
      const [ba, bb, bc] = await Promise.all(
        [a, b, c].map((m) => Deno.readFile(m.path)),
      );
      assert.deepEqual(ba, bb, "same seed, same bytes");
      assert.equal(ba.length, bc.length);
      assert.notDeepEqual(ba, bc, "different seed, different bytes");
      const fa = await readGguf(a.path);
      const fc = await readGguf(c.path);
      for (const name of ["token_embd.weight", "blk.1.ffn_up.weight"]) {
        const da = await readTensorData(a.path, fa, name);
        const dc = await readTensorData(c.path, fc, name);
        assert.notDeepEqual(da, dc, name);
      }
    }),
});

Deno.test({
  name:
    "gguf: without llama-quantize the unquantized file is kept and a note says so",
  ignore: noVocab,
  fn: () =>
    withTempDir(async (dir) => {
      const info = await ensureModel("tiny", {
        dir,
        quantize: "Q4_0",
        quantizeBin: `${dir}/no-such-llama-quantize`,
      });
      assert.equal(info.type, "q8_0");
      assert.equal(info.quantized, false);
      assert.match(
        info.note ?? "",
        /llama-quantize not found at .*no-such-llama-quantize: kept q8_0 instead of Q4_0/,
      );
      assert.match(info.path, /synthetic-tiny-q8_0-/);
    }),
});

Deno.test({
  name:
    "gguf: Q8_0 written by the generator matches llama-quantize byte for byte",
  ignore: noVocab || !llamaQuantize,
  fn: () =>
    withTempDir(async (dir) => {
      const q8 = await ensureModel("tiny", { dir });
      const viaTool = await ensureModel("tiny", {
        dir,
        type: "f32",
        quantize: "Q8_0",
        quantizeBin: llamaQuantize,
      });
      assert.equal(viaTool.quantized, true);
      assert.equal(viaTool.type, "q8_0");
      assert.notEqual(viaTool.path, q8.path);
      const fa = await readGguf(q8.path);
      const fb = await readGguf(viaTool.path);
      for (const t of fa.tensors) {
        const tb = fb.tensors.find((x) => x.name === t.name);
        assert.equal(tb?.type, t.type, t.name);
        assert.deepEqual(
          await readTensorData(viaTool.path, fb, tb!),
          await readTensorData(q8.path, fa, t),
          t.name,
        );
      }
    }),
});

Deno.test({
  name: "gguf: llama-simple loads the tiny model and generates varied tokens",
  ignore: noVocab || !llamaSimple,
  fn: async () => {
    const model = await ensureModel("tiny");
    const n = 24;
    const { code, stdout, stderr } = await new Deno.Command(llamaSimple!, {
      args: ["-m", model.path, "-n", String(n), "Hello"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, err.slice(-2000));
    assert.match(err, new RegExp(`decoded ${n} tokens`));
    assert.match(err, /file type\s+= Q8_0/);
    const generated = out.slice(out.indexOf("Hello") + "Hello".length);
    assert.ok(generated.length > n, `generated: ${JSON.stringify(generated)}`);
    // Not degenerate: the continuation is not one piece repeated.
    const pieces = new Set(generated.trim().split(/\s+/));
    assert.ok(pieces.size >= 4, `generated: ${JSON.stringify(generated)}`);
  },
});
