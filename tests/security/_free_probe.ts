/**
 * Child-process probes for freeing while native code runs: each scenario
 * closes, unloads, finalizes or swaps something while a non-blocking llama.cpp
 * call uses it, then prints one JSON line. A use-after-free shows as a crash
 * (SIGSEGV, "pure virtual method called"), which `free_test.ts` sees as the
 * child's exit status.
 *
 * Usage: deno run -A tests/security/_free_probe.ts <scenario>
 * @module
 */

import { Context, Model, Sampler } from "../../bindings/mod.ts";
import { Errno, WasiNnError } from "../../wasi_nn/errno.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { tinyModel } from "../_helpers.ts";

const enc = new TextEncoder();
const path = await tinyModel();

/** A long prompt: one non-blocking decode of thousands of tokens. */
const LONG = Array.from({ length: 1500 }, (_, i) => `word${i % 97}`).join(" ");
/** A config whose prompt is decoded in one big non-blocking batch. */
const BIG_BATCH = {
  "ctx-size": 8192,
  "batch-size": 8192,
  "ubatch-size": 512,
  "n-predict": 64,
  "temp": 0,
  "parallel": 1,
};

async function newHost(): Promise<LlamaHost> {
  return await LlamaHost.create({
    registry: {
      resolve: (n: string) => {
        if (n === "default" || n === "other") return path;
        throw new WasiNnError(Errno.NotFound, `no model named '${n}'`);
      },
    },
    log: () => {},
  });
}

function text(t: string) {
  return { dims: [1], type: 3, data: enc.encode(t) };
}

async function session(h: LlamaHost, prompt: string, config: object) {
  const g = await h.loadByName("default");
  const c = h.initExecutionContext(g);
  await h.setInput(c, 0, text(prompt));
  await h.setInput(c, 1, text(JSON.stringify(config)));
  return { g, c };
}

/**
 * Returns once a compute's prompt is being decoded: its task is running in
 * a scheduler, and the loop has had a turn to start the (non-blocking)
 * decode of the whole long prompt, which takes a second or more.
 */
async function whileDecoding(h: LlamaHost): Promise<void> {
  for (;;) {
    const st = await h.statusWithSchedulers();
    if (st.models.some((m) => m.schedulers.some((x) => x.running > 0))) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  await new Promise((r) => setTimeout(r, 0));
}

/**
 * A compute_single stream on a long prompt that never ends by itself,
 * returned once it has generated 5 tokens.
 */
async function endlessStream(h: LlamaHost) {
  const { g, c } = await session(h, LONG, {
    ...BIG_BATCH,
    "n-predict": 100000,
    "ignore-eos": true,
  });
  let tokens = 0;
  const end = settle((async () => {
    for (;;) {
      await h.computeSingle(c);
      tokens++;
    }
  })());
  while (tokens < 5) await new Promise((r) => setTimeout(r, 1));
  return { g, c, end, tokens: () => tokens };
}

/** Runs a short compute in a new session (the host still serves), closes the host, returns its metadata. */
async function stillServes(h: LlamaHost): Promise<unknown> {
  const other = await session(h, "Hello", { "n-predict": 4, "temp": 0 });
  await h.compute(other.c);
  const out = h.getOutput(other.c, 1);
  await h.shutdown();
  return JSON.parse(new TextDecoder().decode(out));
}

function settle(p: Promise<unknown>): Promise<string> {
  return p.then(() => "done", (e) => `rejected: ${(e as Error).message}`);
}

const scenarios: Record<string, () => Promise<unknown>> = {
  /** host.close() while a prompt decodes. */
  "close-during-prompt": async () => {
    const h = await newHost();
    const { c } = await session(h, LONG, BIG_BATCH);
    const run = settle(h.compute(c));
    await whileDecoding(h);
    await h.shutdown();
    return { compute: await run };
  },
  /** host.close() while a compute_single stream generates. */
  "close-during-stream": async () => {
    const h = await newHost();
    const stream = await endlessStream(h);
    const tokens = stream.tokens();
    await h.shutdown();
    return { stream: await stream.end, tokensBeforeClose: tokens };
  },
  /** unload, then finalize, while a prompt decodes (TypeScript API). */
  "unload-finalize-during-prompt": async () => {
    const h = await newHost();
    const { g, c } = await session(h, LONG, BIG_BATCH);
    const run = settle(h.compute(c));
    await whileDecoding(h);
    h.unload(g);
    h.finalizeExecutionContext(c);
    const r = await run;
    return { compute: r, after: await stillServes(h) };
  },
  /** unload, then finalize, while a compute_single stream generates. */
  "unload-finalize-during-stream": async () => {
    const h = await newHost();
    const stream = await endlessStream(h);
    h.unload(stream.g);
    h.finalizeExecutionContext(stream.c);
    const r = await stream.end;
    return { stream: r, after: await stillServes(h) };
  },
  /** A hot swap while a stream generates: the stream finishes on the old model. */
  "swap-during-stream": async () => {
    const h = await newHost();
    const { c } = await session(h, "Once upon a time", {
      "n-predict": 40,
      "temp": 0,
      "ignore-eos": true,
    });
    let tokens = 0;
    const swap = (async () => {
      while (tokens < 3) await new Promise((r) => setTimeout(r, 1));
      await h.reloadModel("default", path);
    })();
    let end = "";
    // compute_single leaves n_predict to the guest (WasmEdge): stop at 40.
    while (tokens < 40) {
      try {
        await h.computeSingle(c);
        tokens++;
      } catch (e) {
        end = (e as Error).message;
        break;
      }
    }
    await swap;
    await h.shutdown();
    return { tokens, end };
  },
  /** Model.close() while a context of it decodes (bindings). */
  "model-close-during-decode": async () => {
    const model = await Model.load(path);
    const ctx = await Context.create(model, { nCtx: 8192, nBatch: 8192 });
    const tokens = model.tokenize(LONG, { addSpecial: true });
    const run = settle(ctx.decodePrompt(tokens));
    await new Promise((r) => setTimeout(r, 5));
    model.close();
    return { decode: await run, closed: model.closed };
  },
  /** Sampler and model closed while a generation step uses them (bindings). */
  "sampler-close-during-step": async () => {
    const model = await Model.load(path);
    const ctx = await Context.create(model, { nCtx: 8192, nBatch: 8192 });
    const tokens = model.tokenize(LONG, { addSpecial: true });
    // A step decodes one token: give it a long prompt first, then race the closes.
    await ctx.decodePrompt(tokens);
    const sampler = Sampler.create(model, { temp: 0 });
    const results: string[] = [];
    for (let i = 0; i < 20; i++) {
      const step = settle(
        ctx.step(sampler, { pos: tokens.length + i }),
      );
      if (i === 19) {
        sampler.close();
        model.close();
      }
      results.push(await step);
    }
    return { last: results.at(-1), samplerClosed: true };
  },
  /** cancelAll() right after compute() starts, before its task is submitted. */
  "cancel-during-setup": async () => {
    const h = await newHost();
    const { c } = await session(h, "Once upon a time", {
      "n-predict": 4000,
      "ignore-eos": true,
      "ctx-size": 8192,
      "temp": 0,
    });
    const run = h.compute(c);
    h.cancelAll(); // the compute is still setting up (creating its scheduler)
    await run;
    const meta = JSON.parse(new TextDecoder().decode(h.getOutput(c, 1)));
    await h.shutdown();
    return { outputTokens: meta.output_tokens, stop: meta.stop_reason };
  },
};

const name = Deno.args[0];
const scenario = scenarios[name];
if (!scenario) {
  console.error(`unknown scenario '${name}': ${Object.keys(scenarios)}`);
  Deno.exit(2);
}
const result = await scenario();
console.log(JSON.stringify({ scenario: name, ...result as object }));
