/** Memory planning (bindings/memory.ts) against the real llama.cpp. */
import assert from "node:assert/strict";
import { run } from "../_helpers.ts";

Deno.test("memory estimates while other threads load models do not crash or hang the process", async () => {
  const probe = new URL("./_logger_race.ts", import.meta.url).pathname;
  for (let round = 0; round < 2; round++) {
    const r = await run(Deno.execPath(), ["run", "-A", probe, "60"], {
      timeoutMs: 90_000,
    });
    assert.equal(
      r.code,
      0,
      `round ${round}: exit ${r.code}\n${r.stderr.slice(-600)}`,
    );
    assert.match(r.stdout, /^done 120 180$/m);
  }
});
