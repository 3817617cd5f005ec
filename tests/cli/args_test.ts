import {
  deepStrictEqual,
  strictEqual as assertEquals,
  throws,
} from "node:assert/strict";
import {
  CliUsageError,
  helpText,
  parseCliArgs,
  parseHostConfig,
  type RunArgs,
} from "../../cli/args.ts";
import { EXIT_CODES } from "../../cli/exit_codes.ts";
import { main } from "../../cli.ts";

function run(args: string[]): RunArgs {
  const cmd = parseCliArgs(args);
  if (cmd.command !== "run") {
    throw new Error(`expected run, got ${cmd.command}`);
  }
  return cmd;
}

function usageError(args: string[], ...parts: string[]) {
  throws(() => parseCliArgs(args), (err: unknown) => {
    assertEquals(err instanceof CliUsageError, true, String(err));
    for (const part of parts) {
      assertEquals(
        (err as Error).message.includes(part),
        true,
        `${(err as Error).message} lacks ${part}`,
      );
    }
    return true;
  });
}

Deno.test("a WasmEdge command line parses unchanged", () => {
  deepStrictEqual(
    run([
      "--dir",
      ".:.",
      "--env",
      "n_predict=64",
      "--nn-preload",
      "default:GGML:AUTO:llama-2-7b-chat.Q5_K_M.gguf",
      "wasmedge-ggml-llama.wasm",
      "default",
      "Once upon a time",
    ]),
    {
      command: "run",
      wasm: "wasmedge-ggml-llama.wasm",
      guestArgs: ["default", "Once upon a time"],
      preloads: [{
        name: "default",
        encoding: "ggml",
        target: "auto",
        path: "llama-2-7b-chat.Q5_K_M.gguf",
      }],
      preopens: { ".": "." },
      env: { n_predict: "64" },
      allowDirs: [],
    },
  );
});

Deno.test("options end at the .wasm: the rest goes to the guest untouched", () => {
  const cmd = run(["g.wasm", "--help", "--dir", "x", "-v", "--", "generate"]);
  assertEquals(cmd.wasm, "g.wasm");
  deepStrictEqual(cmd.guestArgs, [
    "--help",
    "--dir",
    "x",
    "-v",
    "--",
    "generate",
  ]);
  deepStrictEqual(run(["g.wasm"]).guestArgs, []);
  // `--` ends the options, so a file starting with '-' can be run.
  const dashed = run(["--log-level", "info", "--", "-odd.wasm", "a"]);
  assertEquals(dashed.wasm, "-odd.wasm");
  deepStrictEqual(dashed.guestArgs, ["a"]);
  assertEquals(dashed.logLevel, "info");
  assertEquals(run(["-", "a"]).wasm, "-"); // a lone '-' is a positional
});

Deno.test("--opt=value and --opt value; repeatable options accumulate", () => {
  const cmd = run([
    "--nn-preload=a:ggml:cpu:/m/a.gguf",
    "--nn-preload",
    "b:GGML:GPU:C:/m/b.gguf",
    "--dir=/data",
    "--dir",
    "/guest:/host:with:colons",
    "--env=A=1=2",
    "--env",
    "EMPTY=",
    "--env",
    "A=3",
    "--nn-allow-dir=/models",
    "--nn-allow-dir",
    "./more",
    '--config={"temp":0}',
    "--log-level=debug",
    "x.wasm",
  ]);
  deepStrictEqual(cmd.preloads.map((p) => [p.name, p.target, p.path]), [
    ["a", "cpu", "/m/a.gguf"],
    ["b", "gpu", "C:/m/b.gguf"],
  ]);
  deepStrictEqual(cmd.preopens, {
    "/data": "/data",
    "/guest": "/host:with:colons",
  });
  deepStrictEqual(cmd.env, { A: "3", EMPTY: "" }); // the last A wins
  deepStrictEqual(cmd.allowDirs, ["/models", "./more"]);
  assertEquals(cmd.config, '{"temp":0}');
  assertEquals(cmd.logLevel, "debug");
});

Deno.test("--dir follows WasmEdge's GUEST:HOST order", () => {
  deepStrictEqual(run(["--dir", "/sandbox:/home/me/work", "g.wasm"]).preopens, {
    "/sandbox": "/home/me/work",
  });
  deepStrictEqual(run(["--dir", ".:.", "g.wasm"]).preopens, { ".": "." });
});

Deno.test("help and version win over everything before the guest", () => {
  deepStrictEqual(parseCliArgs(["--help"]), { command: "help" });
  deepStrictEqual(parseCliArgs(["-h", "g.wasm"]), { command: "help" });
  deepStrictEqual(parseCliArgs(["--dir", ".", "--version"]), {
    command: "version",
  });
  deepStrictEqual(parseCliArgs(["-v"]), { command: "version" });
  deepStrictEqual(parseCliArgs(["--version", "--help"]), { command: "help" });
});

Deno.test("generate is dispatched with every other argument", () => {
  deepStrictEqual(
    parseCliArgs(["generate", "--prompt", "Hi", "--n-predict", "8"]),
    {
      command: "generate",
      args: ["--prompt", "Hi", "--n-predict", "8"],
    },
  );
  deepStrictEqual(parseCliArgs(["--log-level", "info", "generate", "--help"]), {
    command: "generate",
    args: ["--log-level", "info", "--help"],
  });
  assertEquals(run(["./generate"]).wasm, "./generate");
  assertEquals(run(["g.wasm", "generate"]).guestArgs[0], "generate");
});

Deno.test("usage errors say what is wrong", () => {
  usageError([], "missing the guest .wasm");
  usageError(["--dir", "."], "missing the guest .wasm");
  usageError(["--bogus", "g.wasm"], "unknown option '--bogus'");
  usageError(
    ["--reactor=1", "g.wasm"],
    "unknown option '--reactor'",
    "--reactor=1",
  );
  usageError(["-x", "g.wasm"], "unknown option '-x'");
  usageError(["--nn-preload"], "--nn-preload needs a value");
  usageError(
    ["--nn-preload", "default:GGML:AUTO", "g.wasm"],
    "NAME:ENCODING:TARGET:PATH",
  );
  usageError(
    ["--nn-preload", "default:ONNX:AUTO:m", "g.wasm"],
    "ENCODING 'ONNX'",
  );
  usageError(["--nn-preload", "default:GGML:NPU:m", "g.wasm"], "TARGET 'NPU'");
  usageError(["--dir", ":/host", "g.wasm"], "GUEST_PATH:HOST_PATH");
  usageError(["--dir", "/guest:", "g.wasm"], "GUEST_PATH:HOST_PATH");
  usageError(["--dir=", "g.wasm"], "GUEST_PATH:HOST_PATH");
  usageError(["--env", "NOVALUE", "g.wasm"], "KEY=VALUE");
  usageError(["--env", "=x", "g.wasm"], "KEY=VALUE");
  usageError(["--log-level", "loud", "g.wasm"], "debug, info, warn, error");
  usageError(["--config", " ", "g.wasm"], "--config: empty");
  usageError(["--nn-allow-dir=", "g.wasm"], "--nn-allow-dir: empty");
});

Deno.test("parseHostConfig: inline JSON or a file holding an object", () => {
  deepStrictEqual(parseHostConfig(' {"n-predict": 64, "temp": 0}'), {
    "n-predict": 64,
    temp: 0,
  });
  const files: Record<string, string> = {
    "host.json": '{"ctx-size": 2048}',
    "list.json": "[1]",
  };
  const read = (path: string) => {
    if (!(path in files)) {
      throw new Deno.errors.NotFound(`no such file: ${path}`);
    }
    return files[path];
  };
  deepStrictEqual(parseHostConfig("host.json", read), { "ctx-size": 2048 });
  const fails: [string, string][] = [
    ["missing.json", "cannot be read"],
    ["list.json", "expected a JSON object"],
    ["{bad", "invalid JSON"],
    ["{}x", "invalid JSON"],
  ];
  for (const [value, part] of fails) {
    throws(() => parseHostConfig(value, read), (err: unknown) => {
      assertEquals(err instanceof CliUsageError, true);
      assertEquals(
        (err as Error).message.includes(part),
        true,
        (err as Error).message,
      );
      return true;
    });
  }
});

Deno.test("help lists every option and exit code", () => {
  const help = helpText();
  for (
    const option of [
      "--nn-preload",
      "--dir GUEST:HOST",
      "--env",
      "--nn-allow-dir",
      "--config",
      "--log-level",
      "--help",
      "--version",
      "generate",
    ]
  ) {
    assertEquals(help.includes(option), true, option);
  }
  for (const code of Object.values(EXIT_CODES)) {
    assertEquals(
      new RegExp(`\\n  ${code} `).test(help),
      true,
      `exit code ${code}`,
    );
  }
});

Deno.test("--guest-max-* options: quotas per guest instance, as the host keys of the same name", () => {
  deepStrictEqual(
    run([
      "--guest-max-tokens",
      "100",
      "--guest-max-compute-ms=2000",
      "--guest-max-contexts",
      "2",
      "--guest-max-kv-tokens",
      "4096",
      "--guest-max-load-mb",
      "64",
      "g.wasm",
    ]).guestLimits,
    {
      guest_max_tokens: 100,
      guest_max_compute_ms: 2000,
      guest_max_contexts: 2,
      guest_max_kv_tokens: 4096,
      guest_max_load_mb: 64,
    },
  );
  assertEquals(run(["g.wasm"]).guestLimits, undefined);
  for (const bad of ["0", "-1", "1.5", "x", "", "2147483648"]) {
    usageError(
      [`--guest-max-tokens=${bad}`, "g.wasm"],
      `--guest-max-tokens '${bad}': expected a whole number`,
      "guest_max_tokens",
    );
  }
  const help = helpText();
  for (
    const option of [
      "--guest-max-tokens N",
      "--guest-max-compute-ms MS",
      "--guest-max-contexts N",
      "--guest-max-kv-tokens N",
      "--guest-max-load-mb MB",
      "TooLarge (7)",
    ]
  ) {
    assertEquals(help.includes(option), true, option);
  }
});

Deno.test("--rpc: the host key rpc (llama.cpp's --rpc list), each entry checked", () => {
  deepStrictEqual(
    run(["--rpc", "127.0.0.1:50052, 10.0.0.2:50052", "g.wasm"]).rpc,
    ["127.0.0.1:50052", "10.0.0.2:50052"],
  );
  deepStrictEqual(run(["--rpc=node1:1", "g.wasm"]).rpc, ["node1:1"]);
  assertEquals(run(["g.wasm"]).rpc, undefined);
  usageError(
    ["--rpc", "127.0.0.1:50052,nohost", "g.wasm"],
    'entry 2 "nohost" is not host:port',
    "the host key rpc",
  );
  usageError(["--rpc", "a:1,a:1", "g.wasm"], 'entry 2 "a:1" is listed twice');
  assertEquals(helpText().includes("--rpc HOST:PORT,..."), true);
});

// main() paths that end before the llama.cpp host is created.

async function quietMain(
  args: string[],
): Promise<{ code: number; stderr: string }> {
  const original = console.error;
  let stderr = "";
  console.error = (...parts: unknown[]) => {
    stderr += parts.join(" ") + "\n";
  };
  try {
    return { code: await main(args), stderr };
  } finally {
    console.error = original;
  }
}

Deno.test("main: usage errors exit 2, unreadable guests 66", async () => {
  let r = await quietMain(["--bogus"]);
  assertEquals(r.code, EXIT_CODES.usage);
  assertEquals(r.stderr.startsWith("error: unknown option '--bogus'"), true);
  r = await quietMain(["--nn-allow-dir", "/no/such/folder", "g.wasm"]);
  assertEquals(r.code, EXIT_CODES.usage);
  assertEquals(
    r.stderr.includes("cannot allow model folder '/no/such/folder'"),
    true,
  );
  r = await quietMain(["--config", "{oops", "g.wasm"]);
  assertEquals(r.code, EXIT_CODES.usage);
  r = await quietMain([
    "--nn-preload",
    "a:GGML:CPU:x",
    "--nn-preload",
    "a:GGML:CPU:y",
    "g.wasm",
  ]);
  assertEquals(r.code, EXIT_CODES.usage);
  assertEquals(r.stderr.includes("preloaded twice"), true);
  r = await quietMain(["/no/such/guest.wasm"]);
  assertEquals(r.code, EXIT_CODES.noInput);
  assertEquals(
    r.stderr.includes("cannot load guest '/no/such/guest.wasm'"),
    true,
  );
  const notWasm = Deno.makeTempFileSync({ suffix: ".wasm" });
  try {
    Deno.writeTextFileSync(notWasm, "not wasm");
    r = await quietMain([notWasm]);
    assertEquals(r.code, EXIT_CODES.noInput);
  } finally {
    Deno.removeSync(notWasm);
  }
});
