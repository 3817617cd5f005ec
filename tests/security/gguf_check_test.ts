/**
 * Malformed GGUF files are refused before llama.cpp sees them (issue 9, §6).
 *
 * Without the check, seven of the crafted inputs below abort the process
 * inside llama.cpp (a GGML_ASSERT in the hyperparameter or vocabulary
 * loader); the rest are refused by llama.cpp itself. Every load runs in a
 * child process, so a missed abort fails its test instead of the run.
 */

import assert from "node:assert/strict";
import {
  GGUF_LIMITS,
  GgufError,
  validateGgufBytes,
  validateGgufFile,
  validateGgufFileSync,
} from "../../gguf/mod.ts";
import { ByteWriter } from "../../gguf/_byte_writer.ts";
import { paths } from "../../paths.ts";
import { run, tinyModel } from "../_helpers.ts";
import { MUTATIONS } from "./_gguf_craft.ts";

const PROBE = new URL("./_load_probe.ts", import.meta.url).pathname;
/** A child gets this long; a load of the tiny model takes well under a second. */
const TIMEOUT_MS = 60_000;

/** What the check says about each input (a fragment of the message). */
const REFUSED: Record<string, RegExp> = {
  "192-byte GGUF with block_count 0":
    /llama\.block_count is 0; llama\.cpp allows 1 to 512 layers/,
  "truncated to half": /truncated file: tensor "token_embd\.weight"/,
  "tensor offset past the end":
    /tensor "output\.weight".* ends at \d+, but the file is \d+ bytes long/,
  "wrong dimension (token_embd wider than its data)":
    /data is at offset \d+ of the data section, expected \d+/,
  "zero dimension": /dimension 0 is 0; every dimension must be at least 1/,
  "block_count larger than the tensors":
    /llama\.block_count is 3, but there are tensors for only 2 layers \(none for blk\.2\)/,
  "block_count huge":
    /llama\.block_count is 1000000; llama\.cpp allows 1 to 512/,
  "vocabulary shorter than the embedding":
    /the vocabulary has 1000 tokens .* "token_embd\.weight" has 32000 rows/,
  "duplicate token string":
    /tokenizer\.ggml\.tokens has token 501 equal to token 500/,
  "tensor count larger than the tensors": /not a plausible size|truncated/,
  "expert_count past llama.cpp's maximum":
    /llama\.expert_count is 5000; llama\.cpp allows at most 1024 experts/,
  "expert_used_count without experts":
    /llama\.expert_used_count is 2, more than llama\.expert_count \(0\)/,
  "nextn_predict_layers past block_count":
    /llama\.nextn_predict_layers is 7, more than the 2 layers/,
  "unknown rope scaling type": /llama\.rope\.scaling\.type is "bogus"/,
  "embedding_length mismatching token_embd":
    /"token_embd\.weight" is 64 wide but llama\.embedding_length is 96/,
};

/** Header-valid inputs that llama.cpp refuses by itself (no abort): the check lets them through. */
const LLAMA_REFUSES = ["head_count zero", "head_count_kv zero"];

/** The inputs that abort llama.cpp when nothing checks them first. */
const ABORTS = [
  "192-byte GGUF with block_count 0",
  "block_count huge",
  "duplicate token string",
  "expert_count past llama.cpp's maximum",
  "expert_used_count without experts",
  "nextn_predict_layers past block_count",
  "unknown rope scaling type",
];

let dir: string | undefined;

/** Writes a mutation to a file of its own (once). */
async function fileOf(name: string): Promise<string> {
  dir ??= await Deno.makeTempDir({ prefix: "gguf-check-" });
  const path = `${dir}/${name.replace(/[^a-z0-9]+/gi, "_")}.gguf`;
  try {
    await Deno.stat(path);
  } catch {
    await Deno.writeFile(path, await MUTATIONS[name]());
  }
  return path;
}

async function child(args: string[]) {
  const r = await run(Deno.execPath(), ["run", "-A", PROBE, ...args], {
    timeoutMs: TIMEOUT_MS,
  });
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  return { ...r, json: last.startsWith("{") ? JSON.parse(last) : undefined };
}

Deno.test("every crafted input is covered by the expectations", () => {
  assert.deepEqual(
    Object.keys(MUTATIONS).sort(),
    [...Object.keys(REFUSED), ...LLAMA_REFUSES].sort(),
  );
});

Deno.test("the check names what is wrong in each malformed input", async () => {
  for (const [name, want] of Object.entries(REFUSED)) {
    const bytes = await MUTATIONS[name]();
    assert.throws(
      () => validateGgufBytes(bytes, "<guest>"),
      (e: unknown) => {
        assert.ok(e instanceof GgufError, `${name}: ${e}`);
        assert.match(e.message, want, name);
        assert.ok(e.message.startsWith("<guest>: "), e.message);
        return true;
      },
    );
  }
  for (const name of LLAMA_REFUSES) validateGgufBytes(await MUTATIONS[name]());
});

Deno.test("well-formed models pass: the tiny model and every vocabulary GGUF of llama.cpp", async () => {
  const tiny = await tinyModel();
  assert.equal(
    (await validateGgufFile(tiny)).tensors.length,
    validateGgufFileSync(tiny).tensors.length,
  );
  validateGgufBytes(await Deno.readFile(tiny));
  const models = `${paths().llamaCpp}/models`;
  let n = 0;
  for (const e of Deno.readDirSync(models)) {
    if (!e.name.endsWith(".gguf")) continue;
    await validateGgufFile(`${models}/${e.name}`); // throws on a false refusal
    n++;
  }
  assert.ok(n >= 10, `only ${n} vocabulary files in ${models}`);
});

Deno.test("header counts and lengths are bounded before anything is allocated for them", () => {
  const header = (
    nTensors: bigint,
    nKv: bigint,
    rest?: (w: ByteWriter) => void,
  ) => {
    const w = new ByteWriter();
    w.u32(0x46554747);
    w.u32(3);
    w.u64(nTensors);
    w.u64(nKv);
    rest?.(w);
    w.bytes(new Uint8Array(64));
    return w.result();
  };
  const refused = (bytes: Uint8Array, want: RegExp) =>
    assert.throws(() => validateGgufBytes(bytes), want);
  refused(
    header(0n, 5000n),
    /declares 5000 metadata key\/values; at most 4096 allowed/,
  );
  refused(header(70000n, 0n), /declares 70000 tensors; at most 65536 allowed/);
  // A key as long as the limit plus one (claimed: the bytes are not there).
  refused(
    header(0n, 1n, (w) => w.u64(GGUF_LIMITS.maxStringBytes + 1)),
    /is 67108865 bytes long; at most 67108864 allowed/,
  );
  refused(
    header(0n, 1n, (w) => {
      w.string("tokenizer.ggml.tokens");
      w.u32(9); // array
      w.u32(8); // of strings
      w.u64(1 << 25);
    }),
    /has 33554432 items; at most 16777216 allowed/,
  );
  refused(
    header(0n, 1n, (w) => {
      w.string("k".repeat(GGUF_LIMITS.maxKeyBytes + 1));
      w.u32(0);
      w.u8(0);
    }),
    /key of metadata entry 0 is 1025 bytes long; at most 1024 allowed/,
  );
});

Deno.test("without the check, the aborting inputs abort llama.cpp (why the check exists)", async () => {
  for (const name of ABORTS) {
    const r = await run(
      "env",
      [
        "GGML_NO_BACKTRACE=1",
        Deno.execPath(),
        "run",
        "-A",
        PROBE,
        "raw",
        await fileOf(name),
      ],
      { timeoutMs: TIMEOUT_MS },
    );
    assert.equal(
      r.code,
      134,
      `${name}: expected SIGABRT, got ${r.code}: ${r.stdout}`,
    );
    assert.match(r.stderr, /GGML_ASSERT/, name);
  }
});

Deno.test("the host refuses each malformed model, as guest bytes and as a file, and lives", async () => {
  for (const name of [...Object.keys(REFUSED), ...LLAMA_REFUSES]) {
    const r = await child(["matrix", await fileOf(name)]);
    assert.equal(
      r.code,
      0,
      `${name}: the child died (${r.code}): ${r.stderr.slice(-600)}`,
    );
    for (
      const [way, o] of Object.entries(
        r.json as Record<
          string,
          { ok: boolean; errno: number; message: string }
        >,
      )
    ) {
      assert.equal(o.ok, false, `${name} (${way}) loaded`);
      assert.equal(o.errno, 1, `${name} (${way}): ${o.message}`);
      if (REFUSED[name]) {
        assert.match(o.message, REFUSED[name], `${name} (${way})`);
      }
      // Guests see their model named, never the memory file behind it.
      assert.doesNotMatch(o.message, /\/proc\/self\/fd/, `${name} (${way})`);
      if (way.startsWith("bytes")) {
        assert.match(o.message, /guest model #\d+ \(\d+ bytes\)/);
      } else assert.ok(o.message.includes(await fileOf(name)), o.message);
    }
  }
});

Deno.test("a good model still loads both ways", async () => {
  const r = await child(["matrix", await tinyModel()]);
  assert.equal(r.code, 0, r.stderr.slice(-600));
  for (const o of Object.values(r.json as Record<string, { ok: boolean }>)) {
    assert.deepEqual(o, { ok: true });
  }
});

Deno.test("cli.ts generate refuses a malformed model with exit code 3 and one line", async () => {
  const cli = new URL("../../cli.ts", import.meta.url).pathname;
  const bad = await fileOf("duplicate token string");
  const r = await run(Deno.execPath(), [
    "run",
    "-A",
    cli,
    "generate",
    "--model",
    bad,
    "--prompt",
    "hi",
  ], {
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(r.code, 3, r.stderr.slice(-600));
  const lines = r.stderr.trim().split("\n").filter((l) =>
    l.startsWith("error:")
  );
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0],
    /tokenizer\.ggml\.tokens has token 501 equal to token 500/,
  );
});

Deno.test("clean up the crafted files", async () => {
  if (dir) await Deno.remove(dir, { recursive: true });
});
