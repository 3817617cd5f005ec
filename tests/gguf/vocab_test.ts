import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { GgufError, readGguf } from "../../gguf/mod.ts";
import { paths } from "../../paths.ts";

const models = `${paths().llamaCpp}/models`;
const spm = `${models}/ggml-vocab-llama-spm.gguf`;
const noCheckout = !existsSync(spm);

Deno.test({
  name: "gguf: reads the checkout's llama-spm vocab GGUF",
  ignore: noCheckout,
  fn: async () => {
    const file = await readGguf(spm);
    const meta = (k: string) => file.metadata.get(k);
    assert.equal(file.version, 3);
    assert.equal(file.tensors.length, 0);
    assert.equal(file.byteLength, (await Deno.stat(spm)).size);
    assert.deepEqual(meta("general.architecture"), {
      type: "string",
      value: "llama",
    });
    assert.deepEqual(meta("tokenizer.ggml.model"), {
      type: "string",
      value: "llama",
    });
    assert.deepEqual(meta("tokenizer.ggml.bos_token_id"), {
      type: "uint32",
      value: 1,
    });
    assert.deepEqual(meta("tokenizer.ggml.eos_token_id"), {
      type: "uint32",
      value: 2,
    });
    assert.deepEqual(meta("tokenizer.ggml.add_bos_token"), {
      type: "bool",
      value: true,
    });
    const tokens = meta("tokenizer.ggml.tokens");
    assert.ok(tokens?.type === "array" && tokens.itemType === "string");
    assert.equal(tokens.value.length, 32000);
    assert.deepEqual(tokens.value.slice(0, 4), [
      "<unk>",
      "<s>",
      "</s>",
      "<0x00>",
    ]);
    const scores = meta("tokenizer.ggml.scores");
    assert.ok(scores?.type === "array" && scores.value instanceof Float32Array);
    assert.equal(scores.value.length, 32000);
    const types = meta("tokenizer.ggml.token_type");
    assert.ok(types?.type === "array" && types.value instanceof Int32Array);
    assert.deepEqual([...types.value.slice(0, 4)], [2, 3, 3, 6]);
  },
});

Deno.test({
  name: "gguf: every vocab GGUF of the checkout parses",
  ignore: noCheckout,
  fn: async () => {
    let n = 0;
    for (const entry of Deno.readDirSync(models)) {
      if (!entry.name.endsWith(".gguf")) continue;
      const file = await readGguf(`${models}/${entry.name}`);
      assert.ok(file.metadata.has("tokenizer.ggml.model"), entry.name);
      n++;
    }
    assert.ok(n >= 10, `found ${n} vocab files`);
  },
});

Deno.test({
  name: "gguf: a truncated vocab GGUF is reported as truncated",
  ignore: noCheckout,
  fn: async () => {
    const bytes = await Deno.readFile(spm);
    const path = await Deno.makeTempFile({ suffix: ".gguf" });
    try {
      await Deno.writeFile(path, bytes.subarray(0, 300000));
      await assert.rejects(() => readGguf(path), (e: unknown) => {
        assert.ok(e instanceof GgufError);
        assert.match(
          e.message,
          new RegExp(`^${path}: truncated file: .*tokenizer`),
        );
        return true;
      });
    } finally {
      await Deno.remove(path);
    }
  },
});
