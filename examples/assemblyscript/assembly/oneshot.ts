// @ts-nocheck: AssemblyScript (i32, process from the WASI shim), compiled by asc, not by tsc.
/**
 * One prompt in, one completion out (the AssemblyScript twin of
 * `examples/c/oneshot.c`).
 *
 *     as_oneshot.wasm MODEL PROMPT
 *
 * MODEL is the name the host preloaded (usually "default"). The config is
 * the environment variable WASI_NN_CONFIG (a JSON object), by default
 * {"n-predict":32,"temp":0}. The answer goes to stdout, the metadata to
 * stderr. Exit status: 0 on success, 1 on an error, 2 on bad usage.
 */
import {
  Context,
  Errno,
  errnoName,
  Graph,
  lastErrno,
  OUTPUT_METADATA,
  OUTPUT_TEXT,
} from "./wasi_nn.ts";

const DEFAULT_CONFIG = '{"n-predict":32,"temp":0}';

function fail(call: string, errno: i32): i32 {
  process.stderr.write(
    "error: " + call + " failed: errno " + errno.toString() + " (" +
      errnoName(errno) + ")\n",
  );
  if (errno == Errno.NotFound) {
    process.stderr.write("hint: no model was preloaded under that name\n");
  } else if (errno == Errno.InvalidEncoding) {
    process.stderr.write("hint: WASI_NN_CONFIG is not valid JSON\n");
  } else if (errno == Errno.ContextFull) {
    process.stderr.write('hint: raise "ctx-size" or lower "n-predict"\n');
  }
  return 1;
}

/** Prints the metadata JSON (output 1) to stderr. */
function printMetadata(ctx: Context, when: string): bool {
  const meta = ctx.getText(OUTPUT_METADATA);
  if (meta == null) return false;
  process.stderr.write("[metadata " + when + "] " + meta + "\n");
  return true;
}

function main(): i32 {
  const argv = process.argv;
  if (argv.length < 3) {
    process.stderr.write("usage: as_oneshot.wasm MODEL PROMPT\n");
    return 2;
  }
  const model = argv[1];
  const prompt = argv[2];
  let config = DEFAULT_CONFIG;
  if (process.env.has("WASI_NN_CONFIG")) {
    const fromEnv = process.env.get("WASI_NN_CONFIG");
    if (fromEnv.length > 0) config = fromEnv;
  }

  // 1. Load the model by name, with the config.
  const graph = Graph.load(model, config);
  if (graph == null) return fail("load_by_name_with_config", lastErrno);

  // 2. A context holds the prompt, the sampler and the output.
  const ctx = Context.create(graph);
  if (ctx == null) return fail("init_execution_context", lastErrno);

  // 3. The prompt is input 0.
  const errno = ctx.setPrompt(prompt);
  if (errno != Errno.Success) return fail("set_input", errno);

  // 4. The metadata is readable before compute (input_tokens is known).
  if (!printMetadata(ctx, "before compute")) {
    return fail("get_output", lastErrno);
  }

  // 5. Generate. ContextFull keeps what was generated so far.
  const computeErrno = ctx.compute();
  if (computeErrno != Errno.Success && computeErrno != Errno.ContextFull) {
    return fail("compute", computeErrno);
  }

  // 6. Output 0 is the text, written to stdout as the raw bytes.
  const text = ctx.getOutput(OUTPUT_TEXT);
  if (text == null) return fail("get_output", lastErrno);
  process.stdout.write<ArrayBuffer>(text); // raw bytes, not a string
  process.stdout.write("\n");

  // 7. After compute, output_tokens says how many tokens were generated.
  if (!printMetadata(ctx, "after compute")) {
    return fail("get_output", lastErrno);
  }
  if (computeErrno != Errno.Success) return fail("compute", computeErrno);
  return 0;
}

process.exit(main());
