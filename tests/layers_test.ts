// The layers import one way (README, "Architecture"): cli -> guest ABI ->
// host -> config -> engine -> bindings -> gguf -> shared helpers. These tests
// read every runtime module's imports and fail on one that points up, on the
// ABI reaching into the host past its small interface, on runtime code
// importing the build scripts, and on an npm package loaded outside its layer.
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { paths } from "../paths.ts";

const ROOT = paths().root;

/** The layer of a repository file, lowest first; undefined: not runtime code. */
function layer(file: string): number | undefined {
  const ranks: [RegExp, number][] = [
    [/^(paths\.ts|_internal\/)/, 0],
    [/^gguf\//, 1],
    [/^bindings\//, 2],
    [/^wasi_nn\/(errno|log|_log_escape)\.ts$/, 3],
    [/^wasi_nn\/engine\//, 4],
    [/^wasi_nn\/config\//, 5],
    [/^wasi_nn\/host\//, 6],
    [/^wasi_nn\/abi\//, 7],
    [/^(mod\.ts|wasi_nn\/mod\.ts)$/, 8],
    [/^(cli\.ts|cli\/)/, 9],
  ];
  return ranks.find(([re]) => re.test(file))?.[1];
}

const LAYER_NAMES = [
  "shared helpers",
  "gguf",
  "bindings",
  "wasi_nn shared leaves",
  "engine",
  "config",
  "host",
  "guest ABI",
  "public entry",
  "cli",
];

/** Runtime modules: every .ts file that has a layer. */
async function runtimeFiles(): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string) {
    for await (const e of Deno.readDir(join(ROOT, dir))) {
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory) {
        if (!/^(\.|build$|node_modules$|tests$|bench$|examples$)/.test(rel)) {
          await walk(rel);
        }
      } else if (rel.endsWith(".ts") && layer(rel) !== undefined) {
        out.push(rel);
      }
    }
  }
  await walk("");
  return out.sort();
}

/** The specifiers a module imports (static and dynamic), outside comments. */
function importsOf(source: string): string[] {
  const code = source
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  const specs: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)"([^"]+)"/gm;
  for (const m of code.matchAll(re)) specs.push(m[1]);
  return specs;
}

function target(file: string, spec: string): string {
  return relative(ROOT, resolve(join(ROOT, dirname(file)), spec));
}

const files = await runtimeFiles();
const sources = new Map(
  await Promise.all(
    files.map(async (f) =>
      [f, await Deno.readTextFile(join(ROOT, f))] as const
    ),
  ),
);

Deno.test("layers: every runtime module imports its own layer or lower ones", () => {
  assert(files.length > 50, `found only ${files.length} runtime modules`);
  const up: string[] = [];
  for (const [file, src] of sources) {
    const mine = layer(file)!;
    for (const spec of importsOf(src)) {
      if (!spec.startsWith(".")) continue;
      const to = target(file, spec);
      const theirs = layer(to);
      if (theirs !== undefined && theirs > mine) {
        up.push(
          `${file} (${LAYER_NAMES[mine]}) imports ${to} (${
            LAYER_NAMES[theirs]
          })`,
        );
      }
    }
  }
  assert.deepEqual(up, []);
});

Deno.test("layers: the guest ABI knows the host only through host/api.ts (the runner makes a host)", () => {
  const reach: string[] = [];
  for (const [file, src] of sources) {
    if (!file.startsWith("wasi_nn/abi/") || file.endsWith("run_guest.ts")) {
      continue;
    }
    for (const spec of importsOf(src)) {
      const to = spec.startsWith(".") ? target(file, spec) : spec;
      if (/^wasi_nn\/(host|config|engine)\//.test(to)) {
        if (to !== "wasi_nn/host/api.ts") reach.push(`${file} -> ${to}`);
      }
    }
  }
  assert.deepEqual(reach, []);
});

Deno.test("layers: runtime code never imports the build scripts or the examples", () => {
  const bad: string[] = [];
  for (const [file, src] of sources) {
    if (file.startsWith("cli/")) continue; // demo builds what it runs
    for (const spec of importsOf(src)) {
      if (!spec.startsWith(".")) continue;
      const to = target(file, spec);
      if (/^(build\.ts|_build\/|examples\/)/.test(to)) {
        bad.push(`${file} -> ${to}`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

Deno.test("layers: each npm package loads only in its layer (zod in config, LogTape and cli-progress in cli)", () => {
  const home: Record<string, RegExp> = {
    "zod": /^wasi_nn\/config\//,
    "@logtape/logtape": /^cli\//,
    "cli-progress": /^cli\//,
  };
  const bad: string[] = [];
  for (const [file, src] of sources) {
    for (const spec of importsOf(src)) {
      if (spec.startsWith(".") || spec.startsWith("node:")) continue;
      const where = home[spec];
      if (!where || !where.test(file)) bad.push(`${file} -> ${spec}`);
    }
  }
  assert.deepEqual(bad, []);
});

Deno.test("layers: the import scanner sees static, type-only and dynamic imports", () => {
  const src = [
    '/** @example import { x } from "./nope.ts"; */',
    'import { a } from "./a.ts";',
    'import type { B } from "../b.ts";',
    'export { c } from "./c.ts";',
    'const d = await import("./d.ts");',
    '// import { e } from "./e.ts";',
    'import "./f.ts";',
  ].join("\n");
  assert.deepEqual(importsOf(src), [
    "./a.ts",
    "../b.ts",
    "./c.ts",
    "./d.ts",
    "./f.ts",
  ]);
  assert.deepEqual(layer("wasi_nn/engine/scheduler.ts"), 4);
  assert.deepEqual(layer("tests/layers_test.ts"), undefined);
});
