/**
 * End to end: compiled guests run through `cli.ts` on the real llama.cpp,
 * covering the call sequences of the ABI doc's guest inventory and every
 * errno path.
 */
import assert from "node:assert/strict";
import { buildGuests } from "../../examples/build.ts";
import { Context, Model, Sampler } from "../../bindings/mod.ts";
import { generate } from "../../wasi_nn/engine/generate.ts";
import {
  findLine,
  findLines,
  hexBytes,
  NOT_WRITTEN,
  parseProbeOutput,
  type ProbeLine,
} from "../guests/probe_output.ts";
import { paths } from "../../paths.ts";
import { CHILD_TIMEOUT_MS, tinyModel } from "../_helpers.ts";

const root = paths().root;
const guests = await buildGuests({ quiet: true });
const model = await tinyModel();
const dec = new TextDecoder();

async function cli(
  args: string[],
  opts: { stdin?: string; extra?: string[] } = {},
): Promise<
  { code: number; stdout: string; stderr: string; lines: ProbeLine[] }
> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${root}/cli.ts`,
      "--nn-preload",
      `default:GGML:AUTO:${model}`,
      "--nn-preload",
      "missing:GGML:AUTO:/nonexistent/dir/model.gguf",
      ...(opts.extra ?? []),
      ...args,
    ],
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1" },
    // A hung child fails its test instead of hanging the run.
    signal: AbortSignal.timeout(CHILD_TIMEOUT_MS),
  });
  const child = cmd.spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const stdout = dec.decode(out.stdout);
  return {
    code: out.code,
    stdout,
    stderr: dec.decode(out.stderr),
    lines: parseProbeOutput(stdout),
  };
}

const probe = (...args: string[]) => cli([guests.abi_probe, ...args]);

async function directGreedy(prompt: string, n: number): Promise<string> {
  using m = await Model.load(model);
  const ctx = await Context.create(m, { nCtx: 512 });
  const r = await generate(
    ctx,
    Sampler.create(m, { temp: 0 }),
    m.tokenize(prompt, { parseSpecial: true }),
    {
      nPredict: n,
    },
  );
  return r.text;
}

Deno.test("one-shot: metadata before and after compute; temp 0 equals the direct path", async () => {
  const r = await probe(
    "oneshot",
    "default",
    "Once upon a time",
    '{"n-predict":12,"temp":0}',
  );
  assert.equal(r.code, 0, r.stderr);
  const before = JSON.parse(
    findLine(r.lines, "get_output", "before").text as string,
  );
  const after = JSON.parse(
    findLine(r.lines, "get_output", "after").text as string,
  );
  assert.equal(before.output_tokens, 0);
  assert.ok(before.input_tokens > 0);
  assert.equal(after.input_tokens, before.input_tokens);
  assert.equal(after.output_tokens, 12);
  assert.equal(typeof after.llama_commit, "string");
  assert.equal(typeof after.llama_build_number, "number");
  const text = findLine(r.lines, "get_output", "text");
  assert.equal(
    dec.decode(hexBytes(text.hex as string)),
    await directGreedy("Once upon a time", 12),
  );
});

Deno.test("streaming: compute_single to errno 100, pieces equal the one-shot text", async () => {
  // Random weights give flat logits: a small bias on EOS (token 2) ends the stream after ~25 tokens.
  const cfg = '{"temp":0,"logit_bias":[[2,0.3]]}';
  const s = await probe("stream", "default", "Hello there", cfg, "200");
  assert.equal(s.code, 0, s.stderr);
  const end = findLine(s.lines, "stream_end");
  assert.equal(end.errno, 100, "ends with EndOfSequence");
  const pieces = findLines(s.lines, "get_output_single").filter((l) =>
    l.case === undefined
  );
  const streamed = dec.decode(
    new Uint8Array(pieces.flatMap((p) => [...hexBytes(p.hex as string)])),
  );
  const meta = JSON.parse(
    findLine(s.lines, "get_output", "after").text as string,
  );
  assert.ok(pieces.length > 5);
  assert.equal(
    meta.output_tokens,
    pieces.length + 1,
    "the EOS token is counted",
  );
  assert.equal(meta.stop_reason, "eos");
  const o = await probe("oneshot", "default", "Hello there", cfg);
  assert.equal(
    dec.decode(hexBytes(findLine(o.lines, "get_output", "text").hex as string)),
    streamed,
  );
});

Deno.test("stream then fini_single then a second stream starts over", async () => {
  const r = await probe("stream-fini", "default", "Hi", '{"temp":0}', "5");
  assert.equal(r.code, 0, r.stderr);
  const runs = findLines(r.lines, "stream_end");
  assert.equal(runs.length, 2);
  const byRun = (n: number) =>
    findLines(r.lines, "get_output_single").filter((l) =>
      l.run === n && l.case === undefined
    ).map((l) => l.hex);
  assert.deepEqual(byRun(2), byRun(1));
});

Deno.test("unload then load again, five times", async () => {
  const r = await probe(
    "unload-reload",
    "default",
    "Hi",
    "5",
    '{"n-predict":3}',
  );
  assert.equal(r.code, 0, r.stderr);
  const loads = findLines(r.lines, "load_by_name_with_config");
  assert.equal(loads.length, 5);
  assert.ok(loads.every((l) => l.errno === 0));
  assert.equal(
    new Set(loads.map((l) => l.graph)).size,
    5,
    "handles only ever increase",
  );
  assert.ok(findLines(r.lines, "unload").every((l) => l.errno === 0));
});

Deno.test("embedding: a normalised vector of n_embd values", async () => {
  const r = await probe("embedding", "default", "embed this");
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(
    dec.decode(hexBytes(findLine(r.lines, "get_output", "text").hex as string)),
  );
  assert.equal(out.n_embedding, 64);
  assert.equal(out.embedding.length, 64);
  const norm = Math.sqrt(
    out.embedding.reduce((s: number, x: number) => s + x * x, 0),
  );
  assert.ok(Math.abs(norm - 1) < 1e-6, `norm ${norm}`);
});

Deno.test("set_input twice gives the same input_tokens", async () => {
  const r = await probe("set-input-twice", "default", "The same prompt");
  assert.equal(r.code, 0, r.stderr);
  const a = JSON.parse(findLine(r.lines, "get_output", "first").text as string);
  const b = JSON.parse(
    findLine(r.lines, "get_output", "second").text as string,
  );
  assert.ok(a.input_tokens > 1);
  assert.equal(a.input_tokens, b.input_tokens);
});

Deno.test("NotFound for an unknown name, ModelNotFound for a preloaded missing file", async () => {
  assert.equal(
    findLine((await probe("load-by-name", "nope")).lines, "load_by_name").errno,
    8,
  );
  const missing = await probe("load-by-name", "missing");
  assert.equal(findLine(missing.lines, "load_by_name").errno, 103);
  assert.equal(findLine(missing.lines, "load_by_name").graph, NOT_WRITTEN);
});

Deno.test("sandbox: paths load only inside --nn-allow-dir; escapes are NotFound", async () => {
  const dir = await Deno.makeTempDir();
  const inside = `${dir}/allowed`;
  await Deno.mkdir(inside);
  await Deno.copyFile(model, `${inside}/m.gguf`);
  await Deno.symlink(model, `${inside}/escape.gguf`); // points outside the allowed folder
  const allow = { extra: ["--nn-allow-dir", inside] };
  const ok = await cli(
    [guests.abi_probe, "load-path", `${inside}/m.gguf`],
    allow,
  );
  assert.equal(findLine(ok.lines, "load_by_name").errno, 0, ok.stderr);
  for (
    const p of [
      `${inside}/escape.gguf`,
      `${inside}/../allowed/../../${model}`,
      model,
    ]
  ) {
    const r = await cli([guests.abi_probe, "load-path", p], allow);
    assert.equal(
      findLine(r.lines, "load_by_name").errno,
      8,
      `${p}: ${r.stdout}`,
    );
  }
  const none = await probe("load-path", `${inside}/m.gguf`);
  assert.equal(
    findLine(none.lines, "load_by_name").errno,
    8,
    "no --nn-allow-dir: no paths",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("load() with preload:<path> accepts GGML as 6 (WasmEdge) and 5 (WAMR)", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.copyFile(model, `${dir}/m.gguf`);
  for (const enc of ["6", "5"]) {
    const r = await cli([
      guests.abi_probe,
      "load-bytes",
      enc,
      `preload:${dir}/m.gguf`,
    ], {
      extra: ["--nn-allow-dir", dir],
    });
    assert.equal(findLine(r.lines, "load").errno, 0, r.stdout + r.stderr);
  }
  const bad = await cli([
    guests.abi_probe,
    "load-bytes",
    "1",
    `preload:${dir}/m.gguf`,
  ], {
    extra: ["--nn-allow-dir", dir],
  });
  assert.equal(findLine(bad.lines, "load").errno, 2);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("TooLarge writes the needed size and copies nothing", async () => {
  const r = await probe("too-small", "default", "Hello", "4");
  assert.equal(r.code, 0, r.stderr);
  for (
    const c of [
      "text_cap",
      "meta_cap",
      "text_zero",
      "single_cap",
      "single_zero",
    ]
  ) {
    const l = findLine(
      r.lines,
      c.startsWith("single") ? "get_output_single" : "get_output",
      c,
    );
    assert.equal(l.errno, 7, c);
    assert.ok((l.written as number) > 4, c);
    assert.equal(l.changed, 0, c);
    assert.equal(l.canary, "intact", c);
  }
  const exact = findLine(r.lines, "get_output", "text_exact");
  assert.equal(exact.errno, 0);
  assert.equal(
    exact.written,
    findLine(r.lines, "get_output", "text_cap").written,
  );
});

Deno.test("bad pointers and handles return InvalidArgument, never a trap", async () => {
  const r = await probe("bad-pointers", "default");
  assert.equal(r.code, 0, r.stderr);
  const cases = r.lines.filter((l) =>
    l.case !== undefined &&
    !["restore", "still_works"].includes(l.case as string)
  );
  assert.ok(cases.length >= 40, `${cases.length} cases`);
  const expected: Record<string, number> = {
    name_empty: 8,
    encoding_bad: 2,
    type_u8_high_bytes: 0,
  };
  for (const l of cases) {
    assert.equal(l.errno, expected[l.case as string] ?? 1, `${l.op} ${l.case}`);
  }
  assert.equal(
    findLines(r.lines, "get_output").filter((l) => l.case === "still_works")[0]
      .errno,
    0,
  );
  assert.ok(r.lines.at(-1)!.op === "end");
});

Deno.test("calls in the wrong order get the documented errnos", async () => {
  const r = await probe("wrong-order", "default");
  assert.equal(r.code, 0, r.stderr);
  const e = (op: string, c: string) => findLine(r.lines, op, c).errno;
  assert.equal(e("compute", "before_input"), 1);
  assert.equal(e("compute_single", "before_input"), 1);
  assert.equal(e("set_input", "after_finalize"), 1);
  assert.equal(e("finalize_execution_context", "again"), 1);
  assert.equal(e("unload", "again"), 1);
  assert.equal(e("init_execution_context", "after_unload"), 1);
  assert.equal(e("compute", "after_unload"), 1);
  assert.equal(
    e("get_output", "after_unload"),
    0,
    "outputs stay readable after unload",
  );
});

Deno.test("PromptTooLong and ContextFull (partial output kept) in compute and streaming", async () => {
  const p = await probe("prompt-too-long", "default");
  assert.equal(findLine(p.lines, "compute").errno, 102);
  assert.equal(findLine(p.lines, "compute_single").errno, 102);
  const c = await probe("context-full", "default", "Hello");
  assert.equal(findLine(c.lines, "compute").errno, 101);
  const text = findLine(c.lines, "get_output", "text");
  assert.ok((text.written as number) > 100, "partial output kept");
  assert.equal(
    JSON.parse(findLine(c.lines, "get_output", "after").text as string)
      .stop_reason,
    "context_full",
  );
  assert.equal(findLine(c.lines, "stream_end").errno, 101);
});

Deno.test("config: malformed JSON is 2, wrong types 1, set_input(1) applies", async () => {
  const r = await probe("bad-config", "default");
  assert.equal(r.code, 0, r.stderr);
  const e = (op: string, c: string) => findLine(r.lines, op, c).errno;
  for (const c of ["malformed", "not_json", "not_object"]) {
    assert.equal(e("load_by_name_with_config", c), 2, c);
  }
  for (
    const c of [
      "n_predict_string",
      "temp_string",
      "ctx_size_float",
      "enable_log_int",
    ]
  ) {
    assert.equal(e("load_by_name_with_config", c), 1, c);
  }
  assert.equal(e("load_by_name_with_config", "valid_unknown_key"), 0);
  assert.equal(e("set_input", "malformed"), 2);
  assert.equal(e("set_input", "wrong_type"), 1);
  const c = await probe("config-index1", "default", "Hello", '{"n-predict":3}');
  assert.equal(
    JSON.parse(findLines(c.lines, "get_output").at(-1)!.text as string)
      .output_tokens,
    3,
  );
});

Deno.test("stream-stdout prints tokens on the host's stdout during compute", async () => {
  const r = await probe(
    "oneshot",
    "default",
    "Hello",
    '{"n-predict":6,"temp":0,"stream-stdout":true}',
  );
  const text = dec.decode(
    hexBytes(findLine(r.lines, "get_output", "text").hex as string),
  );
  assert.ok(
    r.stdout.includes(text),
    "the generated text appears on stdout outside the probe lines",
  );
  assert.ok(
    !r.stdout.split("\n").find((l) =>
      l.startsWith("op=") && l.includes(text) && l.startsWith(text)
    ),
  );
});

Deno.test("the example guests run: C and AssemblyScript, one-shot and streamed chat", async () => {
  for (const g of [guests.oneshot, guests.as_oneshot]) {
    const r = await cli([g, "default", "Once upon a time"], {
      extra: ["--config", '{"n_predict":8,"temp":0}'],
    });
    assert.equal(r.code, 0, `${g}: ${r.stderr}`);
    assert.ok(r.stdout.trim().length > 0, g);
  }
  for (const g of [guests.chat_stream, guests.as_chat_stream]) {
    const r = await cli([g, "default"], {
      stdin: "Hello\nHow are you?\n",
      extra: ["--config", '{"temp":0}', "--env", "WASI_NN_MAX_TOKENS=8"],
    });
    assert.equal(r.code, 0, `${g}: ${r.stderr}`);
    assert.ok(r.stdout.length > 0, g);
  }
});

Deno.test("a trap is reported with a non-zero exit; a missing import before running", async () => {
  // A guest that traps at once: (module (memory (export "memory") 1) (func (export "_start") unreachable))
  const trap = new Uint8Array([
    0,
    97,
    115,
    109,
    1,
    0,
    0,
    0,
    1,
    4,
    1,
    96,
    0,
    0,
    3,
    2,
    1,
    0,
    5,
    3,
    1,
    0,
    1,
    7,
    19,
    2,
    6,
    109,
    101,
    109,
    111,
    114,
    121,
    2,
    0,
    6,
    95,
    115,
    116,
    97,
    114,
    116,
    0,
    0,
    10,
    5,
    1,
    3,
    0,
    0,
    11,
  ]);
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/trap.wasm`, trap);
  const r = await cli([`${dir}/trap.wasm`]);
  assert.equal(r.code, 134);
  assert.match(r.stderr, /unreachable/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("log level: the config's log_level applies unless --log-level is given; enable_log shows llama.cpp's log", async () => {
  const run = (extra: string[], cfg = '{"n-predict":2}') =>
    cli([guests.abi_probe, "oneshot", "default", "Hi", cfg], { extra });
  const quiet = await run([]);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.doesNotMatch(quiet.stderr, /loaded model 'default'/);
  const info = await run(["--config", '{"log_level":"info"}']);
  assert.match(info.stderr, /loaded model 'default'/);
  const overridden = await run([
    "--config",
    '{"log_level":"info"}',
    "--log-level",
    "warn",
  ]);
  assert.doesNotMatch(overridden.stderr, /loaded model 'default'/);
  const llama = await run([], '{"n-predict":2,"enable_log":true}');
  assert.match(llama.stderr, /llama/);
  assert.ok(
    llama.stderr.split("\n").length > quiet.stderr.split("\n").length + 5,
    llama.stderr.slice(0, 400),
  );
});
