/**
 * The CLI's Ctrl-C handling (cli/interrupt.ts): one wrapper that forwards
 * every host method, the synchronous ones too (not a hand-written list), and
 * covers the calls in flight: the first
 * Ctrl-C cancels, a second exits with 130, and with nothing in flight Ctrl-C
 * keeps its default effect. The signal cases run in a child process.
 */
import assert from "node:assert/strict";
import { InterruptHandler } from "../../cli/interrupt.ts";
import { EXIT_CODES } from "../../cli/exit_codes.ts";

const CHILD = new URL("./_interrupt_child.ts", import.meta.url).pathname;
const TIMEOUT_MS = 60_000;

Deno.test("wrap forwards every method, synchronous ones and all, on the host itself", async () => {
  class Host {
    #calls: string[] = [];
    readonly name = "host";
    load(bytes: Uint8Array[]): Promise<number> {
      this.#calls.push("load");
      return Promise.resolve(bytes.length);
    }
    initExecutionContext(graph: number): number {
      this.#calls.push("initExecutionContext");
      return graph;
    }
    finiSingle(_ctx: number): void {
      this.#calls.push("finiSingle");
    }
    cancelAll(): void {
      this.#calls.push("cancelAll");
    }
    get calls(): string[] {
      return this.#calls;
    }
  }
  const host = new Host();
  const interrupts = new InterruptHandler({ cancel: () => {} });
  try {
    const wrapped = interrupts.wrap(host);
    assert.equal(await wrapped.load([new Uint8Array(1)]), 1);
    assert.equal(wrapped.initExecutionContext(2), 2);
    assert.equal(wrapped.finiSingle(0), undefined);
    wrapped.cancelAll();
    assert.equal(wrapped.name, "host");
    assert.ok("finiSingle" in wrapped);
    assert.ok(!("computeSingle" in wrapped));
    assert.deepEqual(wrapped.calls, [
      "load",
      "initExecutionContext",
      "finiSingle",
      "cancelAll",
    ]);
  } finally {
    interrupts.dispose();
  }
});

/** A child running _interrupt_child.ts, whose stdout can be waited on. */
function child(mode: string) {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, mode],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).spawn();
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  const stderr = new Response(proc.stderr).text();
  return {
    proc,
    stderr,
    async waitFor(line: string): Promise<void> {
      while (!seen.split("\n").includes(line)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`child ended before '${line}': ${seen}`);
        seen += decoder.decode(value, { stream: true });
      }
    },
    async close() {
      reader.releaseLock();
      await proc.stdout.cancel();
    },
  };
}

Deno.test("Ctrl-C during a call cancels it; once nothing is in flight, Ctrl-C ends the process", async () => {
  const c = child("once");
  try {
    await c.waitFor("ready");
    c.proc.kill("SIGINT");
    await c.waitFor("cancel");
    await c.waitFor("idle");
    c.proc.kill("SIGINT");
    const status = await c.proc.status;
    assert.equal(status.signal, "SIGINT", await c.stderr);
    assert.match(await c.stderr, /\^C: stopping generation/);
  } finally {
    await c.close();
  }
});

Deno.test("a second Ctrl-C while the call is still in flight exits with 130", async () => {
  const c = child("ignore");
  try {
    await c.waitFor("ready");
    c.proc.kill("SIGINT");
    await c.waitFor("cancel");
    c.proc.kill("SIGINT");
    const status = await c.proc.status;
    const stderr = await c.stderr;
    assert.equal(status.signal, null, stderr);
    assert.equal(status.code, EXIT_CODES.interrupted, stderr);
    assert.match(stderr, /\^C: exiting/);
  } finally {
    await c.close();
  }
});

Deno.test("Ctrl-C during a call on a guest's view (forGuest) cancels it too", async () => {
  const c = child("view");
  try {
    await c.waitFor("ready");
    c.proc.kill("SIGINT");
    await c.waitFor("cancel");
    await c.waitFor("idle");
    c.proc.kill("SIGINT");
    const status = await c.proc.status;
    assert.equal(status.signal, "SIGINT", await c.stderr);
    assert.match(await c.stderr, /\^C: stopping generation/);
  } finally {
    await c.close();
  }
});
