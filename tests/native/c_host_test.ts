import assert from "node:assert/strict";
import { Context, Model, Sampler } from "../../bindings/mod.ts";
import { generate } from "../../wasi_nn/engine/generate.ts";
import { paths } from "../../paths.ts";
import { run, tinyModel } from "../_helpers.ts";

Deno.test("a C host drives the shim ABI directly and gets the same tokens as Deno", async () => {
  const root = paths().root;
  const exe = `${root}/build/c_host_example`;
  const cc = await run("cc", [
    "-O2",
    "-Wall",
    "-Werror",
    `-I${root}/native`,
    "-o",
    exe,
    `${root}/native/c_host_example.c`,
    `-L${root}/build/lib`,
    "-lwasi_nn_backend",
    "-Wl,-rpath,$ORIGIN/lib",
  ]);
  assert.equal(cc.code, 0, cc.stderr);
  const path = await tinyModel();
  const out = await run(exe, [path, "Once upon a time", "20"]);
  assert.equal(out.code, 0, out.stderr);

  using model = await Model.load(path);
  const ctx = await Context.create(model, { nCtx: 512 });
  const sampler = Sampler.create(model, { temp: 0 });
  const prompt = model.tokenize("Once upon a time", { parseSpecial: true });
  const r = await generate(ctx, sampler, prompt, { nPredict: 20 });
  assert.equal(out.stdout, `${r.text}\n`);

  const bad = await run(exe, [`${root}/no-such-model.gguf`, "hi"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /status 2\): model file not found/);
});
