/** Two guest instances in one process compute at once, batched by one scheduler. */
import assert from "node:assert/strict";
import { closeSync, openSync } from "node:fs";
import { buildGuests } from "../../examples/build.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { ModelRegistry } from "../../wasi_nn/host/registry.ts";
import { runGuest } from "../../wasi_nn/abi/run_guest.ts";
import { tinyModel } from "../_helpers.ts";

Deno.test("two guests compute at once in one process, each as if alone", async () => {
  const guests = await buildGuests({ only: ["oneshot"], quiet: true });
  const registry = new ModelRegistry();
  registry.preload("default", await tinyModel());
  using host = await LlamaHost.create({
    registry,
    hostConfig: { n_predict: 48, temp: 0, ignore_eos: true },
    log: () => {},
  });
  const dir = await Deno.makeTempDir();
  const run = async (name: string, prompt: string) => {
    const fd = openSync(`${dir}/${name}.out`, "w");
    try {
      const code = await runGuest({
        wasm: guests.oneshot,
        args: ["default", prompt],
        host,
        stdout: fd,
      });
      assert.equal(code, 0);
    } finally {
      closeSync(fd);
    }
    return await Deno.readTextFile(`${dir}/${name}.out`);
  };
  const aloneA = await run("a0", "First guest prompt");
  const aloneB = await run("b0", "Second guest, another prompt");
  const steps = async () =>
    (await host.statusWithSchedulers()).models[0].schedulers[0].steps;
  const s0 = await steps();
  const [a, b] = await Promise.all([
    run("a1", "First guest prompt"),
    run("b1", "Second guest, another prompt"),
  ]);
  const used = (await steps()) - s0;
  assert.equal(a, aloneA);
  assert.equal(b, aloneB);
  assert.ok(a.length > 0 && b.length > 0);
  // Alone, each needs about 49 decode steps; batched together far fewer than 98.
  assert.ok(used < 80, `${used} decode steps for two concurrent guests`);
  await Deno.remove(dir, { recursive: true });
});
