/**
 * Model bytes a guest passes to `load` leave nothing behind (issue 9, §4):
 * they are held in a sealed anonymous memory file while they load, never in
 * a temp file, so unloads, failed loads and even SIGKILL leave no file; and
 * bytes over the host's `max_load_mb` are refused before any copy.
 *
 * Each probe runs in a child with a temp dir of its own as TMPDIR, so a file
 * left behind shows there.
 */

import assert from "node:assert/strict";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { Errno, WasiNnError } from "../../wasi_nn/errno.ts";
import { run, tinyModel } from "../_helpers.ts";
import { craftGguf, MUTATIONS, tinySpec } from "./_gguf_craft.ts";

const PROBE = new URL("./_load_probe.ts", import.meta.url).pathname;
const TIMEOUT_MS = 120_000;

async function withTmpDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "guest-bytes-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function entries(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name);
}

Deno.test("load/unload cycles and failed loads from bytes leave no file and no open memory file", async () => {
  await withTmpDir(async (tmp) => {
    const bad = `${tmp}-bad`;
    await Deno.mkdir(bad);
    try {
      // One the check refuses, one that llama.cpp itself refuses.
      const truncated = `${bad}/truncated.gguf`;
      const llamaRefuses = `${bad}/head_count_zero.gguf`;
      await Deno.writeFile(truncated, await MUTATIONS["truncated to half"]());
      await Deno.writeFile(llamaRefuses, await MUTATIONS["head_count zero"]());
      const r = await run("env", [
        `TMPDIR=${tmp}`,
        Deno.execPath(),
        "run",
        "-A",
        PROBE,
        "cycles",
        await tinyModel(),
        truncated,
        llamaRefuses,
      ], { timeoutMs: TIMEOUT_MS });
      assert.equal(r.code, 0, r.stderr.slice(-800));
      const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
      assert.equal(out.after.length, 20 * 2 + 2 * 2);
      for (const a of out.after) {
        assert.deepEqual(a.tmp, [], `after ${a.step}: left in TMPDIR`);
        assert.equal(a.memfds, 0, `after ${a.step}: memory files still open`);
      }
      assert.equal(out.errors.length, 4);
      for (const e of out.errors) {
        assert.equal(e.errno, Errno.InvalidArgument, e.message);
        assert.doesNotMatch(e.message, /\/proc\/self\/fd/);
      }
      assert.deepEqual(entries(tmp), []);
    } finally {
      await Deno.remove(bad, { recursive: true });
    }
  });
});

Deno.test("a child killed with SIGKILL while it loads from bytes leaves no file", async () => {
  await withTmpDir(async (tmp) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", PROBE, "hold", await tinyModel()],
      env: { TMPDIR: tmp },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    // Wait until it has loaded once and is loading again and again.
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    while (!/CYCLE 3\n/.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert.match(seen, /LOADED\n/, "the child did not load");
    child.kill("SIGKILL");
    const status = await child.status;
    clearTimeout(timer);
    await reader.cancel();
    assert.equal(status.signal, "SIGKILL");
    assert.deepEqual(entries(tmp), [], "the killed child left files behind");
  });
});

Deno.test("bytes over max_load_mb are refused before any copy", async () => {
  // A copy of more than 32 MiB into any file (a temp file or a memory file)
  // kills the child with SIGXFSZ: the refusal must come first.
  const limitCopies = ["prlimit", `--fsize=${32 << 20}`];
  await withTmpDir(async (tmp) => {
    const probe = (sizeMb: number, limitMb: number) =>
      run("env", [
        `TMPDIR=${tmp}`,
        ...limitCopies,
        Deno.execPath(),
        "run",
        "-A",
        PROBE,
        "cap",
        String(sizeMb),
        String(limitMb),
      ], { timeoutMs: TIMEOUT_MS });
    const r = await probe(128, 64);
    assert.equal(
      r.code,
      0,
      `the child died (${r.code}): ${r.stderr.slice(-600)}`,
    );
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.equal(out.errno, Errno.InvalidArgument);
    assert.match(out.message, /max_load_mb/);
    assert.match(out.message, /134217728 bytes \(128 MiB\)/);
    assert.match(out.message, /max_load_mb of 64 \(67108864 bytes\)/);
    assert.deepEqual(out.tmp, []);
    assert.equal(out.memfds, 0);
    // The control: under the limit the bytes are copied, and the copy is what
    // the file-size limit stops (so the test above can fail).
    const control = await probe(128, 256);
    assert.notEqual(control.code, 0, "the copy was not caught by the limit");
    assert.deepEqual(entries(tmp), []);
  });
});

Deno.test("max_load_mb defaults to 4096 and is read from the host config only", async () => {
  const path = await tinyModel();
  const bytes = await Deno.readFile(path);
  const make = (hostConfig?: Record<string, unknown>) =>
    LlamaHost.create({
      registry: { resolve: () => path },
      hostConfig,
      log: () => {},
    });
  {
    using h = await make({ max_load_mb: 1 });
    await assert.rejects(
      () =>
        h.load([bytes, new TextEncoder().encode('{"max_load_mb":100}')], 6, 0),
      (e: unknown) =>
        e instanceof WasiNnError && e.errno === Errno.InvalidArgument &&
        /over the host's max_load_mb of 1 \(1048576 bytes\)/.test(e.message),
    );
    await assert.rejects(() => h.load([bytes], 6, 0), /max_load_mb of 1 /);
  }
  {
    using h = await make();
    const g = await h.load([bytes], 6, 0); // 5 MiB: under the default
    h.unload(g);
  }
});

Deno.test("guest models are cached by a unique id, not by their memory file's reused fd", async () => {
  const path = await tinyModel();
  const named = async (name: string) => {
    const s = await tinySpec();
    const i = s.metadata.findIndex(([k]) => k === "general.name");
    s.metadata[i] = ["general.name", { type: "string", value: name }];
    return craftGguf(s);
  };
  const a = await named("model-a"), b = await named("model-b");
  using h = await LlamaHost.create({
    registry: { resolve: () => path },
    log: () => {},
  });
  // The first memory file is closed once A has loaded, so B's gets the same fd.
  const ga = await h.load([a], 6, 0);
  const gb = await h.load([b], 6, 0);
  // Copied into memory by llama.cpp instead of mapped: the same once closed.
  const noMmap = new TextEncoder().encode('{"use_mmap":false}');
  const gc = await h.load([a, noMmap], 6, 0);
  const models = h.status().models;
  assert.equal(models.length, 3, JSON.stringify(models));
  assert.equal(new Set(models.map((m) => m.path)).size, 3);
  for (const m of models) {
    assert.match(m.path, /^guest model #\d+ \(\d+ bytes\)$/);
  }
  // Each graph runs on its own model.
  const ctxs = [ga, gb, gc].map((g) => h.initExecutionContext(g));
  const labels = h.status().sessions.map((x) => x.model);
  assert.equal(new Set(labels).size, 3, JSON.stringify(labels));
  // Their memory files are closed: the models still generate, mapped or not.
  const enc = new TextEncoder();
  const text = (t: string) => ({ dims: [1], type: 3, data: enc.encode(t) });
  const outputs = [];
  for (const c of ctxs) {
    await h.setInput(c, 0, text("Once upon a time"));
    await h.setInput(c, 1, text('{"n_predict":8,"temp":0}'));
    await h.compute(c);
    outputs.push(new TextDecoder().decode(h.getOutput(c, 0)));
  }
  assert.ok(outputs[0].length > 0);
  assert.equal(outputs[2], outputs[0], "the same bytes, mapped or copied");
  for (const c of ctxs) h.finalizeExecutionContext(c);
  for (const g of [ga, gb, gc]) h.unload(g);
});
