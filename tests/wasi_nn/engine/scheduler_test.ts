import assert from "node:assert/strict";
import { Model, Sampler } from "../../../bindings/mod.ts";
import { Errno, WasiNnError } from "../../../wasi_nn/errno.ts";
import { Scheduler } from "../../../wasi_nn/engine/scheduler.ts";
import { rssGrowth, tinyModel } from "../../_helpers.ts";

const PROMPTS = [
  "The cat sat on the mat and",
  "In a galaxy far away",
  "Recipe for a simple bread:",
  "Deno is a runtime for",
];

async function setup(nSeq: number, nCtxPerSeq = 256) {
  const model = await Model.load(await tinyModel());
  const sched = await Scheduler.create(model, { nSeq, nCtxPerSeq, threads: 2 });
  return { model, sched };
}

function greedy(model: Model) {
  return Sampler.create(model, { temp: 0 });
}

Deno.test("sessions batched together give exactly the tokens each gives alone", async () => {
  const { model, sched } = await setup(4);
  try {
    const alone: number[][] = [];
    for (const [i, p] of PROMPTS.entries()) {
      const r = await sched.submit({
        owner: sched.newOwner(`solo${i}`),
        prompt: model.tokenize(p),
        sampler: greedy(model),
        stop: { nPredict: 16 },
        ignoreEos: true,
      }).result;
      alone.push(r.tokens);
    }
    const steps0 = sched.stats.steps;
    const together = await Promise.all(PROMPTS.map((p, i) =>
      sched.submit({
        owner: sched.newOwner(`batch${i}`),
        prompt: model.tokenize(p),
        sampler: greedy(model),
        stop: { nPredict: 16 },
        ignoreEos: true,
      }).result
    ));
    assert.deepEqual(together.map((r) => r.tokens), alone);
    // Batched: far fewer decode steps than 4 x 17.
    const steps = sched.stats.steps - steps0;
    assert.ok(steps <= 20, `${steps} decode steps for 4 concurrent sessions`);
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("the prompt cache re-decodes only the new turn", async () => {
  const { model, sched } = await setup(2);
  try {
    const owner = sched.newOwner("chat");
    const turn1 = "User: hello there, how are you today?\nAssistant:";
    const r1 = await sched.submit({
      owner,
      prompt: model.tokenize(turn1),
      sampler: greedy(model),
      stop: { nPredict: 8 },
    }).result;
    const turn2 = `${turn1}${r1.text}\nUser: and tomorrow?\nAssistant:`;
    const p2 = model.tokenize(turn2);
    const r2 = await sched.submit({
      owner,
      prompt: p2,
      sampler: greedy(model),
      stop: { nPredict: 8 },
    })
      .result;
    assert.equal(r1.timings.promptReused, 0);
    assert.ok(
      r2.timings.promptReused >= model.tokenize(turn1).length,
      JSON.stringify(r2.timings),
    );
    assert.equal(r2.timings.promptDecoded + r2.timings.promptReused, p2.length);
    // Same tokens as without the cache.
    const fresh = await sched.submit({
      owner: sched.newOwner("fresh"),
      prompt: p2,
      sampler: greedy(model),
      stop: { nPredict: 8 },
      cachePrompt: false,
    }).result;
    assert.deepEqual(r2.tokens, fresh.tokens);
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("priority order with FIFO within a level, and cancellation frees the slot", async () => {
  const { model, sched } = await setup(1);
  try {
    const order: string[] = [];
    const blocker = sched.submit({
      owner: sched.newOwner("blocker"),
      prompt: model.tokenize("block"),
      sampler: greedy(model),
      stop: { nPredict: -1 },
      ignoreEos: true,
      // Runs until cancelled: a full context shifts instead of ending it.
      contextShift: true,
    });
    // Tasks submitted in one turn share the first admission; let the
    // blocker take the only slot first.
    while (sched.stats.running === 0) {
      await new Promise((r) => setTimeout(r, 1));
    }
    const run = (name: string, priority: number) =>
      sched.submit({
        owner: sched.newOwner(name),
        prompt: model.tokenize(name),
        sampler: greedy(model),
        stop: { nPredict: 2 },
        priority,
      }).result.then(() => order.push(name));
    const all = [
      run("low-1", 0),
      run("high-1", 5),
      run("low-2", 0),
      run("high-2", 5),
    ];
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sched.stats.queued, 4);
    blocker.cancel();
    const b = await blocker.result;
    assert.equal(b.stopReason, "cancelled");
    assert.ok(b.tokens.length > 0);
    await Promise.all(all);
    assert.deepEqual(order, ["high-1", "high-2", "low-1", "low-2"]);
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("a full queue and a queue timeout answer Busy", async () => {
  const model = await Model.load(await tinyModel());
  const sched = await Scheduler.create(model, {
    nSeq: 1,
    nCtxPerSeq: 128,
    maxQueue: 1,
  });
  try {
    const ac = new AbortController();
    const blocker = sched.submit({
      owner: sched.newOwner("b"),
      prompt: model.tokenize("x"),
      sampler: greedy(model),
      stop: { nPredict: -1 },
      ignoreEos: true,
      contextShift: true,
      signal: ac.signal,
    });
    const waiting = sched.submit({
      owner: sched.newOwner("w"),
      prompt: model.tokenize("y"),
      sampler: greedy(model),
      queueTimeoutMs: 30,
    });
    assert.throws(
      () =>
        sched.submit({
          owner: sched.newOwner("z"),
          prompt: model.tokenize("z"),
          sampler: greedy(model),
        }),
      (e) =>
        e instanceof WasiNnError && e.errno === Errno.Busy &&
        /max_queue 1/.test(e.message),
    );
    await assert.rejects(
      waiting.result,
      (e) => e instanceof WasiNnError && e.errno === Errno.Busy,
    );
    ac.abort();
    assert.equal((await blocker.result).stopReason, "cancelled");
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("context full stops, and a context shift continues past the context size", async () => {
  const { model, sched } = await setup(1, 256);
  try {
    const nCtx = sched.nCtxPerSeq;
    const full = await sched.submit({
      owner: sched.newOwner("a"),
      prompt: model.tokenize("shift me"),
      sampler: greedy(model),
      stop: { nPredict: nCtx * 2 },
      ignoreEos: true,
    }).result;
    assert.equal(full.stopReason, "context_full");
    assert.equal(full.truncated, false);
    const shifted = await sched.submit({
      owner: sched.newOwner("b"),
      prompt: model.tokenize("shift me"),
      sampler: greedy(model),
      stop: { nPredict: nCtx + 50 },
      ignoreEos: true,
      contextShift: true,
      nKeep: 4,
    }).result;
    assert.equal(shifted.stopReason, "length");
    assert.equal(shifted.tokens.length, nCtx + 50);
    assert.equal(shifted.truncated, true);
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("a task that fills its context hands its slot to the one queued behind it", async () => {
  const { model, sched } = await setup(1, 64);
  try {
    // Submitted in one turn: the first takes the only slot, the second
    // waits; the first ends while the loop builds a batch (its context is
    // full), and the loop must admit the second rather than sleep.
    const first = sched.submit({
      owner: sched.newOwner("fills"),
      prompt: model.tokenize("fill the context"),
      sampler: greedy(model),
      stop: { nPredict: -1 },
      ignoreEos: true,
    });
    const next = sched.submit({
      owner: sched.newOwner("waits"),
      prompt: model.tokenize("then me"),
      sampler: greedy(model),
      stop: { nPredict: 4 },
      ignoreEos: true,
    });
    const [a, b] = await Promise.all([first.result, next.result]);
    assert.equal(a.stopReason, "context_full");
    assert.equal(b.stopReason, "length");
    assert.equal(b.tokens.length, 4);
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("a prompt longer than a session's context is PromptTooLong", async () => {
  const { model, sched } = await setup(1, 256);
  try {
    assert.throws(
      () =>
        sched.submit({
          owner: sched.newOwner("p"),
          prompt: model.tokenize("word ".repeat(400)),
          sampler: greedy(model),
        }),
      (e) =>
        e instanceof WasiNnError && e.errno === Errno.PromptTooLong &&
        /raise ctx-size/.test(e.message),
    );
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("on-demand streaming yields the same tokens as a full run", async () => {
  const { model, sched } = await setup(2);
  try {
    const full = await sched.submit({
      owner: sched.newOwner("full"),
      prompt: model.tokenize(PROMPTS[0]),
      sampler: greedy(model),
      stop: { nPredict: 10 },
      ignoreEos: true,
    }).result;
    const h = sched.submit({
      owner: sched.newOwner("stream"),
      prompt: model.tokenize(PROMPTS[0]),
      sampler: greedy(model),
      stop: { nPredict: 10 },
      ignoreEos: true,
      onDemand: true,
    });
    const got: number[] = [];
    for (let ev = await h.next(); ev; ev = await h.next()) got.push(ev.token);
    assert.deepEqual(got, full.tokens);
    assert.equal((await h.result).stopReason, "length");
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("on-demand streaming whose first next() comes after the prompt was decoded does not stall", async () => {
  const { model, sched } = await setup(2);
  try {
    const prompt = model.tokenize(PROMPTS[0]);
    const full = await sched.submit({
      owner: sched.newOwner("full"),
      prompt,
      sampler: greedy(model),
      stop: { nPredict: 6 },
      ignoreEos: true,
    }).result;
    // An engine process's first demand arrives after the prompt's step (and
    // its first sample) ran: wait for that step before asking.
    const before = sched.stats.decoded;
    const h = sched.submit({
      owner: sched.newOwner("late"),
      prompt,
      sampler: greedy(model),
      stop: { nPredict: 6 },
      ignoreEos: true,
      onDemand: true,
    });
    while (sched.stats.decoded === before) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 20));
    const got: number[] = [];
    const timeout = (ms: number) =>
      new Promise<"stalled">((r) => {
        const id = setTimeout(() => r("stalled"), ms);
        Deno.unrefTimer(id);
      });
    for (;;) {
      const ev = await Promise.race([h.next(), timeout(10_000)]);
      assert.notEqual(ev, "stalled", `stalled after ${got.length} tokens`);
      if (ev === null || ev === "stalled") break;
      got.push(ev.token);
    }
    assert.deepEqual(got, full.tokens);
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("save and restore a session", async () => {
  const { model, sched } = await setup(2);
  try {
    const a = sched.newOwner("a");
    const prompt = model.tokenize(PROMPTS[1]);
    await sched.submit({
      owner: a,
      prompt,
      sampler: greedy(model),
      stop: { nPredict: 4 },
    }).result;
    const file = await Deno.makeTempFile();
    const n = await sched.saveOwner(a, file);
    assert.ok(n >= prompt.length);
    const b = sched.newOwner("b");
    assert.equal(await sched.restoreOwner(b, file), n);
    const next = model.tokenize(`${PROMPTS[1]} and more`);
    const rb = await sched.submit({
      owner: b,
      prompt: next,
      sampler: greedy(model),
      stop: { nPredict: 6 },
    })
      .result;
    assert.ok(rb.timings.promptReused > 0, "the restored state is reused");
    const ra = await sched.submit({
      owner: sched.newOwner("c"),
      prompt: next,
      sampler: greedy(model),
      stop: { nPredict: 6 },
    }).result;
    assert.deepEqual(rb.tokens, ra.tokens);
    await Deno.remove(file);
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("100 sessions at once all finish; memory stays flat over 1000 sessions", async () => {
  const { model, sched } = await setup(8, 128);
  try {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        sched.submit({
          owner: sched.newOwner(`s${i}`),
          prompt: model.tokenize(`session ${i}`),
          sampler: greedy(model),
          stop: { nPredict: 3 },
          ignoreEos: true,
        }).result),
    );
    assert.equal(results.length, 100);
    assert.ok(results.every((r) => r.tokens.length === 3));
    // 1000 sessions come and go in a process of their own (see _rss_probe.ts).
    const grown = await rssGrowth("scheduler");
    assert.ok(
      grown < 16 * 1048576,
      `RSS grew ${
        (grown / 1048576).toFixed(1)
      } MiB over the last 400 of 1000 sessions`,
    );
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("chunk reuse (n_cache_reuse) shifts cached chunks into place and matches a fresh run", async () => {
  const { model, sched } = await setup(1, 512);
  try {
    const owner = sched.newOwner("reuse");
    const sys = "System: you are a helpful assistant who answers briefly.\n";
    const doc =
      "Document: the quick brown fox jumps over the lazy dog again and again.\n";
    await sched.submit({
      owner,
      prompt: model.tokenize(`${sys}Old question?\n${doc}Answer:`),
      sampler: greedy(model),
      stop: { nPredict: 2 },
    }).result;
    // The middle turn is dropped: the document chunk moves up and is shifted, not re-decoded.
    const p2 = model.tokenize(`${sys}${doc}Answer:`);
    const r = await sched.submit({
      owner,
      prompt: p2,
      sampler: greedy(model),
      stop: { nPredict: 8 },
      cacheReuse: 8,
    }).result;
    assert.ok(r.timings.promptReusedChunks >= 8, JSON.stringify(r.timings));
    const fresh = await sched.submit({
      owner: sched.newOwner("fresh"),
      prompt: p2,
      sampler: greedy(model),
      stop: { nPredict: 8 },
      cachePrompt: false,
    }).result;
    assert.equal(r.timings.promptDecoded + r.timings.promptReused, p2.length);
    assert.equal(r.tokens.length, fresh.tokens.length);
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("the event loop keeps running while a session generates", async () => {
  const { model, sched } = await setup(1, 512);
  try {
    let ticks = 0;
    const iv = setInterval(() => ticks++, 0);
    let other = false;
    const h = sched.submit({
      owner: sched.newOwner("busy"),
      prompt: model.tokenize("keep the loop alive"),
      sampler: greedy(model),
      stop: { nPredict: 200 },
      ignoreEos: true,
      onToken: () => {
        if (ticks > 0) other = true;
      },
    });
    await h.result;
    clearInterval(iv);
    assert.ok(other, "timers ran between generation steps");
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("tasks submitted in one turn share the first decode", async () => {
  const { model, sched } = await setup(4);
  try {
    const samplers = PROMPTS.map(() => greedy(model));
    const results = await Promise.all(
      PROMPTS.map((p, i) =>
        sched.submit({
          owner: sched.newOwner(`batch${i}`),
          prompt: model.tokenize(p),
          sampler: samplers[i],
          stop: { nPredict: 1 },
        }).result
      ),
    );
    samplers.forEach((s) => s.close());
    assert.ok(results.every((r) => r.tokens.length === 1));
    // Four prompts, one token each: one decode serves them all.
    assert.equal(sched.stats.steps, 1);
    const expected = PROMPTS.reduce((n, p) => n + model.tokenize(p).length, 0);
    assert.equal(sched.stats.decoded, expected);
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("a context shift keeps the BOS and n_keep tokens, as the server does (unset: none, -1: the prompt)", async () => {
  const { model, sched } = await setup(1, 64);
  try {
    const prompt = model.tokenize("shift me please, now and then");
    assert.equal(prompt[0], model.info.bos);
    const kept = async (nKeep?: number) => {
      const owner = sched.newOwner(`keep${nKeep}`);
      const r = await sched.submit({
        owner,
        prompt,
        sampler: greedy(model),
        stop: { nPredict: 100 },
        ignoreEos: true,
        contextShift: true,
        nKeep,
      }).result;
      assert.equal(r.truncated, true);
      assert.equal(r.tokens.length, 100);
      let n = 0;
      while (n < prompt.length && owner.cached[n] === prompt[n]) n++;
      sched.dropOwner(owner);
      return n;
    };
    assert.equal(await kept(undefined), 1);
    assert.equal(await kept(3), 4);
    assert.equal(await kept(-1), prompt.length);
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("maxCacheTokens frees the least recently used idle sessions; memory pressure frees them all", async () => {
  const model = await Model.load(await tinyModel());
  let pressure = false;
  const sched = await Scheduler.create(model, {
    nSeq: 4,
    nCtxPerSeq: 128,
    maxCacheTokens: 20,
    memoryPressure: () => pressure,
  });
  try {
    const owners = PROMPTS.slice(0, 3).map((_, i) => sched.newOwner(`c${i}`));
    for (const [i, owner] of owners.entries()) {
      const sampler = greedy(model);
      await sched.submit({
        owner,
        prompt: model.tokenize(PROMPTS[i]),
        sampler,
        stop: { nPredict: 2 },
      }).result;
      sampler.close();
      const cached = owners.reduce((n, o) => n + o.cached.length, 0);
      assert.ok(cached <= 20, `${cached} tokens cached after task ${i}`);
      assert.ok(owner.slot !== undefined, "the newest session keeps its slot");
    }
    // Each session holds about 10 tokens: the oldest ones were freed.
    assert.equal(owners[0].slot, undefined);
    assert.deepEqual(owners[0].cached, []);
    pressure = true;
    const last = sched.newOwner("last");
    const sampler = greedy(model);
    await sched.submit({
      owner: last,
      prompt: model.tokenize("pressure"),
      sampler,
      stop: { nPredict: 1 },
    }).result;
    sampler.close();
    assert.equal(sched.stats.slotsUsed, 0);
    assert.ok([...owners, last].every((o) => o.slot === undefined));
  } finally {
    sched.close();
    model.close();
  }
});

Deno.test("batchWaitMs: a task that comes soon after shares the first decode", async () => {
  const model = await Model.load(await tinyModel());
  const steps = async (batchWaitMs?: number) => {
    const sched = await Scheduler.create(model, {
      nSeq: 2,
      nCtxPerSeq: 128,
      batchWaitMs,
    });
    try {
      const samplers = [greedy(model), greedy(model)];
      const run = (i: number) =>
        sched.submit({
          owner: sched.newOwner(`w${i}`),
          prompt: model.tokenize(PROMPTS[i]),
          sampler: samplers[i],
          stop: { nPredict: 1 },
        }).result;
      const first = run(0);
      await new Promise((r) => setTimeout(r, 1));
      // The first task may have run already without a wait.
      await Promise.all([first, run(1)]);
      samplers.forEach((s) => s.close());
      return sched.stats.steps;
    } finally {
      sched.close();
    }
  };
  try {
    assert.equal(await steps(200), 1);
    assert.equal(await steps(undefined), 2);
  } finally {
    model.close();
  }
});

Deno.test("generation steps block only while they are short (blockingStepMaxMs)", async () => {
  const model = await Model.load(await tinyModel());
  const run = async (blockingStepMaxMs?: number) => {
    const sched = await Scheduler.create(model, {
      nSeq: 1,
      nCtxPerSeq: 128,
      blockingStepMaxMs,
    });
    try {
      const sampler = greedy(model);
      const r = await sched.submit({
        owner: sched.newOwner("b"),
        prompt: model.tokenize("Once upon a time"),
        sampler,
        stop: { nPredict: 20 },
        ignoreEos: true,
      }).result;
      sampler.close();
      assert.equal(r.tokens.length, 20);
      return sched.stats;
    } finally {
      sched.close();
    }
  };
  try {
    const fast = await run();
    assert.equal(fast.steps, 20);
    // All but the prompt's, unless a step took over 50 ms on a busy machine;
    // the first one always blocks.
    assert.ok(fast.blockingSteps >= 1 && fast.blockingSteps <= 19);
    const never = await run(0);
    assert.equal(never.steps, 20);
    assert.equal(never.blockingSteps, 0);
  } finally {
    model.close();
  }
});
