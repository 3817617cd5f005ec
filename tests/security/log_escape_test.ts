/**
 * Issue 9, section 5: guest-chosen text went raw into the host log, so a
 * model name with a newline and ANSI escapes forged an `[ERR]` line. Every
 * message is now one line, with control characters shown as escapes, on
 * every path: the host's own log call, LogTape's text and JSON sinks (stderr
 * and log_file), and the guest runner's logger.
 */
import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { configureLogging, logFunction, logger } from "../../cli/logging.ts";
import { ModelRegistry } from "../../wasi_nn/host/registry.ts";
import { Errno } from "../../wasi_nn/errno.ts";
import {
  escapedLines,
  escapeJsonLine,
  escapeLogText,
  escapingLog,
} from "../../wasi_nn/_log_escape.ts";
import { CHILD_TIMEOUT_MS } from "../_helpers.ts";
import { tinyGuest } from "./_tiny_guest.ts";

const FORGED =
  "x\n[ERR] forged\x1b[31m red\r[ERR] cr\u2028[ERR] ls\x85\x7f\x01";
const ESCAPED =
  "x\\n[ERR] forged\\x1b[31m red\\r[ERR] cr\\u2028[ERR] ls\\x85\\x7f\\x01";
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/;

function assertNoForgedLine(text: string, where: string): void {
  assert.doesNotMatch(text, RAW_CONTROL, `${where}: a raw control character`);
  for (const line of text.split("\n")) {
    assert.ok(!line.startsWith("[ERR]"), `${where}: forged line ${line}`);
  }
}

Deno.test("control characters are shown as escapes; llama.cpp's lines stay lines", () => {
  assert.equal(escapeLogText(FORGED), ESCAPED);
  assert.equal(escapeLogText(ESCAPED), ESCAPED); // escaping twice changes nothing
  assert.equal(escapeLogText("plain text é ü 😀"), "plain text é ü 😀");
  assert.equal(escapeLogText("a\tb\x00\u2029"), "a\\tb\\x00\\u2029");
  assert.deepEqual(escapedLines("load: one\r\nload: two\x1b[0m\n"), [
    "load: one",
    "load: two\\x1b[0m",
  ]);
  const json = escapeJsonLine(JSON.stringify({ m: FORGED }));
  assert.doesNotMatch(json, RAW_CONTROL);
  assert.equal(JSON.parse(json).m, FORGED); // still the same JSON value
  const got: [string, string | undefined][] = [];
  const log = escapingLog((_l: string, m: string, c?: string) =>
    void got.push([m, c])
  );
  log("info", "llama_model_loader: a\nllama_model_loader: b\x1b", "llama");
  log("warn", FORGED);
  assert.deepEqual(got, [
    ["llama_model_loader: a", "llama"],
    ["llama_model_loader: b\\x1b", "llama"],
    [ESCAPED, undefined],
  ]);
});

Deno.test("LlamaHost: a forged model name reaches an embedder's log sink as one escaped line", async () => {
  const messages: string[] = [];
  const host = await LlamaHost.create({
    registry: new ModelRegistry(),
    log: (_level, msg) => void messages.push(msg),
  });
  try {
    await assert.rejects(host.loadByName(FORGED), (e: Error) => {
      assert.equal((e as unknown as { errno: number }).errno, Errno.NotFound);
      return true;
    });
  } finally {
    host.close();
  }
  const text = messages.join("\n");
  assert.ok(messages.length > 0);
  assertNoForgedLine(text, "host log");
  for (const m of messages) assert.ok(!m.includes("\n"), m);
  assert.ok(text.includes(ESCAPED), text);
});

Deno.test("LogTape sinks: text and JSON lines stay one line per record", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wasi-nn-logesc-" });
  try {
    for (const format of ["text", "json"] as const) {
      const file = `${dir}/${format}.log`;
      await configureLogging({ level: "debug", format, file, stderr: false });
      logger("host").warn("model {name} not found", { name: FORGED });
      logFunction("host")("error", FORGED);
      logFunction("llama")("info", "line one\nline two\x1b[0m\n");
      await reset(); // closes the file
      const text = await Deno.readTextFile(file);
      const lines = text.trimEnd().split("\n");
      assert.equal(lines.length, 4, text);
      assertNoForgedLine(text, format);
      if (format === "json") { for (const l of lines) JSON.parse(l); }
      else assert.ok(lines[1].includes(ESCAPED), lines[1]);
    }
  } finally {
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts: a guest's load_by_name of a forged name cannot forge a log line (stderr and log_file)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wasi-nn-logesc-" });
  try {
    const wasm = `${dir}/forge.wasm`;
    await Deno.writeFile(wasm, tinyGuest(FORGED));
    for (const format of ["text", "json"]) {
      const file = `${dir}/host-${format}.log`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../../cli.ts", import.meta.url).pathname,
          "--log-level",
          "debug",
          "--config",
          JSON.stringify({ log_format: format, log_file: file }),
          wasm,
        ],
        env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(CHILD_TIMEOUT_MS),
      }).output();
      const stderr = new TextDecoder().decode(out.stderr)
        .split("\n").filter((l) => !l.startsWith("Download ")).join("\n");
      assert.equal(out.code, Errno.NotFound, stderr); // the guest exits with the errno
      const logged = await Deno.readTextFile(file);
      for (const [where, text] of [["stderr", stderr], ["log_file", logged]]) {
        assertNoForgedLine(text, `${format} ${where}`);
        assert.ok(text.includes("forged"), `${format} ${where}: ${text}`);
      }
      if (format === "text") assert.ok(stderr.includes(ESCAPED), stderr);
      else for (const l of logged.trimEnd().split("\n")) JSON.parse(l);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
