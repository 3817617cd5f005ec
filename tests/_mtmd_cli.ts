/**
 * Test helper: llama-mtmd-cli as the reference for images and audio in the
 * prompt (its greedy text for a kind's synthetic model and projector), the
 * prompt as it formats one message, and the media the tests use: the
 * checkout's test-1.jpeg, a PNG and a WAV written here.
 * @module
 */
import assert from "node:assert/strict";
import { paths } from "../paths.ts";
import { referenceTool, run } from "./_helpers.ts";
import { ensureMtmdPair, makePng, type MtmdKind } from "../gguf/mtmd_model.ts";

/** llama-mtmd-cli, when `deno task build:reference` built it. */
export const cli = referenceTool("llama-mtmd-cli");
/** The checkout's test image. */
export const JPEG = `${paths().llamaCpp}/tools/mtmd/test-1.jpeg`;
/** mtmd's default media marker. */
export const MARKER = "<__media__>";
/** Greedy tokens each run generates. */
export const N_PREDICT = 12;
/** The default question. */
export const PROMPT = "Describe the image.";

/** A PNG the tests write themselves: 96x80 gradients. */
export const PNG = makePng(96, 80, (x, y) => [x * 2, y * 3, (x ^ y) * 4]);

/** A mono 16-bit PCM WAV file of `n` samples of a 440 Hz tone. */
export function wav(rate: number, n: number): Uint8Array {
  const out = new Uint8Array(44 + n * 2);
  const dv = new DataView(out.buffer);
  const tag = (o: number, s: string) => {
    for (let i = 0; i < 4; i++) out[o + i] = s.charCodeAt(i);
  };
  tag(0, "RIFF");
  dv.setUint32(4, 36 + n * 2, true);
  tag(8, "WAVE");
  tag(12, "fmt ");
  dv.setUint32(16, 16, true);
  dv.setUint16(20, 1, true); // PCM
  dv.setUint16(22, 1, true); // mono
  dv.setUint32(24, rate, true);
  dv.setUint32(28, rate * 2, true);
  dv.setUint16(32, 2, true);
  dv.setUint16(34, 16, true);
  tag(36, "data");
  dv.setUint32(40, n * 2, true);
  for (let i = 0; i < n; i++) {
    dv.setInt16(
      44 + i * 2,
      Math.round(8000 * Math.sin(i * 440 * 2 * Math.PI / rate)),
      true,
    );
  }
  return out;
}

/** The prompt llama-mtmd-cli makes of one user message (the bench's, one rule). */
export { mtmdCliPrompt as cliPrompt } from "../bench/_mtmd.ts";

/**
 * llama-mtmd-cli's generated text (single turn: the chat template around
 * `prompt`, greedy). Its stdout is "\n", the generated pieces, then "\n\n",
 * written through llama.cpp's asynchronous log thread, which can lose the
 * tail at exit on a loaded machine: retried until the closing "\n\n" is there.
 */
export async function cliText(
  kind: MtmdKind,
  images: string[],
  prompt: string,
): Promise<string> {
  const { model, mmproj } = await ensureMtmdPair(kind);
  const args = ["-m", model, "--mmproj", mmproj];
  for (const image of images) args.push("--image", image);
  args.push(
    "-p",
    prompt,
    "-n",
    String(N_PREDICT),
    "--temp",
    "0",
    "-t",
    "2",
    "-c",
    "2048",
    "--no-warmup",
  );
  for (let attempt = 1;; attempt++) {
    const r = await run(cli!, args);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    if (r.stdout.startsWith("\n") && r.stdout.endsWith("\n\n")) {
      return r.stdout.slice(1, -2);
    }
    if (attempt >= 20) {
      assert.fail(`llama-mtmd-cli's output stayed truncated: ${r.stdout}`);
    }
  }
}
