/**
 * Embeddings of every model family, the bert encoder (llama.cpp's encode
 * path: no memory, non-causal, its own CLS pooling) and the decoders, equal
 * llama.cpp's own `llama-embedding` for the same text, pooling and
 * normalisation (within 1e-4 a value; llama-embedding prints 7 decimals,
 * and whole numbers for `--embd-normalize 0`). Through `LlamaHost`
 * (`runInference`, and `setInput` with `compute`) and through a guest (the
 * ABI probe's `embedding` case).
 */
import assert from "node:assert/strict";
import { closeSync, openSync } from "node:fs";
import { buildGuests } from "../../../examples/build.ts";
import {
  ensureFamilyModel,
  MODEL_FAMILIES,
  MODEL_FAMILY_TRAITS,
  type ModelFamily,
} from "../../../gguf/mod.ts";
import { Errno, WasiNnError } from "../../../wasi_nn/errno.ts";
import { LlamaHost } from "../../../wasi_nn/host/host.ts";
import { runGuest } from "../../../wasi_nn/abi/run_guest.ts";
import {
  findLine,
  hexBytes,
  parseProbeOutput,
} from "../../guests/probe_output.ts";
import { referenceTool, run } from "../../_helpers.ts";

const tool = referenceTool("llama-embedding");
const missing = tool === undefined;
if (missing) {
  console.error(
    "embeddings_test: build/bin/llama-embedding is missing (build it with `deno run -A build.ts --reference`); the parity tests are skipped",
  );
}
const TEXT = "hello world, embed this";
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Want {
  /** `--pooling` / the `pooling` key; undefined: the model's own. */
  pooling?: "mean" | "cls" | "last" | "rank";
  /** `--embd-normalize` / `embd_normalize`; undefined: the default (2). */
  norm?: number;
}

/**
 * llama-embedding's vector. Its stdout goes through llama.cpp's
 * asynchronous log thread, which can lose the tail at exit on a loaded
 * machine: retried until the JSON is whole.
 */
async function reference(path: string, want: Want): Promise<number[]> {
  const rank = want.pooling === "rank";
  const args = [
    "-m",
    path,
    "-p",
    TEXT,
    "-t",
    "2",
    // Rank scores are printed unnormalised: see the rank test.
    "--embd-normalize",
    String(rank ? -1 : want.norm ?? 2),
    "--embd-output-format",
    rank ? "raw" : "json",
    ...(want.pooling ? ["--pooling", want.pooling] : []),
  ];
  let last = "";
  for (let i = 0; i < 5; i++) {
    const r = await run(tool!, args, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    last = r.stdout;
    if (rank) {
      // One line per input, n_cls_out numbers on it.
      const m = r.stdout.match(/^\s*(-?[0-9.]+(?: -?[0-9.]+)*)\n/);
      if (m) return m[1].split(" ").map(Number);
      continue;
    }
    try {
      const data = JSON.parse(r.stdout).data;
      assert.equal(data.length, 1);
      return data[0].embedding;
    } catch {
      // cut short: again
    }
  }
  throw new Error(`llama-embedding printed no whole output: ${last}`);
}

/** Each value within 1e-4 (whole-number output for max-abs: within 0.5 more). */
function assertClose(ours: number[], ref: number[], want: Want, label: string) {
  assert.equal(ours.length, ref.length, `${label}: length`);
  const tol = want.norm === 0 ? 0.5 : 0;
  ours.forEach((x, i) => {
    const bound = tol + 1e-4 * Math.max(1, Math.abs(ref[i]));
    assert.ok(
      Math.abs(x - ref[i]) <= bound,
      `${label}: value ${i} is ${x}, llama-embedding's ${ref[i]}`,
    );
  });
}

/** A host serving one model file. */
function hostFor(path: string): Promise<LlamaHost> {
  return LlamaHost.create({
    registry: { resolve: () => path },
    log: () => {},
  });
}

function config(want: Want): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  if (want.pooling) c.pooling = want.pooling;
  if (want.norm !== undefined) c.embd_normalize = want.norm;
  return c;
}

function parse(text: string): number[] {
  const out = JSON.parse(text);
  assert.equal(out.n_embedding, out.embedding.length);
  return out.embedding;
}

/** Ours through runInference and through setInput and compute. */
async function ours(h: LlamaHost, want: Want) {
  const g = await h.loadByName("m", '{"embedding":true}');
  const a = h.initExecutionContext(g);
  const viaRun = parse((await h.runInference(a, TEXT, config(want))).text);
  h.finalizeExecutionContext(a);
  const b = h.initExecutionContext(g);
  const text = (t: string) => ({ dims: [1], type: 3, data: enc.encode(t) });
  await h.setInput(b, 0, text(TEXT));
  await h.setInput(b, 1, text(JSON.stringify(config(want))));
  await h.compute(b);
  const viaCompute = parse(dec.decode(h.getOutput(b, 0)));
  h.finalizeExecutionContext(b);
  h.unload(g);
  return { viaRun, viaCompute };
}

async function parity(family: ModelFamily, wants: Want[]) {
  const { path } = await ensureFamilyModel(family);
  using h = await hostFor(path);
  for (const want of wants) {
    const label = `${family} ${JSON.stringify(want)}`;
    const ref = await reference(path, want);
    const { viaRun, viaCompute } = await ours(h, want);
    assertClose(viaRun, ref, want, `${label} runInference`);
    assertClose(viaCompute, ref, want, `${label} compute`);
  }
}

Deno.test({
  name:
    "embeddings: bert (encoder) equals llama-embedding for its own CLS pooling, mean, cls, last, and every normalisation",
  ignore: missing,
  async fn() {
    assert.equal(MODEL_FAMILY_TRAITS.bert.poolingType, 2);
    await parity("bert", [
      {},
      { pooling: "mean" },
      { pooling: "cls" },
      { pooling: "last" },
      { norm: -1 },
      { norm: 0 },
      { norm: 1 },
      { norm: 3 },
      { pooling: "mean", norm: -1 },
    ]);
  },
});

Deno.test({
  name:
    "embeddings: qwen3 (decoder) with mean pooling equals llama-embedding, normalised and raw",
  ignore: missing,
  async fn() {
    await parity("qwen3", [
      { pooling: "mean" },
      { pooling: "mean", norm: -1 },
      { pooling: "last" },
    ]);
  },
});

Deno.test({
  name:
    "embeddings: every other family (SWA, recurrent, hybrid, MoE) with mean pooling equals llama-embedding",
  ignore: missing,
  async fn() {
    for (const family of MODEL_FAMILIES) {
      if (family === "bert" || family === "qwen3") continue;
      await parity(family, [{ pooling: "mean" }]);
    }
  },
});

Deno.test({
  name:
    "embeddings: rank pooling gives the model's n_cls_out scores (not n_embd values read past them), as llama-embedding prints them",
  ignore: missing,
  async fn() {
    for (const family of ["bert", "qwen3"] as const) {
      const { path } = await ensureFamilyModel(family);
      using h = await hostFor(path);
      const ref = await reference(path, { pooling: "rank" });
      assert.equal(ref.length, 1, "one score: no classifier labels");
      // embd_normalize does not apply to scores (one normalised score is ±1).
      for (const norm of [undefined, 2, -1]) {
        const { viaRun, viaCompute } = await ours(h, {
          pooling: "rank",
          norm,
        });
        const label = `${family} rank norm ${norm}`;
        assertClose(viaRun, ref, {}, `${label} runInference`);
        assertClose(viaCompute, ref, {}, `${label} compute`);
      }
    }
  },
});

Deno.test({
  name:
    "embeddings: a guest (ABI probe) gets llama-embedding's vector from bert and from qwen3 with mean pooling",
  ignore: missing,
  async fn() {
    const guests = await buildGuests({ only: ["abi_probe"], quiet: true });
    const cases: [ModelFamily, Want][] = [
      ["bert", {}],
      ["bert", { pooling: "mean", norm: 1 }],
      ["qwen3", { pooling: "mean" }],
    ];
    for (const [family, want] of cases) {
      const { path } = await ensureFamilyModel(family);
      const ref = await reference(path, want);
      using h = await hostFor(path);
      const file = await Deno.makeTempFile();
      const fd = openSync(file, "w");
      let code: number;
      try {
        code = await runGuest({
          wasm: guests.abi_probe,
          args: [
            "embedding",
            "default",
            TEXT,
            JSON.stringify({ embedding: true, ...config(want) }),
          ],
          host: h,
          stdout: fd,
        });
      } finally {
        closeSync(fd);
      }
      const lines = parseProbeOutput(await Deno.readTextFile(file));
      await Deno.remove(file);
      const label = `${family} ${JSON.stringify(want)} guest`;
      assert.equal(code, 0, label);
      assert.equal(findLine(lines, "compute").errno, 0, label);
      const text = findLine(lines, "get_output", "text");
      assert.equal(text.errno, 0, label);
      const v = parse(dec.decode(hexBytes(text.hex as string)));
      assertClose(v, ref, want, label);
    }
  },
});

Deno.test("embeddings: bert input past its 512 learned positions is PromptTooLong (llama.cpp would abort the process); 512 tokens embed", async () => {
  const { path } = await ensureFamilyModel("bert");
  const probe = new URL("./_embed_positions_probe.ts", import.meta.url)
    .pathname;
  const once = async (words: number) => {
    const r = await run(Deno.execPath(), [
      "run",
      "-A",
      probe,
      path,
      String(words),
    ], {
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, `the probe died (code ${r.code}): ${r.stderr}`);
    return r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  };
  // "word" is one token; the tokenizer adds [CLS] and [SEP].
  for (const line of await once(510)) {
    assert.deepEqual(line, { mode: line.mode, errno: 0, n: 64 });
  }
  const long = await once(600);
  assert.equal(long.length, 2);
  for (const line of long) {
    assert.equal(line.errno, Errno.PromptTooLong, JSON.stringify(line));
    assert.match(line.message, /602 tokens .*learned positions for 512/);
  }
});

Deno.test("a generation context past a learned position table is refused, not an abort", async () => {
  using h = await hostFor((await ensureFamilyModel("bert")).path);
  const g = await h.loadByName("default", '{"n-predict":2}');
  // Within the 512 positions it runs; past them llama.cpp would abort.
  const r = await h.runInference(h.initExecutionContext(g), "hello world");
  assert.equal(r.metadata.output_tokens, 2);
  await assert.rejects(
    h.runInference(h.initExecutionContext(g), "hello", { "ctx-size": 4096 }),
    (e) =>
      e instanceof WasiNnError && e.errno === Errno.InvalidArgument &&
      /ctx_size': 4096 .* at most 512/.test(e.message),
  );
});
