import assert from "node:assert/strict";
import { Context, Model, Sampler } from "../../../bindings/mod.ts";
import { Errno, WasiNnError } from "../../../wasi_nn/errno.ts";
import { generate } from "../../../wasi_nn/engine/generate.ts";
import { LlamaHost } from "../../../wasi_nn/host/host.ts";
import { ensureModel } from "../../../gguf/mod.ts";
import { tinyModel } from "../../_helpers.ts";
import { MUTATIONS } from "../../security/_gguf_craft.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function host(
  extra: Partial<Parameters<typeof LlamaHost.create>[0]> = {},
) {
  const path = await tinyModel();
  return await LlamaHost.create({
    registry: {
      resolve: (n: string) => {
        if (n === "default") return path;
        throw new WasiNnError(Errno.NotFound, `no model named '${n}'`);
      },
    },
    log: () => {},
    ...extra,
  });
}

/** A new execution context with a prompt (set_input 0) and a config (set_input 1). */
async function openSession(
  h: LlamaHost,
  graph: number,
  prompt: string,
  config: object = {},
): Promise<number> {
  const c = h.initExecutionContext(graph);
  const text = (t: string) => ({ dims: [1], type: 3, data: enc.encode(t) });
  await h.setInput(c, 0, text(prompt));
  await h.setInput(c, 1, text(JSON.stringify(config)));
  return c;
}

function isErrno(errno: number) {
  return (e: unknown) => e instanceof WasiNnError && e.errno === errno;
}

Deno.test("runInference: greedy text equals the direct bindings path, with metadata", async () => {
  using h = await host();
  const g = await h.loadByName(
    "default",
    '{"n-predict":20,"temp":0,"ctx-size":256}',
  );
  const ctx = h.initExecutionContext(g);
  const r = await h.runInference(ctx, "Once upon a time");
  assert.equal(r.metadata.output_tokens, 20);
  assert.equal(r.metadata.stop_reason, "length");
  assert.ok(r.metadata.input_tokens > 0);
  assert.match(r.metadata.llama_commit, /^[0-9a-f]+$/);
  using model = await Model.load(await tinyModel());
  const c = await Context.create(model, { nCtx: 256 });
  const direct = await generate(
    c,
    Sampler.create(model, { temp: 0 }),
    model.tokenize("Once upon a time", { parseSpecial: true }),
    { nPredict: 20 },
  );
  assert.equal(r.text, direct.text);
});

Deno.test("a session id resumes the conversation and reuses its cached prompt", async () => {
  using h = await host();
  const g = await h.loadByName(
    "default",
    '{"n-predict":6,"temp":0,"ctx-size":512}',
  );
  const a = h.initExecutionContext(g, "chat-42");
  const t1 = "User: hello there\nAssistant:";
  const r1 = await h.runInference(a, t1);
  assert.equal(
    h.initExecutionContext(g, "chat-42"),
    a,
    "same id -> same session",
  );
  const r2 = await h.runInference(a, `${t1}${r1.text}\nUser: more\nAssistant:`);
  assert.ok((r2.metadata.cached_tokens ?? 0) > 0, JSON.stringify(r2.metadata));
  const st = h.status();
  assert.equal(st.sessions.find((s) => s.id === "chat-42")?.handle, a);
  assert.ok(st.sessions[0].cachedTokens > 0);
});

Deno.test("two sessions never share state", async () => {
  using h = await host();
  const g = await h.loadByName(
    "default",
    '{"n-predict":12,"temp":0,"ctx-size":256}',
  );
  const a = h.initExecutionContext(g), b = h.initExecutionContext(g);
  const alone = await h.runInference(a, "The weather today is");
  await h.runInference(
    b,
    "Something else entirely, much longer than the other prompt",
  );
  const [again, other] = await Promise.all([
    h.runInference(a, "The weather today is"),
    h.runInference(b, "A third prompt"),
  ]);
  assert.equal(again.text, alone.text);
  assert.notEqual(other.text, "");
});

Deno.test("errno paths: NotFound, ModelNotFound, bad handles, wrong order, Busy", async () => {
  const dir = await Deno.makeTempDir();
  using h = await LlamaHost.create({
    registry: {
      resolve: (n: string) => {
        if (n === "missing") return `${dir}/gone.gguf`;
        throw new WasiNnError(Errno.NotFound, `no model named '${n}'`);
      },
    },
    log: () => {},
  });
  await assert.rejects(h.loadByName("nope"), isErrno(Errno.NotFound));
  await assert.rejects(h.loadByName("missing"), isErrno(Errno.ModelNotFound));
  assert.throws(
    () => h.initExecutionContext(99),
    isErrno(Errno.InvalidArgument),
  );
  assert.throws(() => h.getOutput(99, 0), isErrno(Errno.InvalidArgument));
  await assert.rejects(
    h.load([new Uint8Array(4)], 1, 0),
    isErrno(Errno.InvalidEncoding),
  );
  await assert.rejects(
    h.load([new Uint8Array(4)], 6, 9),
    isErrno(Errno.InvalidArgument),
  );
  await Deno.remove(dir, { recursive: true });

  using h2 = await host();
  const g = await h2.loadByName(
    "default",
    '{"n-predict":200,"ignore-eos":true,"ctx-size":512}',
  );
  const c = h2.initExecutionContext(g);
  await assert.rejects(
    h2.compute(c),
    isErrno(Errno.InvalidArgument),
    "compute before set_input",
  );
  await h2.setInput(c, 0, { dims: [1], type: 3, data: enc.encode("hi") });
  const running = h2.compute(c);
  await assert.rejects(h2.compute(c), isErrno(Errno.Busy));
  await running;
  await assert.rejects(
    h2.setInput(c, 0, { dims: [1], type: 2, data: enc.encode("x") }),
    isErrno(Errno.InvalidArgument),
  );
});

Deno.test("bad configs: malformed JSON is InvalidEncoding, wrong types InvalidArgument", async () => {
  using h = await host();
  await assert.rejects(
    h.loadByName("default", "{not json"),
    isErrno(Errno.InvalidEncoding),
  );
  await assert.rejects(
    h.loadByName("default", '{"ctx-size":"big"}'),
    isErrno(Errno.InvalidArgument),
  );
  const g = await h.loadByName("default", '{"llama3":false}'); // unknown keys only warn
  const c = h.initExecutionContext(g);
  await assert.rejects(
    h.setInput(c, 1, {
      dims: [1],
      type: 3,
      data: enc.encode('{"n-predict":1.5}'),
    }),
    isErrno(Errno.InvalidArgument),
  );
});

Deno.test("PromptTooLong and ContextFull with the partial output kept", async () => {
  using h = await host();
  const g = await h.loadByName(
    "default",
    '{"ctx-size":64,"n-predict":1000,"ignore-eos":true,"parallel":1}',
  );
  const c = h.initExecutionContext(g);
  await h.setInput(c, 0, {
    dims: [1],
    type: 3,
    data: enc.encode("word ".repeat(300)),
  });
  await assert.rejects(h.compute(c), isErrno(Errno.PromptTooLong));
  await h.setInput(c, 0, { dims: [1], type: 3, data: enc.encode("short") });
  await assert.rejects(h.compute(c), isErrno(Errno.ContextFull));
  const out = h.getOutput(c, 0);
  assert.ok(out.length > 0, "partial output kept");
  const meta = JSON.parse(dec.decode(h.getOutput(c, 1)));
  assert.equal(meta.stop_reason, "context_full");
  assert.ok(meta.output_tokens > 0);
});

Deno.test("idle sessions expire (injected clock) and LRU eviction makes room", async () => {
  let now = 0;
  using h = await host({
    sessions: {
      maxSessions: 2,
      idleTimeoutMs: 1000,
      now: () => now,
      timer: false,
    },
  });
  const g = await h.loadByName("default", '{"n-predict":2}');
  const a = h.initExecutionContext(g);
  now = 10;
  const b = h.initExecutionContext(g);
  now = 20;
  h.initExecutionContext(g); // evicts a (least recently used)
  assert.throws(() => h.getOutput(a, 0), isErrno(Errno.InvalidArgument));
  assert.doesNotThrow(() => h.getOutput(b, 0));
  now = 5000;
  assert.equal(h.sweepSessions().length, 2);
  assert.equal(h.status().sessions.length, 0);
});

Deno.test("hot swap: open sessions finish on the old model, new ones get the new model", async () => {
  const tiny = await tinyModel();
  const other = (await ensureModel("tiny", { seed: 7 })).path;
  let current = tiny;
  using h = await LlamaHost.create({
    registry: { resolve: () => current },
    log: () => {},
  });
  const g = await h.loadByName(
    "default",
    '{"n-predict":10,"temp":0,"ignore-eos":true}',
  );
  const old = h.initExecutionContext(g);
  const before = await h.runInference(old, "Swap test");
  const streaming = h.runInference(old, "Swap test");
  current = other;
  await h.reloadModel("default");
  assert.equal(
    (await streaming).text,
    before.text,
    "in-flight session finished on the old model",
  );
  assert.equal(
    (await h.runInference(old, "Swap test")).text,
    before.text,
    "old session keeps the old model",
  );
  const fresh = h.initExecutionContext(g);
  const after = await h.runInference(fresh, "Swap test");
  assert.notEqual(after.text, before.text, "new sessions use the new model");
  assert.equal(h.status().models.length, 2);
  h.finalizeExecutionContext(old);
  assert.equal(
    h.status().models.length,
    1,
    "the old model is freed with its last session",
  );
  // A failed load leaves the new model serving.
  current = "/nonexistent/model.gguf";
  await assert.rejects(h.reloadModel("default"), isErrno(Errno.ModelNotFound));
  assert.equal((await h.runInference(fresh, "Swap test")).text, after.text);
});

Deno.test("save and restore a session through the host", async () => {
  using h = await host();
  const g = await h.loadByName("default", '{"n-predict":5,"temp":0}');
  const a = h.initExecutionContext(g);
  await h.runInference(a, "Remember this conversation");
  const file = await Deno.makeTempFile();
  const n = await h.saveSession(a, file);
  const b = h.initExecutionContext(g);
  assert.equal(await h.restoreSession(b, file), n);
  const r = await h.runInference(b, "Remember this conversation and continue");
  assert.ok((r.metadata.cached_tokens ?? 0) > 0);
  await Deno.remove(file);
});

Deno.test("a context too large for free memory is refused with numbers", async () => {
  using h = await host();
  const g = await h.loadByName("default", '{"ctx-size":1000000,"parallel":64}');
  const c = h.initExecutionContext(g);
  await h.setInput(c, 0, { dims: [1], type: 3, data: enc.encode("hi") });
  await assert.rejects(
    h.compute(c),
    (e) =>
      e instanceof WasiNnError &&
      /needs about \d+ MiB but \d+ MiB is free/.test(e.message),
  );
  const g2 = await h.loadByName(
    "default2",
    '{"ctx-size":2000000000,"parallel":64}',
  ).catch(() => undefined);
  assert.equal(g2, undefined);
});

Deno.test("n_probs, stop strings, stop tokens and the loop detector through the host", async () => {
  using h = await host();
  const g = await h.loadByName("default", '{"temp":0,"ctx-size":256}');
  const c = h.initExecutionContext(g);
  const base = await h.runInference(c, "Once upon a time", { n_predict: 8 });
  const p = await h.runInference(c, "Once upon a time", {
    n_predict: 8,
    n_probs: 3,
  });
  assert.equal(p.text, base.text);
  assert.equal(p.metadata.probs?.length, 8);
  for (const t of p.metadata.probs!) {
    assert.ok(t.prob > 0 && t.prob <= 1);
    assert.equal(t.top.length, 3);
    assert.ok(t.top.reduce((s, x) => s + x.prob, 0) <= 1 + 1e-6);
  }
  // A stop string taken from the middle of the greedy text cuts the output before it.
  const words = base.text.trim().split(" ");
  const stopAt = ` ${words[2]}`;
  const stopped = await h.runInference(c, "Once upon a time", {
    n_predict: 8,
    stop: [stopAt],
  });
  assert.equal(stopped.metadata.stop_reason, "stop");
  assert.equal(stopped.metadata.stopped_by, stopAt);
  assert.equal(stopped.text, base.text.slice(0, base.text.indexOf(stopAt)));
  // Forcing one token makes the output a loop of length 1: the detector stops it.
  const forced = p.metadata.probs![0].token;
  const loop = await h.runInference(c, "Once upon a time", {
    n_predict: 50,
    logit_bias: [[forced, 100]],
    loop_max_cycle: 2,
    loop_repeats: 4,
  });
  assert.equal(loop.metadata.stop_reason, "loop");
  assert.equal(loop.metadata.output_tokens, 4);
  const tok = await h.runInference(c, "Once upon a time", {
    n_predict: 50,
    logit_bias: [[forced, 100]],
    stop_token_ids: [forced],
  });
  assert.equal(tok.metadata.stop_reason, "stop_token");
  assert.equal(tok.metadata.output_tokens, 1);
});

Deno.test("chat messages are rendered with the model's template", async () => {
  using h = await host();
  const g = await h.loadByName("default", '{"temp":0,"n-predict":4}');
  const c = h.initExecutionContext(g);
  const r = await h.runInference(c, [{
    role: "user",
    content: "x</s></s></s></s></s>y",
  }]);
  const raw = await h.runInference(c, "[INST] x</s></s></s></s></s>y [/INST]");
  assert.equal(r.metadata.output_tokens, 4);
  // "</s>" inside a message stays text (several tokens); in a raw prompt it is one control token.
  assert.ok(
    r.metadata.input_tokens > raw.metadata.input_tokens,
    JSON.stringify([r.metadata, raw.metadata]),
  );
});

Deno.test("a model that fails to load says why, with its size and the free memory", async () => {
  const dir = await Deno.makeTempDir();
  const good = await Deno.readFile(await tinyModel());
  await Deno.writeFile(
    `${dir}/cut.gguf`,
    good.subarray(0, good.length - 100_000),
  );
  using h = await LlamaHost.create({
    registry: { resolve: () => `${dir}/cut.gguf` },
    log: () => {},
  });
  // A truncated file is refused by the header check, before llama.cpp.
  await assert.rejects(h.loadByName("cut"), (e) => {
    assert.ok(
      e instanceof WasiNnError && e.errno === Errno.InvalidArgument,
      String(e),
    );
    assert.match(e.message, /cut\.gguf/);
    assert.match(
      e.message,
      /truncated file: .* but the file is \d+ bytes long/,
    );
    return true;
  });
  // One that only llama.cpp refuses: its reason, with the sizes.
  await Deno.writeFile(`${dir}/cut.gguf`, await MUTATIONS["head_count zero"]());
  await assert.rejects(h.loadByName("cut"), (e) => {
    assert.ok(
      e instanceof WasiNnError && e.errno === Errno.InvalidArgument,
      String(e),
    );
    assert.match(e.message, /cut\.gguf/);
    assert.match(e.message, /wrong shape/);
    assert.match(e.message, /file \d+ MiB; free RAM \d+ MiB/);
    return true;
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("compute and compute_single stop the same way twice over: n_probs, stop strings, stop tokens", async () => {
  using h = await host();
  const g = await h.loadByName("default", '{"temp":0,"ctx-size":256}');
  const open = (o: object) => openSession(h, g, "Once upon a time", o);
  const errnoOf = (e: unknown) => {
    if (e instanceof WasiNnError) return e.errno;
    throw e;
  };
  const oneShot = async (o: object) => {
    const c = await open(o);
    let errno = 0;
    try {
      await h.compute(c);
    } catch (e) {
      errno = errnoOf(e);
    }
    const r = {
      errno,
      text: dec.decode(h.getOutput(c, 0)),
      meta: JSON.parse(dec.decode(h.getOutput(c, 1))),
    };
    h.finalizeExecutionContext(c);
    return r;
  };
  const stream = async (o: object) => {
    const c = await open(o);
    const pieces: string[] = [];
    let errno = 0;
    while (pieces.length < 64) {
      try {
        await h.computeSingle(c);
      } catch (e) {
        errno = errnoOf(e);
        break;
      }
      pieces.push(dec.decode(h.getOutputSingle(c, 0)));
    }
    const meta = JSON.parse(dec.decode(h.getOutputSingle(c, 1)));
    h.finalizeExecutionContext(c);
    return { pieces, errno, meta };
  };

  const probs = { n_predict: 8, n_probs: 2 };
  const [a, b] = [await oneShot(probs), await oneShot(probs)];
  assert.equal(b.text, a.text);
  assert.equal(b.meta.probs.length, 8);
  const tokens: number[] = a.meta.probs.map((p: { token: number }) => p.token);
  assert.deepEqual(b.meta.probs.map((p: { token: number }) => p.token), tokens);

  const stopAt = ` ${a.text.trim().split(" ")[2]}`;
  const stop = { n_predict: 8, stop: [stopAt] };
  const [sa, sb] = [await oneShot(stop), await oneShot(stop)];
  assert.equal(sb.meta.stop_reason, "stop");
  assert.equal(sb.meta.stopped_by, stopAt);
  assert.equal(sb.text, sa.text);
  assert.equal(sb.text, a.text.slice(0, a.text.indexOf(stopAt)));

  // compute_single ends after the first piece that is a stop token.
  const k = tokens.findIndex((t, i) => i >= 2 && tokens.indexOf(t) === i);
  assert.ok(k >= 2, `no fresh token in ${tokens}`);
  const st = { stop_token_ids: [tokens[k]] };
  const [ta, tb] = [await stream(st), await stream(st)];
  assert.equal(ta.errno, Errno.EndOfSequence);
  assert.equal(tb.errno, Errno.EndOfSequence);
  assert.equal(tb.pieces.length, k + 1);
  assert.deepEqual(tb.pieces, ta.pieces);
  assert.equal(tb.meta.stop_reason, "stop_token");
  assert.equal(ta.meta.stop_reason, "stop_token");
});

Deno.test("the config's context keys reach the sessions' context: cache_type_k f32 grows the saved KV", async () => {
  const size: Record<string, number> = {};
  const kv: Record<string, number> = {};
  for (const type of ["f16", "f32"]) {
    using h = await host();
    const g = await h.loadByName(
      "default",
      JSON.stringify({
        temp: 0,
        "ctx-size": 256,
        "n-predict": 8,
        "cache-type-k": type,
      }),
    );
    const c = h.initExecutionContext(g);
    await h.runInference(c, "Once upon a time there was a little dog");
    const file = await Deno.makeTempFile();
    try {
      await h.saveSession(c, file);
      size[type] = (await Deno.stat(file)).size;
      kv[type] = (await h.statusWithSchedulers()).models[0].schedulers[0]
        .kvBytes;
    } finally {
      await Deno.remove(file);
    }
  }
  // K in f32 takes 4 bytes a value instead of 2 (V stays f16): 1.5 times the KV.
  assert.ok(size.f32 > size.f16 * 1.2, JSON.stringify(size));
  // The status view: 4 sessions x 256 cells x 2 layers x 64 values, K + V.
  assert.equal(kv.f16, 4 * 256 * 2 * 64 * (2 + 2));
  assert.equal(kv.f32, 4 * 256 * 2 * 64 * (4 + 2));
});

Deno.test("pooled embeddings: last equals no pooling's last token, mean differs; names and numbers", async () => {
  using h = await host();
  const embed = async (pooling: string | number) => {
    const g = await h.loadByName(`default`);
    const c = await openSession(h, g, "embed this sentence", {
      embedding: true,
      pooling,
    });
    await h.compute(c);
    const out = JSON.parse(dec.decode(h.getOutput(c, 0)));
    h.finalizeExecutionContext(c);
    return out.embedding as number[];
  };
  const none = await embed("none");
  const last = await embed("last");
  const last3 = await embed(3);
  const mean = await embed("mean");
  assert.equal(last.length, 64);
  assert.deepEqual(last, none);
  assert.deepEqual(last3, last);
  assert.equal(mean.length, 64);
  assert.notDeepEqual(mean, last);
  const norm = Math.hypot(...mean);
  assert.ok(Math.abs(norm - 1) < 1e-6, `norm ${norm}`);
});

Deno.test("ctx_size 0 is the model's training context; unset, the training context up to 4096", async () => {
  const { path } = await ensureModel("tiny", { shape: { nCtxTrain: 8192 } });
  const perSeq = async (config: object) => {
    using h = await LlamaHost.create({
      registry: { resolve: () => path },
      log: () => {},
    });
    const g = await h.loadByName("long", JSON.stringify(config));
    const c = h.initExecutionContext(g);
    await h.runInference(c, "Hi", { n_predict: 1 });
    const st = await h.statusWithSchedulers();
    return st.models[0].schedulers.map((s) => s.nCtxPerSeq);
  };
  assert.deepEqual(await perSeq({ "ctx-size": 0, parallel: 1 }), [8192]);
  assert.deepEqual(await perSeq({ parallel: 1 }), [4096]);
  assert.deepEqual(await perSeq({ "ctx-size": 300, parallel: 1 }), [300]);
});

Deno.test("compute shifts the context with ctx_shift; without it the context fills", async () => {
  using h = await host();
  const g = await h.loadByName(
    "default",
    '{"temp":0,"ctx-size":64,"n-predict":100,"ignore_eos":true}',
  );
  const run = async (shift: boolean) => {
    const c = await openSession(h, g, "Once upon a time", { ctx_shift: shift });
    let errno = 0;
    try {
      await h.compute(c);
    } catch (e) {
      errno = (e as WasiNnError).errno;
    }
    const meta = JSON.parse(dec.decode(h.getOutput(c, 1)));
    h.finalizeExecutionContext(c);
    return { errno, meta };
  };
  const full = await run(false);
  assert.equal(full.errno, Errno.ContextFull);
  assert.equal(full.meta.stop_reason, "context_full");
  const shifted = await run(true);
  assert.equal(shifted.errno, 0);
  assert.equal(shifted.meta.output_tokens, 100);
  assert.equal(shifted.meta.truncated, true);
});

Deno.test("enable_log forwards llama.cpp's log as category llama; config warnings are logged once", async () => {
  const records: { level: string; msg: string; category?: string }[] = [];
  const log = (level: string, msg: string, category?: string) =>
    records.push({ level, msg, category });
  const llamaLines = () =>
    records.filter((r) => r.category === "llama" && r.level !== "error")
      .length;
  {
    using h = await host({ log });
    await h.loadByName("default", '{"ctx-size":128}');
    assert.equal(llamaLines(), 0);
  }
  {
    records.length = 0;
    using h = await host({ log });
    const cfg = '{"enable_log":true,"ctx-size":128,"temprature":0.5}';
    const g = await h.loadByName("default", cfg);
    assert.ok(llamaLines() > 0, "no llama.cpp lines");
    assert.ok(
      records.some((r) =>
        r.category === "llama" && /llama_model_loader/.test(r.msg)
      ),
    );
    const c = h.initExecutionContext(g);
    const r = await h.runInference(c, "Hi", { n_predict: 2 });
    assert.equal(r.metadata.output_tokens, 2);
    const unknown = records.filter((r) =>
      r.level === "warn" && /temprature/.test(r.msg) &&
      /did you mean 'temperature'/.test(r.msg)
    );
    assert.equal(unknown.length, 1, JSON.stringify(records.slice(0, 3)));
  }
});

Deno.test("compute reuses the cached prompt on the next turn, and gives what a fresh run gives", async () => {
  using h = await host();
  const g = await h.loadByName("default", '{"temp":0,"ctx-size":512}');
  const turn = async (c: number, prompt: string) => {
    await h.setInput(c, 0, { dims: [1], type: 3, data: enc.encode(prompt) });
    await h.compute(c);
    return {
      text: dec.decode(h.getOutput(c, 0)),
      meta: JSON.parse(dec.decode(h.getOutput(c, 1))),
    };
  };
  const c = await openSession(h, g, "", { n_predict: 8 });
  const t1 = "User: hello there, how are you today?\nAssistant:";
  const r1 = await turn(c, t1);
  assert.equal(r1.meta.cached_tokens, 0);
  const t2 = `${t1}${r1.text}\nUser: and tomorrow?\nAssistant:`;
  const r2 = await turn(c, t2);
  assert.ok(
    r2.meta.cached_tokens > r1.meta.input_tokens,
    JSON.stringify(r2.meta),
  );
  // The same prompt in a fresh session: the same text.
  const fresh = await openSession(h, g, "", { n_predict: 8 });
  assert.equal((await turn(fresh, t2)).text, r2.text);
  // cache_prompt false decodes it all.
  const off = await openSession(h, g, "", {
    n_predict: 8,
    cache_prompt: false,
  });
  await turn(off, t1);
  assert.equal((await turn(off, t2)).meta.cached_tokens, 0);
  // After a reset nothing is reused.
  h.resetSession(c);
  assert.equal((await turn(c, t2)).meta.cached_tokens, 0);
});

Deno.test("max_queue applies per request, on the same shared context", async () => {
  using h = await host();
  const g = await h.loadByName(
    "default",
    '{"temp":0,"ctx-size":256,"parallel":1}',
  );
  const a = await openSession(h, g, "Once upon a time", {
    n_predict: 150,
    ignore_eos: true,
  });
  const b = await openSession(h, g, "Hello", { n_predict: 2, max_queue: 1 });
  const c = await openSession(h, g, "Hello", { n_predict: 2 });
  const first = h.compute(a);
  const running = async () =>
    (await h.statusWithSchedulers()).models[0]?.schedulers[0]?.running ?? 0;
  while (await running() === 0) await new Promise((r) => setTimeout(r, 1));
  const second = h.compute(c); // waits for the slot
  // One task waits already: b allows one, so it is refused.
  await assert.rejects(h.compute(b), isErrno(Errno.Busy));
  await Promise.all([first, second]);
  assert.equal(
    JSON.parse(dec.decode(h.getOutput(a, 1))).output_tokens,
    150,
  );
  const st = await h.statusWithSchedulers();
  assert.equal(st.models[0].schedulers.length, 1);
});

Deno.test("per-session config: model keys are flagged, a per-call chat_template applies, compute_single refuses an embedding", async () => {
  const records: string[] = [];
  using h = await host({ log: (_l: string, m: string) => records.push(m) });
  const g = await h.loadByName("default", '{"temp":0,"n_predict":1}');
  const c = await openSession(h, g, "Hi", { n_gpu_layers: 0, use_mmap: false });
  assert.equal(
    records.filter((m) => /'n_gpu_layers' applies when the model loads/.test(m))
      .length,
    1,
  );
  assert.ok(
    records.some((m) => /'use_mmap' applies when the model loads/.test(m)),
  );
  const messages = [{ role: "user", content: "hello" }];
  const plain = await h.runInference(c, messages);
  const custom = await h.runInference(c, messages, {
    chat_template: "{% for m in messages %}<<{{ m.content }}>>{% endfor %}",
  });
  // "<<hello>>" tokenizes differently from the model's [INST] template.
  assert.notEqual(custom.metadata.input_tokens, plain.metadata.input_tokens);
  const e = await openSession(h, g, "embed me", { embedding: true });
  await assert.rejects(h.computeSingle(e), isErrno(Errno.InvalidArgument));
  // Refused again: the refusal leaves the session as it was.
  await assert.rejects(
    () => h.computeSingle(e),
    isErrno(Errno.InvalidArgument),
  );
});

Deno.test("the memory check counts the KV cache types asked for, on every path", async () => {
  using h = await host({ hostConfig: { max_memory_mb: 110 } });
  const g = await h.loadByName("default", '{"ctx-size":65536,"parallel":1}');
  // f16 K and V: 32 MiB for 65536 tokens of the tiny model, plus about 66
  // MiB of compute buffers (logits for a 512-token batch). It fits.
  const first = await openSession(h, g, "hi", { n_predict: 1 });
  await h.compute(first);
  // Finalized, its context is idle: it is freed when memory runs short.
  h.finalizeExecutionContext(first);
  // f32: 64 MiB of KV, and the compute buffers. It does not fit beside the
  // model (the limit is for the whole host).
  const f32 = { n_predict: 1, "cache-type-k": "f32", "cache-type-v": "f32" };
  const refused = (e: unknown) =>
    e instanceof WasiNnError &&
    /needs about \d+ MiB but 10\d MiB is free of max_memory_mb 110/.test(
      e.message,
    );
  await assert.rejects(h.compute(await openSession(h, g, "hi", f32)), refused);
  await assert.rejects(
    h.compute(await openSession(h, g, "hi", { ...f32, embedding: true })),
    refused,
  );
  // A bigger context too: 256 MiB of f32 KV alone for 262144 tokens.
  const huge = { ...f32, "ctx-size": 262144 };
  await assert.rejects(
    async () => h.compute(await openSession(h, g, "hi", huge)),
    refused,
  );
});

Deno.test("compute_single applies the loop detector; stop strings stay the guest's", async () => {
  using h = await host();
  const g = await h.loadByName("default", '{"temp":0,"ctx-size":256}');
  const base = await h.runInference(
    h.initExecutionContext(g),
    "Once upon a time",
    { n_predict: 1, n_probs: 1 },
  );
  const forced = base.metadata.probs![0].token;
  {
    const c = await openSession(h, g, "Once upon a time", {
      logit_bias: [[forced, 100]],
      loop_max_cycle: 2,
      loop_repeats: 4,
      stop: [base.text], // ignored in single mode, as in WasmEdge
    });
    let pieces = 0, errno = 0;
    for (; pieces < 50; pieces++) {
      try {
        await h.computeSingle(c);
      } catch (e) {
        errno = (e as WasiNnError).errno;
        break;
      }
    }
    assert.equal(errno, Errno.EndOfSequence);
    assert.equal(pieces, 4);
    const meta = JSON.parse(dec.decode(h.getOutputSingle(c, 1)));
    assert.equal(meta.stop_reason, "loop");
  }
});

Deno.test("n_indent reaches the generation: forced newlines end at the first unindented line", async () => {
  using h = await host();
  using model = await Model.load(await tinyModel());
  const nl = model.tokenize("\n", { addSpecial: false, parseSpecial: false })
    .at(-1)!;
  assert.equal(model.tokenToPiece(nl), "\n");
  const g = await h.loadByName("default", '{"temp":0,"ctx-size":256}');
  const r = await h.runInference(h.initExecutionContext(g), "Hi", {
    n_predict: 10,
    logit_bias: [[nl, 100]],
    n_indent: 1,
  });
  assert.equal(r.metadata.stop_reason, "indent");
  assert.equal(r.text, "\n");
  assert.equal(r.metadata.output_tokens, 2);
});

Deno.test("the original project's batch_timeout_ms and max_cache_tokens reach the scheduler", async () => {
  using h = await host({
    hostConfig: { batch_timeout_ms: 200, max_cache_tokens: 1024 },
  });
  const g = await h.loadByName("default", '{"temp":0,"n_predict":1}');
  const a = h.runInference(h.initExecutionContext(g), "Once upon a time");
  await new Promise((r) => setTimeout(r, 1));
  const b = h.runInference(h.initExecutionContext(g), "In a galaxy far away");
  await Promise.all([a, b]);
  const [sched] = (await h.statusWithSchedulers()).models[0].schedulers;
  assert.equal(sched.steps, 1);
  // 1024 tokens of cache: a long idle session is dropped, a short one kept.
  const long = h.initExecutionContext(g);
  await h.runInference(long, "word ".repeat(1100), { "ctx-size": 2048 });
  const st = h.status();
  assert.equal(st.sessions.find((s) => s.handle === long)?.cachedTokens, 0);
});

Deno.test("hot swap while a session streams with compute_single: it ends on the old model; loading, swapping and freeing are logged", async () => {
  const tiny = await tinyModel();
  const other = (await ensureModel("tiny", { seed: 7 })).path;
  let current = tiny;
  const logs: string[] = [];
  using h = await LlamaHost.create({
    registry: { resolve: () => current },
    log: (_level, msg) => logs.push(msg),
  });
  const g = await h.loadByName("default", '{"temp":0,"ignore-eos":true}');
  const stream = async (c: number, n: number, during?: () => Promise<void>) => {
    const pieces: string[] = [];
    for (let i = 0; i < n; i++) {
      await h.computeSingle(c);
      pieces.push(dec.decode(h.getOutputSingle(c, 0)));
      if (i === 2) await during?.();
    }
    h.finiSingle(c);
    return pieces;
  };
  const first = await openSession(h, g, "Swap while streaming");
  const reference = await stream(first, 12);
  h.finalizeExecutionContext(first);
  const live = await openSession(h, g, "Swap while streaming");
  const swapped = await stream(live, 12, async () => {
    current = other;
    await h.reloadModel("default");
  });
  assert.deepEqual(swapped, reference, "the stream ended on the old model");
  const fresh = await stream(
    await openSession(h, g, "Swap while streaming"),
    12,
  );
  assert.notDeepEqual(fresh, reference, "new sessions get the new model");
  h.finalizeExecutionContext(live);
  const text = logs.join("\n");
  assert.match(text, /loaded model 'default'/);
  assert.match(text, /freed model 'default'/);
});

Deno.test("a cache type the model's head size cannot take is InvalidArgument naming the field", async () => {
  using h = await host();
  const g = await h.loadByName("default", '{"ctx-size":128}');
  const c = await openSession(h, g, "hi", {
    n_predict: 1,
    "cache-type-k": "q8_0",
  });
  const named = (e: unknown) =>
    e instanceof WasiNnError && e.errno === Errno.InvalidArgument &&
    /^Field 'cache_type_k': q8_0 stores blocks of 32 values, but this model's attention heads have 16; use f16, bf16 or f32/
      .test(e.message);
  await assert.rejects(h.compute(c), named);
  // Refused again: the refusal leaves the session as it was.
  await assert.rejects(() => h.compute(c), named);
});

Deno.test("queue_warning_threshold warns for compute and compute_single", async () => {
  const warnings: string[] = [];
  using h = await host({
    log: (level: string, msg: string) => {
      if (level === "warn" && /tasks are waiting/.test(msg)) warnings.push(msg);
    },
  });
  const g = await h.loadByName("default", '{"temp":0,"parallel":1}');
  const cfg = { n_predict: 2, queue_warning_threshold: 1 };
  const a = h.compute(
    await openSession(h, g, "Once upon a time", {
      n_predict: 60,
      ignore_eos: true,
    }),
  );
  const running = async () =>
    (await h.statusWithSchedulers()).models[0]?.schedulers[0]?.running ?? 0;
  while (await running() === 0) await new Promise((r) => setTimeout(r, 1));
  const b = h.compute(await openSession(h, g, "b", cfg)); // 1 waiting: no warning
  const c = h.compute(await openSession(h, g, "c", cfg)); // 2 waiting
  const d = h.computeSingle(await openSession(h, g, "d", cfg)); // 3 waiting
  await Promise.all([a, b, c, d]);
  assert.equal(warnings.length, 2, warnings.join("\n"));
  assert.match(warnings[1], /^3 tasks are waiting for 'default'/);
});
