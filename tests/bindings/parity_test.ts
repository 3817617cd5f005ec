import assert from "node:assert/strict";
import { Context, Model, Sampler } from "../../bindings/mod.ts";
import { generate } from "../../wasi_nn/engine/generate.ts";
import { referenceTool, run, tinyModel } from "../_helpers.ts";

const simple = referenceTool("llama-simple");

for (
  const prompt of [
    "Once upon a time",
    "The quick brown fox",
    "Ünïcödé 🎉 prompt",
  ]
) {
  Deno.test({
    name: `greedy output equals llama-simple's: ${JSON.stringify(prompt)}`,
    ignore: simple === undefined, // built by `deno task build:reference` (the test task does it)
    fn: async () => {
      const path = await tinyModel();
      const n = 24;
      const ref = await run(simple!, ["-m", path, "-n", String(n), prompt]);
      assert.equal(ref.code, 0, ref.stderr);
      using model = await Model.load(path);
      const ctx = await Context.create(model, { nCtx: 256 });
      const sampler = Sampler.create(model, { temp: 0 });
      const toks = model.tokenize(prompt, {
        addSpecial: true,
        parseSpecial: true,
      });
      const r = await generate(ctx, sampler, toks, { nPredict: n });
      const promptText = new TextDecoder().decode(
        new Uint8Array([...toks].flatMap((t) => [...model.tokenBytes(t)])),
      );
      // llama-simple prints the prompt pieces, the generated pieces, then "\n".
      assert.equal(ref.stdout, `${promptText}${r.text}\n`);
      assert.ok(r.tokens.length > 0);
    },
  });
}
