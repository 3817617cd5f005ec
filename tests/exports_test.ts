// The package's entries: the top level names what a user of the host needs
// (no scheduler, queue, stop checker or key-table internals), each layer has
// its own subpath export, and every entry is in `deno task check`'s
// `deno doc --lint` list and passes it.
import assert from "node:assert/strict";
import { fromFileUrl } from "../_internal/file_url.ts";
import * as root from "../mod.ts";
import * as config from "../wasi_nn/config/mod.ts";
import { run } from "./_helpers.ts";

const ROOT = fromFileUrl(new URL("..", import.meta.url));
const denoJson = JSON.parse(
  await Deno.readTextFile(`${ROOT}/deno.json`),
) as {
  exports: Record<string, string>;
  tasks: Record<string, string | { command: string }>;
};

Deno.test("mod.ts exports the host's API and none of its internals", () => {
  assert.deepEqual(Object.keys(root).sort(), [
    "Context",
    "Errno",
    "GuestLinkError",
    "LOG_LEVELS",
    "LlamaHost",
    "Model",
    "ModelRegistry",
    "PreopenError",
    "Sampler",
    "TRAP_EXIT_CODE",
    "WASI_NN_FUNCTIONS",
    "WASI_NN_MODULE",
    "WasiNnError",
    "backendInfo",
    "createWasiNnImports",
    "generate",
    "runGuest",
    "tokenizeChat",
  ]);
  for (
    const internal of [
      "PriorityQueue",
      "StopChecker",
      "detectLoop",
      "KEYS",
      "validateValue",
      "LAYER_ORDER",
      "Scheduler",
      "SessionStore",
      "parseConfig",
    ]
  ) {
    assert.ok(!(internal in root), `${internal} is exported by mod.ts`);
  }
});

Deno.test("./config exports the configuration API", () => {
  for (
    const name of [
      "parseConfig",
      "ConfigError",
      "KEYS",
      "mergeConfig",
      "LAYER_ORDER",
      "standardLayers",
      "resolveConfig",
      "explainConfig",
      "formatExplain",
      "checkConfig",
      "configJsonSchema",
    ]
  ) {
    assert.ok(name in config, `./config lacks ${name}`);
  }
  assert.equal(config.parseConfig({ "ctx-size": 64 }).values.ctx_size, 64);
});

Deno.test("every layer has a subpath export, in the doc --lint list", () => {
  assert.deepEqual(Object.keys(denoJson.exports).sort(), [
    ".",
    "./bindings",
    "./build",
    "./cli",
    "./config",
    "./gguf",
  ]);
  const check = denoJson.tasks.check;
  const command = typeof check === "string" ? check : check.command;
  const linted = command.match(/deno doc --lint ([^&]*)/)?.[1].trim()
    .split(/\s+/) ?? [];
  for (const [name, target] of Object.entries(denoJson.exports)) {
    const file = target.replace(/^\.\//, "");
    assert.ok(Deno.statSync(`${ROOT}/${file}`).isFile, `${name}: ${file}`);
    assert.ok(linted.includes(file), `${file} (${name}) is not doc-linted`);
  }
});

Deno.test("deno doc --lint is clean on every entry", async () => {
  const entries = Object.values(denoJson.exports).map((t) =>
    `${ROOT}/${t.replace(/^\.\//, "")}`
  );
  const r = await run(Deno.execPath(), ["doc", "--lint", ...entries], {
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, r.stderr);
});
