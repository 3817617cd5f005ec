/**
 * The image guest (examples/c/vision.c) through cli.ts, as WasmEdge's
 * multimodal guests run: `--nn-preload` of the text model and the projector,
 * `--dir` for the image. Each way those guests call the ABI (the image key
 * with compute, as llava, gemma-3 and qwen2vl do; the image inline as
 * base64; streamed with compute_single, as llava-base64-stream) prints
 * llama-mtmd-cli's greedy text for the same model, projector, image and
 * prompt.
 */
import assert from "node:assert/strict";
import { buildGuests } from "../../examples/build.ts";
import { Model } from "../../bindings/mod.ts";
import { paths } from "../../paths.ts";
import { run } from "../_helpers.ts";
import { ensureMtmdPair, type MtmdKind } from "../../gguf/mtmd_model.ts";
import { cli, cliPrompt, cliText, JPEG, N_PREDICT, PNG } from "../_mtmd_cli.ts";

/** Runs the guest through cli.ts with `dir` as the guest's /data. */
async function runVision(
  kind: MtmdKind,
  dir: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { vision } = await buildGuests({ only: ["vision"], quiet: true });
  const pair = await ensureMtmdPair(kind);
  return await run(Deno.execPath(), [
    "run",
    "-A",
    `${paths().root}/cli.ts`,
    "--nn-preload",
    `default:GGML:AUTO:${pair.model}`,
    "--nn-preload",
    `mmproj:GGML:AUTO:${pair.mmproj}`,
    "--dir",
    `/data:${dir}`,
    "--env",
    `N_PREDICT=${N_PREDICT}`,
    vision,
    ...args,
  ]);
}

const cases: [MtmdKind, string, string[]][] = [
  ["llava", "test-1.jpeg", []], // llava: mmproj + image keys, compute
  ["llava", "small.png", ["--base64", "--stream"]], // llava-base64-stream
  ["gemma3", "test-1.jpeg", ["--base64"]], // gemma-3-base64
  ["gemma3", "small.png", []], // gemma-3
  ["qwen2vl", "small.png", []], // qwen2vl (M-RoPE)
];

for (const [kind, file, flags] of cases) {
  Deno.test({
    name: `vision.wasm ${
      flags.join(" ") || "(image key)"
    }: ${kind} and ${file} print llama-mtmd-cli's text`,
    ignore: cli === undefined,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "wnb-vision-" });
      try {
        await Deno.copyFile(JPEG, `${dir}/test-1.jpeg`);
        await Deno.writeFile(`${dir}/small.png`, PNG);
        const question = "What is in the picture?";
        using vocab = await Model.load((await ensureMtmdPair(kind)).model, {
          vocabOnly: true,
        });
        const prompt = cliPrompt(vocab, `<image>${question}`);
        const r = await runVision(kind, dir, [
          ...flags,
          "default",
          "mmproj",
          `/data/${file}`,
          prompt,
        ]);
        assert.equal(r.code, 0, r.stderr.slice(-2000));
        const expected = await cliText(kind, [`${dir}/${file}`], question);
        assert.ok(expected.length > 0);
        assert.equal(r.stdout, `${expected}\n`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "vision.wasm: an image outside the guest's folders is NotFound (errno 8), and the guest says so",
  ignore: cli === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "wnb-vision-" });
    try {
      const r = await runVision("llava", dir, [
        "default",
        "mmproj",
        JPEG, // a host path the guest was not given
        "<image>What?",
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /set_input failed: errno 8/);
      assert.match(r.stderr, /none of the guest's folders/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
