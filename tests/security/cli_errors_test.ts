/**
 * Issue 9, section 5: every CLI mistake ends in one clear line on stderr and
 * its documented exit code (EXIT_CODES, README), never in a misleading hint
 * or a JavaScript stack trace.
 */
import assert from "node:assert/strict";
import { EXIT_CODES } from "../../cli/exit_codes.ts";
import { CHILD_TIMEOUT_MS, tinyModel } from "../_helpers.ts";
import { tinyGuest } from "./_tiny_guest.ts";

const cli = new URL("../../cli.ts", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ prefix: "wasi-nn-clierr-" });
const wasm = `${dir}/guest.wasm`;
await Deno.writeFile(wasm, tinyGuest("default"));

/** Runs cli.ts; returns the exit code and stderr without Deno's own download notes. */
async function cliRun(
  args: string[],
): Promise<{ code: number; lines: string[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, ...args],
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(CHILD_TIMEOUT_MS),
  }).output();
  const lines = new TextDecoder().decode(out.stderr).split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("Download "));
  return { code: out.code, lines };
}

/** Exactly one line, `error: ...`, matching `pattern`, with no stack frame. */
function assertOneLine(
  r: { code: number; lines: string[] },
  code: number,
  pattern: RegExp,
): void {
  const all = r.lines.join("\n");
  assert.equal(r.code, code, all);
  assert.equal(r.lines.length, 1, all);
  assert.match(r.lines[0], /^error: /);
  assert.match(r.lines[0], pattern);
  assert.doesNotMatch(all, /^\s+at /m, "a stack trace");
  assert.doesNotMatch(all, /Uncaught|could not start|build the library/);
}

Deno.test("cli.ts: a config value out of range is a config error (2), not a build hint", async () => {
  const r = await cliRun(["--config", '{"n_predict":-5}', wasm]);
  assertOneLine(r, EXIT_CODES.usage, /--config: Field 'n_predict'.*-5/);
});

Deno.test("cli.ts: a log_file that cannot be opened is one line and exit code 2", async () => {
  const r = await cliRun([
    "--config",
    '{"log_file":"/nonexistent/dir/x.log"}',
    wasm,
  ]);
  assertOneLine(r, EXIT_CODES.usage, /log_file '\/nonexistent\/dir\/x\.log'/);
});

Deno.test("cli.ts: a --dir folder that does not exist is one line and exit code 2", async () => {
  for (
    const [arg, what] of [
      [
        "/g:/nonexistent",
        /--dir \/g:\/nonexistent: .*'\/nonexistent' does not exist/,
      ],
      ["nocolon", /--dir nocolon: .*'nocolon' does not exist/],
      [`/g:${wasm}`, /is not a folder/],
    ] as const
  ) {
    const r = await cliRun(["--dir", arg, wasm]);
    assertOneLine(r, EXIT_CODES.usage, what);
  }
});

Deno.test("cli.ts: a config over the limits is refused up front (2)", async () => {
  const many: Record<string, number> = {};
  for (let i = 0; i < 1100; i++) many[`k${i}`] = i;
  const r = await cliRun(["--config", JSON.stringify(many), wasm]);
  assertOneLine(r, EXIT_CODES.usage, /--config: .*1024 keys/);
});

Deno.test("cli.ts generate: bad --config, bad log_file and a missing --model are one line each", async () => {
  const model = await tinyModel();
  const gen = (...a: string[]) =>
    cliRun(["generate", "--prompt", "hi", "--n-predict", "2", ...a]);
  assertOneLine(
    await gen("--model", model, "--config", '{"n_predict":-5}'),
    2,
    /Field 'n_predict'/,
  );
  assertOneLine(
    await gen(
      "--model",
      model,
      "--config",
      '{"log_file":"/nonexistent/dir/x.log"}',
    ),
    2,
    /log_file '\/nonexistent\/dir\/x\.log'/,
  );
  assertOneLine(
    await gen("--model", `${dir}/missing.gguf`),
    3,
    /missing\.gguf/,
  );
  // a log_file that can be opened gets the warnings
  const log = `${dir}/generate.log`;
  const ok = await gen(
    "--model",
    model,
    "--config",
    JSON.stringify({ log_file: log, bogus_key: 1 }),
  );
  assert.equal(ok.code, 0, ok.lines.join("\n"));
  assert.match(await Deno.readTextFile(log), /unknown config key 'bogus_key'/);
});

Deno.test("(cleanup)", () => Deno.remove(dir, { recursive: true }));
