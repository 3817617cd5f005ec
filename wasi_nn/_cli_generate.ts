/**
 * `cli.ts generate`: one completion straight through the bindings, no guest.
 * Prints only the generated text on stdout (streamed); logs go to stderr.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 bad arguments or config,
 * 3 the model could not be loaded.
 * @module
 */

import { parseArgs } from "node:util";
import { Context, LlamaError, Model, Sampler } from "../bindings/mod.ts";
import { ensureModel } from "../gguf/mod.ts";
import { type ConfigValues, mergeConfig, parseConfig } from "./config.ts";
import { WasiNnError } from "./errno.ts";
import { generate } from "./generate.ts";
import { samplerParams } from "./_sampling.ts";

const HELP = `Usage: deno run -A cli.ts generate [options]

Generates text for a prompt with llama.cpp, printing only the text on stdout.

Options:
  --model PATH        GGUF model (default: the generated demo model)
  --prompt TEXT       the prompt (required)
  --n-predict N       tokens to generate (default 128; -1 = until the context is full)
  --config JSON|FILE  any config keys, e.g. '{"temp":0,"ctx-size":2048}'
  --log-level LEVEL   debug, info, warn (default) or error
  -h, --help          this help

Exit codes: 0 ok, 1 runtime failure, 2 bad arguments or config, 3 model load failure.`;

function readConfig(arg: string | undefined): string | undefined {
  if (arg === undefined) return undefined;
  if (arg.trim().startsWith("{")) return arg;
  try {
    return Deno.readTextFileSync(arg);
  } catch (e) {
    throw new WasiNnError(1, `--config: cannot read ${arg}: ${(e as Error).message}`);
  }
}

/** Runs the generate subcommand; returns the exit code. */
export async function generateCommand(args: string[]): Promise<number> {
  let opts;
  try {
    opts = parseArgs({
      args,
      options: {
        model: { type: "string" },
        prompt: { type: "string" },
        "n-predict": { type: "string" },
        config: { type: "string" },
        "log-level": { type: "string", default: "warn" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
    }).values;
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (opts.help) {
    console.log(HELP);
    return 0;
  }
  const level = opts["log-level"]!;
  const levels = ["debug", "info", "warn", "error"];
  if (!levels.includes(level)) {
    console.error(`error: --log-level must be one of ${levels.join(", ")}, got '${level}'`);
    return 2;
  }
  const info = (msg: string) => {
    if (level === "debug" || level === "info") console.error(msg);
  };
  if (opts.prompt === undefined) {
    console.error(`error: --prompt is required\n\n${HELP}`);
    return 2;
  }
  let cfg: ConfigValues;
  try {
    const parsed = parseConfig(readConfig(opts.config));
    for (const w of parsed.warnings) console.error(`warning: ${w}`);
    cfg = parsed.values;
    if (opts["n-predict"] !== undefined) {
      cfg = mergeConfig(cfg, parseConfig({ n_predict: Number(opts["n-predict"]) }).values);
    }
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 2;
  }
  let path = opts.model;
  if (path === undefined) {
    const m = await ensureModel("tiny");
    path = m.path;
    info(`using the generated demo model ${path} (random weights: the text is gibberish)`);
  }
  let model: Model;
  try {
    model = await Model.load(path, {
      nGpuLayers: cfg.n_gpu_layers as number | undefined,
      onProgress: Deno.stderr.isTerminal() && level !== "error"
        ? (f) => Deno.stderr.writeSync(new TextEncoder().encode(`\rloading ${(f * 100).toFixed(0)}%`))
        : undefined,
    });
    if (Deno.stderr.isTerminal() && level !== "error") Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 3;
  }
  try {
    const threads = (cfg.threads as number | undefined) ?? navigator.hardwareConcurrency;
    const ctx = await Context.create(model, {
      nCtx: (cfg.ctx_size as number | undefined) ?? 4096,
      nBatch: cfg.batch_size as number | undefined,
      nThreads: threads,
      nThreadsBatch: (cfg.threads_batch as number | undefined) ?? threads,
    });
    const sampler = Sampler.create(model, samplerParams(model, cfg, ctx.nCtx));
    const prompt = model.tokenize(opts.prompt, { addSpecial: true, parseSpecial: true });
    const ac = new AbortController();
    const onSigint = () => ac.abort();
    Deno.addSignalListener("SIGINT", onSigint);
    const stop = [
      ...(typeof cfg.reverse_prompt === "string" ? [cfg.reverse_prompt] : []),
      ...((cfg.stop as string[] | undefined) ?? []),
    ];
    try {
      const r = await generate(ctx, sampler, prompt, {
        nPredict: (cfg.n_predict as number | undefined) ?? 128,
        stop,
        ignoreEos: Boolean(cfg.ignore_eos),
        signal: ac.signal,
        onToken: (b) => Deno.stdout.writeSync(b),
      });
      if (Deno.stdout.isTerminal()) console.log();
      info(
        `${r.timings.promptTokens} prompt tokens in ${r.timings.promptMs.toFixed(1)} ms; ${r.tokens.length} tokens at ${
          r.timings.tokensPerSecond.toFixed(1)
        } t/s; stop: ${r.stopReason}`,
      );
    } finally {
      Deno.removeSignalListener("SIGINT", onSigint);
    }
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return e instanceof WasiNnError && e.errno === 1 ? 2 : e instanceof LlamaError ? 1 : 1;
  } finally {
    model.close();
  }
}
