/**
 * `cli.ts demo`: the newcomer's first run. Builds what is missing (the
 * native library, the example guest, the demo model), then runs the
 * streamed-chat example guest so tokens appear as they are generated.
 * It is the only command that reaches the build scripts (`build.ts`,
 * `examples/build.ts`), and imports them only when it runs.
 *
 * @example
 * ```ts ignore
 * import { demoCommand } from "./demo.ts";
 * Deno.exit(await demoCommand(["--prompt", "Hello"]));
 * ```
 * @module
 */

import { isFile } from "../_internal/fs.ts";
import { parseArgs } from "node:util";
import { envVar, paths } from "../paths.ts";
import { EXIT_CODES } from "./exit_codes.ts";

const HELP = `Usage: deno run -A cli.ts demo [options]

Builds what is missing (libwasi_nn_backend.so, the example guest, a small
generated model), then runs the C streamed-chat example guest on it.

Options:
  --model PATH      a real GGUF model instead of the generated demo model
  --prompt TEXT     the user message (default: "Tell me a story.")
  --n-predict N     most tokens in the reply (default 64)
  --guest c|as      the C (default) or the AssemblyScript example guest
  -h, --help        this help`;

/**
 * Runs the demo; returns the exit code ({@linkcode EXIT_CODES}: usage for
 * bad options, failure when a build fails, else the guest's own).
 *
 * @example
 * ```ts ignore
 * import { demoCommand } from "./demo.ts";
 * Deno.exit(await demoCommand(["--n-predict", "32", "--guest", "as"]));
 * ```
 */
export async function demoCommand(args: string[]): Promise<number> {
  let o;
  try {
    o = parseArgs({
      args,
      options: {
        model: { type: "string" },
        prompt: { type: "string", default: "Tell me a story." },
        "n-predict": { type: "string", default: "64" },
        guest: { type: "string", default: "c" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${HELP}`);
    return EXIT_CODES.usage;
  }
  if (o.help) {
    console.log(HELP);
    return 0;
  }
  const n = Number(o["n-predict"]);
  if (!Number.isInteger(n) || n < 1) {
    console.error(
      `error: --n-predict must be a positive integer, got '${o["n-predict"]}'`,
    );
    return EXIT_CODES.usage;
  }
  if (o.guest !== "c" && o.guest !== "as") {
    console.error(`error: --guest must be c or as, got '${o.guest}'`);
    return EXIT_CODES.usage;
  }
  const say = (m: string) => console.error(`[demo] ${m}`);

  // 1. The native library.
  if (
    !envVar("WASI_NN_BACKEND_LIB") &&
    (!isFile(paths().library) || !isFile(paths().chatRender))
  ) {
    say("building libwasi_nn_backend.so (first time: 5-8 minutes on 2 cores)");
    const { build } = await import("../build.ts");
    try {
      await build({});
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      return EXIT_CODES.failure;
    }
  }
  // 2. The example guest.
  const { buildGuests } = await import("../examples/build.ts");
  const name = o.guest === "c" ? "chat_stream" : "as_chat_stream";
  let wasm: string;
  try {
    wasm = (await buildGuests({ only: [name], quiet: true }))[name];
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return EXIT_CODES.failure;
  }
  // 3. The model.
  let model = o.model;
  if (model === undefined) {
    const { ensureModel } = await import("../gguf/mod.ts");
    const m = await ensureModel("tiny");
    model = m.path;
    say(
      `using the generated demo model (random weights: expect gibberish); bring a real one with --model`,
    );
  }
  // 4. Run the guest.
  const { LlamaHost } = await import("../wasi_nn/host/host.ts");
  const { ModelRegistry } = await import("../wasi_nn/host/registry.ts");
  const { runGuest } = await import("../wasi_nn/abi/run_guest.ts");
  const registry = new ModelRegistry();
  registry.preload("default", model);
  const host = await LlamaHost.create({
    registry,
    log: (l, m) => l !== "debug" && l !== "info" && say(m),
  });
  say(`running ${wasm.split("/").pop()} default "${o.prompt}"`);
  const onSigint = () => host.cancelAll();
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    return await runGuest({
      wasm,
      args: ["default", o.prompt!],
      env: { WASI_NN_MAX_TOKENS: String(n) },
      host,
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    await host.shutdown();
  }
}
