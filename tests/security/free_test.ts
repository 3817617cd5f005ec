/**
 * Nothing is freed while a native call uses it: closing the host, unloading,
 * finalizing, hot swap, and closing a model or sampler from the bindings,
 * each while a prompt decodes or a stream generates. Each scenario runs in a
 * child process (`_free_probe.ts`), so a use-after-free fails its test
 * (SIGSEGV) instead of ending the run.
 */
import assert from "node:assert/strict";
import { run } from "../_helpers.ts";

const probe = new URL("./_free_probe.ts", import.meta.url).pathname;

async function scenario(name: string): Promise<Record<string, unknown>> {
  const r = await run(Deno.execPath(), ["run", "-A", probe, name], {
    timeoutMs: 120_000,
  });
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  assert.equal(
    r.code,
    0,
    `${name}: the child ended with ${r.code} (a crash is 128 + signal): ${
      r.stderr.slice(-600)
    }`,
  );
  return JSON.parse(line);
}

Deno.test("host.close() while a prompt decodes: no crash, the compute fails cleanly", async () => {
  const r = await scenario("close-during-prompt");
  assert.match(String(r.compute), /^rejected: .*closed/);
});

Deno.test("host.close() while a stream generates: no crash, the stream ends with an error", async () => {
  const r = await scenario("close-during-stream");
  assert.match(String(r.stream), /^rejected: .*closed/);
  assert.ok(Number(r.tokensBeforeClose) >= 5);
});

Deno.test("unload and finalize while a prompt decodes: no crash, the host serves on", async () => {
  const r = await scenario("unload-finalize-during-prompt");
  const after = r.after as { output_tokens: number; stop_reason: string };
  assert.equal(after.output_tokens, 4);
  assert.equal(after.stop_reason, "length");
});

Deno.test("unload and finalize while a stream generates: no crash, the stream ends, the host serves on", async () => {
  const r = await scenario("unload-finalize-during-stream");
  assert.match(String(r.stream), /^rejected: /);
  const after = r.after as { output_tokens: number; stop_reason: string };
  assert.equal(after.output_tokens, 4);
});

Deno.test("hot swap while a stream generates: the stream goes on to its end", async () => {
  const r = await scenario("swap-during-stream");
  assert.equal(r.tokens, 40);
  assert.equal(r.end, "");
});

Deno.test("Model.close() while its context decodes: the decode is cancelled, then the model freed", async () => {
  const r = await scenario("model-close-during-decode");
  assert.match(String(r.decode), /^rejected: .*cancel/);
  assert.equal(r.closed, true);
});

Deno.test("closing the sampler and model while a step uses them: the step ends first", async () => {
  const r = await scenario("sampler-close-during-step");
  assert.equal(r.last, "done");
});

Deno.test("cancelAll() during a compute's setup still stops it", async () => {
  const r = await scenario("cancel-during-setup");
  assert.equal(r.stop, "cancelled");
  assert.ok(Number(r.outputTokens) < 4000, `${r.outputTokens} tokens`);
});
