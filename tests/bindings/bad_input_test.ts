import assert from "node:assert/strict";
import { LlamaError, Model, Status } from "../../bindings/mod.ts";
import { tinyModel } from "../_helpers.ts";

async function expectLoadError(path: string, code: number, pattern: RegExp) {
  await assert.rejects(Model.load(path), (e) => {
    assert.ok(e instanceof LlamaError, String(e));
    assert.equal(
      e.statusName,
      Object.entries(Status).find(([, v]) => v === code)![0],
      e.message,
    );
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(path), `message names the file: ${e.message}`);
    return true;
  });
}

Deno.test("bad model files give clear errors and the process keeps working", async (t) => {
  const dir = await Deno.makeTempDir();
  const good = await Deno.readFile(await tinyModel());
  await t.step(
    "missing file",
    () =>
      expectLoadError(`${dir}/missing.gguf`, Status.FileNotFound, /not found/),
  );
  await t.step(
    "directory",
    () => expectLoadError(dir, Status.FileUnreadable, /directory/),
  );
  await t.step("empty file", async () => {
    await Deno.writeFile(`${dir}/empty.gguf`, new Uint8Array());
    await expectLoadError(`${dir}/empty.gguf`, Status.InvalidModel, /empty/);
  });
  await t.step("non-GGUF bytes", async () => {
    await Deno.writeTextFile(
      `${dir}/text.gguf`,
      "this is not a model at all\n",
    );
    await expectLoadError(
      `${dir}/text.gguf`,
      Status.InvalidModel,
      /not a GGUF file/,
    );
  });
  await t.step("truncated GGUF (header only)", async () => {
    await Deno.writeFile(`${dir}/trunc1.gguf`, good.subarray(0, 4096));
    await expectLoadError(
      `${dir}/trunc1.gguf`,
      Status.InvalidModel,
      /failed to load/,
    );
  });
  await t.step("truncated GGUF (tensor data cut)", async () => {
    await Deno.writeFile(
      `${dir}/trunc2.gguf`,
      good.subarray(0, good.length - 100_000),
    );
    await expectLoadError(
      `${dir}/trunc2.gguf`,
      Status.InvalidModel,
      /failed to load/,
    );
  });
  await t.step("unsupported GGUF version", async () => {
    const b = good.slice(0, 64);
    new DataView(b.buffer).setUint32(4, 99, true);
    await Deno.writeFile(`${dir}/v99.gguf`, b);
    await expectLoadError(`${dir}/v99.gguf`, Status.InvalidModel, /version 99/);
  });
  await t.step({
    name: "no read permission",
    // root reads any file, so the permission error cannot happen there.
    ignore: Deno.uid() === 0,
    fn: async () => {
      await Deno.writeFile(`${dir}/noperm.gguf`, good.subarray(0, 1024));
      await Deno.chmod(`${dir}/noperm.gguf`, 0o000);
      await expectLoadError(
        `${dir}/noperm.gguf`,
        Status.FileUnreadable,
        /cannot open/,
      );
    },
  });
  await t.step("the process still loads a good model afterwards", async () => {
    using m = await Model.load(await tinyModel());
    assert.equal(m.nVocab, 32000);
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a cancelled load stops with Cancelled", async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(
    Model.load(await tinyModel(), { signal: ac.signal }),
    (e) => e instanceof LlamaError && e.code === Status.Cancelled,
  );
});
