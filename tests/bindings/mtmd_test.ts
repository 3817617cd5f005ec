// Images and audio in the prompt through llama.cpp's mtmd (bindings/mtmd.ts,
// native/wnb_mtmd.cpp): synthetic projectors (gguf/mtmd_model.ts) load,
// images tokenize and evaluate, and greedy output equals llama-mtmd-cli's.
import assert from "node:assert/strict";
import {
  Context,
  LlamaError,
  type MediaBitmap,
  Model,
  Mtmd,
  Sampler,
  Status,
} from "../../bindings/mod.ts";
import { SYMBOLS } from "../../bindings/_symbols.ts";
import { ensureMtmdPair, type MtmdKind } from "../../gguf/mtmd_model.ts";
import {
  cli,
  cliPrompt,
  cliText,
  JPEG,
  MARKER,
  N_PREDICT,
  PNG,
  PROMPT,
  wav,
} from "../_mtmd_cli.ts";

async function pngFile(): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".png" });
  await Deno.writeFile(path, PNG);
  return path;
}

/** Our greedy text for the same: the chat template, mtmd tokenize, eval, step. */
async function ourText(
  kind: MtmdKind,
  images: Uint8Array[],
  prompt: string,
): Promise<{ text: string; tokens: number[]; nPos: number; chunks: number }> {
  const pair = await ensureMtmdPair(kind);
  using model = await Model.load(pair.model);
  using mtmd = await Mtmd.load(model, pair.mmproj, { nThreads: 2 });
  using ctx = await Context.create(model, {
    nCtx: 2048,
    nBatch: 2048,
    nUbatch: 512,
    nThreads: 2,
  });
  using sampler = Sampler.create(model, { temp: 0 });
  // As llama-mtmd-cli: a marker per image in front when the prompt has none.
  const content = prompt.includes(MARKER)
    ? prompt
    : MARKER.repeat(images.length) + prompt;
  const formatted = cliPrompt(model, content);
  const bitmaps: MediaBitmap[] = [];
  try {
    for (const image of images) bitmaps.push(await mtmd.bitmap(image));
    using chunks = mtmd.tokenize(formatted, bitmaps);
    let pos = await mtmd.eval(ctx, chunks);
    assert.equal(pos, chunks.nPos);
    const tokens: number[] = [];
    let text = "";
    for (let i = 0; i < N_PREDICT; i++) {
      const { token } = await ctx.step(sampler, { pos: pos++ });
      if (model.isEog(token)) break;
      tokens.push(token);
      text += model.tokenToPiece(token);
    }
    return { text, tokens, nPos: chunks.nPos, chunks: chunks.count };
  } finally {
    for (const b of bitmaps) b.close();
  }
}

Deno.test("every wnb_mtmd_ function of the header is in the FFI symbol table", async () => {
  const header = await Deno.readTextFile(
    new URL("../../native/wasi_nn_shim.h", import.meta.url),
  );
  const declared = [
    ...header.matchAll(/WNB_API\s+[^(]*?\b(wnb_\w*mtmd\w*)\s*\(/g),
  ]
    .map((m) => m[1]).sort();
  const listed = Object.keys(SYMBOLS)
    .filter((k) => k.includes("mtmd") && !k.endsWith("_sync")).sort();
  assert.ok(declared.length >= 20, declared.join(" "));
  assert.deepEqual(listed, declared);
});

Deno.test("the default media marker is mtmd's", () => {
  assert.equal(Mtmd.defaultMarker, MARKER);
});

for (const kind of ["llava", "gemma3", "qwen2vl"] as const) {
  Deno.test(`${kind}: the projector loads and an image becomes chunks`, async () => {
    const pair = await ensureMtmdPair(kind);
    using model = await Model.load(pair.model);
    using mtmd = await Mtmd.load(model, pair.mmproj, { nThreads: 2 });
    assert.equal(mtmd.supportsVision, true);
    assert.equal(mtmd.supportsAudio, false);
    assert.equal(mtmd.audioSampleRate, -1);
    assert.equal(mtmd.usesMrope, kind === "qwen2vl");
    using image = await mtmd.bitmap(await Deno.readFile(JPEG));
    assert.equal(image.width, 640);
    assert.equal(image.height, 488);
    assert.equal(image.isAudio, false);
    assert.match(image.id, /^[0-9a-f]{64}$/);
    using chunks = mtmd.tokenize(`before ${MARKER} after`, [image]);
    const list = chunks.chunks();
    assert.deepEqual(list.map((c) => c.type), ["text", "image", "text"]);
    const img = list[1];
    assert.equal(img.id, image.id);
    assert.equal(chunks.nTokens, list.reduce((n, c) => n + c.nTokens, 0));
    assert.equal(chunks.nPos, list.reduce((n, c) => n + c.nPos, 0));
    if (kind === "llava") {
      // 64x64 input, 8x8 patches: 64 tokens, one position each
      assert.equal(img.nTokens, 64);
      assert.equal(img.nPos, 64);
    } else if (kind === "gemma3") {
      // 64x64 input, 8x8 patches pooled 2x2: 16 tokens
      assert.equal(img.nTokens, 16);
      assert.equal(img.nPos, 16);
    } else {
      // dynamic resolution, 32x32 pixels per token; M-RoPE: fewer positions
      assert.ok(img.nTokens > 64, `${img.nTokens} tokens`);
      assert.ok(img.nPos < img.nTokens, `${img.nPos} positions`);
    }
    assert.ok(list[0].tokens!.length > 0);
    assert.equal(list[0].tokens!.length, list[0].nTokens);
  });

  Deno.test({
    name: `${kind}: greedy output equals llama-mtmd-cli's (test-1.jpeg)`,
    ignore: cli === undefined, // built by `deno task build:reference`
    fn: async () => {
      const ours = await ourText(kind, [await Deno.readFile(JPEG)], PROMPT);
      assert.ok(ours.tokens.length > 0);
      assert.equal(ours.text, await cliText(kind, [JPEG], PROMPT));
    },
  });
}

Deno.test("qwen2a: an audio projector takes a WAV the test writes, not images", async () => {
  const pair = await ensureMtmdPair("qwen2a");
  using model = await Model.load(pair.model);
  using mtmd = await Mtmd.load(model, pair.mmproj, { nThreads: 2 });
  assert.equal(mtmd.supportsAudio, true);
  assert.equal(mtmd.supportsVision, false);
  assert.equal(mtmd.audioSampleRate, 16000);
  using clip = await mtmd.bitmap(wav(16000, 8000));
  assert.equal(clip.isAudio, true);
  assert.equal(clip.width, 8000); // samples at 16 kHz
  using chunks = mtmd.tokenize(`hear ${MARKER} this`, [clip]);
  const list = chunks.chunks();
  assert.deepEqual(list.map((c) => c.type), ["text", "audio", "text"]);
  assert.equal(list[1].nTokens, 750); // one 30 s window
  using ctx = await Context.create(model, { nCtx: 2048, nThreads: 2 });
  assert.equal(await mtmd.eval(ctx, chunks), chunks.nPos);
  await assert.rejects(
    () => mtmd.bitmap(PNG),
    (e) =>
      e instanceof LlamaError && e.code === Status.InvalidArgument &&
      /no images/.test(e.message),
  );
});

Deno.test({
  name: "qwen2a: greedy output for a WAV equals llama-mtmd-cli's",
  ignore: cli === undefined,
  fn: async () => {
    const path = await Deno.makeTempFile({ suffix: ".wav" });
    try {
      const audio = wav(16000, 8000);
      await Deno.writeFile(path, audio);
      const prompt = "What is this sound?";
      const ours = await ourText("qwen2a", [audio], prompt);
      assert.ok(ours.tokens.length > 0);
      assert.equal(ours.text, await cliText("qwen2a", [path], prompt));
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test({
  name: "llava: a PNG the test writes: greedy output equals llama-mtmd-cli's",
  ignore: cli === undefined,
  fn: async () => {
    const path = await pngFile();
    try {
      const ours = await ourText("llava", [PNG], PROMPT);
      assert.equal(ours.text, await cliText("llava", [path], PROMPT));
      // The image matters: another image gives other text.
      const jpeg = await ourText("llava", [await Deno.readFile(JPEG)], PROMPT);
      assert.notEqual(ours.text, jpeg.text);
    } finally {
      await Deno.remove(path);
    }
  },
});

for (const kind of ["llava", "gemma3", "qwen2vl"] as const) {
  Deno.test({
    name: `${kind}: two images in one prompt equal llama-mtmd-cli's`,
    ignore: cli === undefined,
    fn: async () => {
      const path = await pngFile();
      try {
        const prompt = `First ${MARKER} and second ${MARKER}: what differs?`;
        const ours = await ourText(
          kind,
          [await Deno.readFile(JPEG), PNG],
          prompt,
        );
        assert.equal(ours.chunks, 5); // text, image, text, image, text
        assert.equal(ours.text, await cliText(kind, [JPEG, path], prompt));
      } finally {
        await Deno.remove(path);
      }
    },
  });
}

Deno.test("bad media and bad projectors are clean errors; the process lives", async () => {
  const pair = await ensureMtmdPair("llava");
  using model = await Model.load(pair.model);
  using mtmd = await Mtmd.load(model, pair.mmproj, { nThreads: 2 });

  // not an image at all, a JPEG cut before its frame header, PNGs cut short
  // (a JPEG cut after its header decodes: stb_image, as llama.cpp, is lenient)
  const jpeg = await Deno.readFile(JPEG);
  for (
    const bytes of [
      new TextEncoder().encode("this is not an image"),
      jpeg.slice(0, 20),
      PNG.slice(0, 60),
      PNG.slice(0, PNG.length / 2),
    ]
  ) {
    await assert.rejects(
      () => mtmd.bitmap(bytes),
      (e) => e instanceof LlamaError && e.code === Status.InvalidArgument,
    );
  }
  // audio for a projector without an audio encoder
  assert.equal(mtmd.supportsAudio, false);
  await assert.rejects(
    () => mtmd.bitmap(wav(16000, 1600)),
    (e) =>
      e instanceof LlamaError && e.code === Status.InvalidArgument &&
      /audio/.test(e.message),
  );
  // an image over the pixel limit is refused before it is decoded
  {
    using small = await Mtmd.load(model, pair.mmproj, {
      nThreads: 2,
      maxImagePixels: 64 * 64,
    });
    await assert.rejects(
      () => small.bitmap(jpeg),
      (e) =>
        e instanceof LlamaError && e.code === Status.InvalidArgument &&
        /640x488/.test(e.message),
    );
  }
  // markers and bitmaps must match
  {
    using image = await mtmd.bitmap(PNG);
    assert.throws(
      () => mtmd.tokenize(`${MARKER} ${MARKER}`, [image]),
      (e) =>
        e instanceof LlamaError && e.code === Status.InvalidArgument &&
        /media markers/.test(e.message),
    );
    assert.throws(
      () => mtmd.tokenize("no marker", [image]),
      (e) => e instanceof LlamaError && e.code === Status.InvalidArgument,
    );
  }
  // a truncated projector, a missing one, and one for another model width
  const bytes = await Deno.readFile(pair.mmproj);
  const dir = await Deno.makeTempDir();
  try {
    for (
      const cut of [bytes.length - 1000, Math.floor(bytes.length / 2), 100]
    ) {
      const path = `${dir}/cut-${cut}.gguf`;
      await Deno.writeFile(path, bytes.slice(0, cut));
      await assert.rejects(
        () => Mtmd.load(model, path),
        (e) => e instanceof LlamaError && e.code === Status.InvalidModel,
        `cut at ${cut}`,
      );
    }
    await assert.rejects(
      () => Mtmd.load(model, `${dir}/missing.gguf`),
      (e) => e instanceof LlamaError && e.code === Status.FileNotFound,
    );
    const qwen = await ensureMtmdPair("qwen2vl");
    // the qwen2vl projector's output (64) fits the llama model, but a
    // projector is not a text model: loading it as one fails cleanly too
    await assert.rejects(
      () => Model.load(qwen.mmproj),
      (e) => e instanceof LlamaError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // and everything still works afterwards
  using image = await mtmd.bitmap(jpeg);
  using chunks = mtmd.tokenize(`${MARKER}hello`, [image]);
  using ctx = await Context.create(model, { nCtx: 512, nThreads: 2 });
  assert.equal(await mtmd.eval(ctx, chunks), chunks.nPos);
});

Deno.test('a custom media marker (WasmEdge\'s "<image>") replaces the default', async () => {
  const pair = await ensureMtmdPair("llava");
  using model = await Model.load(pair.model);
  using mtmd = await Mtmd.load(model, pair.mmproj, {
    nThreads: 2,
    mediaMarker: "<image>",
  });
  assert.equal(mtmd.marker, "<image>");
  using image = await mtmd.bitmap(PNG);
  using chunks = mtmd.tokenize("USER: <image>\nWhat is it? ASSISTANT:", [
    image,
  ]);
  assert.deepEqual(chunks.chunks().map((c) => c.type), [
    "text",
    "image",
    "text",
  ]);
  // the default marker is plain text now
  assert.throws(
    () => mtmd.tokenize(`${MARKER} and <image>`, [image, image]),
    (e) => e instanceof LlamaError && e.code === Status.InvalidArgument,
  );
  await assert.rejects(
    () => Mtmd.load(model, pair.mmproj, { mediaMarker: "" }),
    (e) => e instanceof LlamaError && e.code === Status.InvalidArgument,
  );
});

Deno.test("eval: chunk ranges continue where the last one stopped", async () => {
  const pair = await ensureMtmdPair("qwen2vl");
  using model = await Model.load(pair.model);
  using mtmd = await Mtmd.load(model, pair.mmproj, { nThreads: 2 });
  using image = await mtmd.bitmap(PNG);
  using chunks = mtmd.tokenize(`a ${MARKER} b`, [image]);
  using ctx = await Context.create(model, { nCtx: 1024, nThreads: 2 });
  using whole = await Context.create(model, { nCtx: 1024, nThreads: 2 });
  let pos = 0;
  for (let i = 0; i < chunks.count; i++) {
    pos = await mtmd.eval(ctx, chunks, { first: i, count: 1, nPast: pos });
  }
  assert.equal(pos, chunks.nPos);
  assert.equal(await mtmd.eval(whole, chunks), chunks.nPos);
  using s1 = Sampler.create(model, { temp: 0 });
  using s2 = Sampler.create(model, { temp: 0 });
  const a = await ctx.step(s1, { pos });
  const b = await whole.step(s2, { pos });
  assert.equal(a.token, b.token);
  // one eval at a time per projector
  using third = await Context.create(model, { nCtx: 1024, nThreads: 2 });
  const running = mtmd.eval(third, chunks);
  await assert.rejects(
    () => mtmd.eval(whole, chunks, { seqId: 0, nPast: pos + 1 }),
    (e) => e instanceof LlamaError && e.code === Status.Usage,
  );
  assert.equal(await running, chunks.nPos);
  // a range out of bounds is a usage error of the shim, not a crash
  await assert.rejects(
    () => mtmd.eval(ctx, chunks, { first: 7, count: 1, nPast: pos }),
    (e) => e instanceof LlamaError && e.code === Status.InvalidArgument,
  );
});
