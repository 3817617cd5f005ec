/**
 * Leak probes, run in a process of their own: `deno test --parallel` runs
 * every test module in one process, so resident memory measured inside a
 * test counts what the other modules allocate at the same time.
 *
 * `deno run -A tests/_rss_probe.ts <load|scheduler>` prints one JSON line:
 * `{"grown": bytes, "cycles": n}`, the growth over the second half of the
 * measured cycles (one-time allocator growth is not a leak; a leak grows
 * with every cycle, so the two halves are compared).
 * @module
 */

import { Context, Model, Sampler } from "../bindings/mod.ts";
import { Scheduler } from "../wasi_nn/engine/scheduler.ts";
import { tinyModel } from "./_helpers.ts";

const rss = () => Deno.memoryUsage().rss;

/** Runs warm + 2 * half cycles; returns the growth over the last half. */
async function growth(
  cycle: (i: number) => Promise<void>,
  warm: number,
  half: number,
): Promise<number> {
  let i = 0;
  for (; i < warm + half; i++) await cycle(i);
  const mid = rss();
  for (; i < warm + 2 * half; i++) await cycle(i);
  return rss() - mid;
}

/** Loading and freeing a model and a context. */
async function load(): Promise<number> {
  const path = await tinyModel();
  return await growth(
    async () => {
      const m = await Model.load(path);
      const c = await Context.create(m, { nCtx: 128 });
      await c.decodePrompt(m.tokenize("hello world"));
      m.close();
    },
    10,
    25,
  );
}

/** Sessions that come and go through one scheduler. */
async function scheduler(): Promise<number> {
  const model = await Model.load(await tinyModel());
  const sched = await Scheduler.create(model, {
    nSeq: 8,
    nCtxPerSeq: 128,
    threads: 2,
  });
  try {
    return await growth(
      async (i) => {
        const owner = sched.newOwner(`c${i}`);
        const sampler = Sampler.create(model, { temp: 0 });
        await sched.submit({
          owner,
          prompt: model.tokenize(`cycle ${i}`),
          sampler,
          stop: { nPredict: 2 },
        }).result;
        sampler.close();
        sched.dropOwner(owner);
      },
      200,
      400,
    );
  } finally {
    sched.close();
    model.close();
  }
}

if (import.meta.main) {
  const kind = Deno.args[0];
  const probes: Record<string, () => Promise<number>> = { load, scheduler };
  if (!(kind in probes)) {
    console.error(`usage: _rss_probe.ts <${Object.keys(probes).join("|")}>`);
    Deno.exit(2);
  }
  console.log(JSON.stringify({ grown: await probes[kind]() }));
}
