import assert from "node:assert/strict";
import {
  ABI_VERSION,
  backendInfo,
  Context,
  LlamaError,
  Model,
  Sampler,
  Status,
} from "../../bindings/mod.ts";
import { rssGrowth, tinyModel } from "../_helpers.ts";

Deno.test("library reports its build and backends", () => {
  const info = backendInfo();
  assert.equal(info.abi, ABI_VERSION);
  assert.ok(info.backends.includes("CPU"), `backends: ${info.backends}`);
  assert.match(info.llama_commit, /^[0-9a-f]{7,40}$/);
  assert.ok(info.devices.length >= 1);
  // The devices a model gets by default: GPUs, else integrated GPUs; never the CPU.
  const local = info.devices.filter((d) => d.type !== "rpc");
  for (const d of local) {
    assert.equal(typeof d.model_device, "boolean", JSON.stringify(d));
  }
  assert.ok(local.some((d) => d.type === "cpu" && !d.model_device));
  const picked = local.filter((d) => d.model_device).map((d) => d.type);
  const hasGpu = local.some((d) => d.type === "gpu");
  assert.ok(
    picked.every((t) => t === (hasGpu ? "gpu" : "igpu")),
    JSON.stringify(local),
  );
  assert.equal(picked.length > 0, local.some((d) => /^i?gpu$/.test(d.type)));
});

Deno.test("model metadata matches the generated GGUF", async () => {
  using model = await Model.load(await tinyModel());
  const info = model.info;
  assert.equal(info.architecture, "llama");
  assert.equal(info.n_vocab, 32000);
  assert.equal(model.nVocab, 32000);
  assert.ok(info.n_layer >= 1);
  assert.equal(model.nEmbd, info.n_embd);
  assert.equal(info.bos, 1);
  assert.deepEqual(info.eog, [2]);
  assert.ok(model.isEog(2));
  assert.ok(!model.isEog(100));
  assert.equal(typeof info.chat_template, "string");
  assert.equal(info.metadata["general.architecture"], "llama");
});

Deno.test("tokenize / detokenize round trips, multi-byte UTF-8 and special tokens", async () => {
  using model = await Model.load(await tinyModel());
  for (
    const text of [
      "Hello world",
      "wörld 🎉 日本語 ñ",
      "  leading spaces",
      "a\nb\tc",
    ]
  ) {
    const toks = model.tokenize(text, { addSpecial: false });
    assert.ok(toks.length > 0);
    assert.equal(model.detokenize(toks), text);
    // Pieces joined as bytes equal the text even where a piece splits a character.
    const bytes = [...toks].flatMap((t) => [...model.tokenBytes(t)]);
    const joined = new TextDecoder().decode(new Uint8Array(bytes));
    // SentencePiece pieces carry the prefix space the detokenizer strips.
    assert.ok(joined === text || joined === ` ${text}`, JSON.stringify(joined));
  }
  const withBos = model.tokenize("Hi", { addSpecial: true });
  assert.equal(withBos[0], 1);
  // "</s>" is parsed as the EOS token only when parseSpecial is on.
  assert.ok(
    model.tokenize("a</s>", { addSpecial: false, parseSpecial: true }).includes(
      2,
    ),
  );
  assert.ok(
    !model.tokenize("a</s>", { addSpecial: false, parseSpecial: false })
      .includes(2),
  );
  const emoji = model.tokenize("🎉", { addSpecial: false });
  assert.ok(
    emoji.length > 1,
    "an emoji is split into byte tokens by this vocab",
  );
});

Deno.test("chat template renders messages", async () => {
  using model = await Model.load(await tinyModel());
  const out = model.applyChatTemplate([{ role: "user", content: "Hi there" }]);
  assert.ok(out.includes("Hi there"), out);
  assert.ok(out.includes("[INST]"), out);
});

Deno.test("use after close is a clear error, not a crash", async () => {
  const model = await Model.load(await tinyModel());
  const ctx = await Context.create(model, { nCtx: 64 });
  const sampler = Sampler.create(model, { temp: 0 });
  model.close();
  model.close(); // idempotent
  assert.throws(
    () => model.tokenize("x"),
    (e) => e instanceof LlamaError && e.code === Status.Usage,
  );
  assert.throws(() => ctx.nCtx, /closed/);
  assert.throws(() => sampler.seed, /closed/);
});

Deno.test("loading and freeing 60 times keeps resident memory flat", async () => {
  // Each cycle maps a 5 MB model: a leak would add about 125 MiB over 25.
  const grown = await rssGrowth("load");
  assert.ok(
    grown < 16 * 1024 * 1024,
    `RSS grew by ${
      (grown / 1048576).toFixed(1)
    } MiB over the last 25 of 60 loads`,
  );
});
