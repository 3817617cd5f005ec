import {
  deepStrictEqual,
  strictEqual as assertEquals,
  throws,
} from "node:assert/strict";
import {
  ModelRegistry,
  parseNnPreload,
} from "../../../wasi_nn/host/registry.ts";
import { Errno, WasiNnError } from "../../../wasi_nn/errno.ts";

Deno.test("parseNnPreload: the WasmEdge form, case-insensitive, colons in the path", () => {
  deepStrictEqual(parseNnPreload("default:GGML:AUTO:llama.gguf"), {
    name: "default",
    encoding: "ggml",
    target: "auto",
    path: "llama.gguf",
  });
  deepStrictEqual(parseNnPreload("m:ggml:Gpu:C:\\models\\a:b.gguf"), {
    name: "m",
    encoding: "ggml",
    target: "gpu",
    path: "C:\\models\\a:b.gguf",
  });
  for (const target of ["cpu", "CPU", "tpu", "TPU", "auto"]) {
    assertEquals(
      parseNnPreload(`x:GGML:${target}:p`).target,
      target.toLowerCase(),
    );
  }
});

Deno.test("parseNnPreload: errors name the bad part", () => {
  const cases: [string, string][] = [
    ["default:GGML:AUTO", "NAME:ENCODING:TARGET:PATH"],
    ["default", "found 1 part"],
    [":GGML:AUTO:m.gguf", "empty NAME"],
    ["default:ONNX:AUTO:m.gguf", "ENCODING 'ONNX'"],
    ["default:GGML:NPU:m.gguf", "TARGET 'NPU'"],
    ["default:GGML:AUTO:", "empty PATH"],
  ];
  for (const [spec, part] of cases) {
    throws(() => parseNnPreload(spec), (err: unknown) => {
      assertEquals(err instanceof TypeError, true);
      const message = (err as Error).message;
      assertEquals(message.includes(part), true, `${spec}: ${message}`);
      assertEquals(message.includes(spec), true);
      return true;
    });
  }
});

function notFound(fn: () => unknown, ...parts: string[]) {
  throws(fn, (err: unknown) => {
    if (!(err instanceof WasiNnError)) return false;
    assertEquals(err.errno, Errno.NotFound);
    for (const part of parts) {
      assertEquals(
        err.message.includes(part),
        true,
        `"${err.message}" lacks "${part}"`,
      );
    }
    return true;
  });
}

/** A temp tree: allowed/{a.gguf, sub/b.gguf, link-out -> ../outside/secret.gguf, ...}. */
function tree() {
  const root = Deno.realPathSync(
    Deno.makeTempDirSync({ prefix: "registry_test_" }),
  );
  const allowed = `${root}/allowed`;
  const outside = `${root}/outside`;
  Deno.mkdirSync(`${allowed}/sub`, { recursive: true });
  Deno.mkdirSync(outside);
  Deno.mkdirSync(`${root}/allowed-sibling`);
  Deno.writeTextFileSync(`${allowed}/a.gguf`, "GGUF");
  Deno.writeTextFileSync(`${allowed}/sub/b.gguf`, "GGUF");
  Deno.writeTextFileSync(`${outside}/secret.gguf`, "GGUF");
  Deno.writeTextFileSync(`${root}/allowed-sibling/c.gguf`, "GGUF");
  Deno.symlinkSync(`${outside}/secret.gguf`, `${allowed}/link-out.gguf`);
  Deno.symlinkSync(outside, `${allowed}/dir-out`);
  Deno.symlinkSync(`${allowed}/sub/b.gguf`, `${allowed}/link-in.gguf`);
  Deno.symlinkSync(`${allowed}/missing.gguf`, `${allowed}/dangling.gguf`);
  Deno.symlinkSync(allowed, `${outside}/to-allowed`);
  return {
    root,
    allowed,
    outside,
    [Symbol.dispose]: () => Deno.removeSync(root, { recursive: true }),
  };
}

Deno.test("resolve: a preloaded name returns its path, even if the file is missing", () => {
  using t = tree();
  const registry = new ModelRegistry({
    preloads: [
      "default:GGML:AUTO:/no/such/model.gguf",
      `other:ggml:cpu:${t.outside}/secret.gguf`,
    ],
    allowDirs: [t.allowed],
  });
  assertEquals(registry.resolve("default"), "/no/such/model.gguf");
  // Preloaded names bypass the folder rules: the user named the file.
  assertEquals(registry.resolve("other"), `${t.outside}/secret.gguf`);
  deepStrictEqual(registry.names, ["default", "other"]);
  assertEquals(registry.get("other")?.target, "cpu");
  assertEquals(registry.get("nope"), undefined);
});

Deno.test("resolve: exact name match only (no case folding, no trimming)", () => {
  const registry = new ModelRegistry({
    preloads: ["default:GGML:AUTO:m.gguf"],
  });
  notFound(
    () => registry.resolve("Default"),
    "'Default'",
    "preloaded: 'default'",
  );
  notFound(() => registry.resolve("default "));
});

Deno.test("resolve: paths inside an allowed folder, symlinks resolved", () => {
  using t = tree();
  const registry = new ModelRegistry({ allowDirs: [t.allowed] });
  assertEquals(registry.resolve(`${t.allowed}/a.gguf`), `${t.allowed}/a.gguf`);
  assertEquals(
    registry.resolve(`${t.allowed}/sub/../a.gguf`),
    `${t.allowed}/a.gguf`,
  );
  assertEquals(
    registry.resolve(`${t.allowed}/link-in.gguf`),
    `${t.allowed}/sub/b.gguf`,
  );
  // A link from outside into the allowed folder resolves inside: fine.
  assertEquals(
    registry.resolve(`${t.outside}/to-allowed/a.gguf`),
    `${t.allowed}/a.gguf`,
  );
});

Deno.test("resolve: relative paths are relative to the CWD", () => {
  using t = tree();
  const registry = new ModelRegistry({ allowDirs: [t.allowed] });
  const cwd = Deno.cwd();
  try {
    Deno.chdir(t.allowed);
    assertEquals(registry.resolve("a.gguf"), `${t.allowed}/a.gguf`);
    assertEquals(registry.resolve("./sub/b.gguf"), `${t.allowed}/sub/b.gguf`);
    notFound(
      () => registry.resolve("../outside/secret.gguf"),
      "outside the allowed folders",
    );
  } finally {
    Deno.chdir(cwd);
  }
});

Deno.test("resolve: escapes are refused", () => {
  using t = tree();
  const registry = new ModelRegistry({ allowDirs: [t.allowed] });
  const escapes = [
    `${t.allowed}/link-out.gguf`, // file symlink to outside
    `${t.allowed}/dir-out/secret.gguf`, // directory symlink to outside
    `${t.allowed}/../outside/secret.gguf`, // .. trick
    `${t.allowed}/sub/../../outside/secret.gguf`,
    `${t.root}/allowed-sibling/c.gguf`, // shares the prefix "allowed" but is not inside
    `${t.outside}/secret.gguf`,
  ];
  for (const path of escapes) {
    notFound(
      () => registry.resolve(path),
      "outside the allowed folders",
      t.allowed,
    );
  }
});

Deno.test("resolve: missing files, directories and dangling links are NotFound", () => {
  using t = tree();
  const registry = new ModelRegistry({ allowDirs: [t.allowed] });
  notFound(() => registry.resolve(`${t.allowed}/nope.gguf`), "no such file");
  notFound(
    () => registry.resolve(`${t.allowed}/dangling.gguf`),
    "no such file",
  );
  notFound(() => registry.resolve(`${t.allowed}/sub`), "not a regular file");
  notFound(() => registry.resolve(t.allowed), "not a regular file");
  notFound(() => registry.resolve(""), "not a valid path");
  notFound(() => registry.resolve("a\0b"), "not a valid path");
});

Deno.test("resolve: with no allowed folders, paths are refused with a hint", () => {
  using t = tree();
  const registry = new ModelRegistry({
    preloads: ["default:GGML:AUTO:m.gguf"],
  });
  notFound(
    () => registry.resolve(`${t.allowed}/a.gguf`),
    "not a preloaded name",
    "preloaded: 'default'",
    "--nn-allow-dir",
  );
  notFound(
    () => new ModelRegistry().resolve("default"),
    "no models are preloaded",
  );
});

Deno.test("allowDir: takes the real path, refuses missing folders and files", () => {
  using t = tree();
  const registry = new ModelRegistry();
  assertEquals(registry.allowDir(`${t.outside}/to-allowed`), t.allowed);
  assertEquals(registry.allowDir(`${t.allowed}/sub/..`), t.allowed);
  deepStrictEqual(registry.allowedDirs, [t.allowed]); // no duplicates
  throws(
    () => registry.allowDir(`${t.root}/nope`),
    /cannot allow model folder .*no such file/,
  );
  throws(() => registry.allowDir(`${t.allowed}/a.gguf`), /is not a directory/);
  // Allowed via a symlinked folder, a file inside is accepted.
  assertEquals(registry.resolve(`${t.allowed}/a.gguf`), `${t.allowed}/a.gguf`);
});

Deno.test("allowDir('/') allows every file", () => {
  using t = tree();
  const registry = new ModelRegistry({ allowDirs: ["/"] });
  assertEquals(
    registry.resolve(`${t.outside}/secret.gguf`),
    `${t.outside}/secret.gguf`,
  );
});

Deno.test("preload: a name preloaded twice is an error", () => {
  const registry = new ModelRegistry({
    preloads: ["default:GGML:AUTO:a.gguf"],
  });
  throws(() => registry.preload("default:GGML:CPU:b.gguf"), /preloaded twice/);
  const entry = registry.preload({
    name: "x",
    encoding: "ggml",
    target: "gpu",
    path: "x.gguf",
  });
  assertEquals(registry.resolve("x"), "x.gguf");
  entry.path = "changed.gguf"; // the registry keeps its own copy
  assertEquals(registry.resolve("x"), "x.gguf");
});

Deno.test("preload(name, path, target?) adds an entry without parsing", () => {
  const registry = new ModelRegistry();
  registry.preload("default", "C:/models/a.gguf");
  registry.preload("g", "g.gguf", "gpu");
  deepStrictEqual(registry.get("default"), {
    name: "default",
    encoding: "ggml",
    target: "auto",
    path: "C:/models/a.gguf",
  });
  assertEquals(registry.get("g")?.target, "gpu");
  throws(() => registry.preload("", "x.gguf"), /non-empty/);
  throws(() => registry.preload("y", ""), /empty path/);
  throws(() => registry.preload("default", "b.gguf"), /preloaded twice/);
});
