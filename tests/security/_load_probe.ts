/**
 * Child process for the security tests: loads a model in a way that may
 * abort the process, so that an abort fails a test instead of the run.
 * Prints one JSON line last.
 *
 * - `raw FILE`: llama.cpp directly through the bindings (no checks).
 * - `host bytes|path FILE [HOST_CONFIG_JSON]`: through `LlamaHost`: `load` of
 *   the file's bytes, or `load_by_name` of the file.
 * - `matrix FILE`: both ways of `host` (bytes and path), as a JSON object of
 *   outcomes.
 * - `cycles FILE BAD_FILE...`: load/unload cycles from bytes and two failed
 *   loads of each BAD_FILE; after each, lists what is in $TMPDIR and which
 *   memory files are still open.
 * - `hold FILE`: loads the bytes, prints `LOADED`, then loads and unloads
 *   forever printing `CYCLE n` (for a SIGKILL from the parent).
 * - `cap SIZE_MB LIMIT_MB`: `load` of SIZE_MB untouched zero bytes with
 *   `max_load_mb` LIMIT_MB; reports the error and how much resident memory grew.
 * @module
 */

import { Model } from "../../bindings/mod.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { Errno, WasiNnError } from "../../wasi_nn/errno.ts";

const [mode, ...args] = Deno.args;

function report(x: unknown): void {
  console.log(JSON.stringify(x));
}

function outcome(e: unknown) {
  return e instanceof WasiNnError
    ? { ok: false, errno: e.errno, message: e.message }
    : { ok: false, errno: -1, message: String((e as Error)?.message ?? e) };
}

function makeHost(path: string, hostConfig?: string): Promise<LlamaHost> {
  return LlamaHost.create({
    registry: {
      resolve: (n: string) => {
        if (n === "default") return path;
        throw new WasiNnError(Errno.NotFound, `no model named '${n}'`);
      },
    },
    hostConfig: hostConfig ? JSON.parse(hostConfig) : undefined,
    log: () => {},
  });
}

/** Temp dir entries and open memory files of this process. */
function leftovers(): { tmp: string[]; memfds: number } {
  const dir = Deno.env.get("TMPDIR") ?? "/tmp";
  const tmp = [...Deno.readDirSync(dir)].map((e) => e.name);
  let memfds = 0;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${e.name}`).startsWith("/memfd:")) {
        memfds++;
      }
    } catch { /* closed meanwhile */ }
  }
  return { tmp, memfds };
}

if (mode === "raw") {
  try {
    const m = Model.loadSync(args[0]);
    m.close();
    report({ ok: true });
  } catch (e) {
    report(outcome(e));
  }
} else if (mode === "host") {
  const [how, file, cfg] = args;
  using h = await makeHost(file, cfg);
  try {
    const bytes = how === "bytes" ? Deno.readFileSync(file) : undefined;
    const g = bytes
      ? await h.load([bytes], 6, 0)
      : await h.loadByName("default");
    h.unload(g);
    report({ ok: true });
  } catch (e) {
    report(outcome(e));
  }
} else if (mode === "matrix") {
  const file = args[0];
  const bytes = Deno.readFileSync(file);
  const out: Record<string, unknown> = {};
  for (const how of ["bytes", "path"]) {
    using h = await makeHost(file);
    try {
      const g = how === "bytes"
        ? await h.load([bytes], 6, 0)
        : await h.loadByName("default");
      h.unload(g);
      out[`${how} async`] = { ok: true };
    } catch (e) {
      out[`${how} async`] = outcome(e);
    }
  }
  report(out);
} else if (mode === "cycles") {
  const [good, ...bad] = args;
  const bytes = Deno.readFileSync(good);
  using h = await makeHost(good);
  const after: { step: string; tmp: string[]; memfds: number }[] = [];
  const errors: unknown[] = [];
  for (let i = 0; i < 20; i++) {
    const g = await h.load([bytes], 6, 0);
    after.push({ step: `load ${i}`, ...leftovers() });
    h.unload(g);
    after.push({ step: `unload ${i}`, ...leftovers() });
  }
  for (const f of bad) {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const b = Deno.readFileSync(f);
        await h.load([b], 6, 0);
        errors.push({ file: f, ok: true });
      } catch (e) {
        errors.push({ file: f, ...outcome(e) });
      }
      after.push({ step: `failed load of ${f}`, ...leftovers() });
    }
  }
  report({ after, errors });
} else if (mode === "hold") {
  const bytes = Deno.readFileSync(args[0]);
  const h = await makeHost(args[0]);
  await h.load([bytes], 6, 0);
  console.log("LOADED");
  for (let i = 0;; i++) {
    h.unload(await h.load([bytes], 6, 0));
    console.log(`CYCLE ${i}`);
  }
} else if (mode === "cap") {
  const [sizeMb, limitMb] = args.map(Number);
  using h = await makeHost("/nonexistent", `{"max_load_mb":${limitMb}}`);
  // Zero pages that nothing has touched: a copy would make them resident.
  const bytes = new Uint8Array(sizeMb * 1048576);
  const rss0 = Deno.memoryUsage().rss;
  let result;
  try {
    await h.load([bytes], 6, 0);
    result = { ok: true };
  } catch (e) {
    result = outcome(e);
  }
  const grown = Deno.memoryUsage().rss - rss0;
  report({ ...result, grown, ...leftovers() });
} else {
  console.error(`unknown mode ${mode}`);
  Deno.exit(2);
}
