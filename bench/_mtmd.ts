/**
 * The `--mtmd` leg of the benchmark: the time to the first token of a
 * prompt with one image, ours through the host (as a guest's prompt runs:
 * the `image` key, a fresh session each time, `compute_single`'s first
 * token) against `llama-mtmd-cli -n 1` on the same synthetic model,
 * projector, image and prompt, alternating in one run.
 *
 * Both sides count from the prompt's first decode to the first sampled
 * token: the text chunks, the image encode and its embeddings' decode, and
 * the sample; neither counts reading, decoding and preprocessing the image
 * file (ours does that at `set_input`, llama-mtmd-cli when it tokenizes).
 * llama-mtmd-cli's figure is what it logs with `-v`: its image encodes and
 * llama.cpp's "prompt eval time". Both warm the text model up first.
 * @module
 */

import { Model } from "../bindings/mod.ts";
import { ensureMtmdPair, type MtmdKind } from "../gguf/mod.ts";
import { paths } from "../paths.ts";
import { LlamaHost } from "../wasi_nn/host/host.ts";
import { median } from "./_report.ts";
import { runTool } from "./_native.ts";

/** What `--json` reports as `mtmd`. */
export interface MtmdResult {
  /** The projector kind (a synthetic model and projector of gguf/mtmd_model.ts). */
  kind: MtmdKind;
  /** The image. */
  image: string;
  /** Our time to the first token on a host that served a prompt before (ms), median. */
  ours_ttft_ms: number;
  /** The same on a new host (model and projector just loaded, no warm-up), median. */
  ours_cold_ttft_ms: number;
  /** llama-mtmd-cli's (ms), median. */
  native_ttft_ms: number;
  /** ours / native (the median of the pairs' ratios). */
  ratio: number;
  /** ours_cold / native (the median of the pairs' ratios). */
  cold_ratio: number;
  /** Each pair's times, ms. */
  per_pair: { ours: number; cold: number; native: number }[];
}

/** Options of `benchMtmd`. */
export interface MtmdBenchOptions {
  /** llama-mtmd-cli. */
  cli: string;
  /** Threads on both sides. */
  threads: number;
  /** Our thread-pool polling (llama-mtmd-cli's is 50). */
  poll: number;
  /** Alternating pairs. */
  pairs: number;
  /** Progress lines. */
  log: (msg: string) => void;
  /** The projector kind (default llava). */
  kind?: MtmdKind;
}

const QUESTION = "Describe the image.";

/**
 * llama-mtmd-cli's time to its first token, from what it logs with -v (ms):
 * its image encodes ("mtmd batch encoding done in N ms") and llama.cpp's
 * "prompt eval time" (the prompt's decodes, text and image embeddings, to
 * the first sample). Undefined when a line was lost.
 */
export function mtmdCliTtft(stderr: string): number | undefined {
  const encodes = [...stderr.matchAll(/mtmd batch encoding done in (\d+) ms/g)];
  const m = /prompt eval time =\s+([\d.]+) ms/.exec(stderr);
  if (!m || encodes.length === 0) return undefined;
  return encodes.reduce((sum, e) => sum + Number(e[1]), Number(m[1]));
}

/**
 * The prompt llama-mtmd-cli makes of one user message: llama.cpp's
 * common_chat_format_single, the rendering of [message] minus that of the
 * empty history (so Qwen's default system prompt is left out).
 */
export function mtmdCliPrompt(model: Model, content: string): string {
  const full = model.applyChatTemplate([{ role: "user", content }]);
  const past = model.applyChatTemplate([], { addGenerationPrompt: false });
  return full.startsWith(past) ? full.slice(past.length) : full;
}

/** Runs the leg. */
export async function benchMtmd(o: MtmdBenchOptions): Promise<MtmdResult> {
  const kind = o.kind ?? "llava";
  const pair = await ensureMtmdPair(kind);
  const image = `${paths().llamaCpp}/tools/mtmd/test-1.jpeg`;
  let prompt: string;
  {
    using vocab = await Model.load(pair.model, { vocabOnly: true });
    prompt = mtmdCliPrompt(vocab, `<image>${QUESTION}`);
  }
  const names: Record<string, string> = {
    default: pair.model,
    mmproj: pair.mmproj,
  };
  const enc = new TextEncoder();
  const text = (s: string) => ({ dims: [1], type: 3, data: enc.encode(s) });
  /** A host with the model and projector loaded, and the TTFT of a fresh session's prompt on it. */
  const newHost = async () => {
    const host = await LlamaHost.create({
      registry: { resolve: (n: string) => names[n] ?? n },
      log: () => {},
    });
    const graph = await host.loadByName(
      "default",
      JSON.stringify({
        mmproj: "mmproj",
        "n-predict": 1,
        temp: 0,
        "ctx-size": 2048,
        "batch-size": 2048,
        threads: o.threads,
        // llama.cpp's tools poll their thread pool at 50.
        poll: o.poll,
      }),
    );
    const ttft = async (): Promise<number> => {
      const ctx = host.initExecutionContext(graph);
      try {
        await host.setInput(ctx, 1, text(JSON.stringify({ image })));
        await host.setInput(ctx, 0, text(prompt));
        const t0 = performance.now();
        await host.computeSingle(ctx);
        return performance.now() - t0;
      } finally {
        host.finalizeExecutionContext(ctx);
      }
    };
    return { host, ttft };
  };
  const warm = await newHost();
  try {
    // llama-mtmd-cli warms its context up right before its prompt: ours
    // likewise runs one prompt right before the timed one (otherwise its
    // thread pool is asleep after the other side's run).
    const ours = async () => {
      await warm.ttft();
      return await warm.ttft();
    };
    // A new host's first prompt: the projector's first encode, no warm-up.
    const cold = async (): Promise<number> => {
      const h = await newHost();
      try {
        return await h.ttft();
      } finally {
        await h.host.shutdown();
      }
    };
    const args = [
      ...["-m", pair.model, "--mmproj", pair.mmproj, "--image", image],
      ...["-p", QUESTION, "-n", "1", "--temp", "0", "-t", String(o.threads)],
      ...["-c", "2048", "--poll", String(o.poll), "-v"],
    ];
    const native = async (): Promise<number> => {
      // Its log thread can lose the last lines at exit: run it again then.
      for (let attempt = 1;; attempt++) {
        const ms = mtmdCliTtft((await runTool(o.cli, args)).stderr);
        if (ms !== undefined) return ms;
        if (attempt >= 10) {
          throw new Error("llama-mtmd-cli's timing lines stayed missing");
        }
      }
    };
    await ours(); // warm: the first session makes the scheduler's context
    const per: { ours: number; cold: number; native: number }[] = [];
    for (let i = 1; i <= o.pairs; i++) {
      const oursFirst = i % 2 === 1;
      let a: number, c: number, b: number;
      if (oursFirst) {
        a = await ours();
        c = await cold();
        b = await native();
      } else {
        b = await native();
        c = await cold();
        a = await ours();
      }
      per.push({ ours: a, cold: c, native: b });
      o.log(
        `mtmd pair ${i}/${o.pairs}: time to first token, ours ${
          a.toFixed(1)
        } ms (a new host: ${c.toFixed(1)} ms), llama-mtmd-cli ${
          b.toFixed(1)
        } ms`,
      );
    }
    return {
      kind,
      image,
      ours_ttft_ms: median(per.map((p) => p.ours)),
      ours_cold_ttft_ms: median(per.map((p) => p.cold)),
      native_ttft_ms: median(per.map((p) => p.native)),
      ratio: median(per.map((p) => p.ours / p.native)),
      cold_ratio: median(per.map((p) => p.cold / p.native)),
      per_pair: per,
    };
  } finally {
    await warm.host.shutdown();
  }
}

/** The table lines of the leg. */
export function mtmdLines(r: MtmdResult | undefined): string[] {
  if (!r) return [];
  return [
    "",
    `Time to first token of a prompt with one image (${r.kind}, test-1.jpeg), ours through the host vs llama-mtmd-cli -n 1:`,
    `  ours ${r.ours_ttft_ms.toFixed(1)} ms (ratio ${
      r.ratio.toFixed(2)
    }), on a new host ${r.ours_cold_ttft_ms.toFixed(1)} ms (ratio ${
      r.cold_ratio.toFixed(2)
    }), llama-mtmd-cli ${r.native_ttft_ms.toFixed(1)} ms (lower is faster)`,
  ];
}
