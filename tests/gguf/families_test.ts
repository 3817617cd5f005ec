/**
 * The synthetic model of every family loads and runs in llama.cpp's own
 * tools, and our greedy output equals llama-completion's; the bert encoder
 * gives a finite, normalised embedding in llama-embedding.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { Context, Model, Sampler } from "../../bindings/mod.ts";
import {
  ensureFamilyModel,
  isModelFamily,
  MODEL_FAMILIES,
  MODEL_FAMILY_TRAITS,
  readGguf,
  writeFamilyModel,
} from "../../gguf/mod.ts";
import { paths } from "../../paths.ts";
import { generate } from "../../wasi_nn/engine/generate.ts";
import { completionText, referenceTool, run } from "../_helpers.ts";

const completion = referenceTool("llama-completion");
const embedding = referenceTool("llama-embedding");
const noCheckout = !existsSync(`${paths().llamaCpp}/models/templates`);
const N = 16;
/** A short prompt, and one longer than twice gemma3's sliding window. */
const PROMPTS = {
  short: "Once upon a time",
  long: "The quick brown fox jumps over the lazy dog. ".repeat(14).trim(),
};

/** Our greedy output (bindings + generate) for `text`: token ids and text. */
async function ours(path: string, text: string, arch: string) {
  using model = await Model.load(path);
  assert.equal(model.info.architecture, arch);
  using ctx = await Context.create(model, {
    nCtx: 512,
    nThreads: 2,
    nThreadsBatch: 2,
  });
  using sampler = Sampler.create(model, { temp: 0 });
  const prompt = model.tokenize(text, { addSpecial: true, parseSpecial: true });
  const r = await generate(ctx, sampler, prompt, {
    nPredict: N,
    ignoreEos: true,
  });
  assert.equal(r.tokens.length, N);
  return { nPrompt: prompt.length, tokens: r.tokens, text: r.text };
}

for (const family of MODEL_FAMILIES) {
  const traits = MODEL_FAMILY_TRAITS[family];
  if (!traits.generates) continue;
  for (const [kind, text] of Object.entries(PROMPTS)) {
    Deno.test({
      name:
        `families: ${family} (${traits.memory}): greedy output equals llama-completion's, ${kind} prompt`,
      ignore: completion === undefined || noCheckout, // built by build.ts --reference
      fn: async () => {
        const { path } = await ensureFamilyModel(family);
        const want = await completionText(path, text, N, ["--temp", "0"]);
        const got = await ours(path, text, traits.arch);
        if (kind === "long") {
          const window = MODEL_FAMILY_TRAITS.gemma3.swaWindow!;
          assert.ok(got.nPrompt > 2 * window, `${got.nPrompt} tokens`);
        }
        assert.equal(got.text, want);
        // NaN logits make greedy decoding pick one token every time.
        const distinct = new Set(got.tokens).size;
        assert.ok(distinct >= N / 4, `${distinct} distinct: ${got.tokens}`);
      },
    });
  }
}

Deno.test({
  name:
    "families: the output depends on the context, not on the last token alone",
  ignore: noCheckout,
  fn: async () => {
    // Both prompts end in " time": a model that ignores its context (or a
    // wrong prompt cache) gives the same continuation for both.
    for (const family of MODEL_FAMILIES) {
      const traits = MODEL_FAMILY_TRAITS[family];
      if (!traits.generates) continue;
      const { path } = await ensureFamilyModel(family);
      const a = await ours(path, "Once upon a time", traits.arch);
      const b = await ours(
        path,
        "Long ago, in a land far away, there was a time",
        traits.arch,
      );
      assert.notDeepEqual(a.tokens, b.tokens, family);
    }
  },
});

Deno.test({
  name:
    "families: bert loads in llama-embedding and gives a finite, normalised embedding",
  ignore: embedding === undefined || noCheckout,
  fn: async () => {
    const { path } = await ensureFamilyModel("bert");
    const file = await readGguf(path);
    assert.equal(file.metadata.get("bert.attention.causal")?.value, false);
    assert.equal(
      file.metadata.get("bert.pooling_type")?.value,
      MODEL_FAMILY_TRAITS.bert.poolingType,
    );
    const r = await run(embedding!, [
      "-m",
      path,
      "-p",
      "Hello world",
      "-t",
      "2",
    ]);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const line = r.stdout.split("\n").find((l) => l.startsWith("embedding 0:"));
    assert.ok(line, `no embedding in: ${r.stdout.slice(0, 500)}`);
    const v = line.slice("embedding 0:".length).trim().split(/\s+/).map(Number);
    assert.equal(v.length, MODEL_FAMILY_TRAITS.bert.nEmbd);
    assert.ok(v.every(Number.isFinite), line);
    // llama-embedding normalises to unit length by default (--embd-normalize 2).
    const norm = Math.hypot(...v);
    assert.ok(Math.abs(norm - 1) < 1e-3, `norm ${norm}`);
    assert.ok(new Set(v).size > v.length / 2, line);
  },
});

Deno.test({
  name:
    "families: a family model is deterministic in its seed and cached by name",
  ignore: noCheckout,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "families-test-" });
    try {
      const a = await writeFamilyModel(`${dir}/a.gguf`, "mamba", { seed: 3 });
      const b = await writeFamilyModel(`${dir}/b.gguf`, "mamba", { seed: 3 });
      const c = await writeFamilyModel(`${dir}/c.gguf`, "mamba", { seed: 4 });
      const bytes = (p: string) => Deno.readFile(p);
      assert.deepEqual(await bytes(a.path), await bytes(b.path));
      assert.notDeepEqual(await bytes(a.path), await bytes(c.path));
      assert.ok(a.byteLength < 8e6, `${a.byteLength} bytes`);

      const first = await ensureFamilyModel("mamba", { dir, seed: 3 });
      const again = await ensureFamilyModel("mamba", { dir, seed: 3 });
      assert.equal(first.generated, true);
      assert.equal(again.generated, false);
      assert.equal(again.path, first.path);
      assert.equal(again.params, first.params);
      assert.equal(again.nVocab, 32000);
      assert.deepEqual(await bytes(first.path), await bytes(a.path));
      assert.deepEqual(
        [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
          n.includes(".tmp")
        ),
        [],
        "no temporary files left",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "families: each family's metadata carries its chat template and traits",
  ignore: noCheckout,
  fn: async () => {
    for (const family of MODEL_FAMILIES) {
      const t = MODEL_FAMILY_TRAITS[family];
      const file = await readGguf((await ensureFamilyModel(family)).path);
      const v = (k: string) => file.metadata.get(k)?.value;
      assert.equal(v("general.architecture"), t.arch, family);
      assert.equal(v(`${t.arch}.block_count`), t.nLayer, family);
      assert.equal(v(`${t.arch}.embedding_length`), t.nEmbd, family);
      assert.equal(v(`${t.arch}.context_length`), t.nCtxTrain, family);
      const template = v("tokenizer.chat_template");
      if (t.chatTemplate === null) assert.equal(template, undefined, family);
      else if (!t.chatTemplate.startsWith("builtin:")) {
        assert.equal(
          template,
          await Deno.readTextFile(
            `${paths().llamaCpp}/models/templates/${t.chatTemplate}`,
          ),
          family,
        );
      } else assert.equal(typeof template, "string", family);
      if (t.swaWindow) {
        assert.equal(v(`${t.arch}.attention.sliding_window`), t.swaWindow);
      }
      if (t.experts) {
        assert.equal(v(`${t.arch}.expert_count`), t.experts.count);
        assert.equal(v(`${t.arch}.expert_used_count`), t.experts.used);
      }
    }
  },
});

Deno.test("families: unknown names are refused", async () => {
  assert.equal(isModelFamily("gpt2"), false);
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    () => ensureFamilyModel("gpt2" as any),
    /unknown model family "gpt2" \(known: llama, qwen3/,
  );
});
