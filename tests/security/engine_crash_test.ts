/**
 * Engine processes (issue 12): a llama.cpp abort, a `kill -9` or any other
 * death of a model's engine ends only that model's sessions. Each session on
 * it fails with RuntimeError naming the cause, another guest streaming from
 * another model finishes with its solo tokens, the host serves the next
 * request (a new engine, after a backoff when it keeps dying), and after
 * `shutdown()` no engine process is left, zombie or not. Through the guest
 * imports, entered through JSPI, on the real llama.cpp.
 */
import assert from "node:assert/strict";
import { ensureFamilyModel } from "../../gguf/mod.ts";
import { Errno, WasiNnError } from "../../wasi_nn/errno.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { tinyModel } from "../_helpers.ts";
import { guest, MODEL_AT } from "../_host_guest.ts";
import { abortsAtDecode } from "./_gguf_craft.ts";

/** Greedy, never stopping early. */
const CONFIG = (n: number) =>
  `{"n-predict":${n},"temp":0,"ctx-size":1024,"ignore-eos":true}`;
const PROMPT = "Once upon a time";

/** A host serving "default" and "dies-often" (the tiny model) and "other" (a llama model), and what it logged. */
async function newHost(hostConfig: Record<string, unknown> = {}) {
  const models: Record<string, string> = {
    default: await tinyModel(),
    other: (await ensureFamilyModel("llama")).path,
    "dies-often": await tinyModel(),
  };
  const logs: { level: string; msg: string }[] = [];
  const host = await LlamaHost.create({
    registry: {
      resolve: (n: string) => {
        if (models[n]) return models[n];
        throw new WasiNnError(Errno.NotFound, `no model named '${n}'`);
      },
    },
    hostConfig,
    log: (level, msg) => logs.push({ level, msg }),
  });
  return { host, logs };
}

type Guest = ReturnType<typeof guest>;

/** Streams `n` tokens with compute_single on a new context; returns the text. */
async function stream(
  g: Guest,
  graph: number,
  n: number,
  onToken?: (i: number) => Promise<void> | void,
): Promise<string> {
  const ctx = await g.context(graph, PROMPT);
  for (let i = 0; i < n; i++) {
    assert.equal(await g.computeSingle(ctx), 0, `token ${i}`);
    await onToken?.(i);
  }
  const [e, text] = g.output(ctx);
  assert.equal(e, 0);
  g.finalize(ctx);
  return text;
}

/** The engine process pid serving model `label`. */
function enginePid(host: LlamaHost, label: string): number {
  const m = host.status().models.find((x) => x.label === label);
  assert.ok(m, `model ${label} is not loaded`);
  assert.equal(m.engine.kind, "process");
  return m.engine.pid!;
}

/** Whether process `pid` exists (a zombie counts: it was never reaped). */
function exists(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Live engine processes of this process serving the model `label` (the
 * child's second argument). Other test files may run in this process
 * (`--parallel`) with engine children and zombies of their own, so only the
 * label tells which are whose; zombies are checked by pid (`exists`).
 */
function engineChildren(label: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== Deno.pid) continue;
      const args = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (
        args.some((a) => a.endsWith("engine/process/_child.ts")) &&
        args.includes(label)
      ) out.push(Number(e.name));
    } catch { /* gone */ }
  }
  return out;
}

/** The engine pids the host logged: every engine it started. */
function loggedEngines(logs: { msg: string }[]): number[] {
  return logs.flatMap((l) =>
    [...l.msg.matchAll(/\(engine process (\d+)\)/g)].map((m) => Number(m[1]))
  );
}

Deno.test("a guest model that aborts llama.cpp ends its own compute with RuntimeError; another guest's stream finishes with its solo tokens; the host serves on", async () => {
  const { host, logs } = await newHost();
  const crafted = await abortsAtDecode();
  const pages = Math.ceil((MODEL_AT + crafted.length) / 65536) + 1;
  const a = guest(host, "a.wasm", pages), b = guest(host, "b.wasm");
  const gb = await b.loadByName(CONFIG(300));
  const solo = await stream(b, gb, 300);

  // A's model comes as guest bytes: it runs in an engine process.
  const [le, ga] = await a.load(crafted);
  assert.equal(le, 0, "llama.cpp loads it; its first decode aborts");
  const pid = enginePid(host, host.status().models.at(-1)!.label);
  const ca = await a.context(ga, PROMPT);
  let crashed: number | undefined;
  let after = 0;
  const text = await stream(b, gb, 300, async (i) => {
    if (i === 5) crashed = await a.compute(ca);
    else if (crashed !== undefined) after++;
  });
  assert.equal(crashed, Errno.RuntimeError);
  assert.equal(text, solo, "B's stream is its solo run");
  assert.ok(after > 0, "B streamed on after A's engine died");
  assert.ok(!exists(pid), "the dead engine was reaped");
  const died = logs.find((l) => l.level === "error" && /died/.test(l.msg));
  assert.ok(died, JSON.stringify(logs));
  assert.match(died.msg, /signal SIGABRT \(llama\.cpp aborted\)/);
  assert.match(died.msg, /binary_op: unsupported types/, died.msg);

  // A's model cannot come back (its bytes are gone); A can load a good one.
  assert.equal(await a.compute(ca), Errno.RuntimeError);
  const [e2, good] = await a.load(await Deno.readFile(await tinyModel()));
  assert.equal(e2, 0);
  const cg = await a.context(good, PROMPT);
  assert.equal(await a.setInput(cg, 1, CONFIG(8)), 0, "set_input(1) config");
  assert.equal(await a.compute(cg), 0);
  assert.equal(a.outputTokens(cg), 8);
  assert.equal(await stream(b, gb, 300), solo, "B's next stream too");
  a.imports[Symbol.dispose]();
  b.imports[Symbol.dispose]();
  await host.shutdown();
});

Deno.test("kill -9 of an engine mid-generation: its stream gets RuntimeError naming the signal; the other model's stream is its solo run; the next compute gets a new engine", async () => {
  const { host, logs } = await newHost({ engine: "process" });
  const a = guest(host, "a.wasm"), b = guest(host, "b.wasm");
  const ga = await a.loadByName(CONFIG(200));
  const gb = await b.loadByName(CONFIG(300), "other");
  const soloA = await stream(a, ga, 40);
  const soloB = await stream(b, gb, 300);
  const pid = enginePid(host, "default");
  assert.notEqual(pid, enginePid(host, "other"), "an engine per model");

  const ca = await a.context(ga, PROMPT);
  for (let i = 0; i < 5; i++) assert.equal(await a.computeSingle(ca), 0);
  let killedAt: number | undefined;
  let errno: number | undefined;
  const textB = await stream(b, gb, 300, async (i) => {
    if (i === 10) {
      Deno.kill(pid, "SIGKILL");
      killedAt = i;
      // A's stream goes on until the death is seen: then RuntimeError.
      for (let k = 0; k < 1000; k++) {
        const e = await a.computeSingle(ca);
        if (e !== 0) {
          errno = e;
          break;
        }
      }
    }
  });
  assert.equal(killedAt, 10);
  assert.equal(errno, Errno.RuntimeError);
  assert.equal(textB, soloB, "the other model's stream is its solo run");
  const died = logs.find((l) => l.level === "error" && /died/.test(l.msg));
  assert.ok(died);
  assert.match(died.msg, /model 'default'/);
  assert.match(died.msg, /signal SIGKILL/);

  // The next request on the same graph starts a new engine: same tokens.
  assert.equal(await stream(a, ga, 40), soloA);
  assert.notEqual(enginePid(host, "default"), pid);
  assert.ok(
    logs.some((l) => /restarted the engine of model 'default'/.test(l.msg)),
  );
  a.imports[Symbol.dispose]();
  b.imports[Symbol.dispose]();
  await host.shutdown();
});

Deno.test("an engine that keeps dying is restarted after a growing wait; after shutdown no engine process is left", async () => {
  const { host, logs } = await newHost({ engine: "process" });
  const a = guest(host, "a.wasm");
  // A name no other test uses: its engines are told apart by it.
  const label = "dies-often";
  const ga = await a.loadByName(CONFIG(4), label);
  const solo = await stream(a, ga, 4);
  const pids = [enginePid(host, label)];
  for (let crash = 1; crash <= 3; crash++) {
    Deno.kill(pids.at(-1)!, "SIGKILL");
    // Wait until the host has seen this death.
    while (host.status().models[0].engine.crashes < crash) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(await stream(a, ga, 4), solo, `after crash ${crash}`);
    pids.push(enginePid(host, label));
  }
  const waits = logs.filter((l) => /restarting the engine/.test(l.msg))
    .map((l) => l.msg.match(/in (\d+) ms \((\d+) crash/)!.slice(1).map(Number));
  assert.deepEqual(waits, [[0, 1], [500, 2], [1000, 3]]);
  assert.equal(new Set(pids).size, 4, "a new engine each time");
  // Every engine the host started is one of these.
  assert.deepEqual(loggedEngines(logs).sort(), [...pids].sort());
  // The scan sees the live one (so it would see one left behind).
  assert.deepEqual(engineChildren(label), [pids.at(-1)]);
  a.imports[Symbol.dispose]();
  await host.shutdown();
  for (const pid of pids) {
    assert.ok(!exists(pid), `engine ${pid} is left (or its zombie)`);
  }
  assert.deepEqual(
    engineChildren(label),
    [],
    "no engine process is left",
  );
});
