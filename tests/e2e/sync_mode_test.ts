/** The synchronous fallback (no JSPI): the same guest, the same output, through blocking calls. */
import assert from "node:assert/strict";
import { closeSync, openSync } from "node:fs";
import { buildGuests } from "../../examples/build.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { ModelRegistry } from "../../wasi_nn/host/registry.ts";
import { runGuest } from "../../wasi_nn/abi/run_guest.ts";
import {
  findLine,
  hexBytes,
  parseProbeOutput,
} from "../guests/probe_output.ts";
import { tinyModel } from "../_helpers.ts";

async function probe(mode: "jspi" | "sync", args: string[]) {
  const guests = await buildGuests({ only: ["abi_probe"], quiet: true });
  const registry = new ModelRegistry();
  registry.preload("default", await tinyModel());
  using host = await LlamaHost.create({ registry, log: () => {} });
  const file = await Deno.makeTempFile();
  const fd = openSync(file, "w");
  let code: number;
  try {
    code = await runGuest({
      wasm: guests.abi_probe,
      args,
      host,
      stdout: fd,
      mode,
    });
  } finally {
    closeSync(fd);
  }
  const out = parseProbeOutput(await Deno.readTextFile(file));
  await Deno.remove(file);
  return { code, lines: out };
}

const text = (lines: ReturnType<typeof parseProbeOutput>) =>
  new TextDecoder().decode(
    hexBytes(findLine(lines, "get_output", "text").hex as string),
  );

Deno.test("sync mode: one-shot and streaming give what JSPI mode gives", async () => {
  const cfg = '{"n-predict":12,"temp":0}';
  const a = await probe("jspi", [
    "oneshot",
    "default",
    "Once upon a time",
    cfg,
  ]);
  const b = await probe("sync", [
    "oneshot",
    "default",
    "Once upon a time",
    cfg,
  ]);
  assert.equal(a.code, 0);
  assert.equal(b.code, 0);
  assert.equal(text(b.lines), text(a.lines));
  assert.ok(text(a.lines).length > 0);
  const after = JSON.parse(
    findLine(b.lines, "get_output", "after").text as string,
  );
  assert.equal(after.output_tokens, 12);

  const scfg = '{"temp":0,"logit_bias":[[2,0.3]]}';
  const sa = await probe("jspi", [
    "stream",
    "default",
    "Hello there",
    scfg,
    "200",
  ]);
  const sb = await probe("sync", [
    "stream",
    "default",
    "Hello there",
    scfg,
    "200",
  ]);
  assert.equal(findLine(sb.lines, "stream_end").errno, 100);
  const pieces = (l: typeof sa.lines) =>
    l.filter((x) => x.op === "get_output_single" && x.case === undefined).map((
      x,
    ) => x.hex);
  assert.deepEqual(pieces(sb.lines), pieces(sa.lines));
  const p = await probe("sync", ["prompt-too-long", "default"]);
  assert.equal(findLine(p.lines, "compute").errno, 102);
});

Deno.test("sync mode: embeddings equal JSPI mode's", async () => {
  const a = await probe("jspi", ["embedding", "default", "embed this"]);
  const b = await probe("sync", ["embedding", "default", "embed this"]);
  assert.equal(a.code, 0);
  assert.equal(b.code, 0);
  const out = (l: typeof a.lines) =>
    JSON.parse(
      new TextDecoder().decode(
        hexBytes(findLine(l, "get_output", "text").hex as string),
      ),
    );
  const [ea, eb] = [out(a.lines), out(b.lines)];
  assert.equal(eb.n_embedding, 64);
  assert.deepEqual(eb.embedding, ea.embedding);
});
