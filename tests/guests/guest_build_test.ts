/**
 * `examples/build.ts`: a second build reuses fresh outputs, and `only`
 * builds a subset.
 * @module
 */
import assert from "node:assert/strict";
import { buildGuests, GUEST_NAMES, guestPaths } from "../../examples/build.ts";

Deno.test("buildGuests returns every path and skips unchanged outputs", async () => {
  const first = await buildGuests({ quiet: true });
  assert.deepStrictEqual(Object.keys(first).sort(), [...GUEST_NAMES].sort());
  assert.deepStrictEqual(first, guestPaths());
  const before = await Promise.all(
    GUEST_NAMES.map(async (n) => (await Deno.stat(first[n])).mtime?.getTime()),
  );
  await buildGuests({ quiet: true });
  const after = await Promise.all(
    GUEST_NAMES.map(async (n) => (await Deno.stat(first[n])).mtime?.getTime()),
  );
  assert.deepStrictEqual(after, before);
});

Deno.test("buildGuests({ only }) builds just those guests", async () => {
  const paths = await buildGuests({ only: ["abi_probe"], quiet: true });
  const bytes = await Deno.readFile(paths.abi_probe);
  assert.deepStrictEqual(WebAssembly.validate(bytes), true);
});
