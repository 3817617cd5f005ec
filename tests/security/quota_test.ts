/**
 * Quotas per guest instance (issue 12): the host keys `guest_max_tokens`,
 * `guest_max_compute_ms`, `guest_max_contexts`, `guest_max_kv_tokens` and
 * `guest_max_load_mb`. Each is reached, then refused with TooLarge (7) and a
 * warning naming the limit, the guest, the value and the limit, while a
 * second guest instance on the same host runs on; calls within the limits
 * still work after the refusal. On the real llama.cpp, through the guest
 * imports (a forwarding guest over a memory of its own, entered through
 * JSPI), as in handles_test.ts.
 */
import assert from "node:assert/strict";
import { Errno, WasiNnError } from "../../wasi_nn/errno.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { run, tinyModel } from "../_helpers.ts";
import { guest, MODEL_AT, PROMPT } from "../_host_guest.ts";

/** Greedy, never stopping early: every compute generates its n-predict. */
const CONFIG = (n: number) =>
  `{"n-predict":${n},"temp":0,"ctx-size":256,"ignore-eos":true}`;

/** A host with `hostConfig`, and the warnings it logged. */
async function newHost(
  hostConfig: Record<string, unknown>,
): Promise<{ host: LlamaHost; warnings: string[] }> {
  const path = await tinyModel();
  const warnings: string[] = [];
  const host = await LlamaHost.create({
    registry: {
      resolve: (n: string) => {
        if (n === "default") return path;
        throw new WasiNnError(Errno.NotFound, `no model named '${n}'`);
      },
    },
    hostConfig,
    log: (level, msg) => {
      if (level === "warn") warnings.push(msg);
    },
  });
  return { host, warnings };
}

/**
 * The warnings that name `key` (a refusal repeated as it was is logged
 * once), each checked for the guest, the limit and the suggestion; the
 * first is returned.
 */
function refusal(warnings: string[], key: string, guest: string): string {
  const found = warnings.filter((w) => w.includes(key));
  assert.ok(found.length > 0, `no warning names ${key}: ${warnings}`);
  for (const w of found) {
    assert.match(w, new RegExp(`guest '${guest}#\\d+' is over ${key}: `));
    assert.match(w, /, the limit is /);
    assert.match(w, /refused with TooLarge \(7\)/);
    assert.match(w, new RegExp(`raise ${key} in the host config`));
  }
  return found[0];
}

Deno.test("guest_max_tokens: the compute that reaches it stops at it, the next is refused; other guests run on", async () => {
  const { host, warnings } = await newHost({ guest_max_tokens: 10 });
  using _ = host;
  const a = guest(host, "a.wasm"), b = guest(host, "b.wasm");
  const ca = await a.context(await a.loadByName(CONFIG(6)));
  assert.equal(await a.compute(ca), 0);
  assert.equal(a.outputTokens(ca), 6);
  // 4 tokens left: this compute stops after them instead of 6.
  assert.equal(await a.compute(ca), 0);
  assert.equal(a.outputTokens(ca), 4);
  assert.equal(warnings.length, 0, warnings.join("\n"));

  assert.equal(await a.compute(ca), Errno.TooLarge);
  assert.equal(await a.computeSingle(ca), Errno.TooLarge);
  const w = refusal(warnings, "guest_max_tokens", "a.wasm");
  assert.match(w, /it has generated 10 tokens, the limit is 10/);
  const logged = warnings.length;

  // Another guest has its own 10 tokens, streamed or not.
  const cb = await b.context(await b.loadByName(CONFIG(6)));
  assert.equal(await b.compute(cb), 0);
  assert.equal(b.outputTokens(cb), 6);
  for (let i = 0; i < 4; i++) assert.equal(await b.computeSingle(cb), 0);
  assert.equal(await b.computeSingle(cb), Errno.TooLarge);
  assert.equal(warnings.length, logged + 1, "B's refusal is B's");
  assert.match(
    warnings.at(-1)!,
    /guest 'b\.wasm#\d+' is over guest_max_tokens/,
  );

  // A runs on: what it has is still readable, and it frees what it holds.
  assert.equal(a.output(ca)[0], 0);
  assert.equal(a.finalize(ca), 0);
  a.imports[Symbol.dispose]();
  b.imports[Symbol.dispose]();
});

Deno.test("guest_max_compute_ms: the compute that passes it finishes, the next is refused; other guests run on", async () => {
  const { host, warnings } = await newHost({ guest_max_compute_ms: 1 });
  using _ = host;
  const a = guest(host, "a.wasm"), b = guest(host, "b.wasm");
  const ca = await a.context(await a.loadByName(CONFIG(16)));
  assert.equal(await a.compute(ca), 0, "the first compute passes 1 ms");
  assert.equal(a.outputTokens(ca), 16);
  assert.equal(await a.compute(ca), Errno.TooLarge);
  assert.equal(await a.computeSingle(ca), Errno.TooLarge);
  const w = refusal(warnings, "guest_max_compute_ms", "a.wasm");
  assert.match(w, /it has computed for [0-9.]+ ms, the limit is 1 ms/);

  const cb = await b.context(await b.loadByName(CONFIG(16)));
  assert.equal(await b.compute(cb), 0);
  assert.equal(b.outputTokens(cb), 16);
  assert.equal(await b.compute(cb), Errno.TooLarge);

  // A still gets its output and may set a new prompt.
  assert.equal(a.output(ca)[0], 0);
  assert.equal(await a.setInput(ca, 0, "Hello"), 0);
  a.imports[Symbol.dispose]();
  b.imports[Symbol.dispose]();
});

Deno.test("guest_max_contexts: a context over it is refused until one is finalized; other guests have their own", async () => {
  const { host, warnings } = await newHost({ guest_max_contexts: 2 });
  using _ = host;
  const a = guest(host, "a.wasm"), b = guest(host, "b.wasm");
  const ga = await a.loadByName(CONFIG(4));
  const [e1, c1] = a.init(ga);
  const [e2, c2] = a.init(ga);
  assert.deepEqual([e1, e2], [0, 0]);
  assert.equal(a.init(ga)[0], Errno.TooLarge);
  const w = refusal(warnings, "guest_max_contexts", "a.wasm");
  assert.match(w, /it holds 2 live execution contexts/);
  assert.match(w, /the limit is 2/);

  // B, on the same host and model, makes its own two and computes.
  const gb = await b.loadByName(CONFIG(4));
  const cb = await b.context(gb);
  assert.equal(b.init(gb)[0], 0);
  assert.equal(await b.compute(cb), 0);
  assert.equal(b.outputTokens(cb), 4);

  // A's contexts still work; finalizing one makes room for a new one.
  assert.equal(await a.setInput(c1, 0, PROMPT), 0);
  assert.equal(await a.compute(c1), 0);
  assert.equal(a.finalize(c2), 0);
  const [e3, c3] = a.init(ga);
  assert.equal(e3, 0);
  assert.equal(await a.setInput(c3, 0, PROMPT), 0);
  assert.equal(await a.compute(c3), 0);
  assert.equal(a.init(ga)[0], Errno.TooLarge);
  a.imports[Symbol.dispose]();
  b.imports[Symbol.dispose]();
  assert.equal(host.status().sessions.length, 0);
});

Deno.test("guest_max_kv_tokens: a compute that would hold more KV tokens than it is refused; finalizing frees them", async () => {
  const n = 8;
  // The prompt's length in tokens, from a host without quotas.
  let p: number;
  {
    const { host } = await newHost({});
    using _ = host;
    const ctx = host.initExecutionContext(
      await host.loadByName("default", CONFIG(1)),
    );
    p = (await host.runInference(ctx, PROMPT)).metadata.input_tokens;
  }
  // One context's prompt and n-predict fit; a second one's do not.
  const limit = p + n + 1;
  const { host, warnings } = await newHost({ guest_max_kv_tokens: limit });
  using _ = host;
  const a = guest(host, "a.wasm"), b = guest(host, "b.wasm");
  const ga = await a.loadByName(CONFIG(n));
  const c1 = await a.context(ga);
  assert.equal(await a.compute(c1), 0);
  assert.equal(await a.compute(c1), 0, "the same context again: it fits");
  const c2 = await a.context(ga);
  assert.equal(await a.compute(c2), Errno.TooLarge);
  assert.equal(await a.computeSingle(c2), Errno.TooLarge);
  const w = refusal(warnings, "guest_max_kv_tokens", "a.wasm");
  assert.match(w, new RegExp(`the limit is ${limit}`));
  assert.match(w, new RegExp(`prompt ${p} \\+ n_predict ${n}`));

  // More n-predict than the quota holds, on one context: refused too.
  assert.equal(await a.setInput(c1, 1, `{"n-predict":${limit}}`), 0);
  assert.equal(await a.compute(c1), Errno.TooLarge);
  assert.equal(await a.setInput(c1, 1, `{"n-predict":${n}}`), 0);

  // B holds its own KV tokens meanwhile.
  const cb = await b.context(await b.loadByName(CONFIG(n)));
  assert.equal(await b.compute(cb), 0);
  assert.equal(b.outputTokens(cb), n);

  // A frees c1's sequence: c2 now fits.
  assert.equal(a.finalize(c1), 0);
  assert.equal(await a.compute(c2), 0);
  assert.equal(a.outputTokens(c2), n);
  a.imports[Symbol.dispose]();
  b.imports[Symbol.dispose]();
});

Deno.test("guest_max_load_mb: model bytes over it, over all of a guest's loads, are refused; load_by_name and other guests go on", async () => {
  const model = await Deno.readFile(await tinyModel());
  const mb = Math.ceil(model.length / (1 << 20)); // one load fits, two do not
  assert.ok(2 * model.length > mb << 20);
  const { host, warnings } = await newHost({ guest_max_load_mb: mb });
  using _ = host;
  const pages = Math.ceil((MODEL_AT + model.length) / 65536);
  const a = guest(host, "a.wasm", pages), b = guest(host, "b.wasm", pages);
  const [e1, g1] = await a.load(model);
  assert.equal(e1, 0);
  assert.equal(a.unload(g1), 0);
  // Unloading does not give the bytes back: the quota sums the load calls.
  assert.equal((await a.load(model))[0], Errno.TooLarge);
  const w = refusal(warnings, "guest_max_load_mb", "a.wasm");
  assert.match(w, new RegExp(`the limit is ${mb} MiB`));

  // B loads the same bytes within its own quota, and computes.
  const [e2, gb] = await b.load(model);
  assert.equal(e2, 0);
  const cb = await b.context(gb);
  assert.equal(await b.setInput(cb, 1, CONFIG(3)), 0);
  assert.equal(await b.compute(cb), 0);
  assert.equal(b.outputTokens(cb), 3);

  // A still loads by name (not bytes it passes) and computes.
  const ca = await a.context(await a.loadByName(CONFIG(3)));
  assert.equal(await a.compute(ca), 0);
  assert.equal(a.outputTokens(ca), 3);
  a.imports[Symbol.dispose]();
  b.imports[Symbol.dispose]();
});

Deno.test("quotas are host keys: a guest's own config cannot raise them", async () => {
  const { host, warnings } = await newHost({ guest_max_tokens: 3 });
  using _ = host;
  const a = guest(host, "a.wasm");
  const ga = await a.loadByName(
    '{"n-predict":8,"temp":0,"ctx-size":256,"ignore-eos":true,"guest_max_tokens":100}',
  );
  const ca = await a.context(ga);
  assert.equal(await a.setInput(ca, 1, '{"guest_max_tokens":100}'), 0);
  assert.equal(await a.compute(ca), 0);
  assert.equal(a.outputTokens(ca), 3);
  assert.equal(await a.compute(ca), Errno.TooLarge);
  const ignored = warnings.filter((w) =>
    /'guest_max_tokens' is the operator's key/.test(w)
  );
  assert.equal(
    ignored.length,
    2,
    "the load config and set_input(1) each warned",
  );
  refusal(
    warnings.filter((w) => !ignored.includes(w)),
    "guest_max_tokens",
    "a.wasm",
  );
  a.imports[Symbol.dispose]();
});

Deno.test("without quotas set, a guest is not limited", async () => {
  const { host, warnings } = await newHost({});
  using _ = host;
  const a = guest(host, "a.wasm");
  const ga = await a.loadByName(CONFIG(4));
  const ctxs = [];
  for (let i = 0; i < 3; i++) ctxs.push(await a.context(ga));
  for (const c of ctxs) {
    assert.equal(await a.compute(c), 0);
    assert.equal(await a.compute(c), 0);
  }
  assert.deepEqual(warnings, []);
  a.imports[Symbol.dispose]();
});

Deno.test("cli.ts --guest-max-tokens reaches a real guest's computes; a bad value is a usage error", async () => {
  const { buildGuests } = await import("../../examples/build.ts");
  const { oneshot } = await buildGuests({ only: ["oneshot"], quiet: true });
  const cli = (...args: string[]) =>
    run(Deno.execPath(), [
      "run",
      "-A",
      new URL("../../cli.ts", import.meta.url).pathname,
      ...args,
    ]);
  const model = await tinyModel();
  const r = await cli(
    "--nn-preload",
    `default:GGML:AUTO:${model}`,
    "--env",
    `WASI_NN_CONFIG=${CONFIG(8)}`,
    "--guest-max-tokens",
    "3",
    "--log-level",
    "info",
    oneshot,
    "default",
    PROMPT,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /"output_tokens": 3\b/);
  assert.match(
    r.stderr,
    /guest '[^']*oneshot\.wasm#1': this compute stops after 3 tokens, what is left of guest_max_tokens 3 \(n_predict 8\)/,
  );
  const bad = await cli("--guest-max-tokens", "0", oneshot);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--guest-max-tokens '0': expected a whole number/);
});
