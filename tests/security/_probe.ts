/**
 * Shared by the hostile-input probes: a child reports each probe as one
 * JSON line (`reportProbe`), and the test runs the child under a memory cap
 * and a timeout and reads those lines back by name (`runProbe`).
 * @module
 */
import assert from "node:assert/strict";
import { WasiNnError } from "../../wasi_nn/errno.ts";
import { run } from "../_helpers.ts";

/** Prints one probe's outcome: its errno (null when not a WasiNnError), message and time. */
export function reportProbe(name: string, t0: number, e: unknown): void {
  console.log(JSON.stringify({
    name,
    errno: e instanceof WasiNnError ? e.errno : null,
    message: e === undefined ? "no error" : String((e as Error).message),
    ms: Math.round(performance.now() - t0),
  }));
}

/**
 * Runs a probe script in a child with 3 GB of data segment at most (a runaway
 * in process dies instead of eating the machine) and `timeoutMs`; asserts it
 * exited cleanly and returns its JSON lines by `name`, and its whole stdout.
 */
export async function runProbe(
  script: string,
  timeoutMs: number,
  // deno-lint-ignore no-explicit-any
): Promise<{ by: Map<string, any>; stdout: string }> {
  const r = await run("prlimit", [
    "--data=3000000000",
    Deno.execPath(),
    "run",
    "-A",
    script,
  ], { timeoutMs });
  assert.equal(
    r.code,
    0,
    `the probe died (${r.code}): ${r.stderr.slice(-1500)}`,
  );
  const by = new Map(
    r.stdout.trim().split("\n").filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l)).map((l) => [l.name, l]),
  );
  return { by, stdout: r.stdout };
}
