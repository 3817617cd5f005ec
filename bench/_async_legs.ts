/**
 * The legs that use non-blocking FFI calls (awaited `decode`, `generate()`
 * without `sync`, a guest through the host), run in a child process.
 *
 * Why a child: a non-blocking call runs on one of Deno's blocking-pool
 * threads. With an OpenMP build of ggml, every new calling thread gets its
 * own OpenMP team, and once libgomp manages more threads than there are CPUs
 * it throttles its spin-waits (barriers then sleep in futex), which slows
 * every later decode of the whole process, blocking ones included, until
 * those pool threads exit. Running these legs in their own process keeps the
 * blocking legs' numbers clean, as llama.cpp's tools each run in their own
 * process too.
 *
 * Run as a script: `deno run -A bench/_async_legs.ts '<AsyncLegsInput JSON>'`
 * prints one `AsyncLegsResult` JSON object on stdout.
 * @module
 */

import { Model } from "../bindings/mod.ts";
import { oursE2e, type OurSettings, oursTg } from "./_ours.ts";
import { guestBench } from "./_guest.ts";

/** What the child runs. */
export interface AsyncLegsInput {
  /** Model file. */
  model: string;
  /** Threads, batch, poll. */
  settings: OurSettings;
  /** Tokens of the tg test and of end-to-end generation. */
  nGen: number;
  /** Context of the end-to-end runs. */
  nCtx: number;
  /** End-to-end prompt text. */
  prompt: string;
  /** Run the guest leg too (when the guest is built). */
  guest: boolean;
}

/** What the child reports, tokens/s. */
export interface AsyncLegsResult {
  /** tg with an awaited non-blocking decode per token. */
  tgAsync: number;
  /** generate() without `sync`. */
  e2eAsync: number;
  /** The guest's tokens/s, when it ran. */
  guest?: number;
  /** What the guest leg ran. */
  guestDescription?: string;
  /** Why the guest leg did not run. */
  guestSkipped?: string;
}

/** Runs the legs in this process. */
export async function runAsyncLegs(
  input: AsyncLegsInput,
): Promise<AsyncLegsResult> {
  using model = await Model.load(input.model);
  const prompt = new Int32Array(
    model.tokenize(input.prompt, { addSpecial: true }),
  );
  const tgAsync = await oursTg(model, input.settings, input.nGen, false);
  const e2e = await oursE2e(
    model,
    input.settings,
    prompt,
    input.nGen,
    input.nCtx,
    false,
  );
  const out: AsyncLegsResult = { tgAsync, e2eAsync: e2e.tokensPerSecond };
  if (input.guest) {
    model.close(); // the host loads its own copy
    const g = await guestBench(
      input.model,
      input.prompt,
      input.nGen,
      input.settings,
      input.nCtx,
    );
    if (g.available) {
      try {
        out.guest = await g.run();
        out.guestDescription = g.description;
      } finally {
        await g.close();
      }
    } else {
      out.guestSkipped = g.reason;
    }
  }
  return out;
}

/** Runs the legs in a child Deno process (same permissions as a `-A` run). */
export async function spawnAsyncLegs(
  input: AsyncLegsInput,
): Promise<AsyncLegsResult> {
  const script = new URL(import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, JSON.stringify(input)],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    throw new Error(`the async legs' child process exited with ${out.code}`);
  }
  return JSON.parse(text) as AsyncLegsResult;
}

if (import.meta.main) {
  const result = await runAsyncLegs(JSON.parse(Deno.args[0]) as AsyncLegsInput);
  console.log(JSON.stringify(result));
}
