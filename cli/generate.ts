/**
 * `cli.ts generate`: one completion straight through the bindings, no guest.
 * Prints only the generated text on stdout (streamed), or one JSON object
 * with `--json`; warnings and logs go to stderr.
 *
 * The config is resolved in layers (llama.cpp's defaults < the model's
 * `general.sampling.*` < this command's defaults < `--config` < `--n-predict`),
 * validated key by key and across keys; `--explain-config` prints where each
 * value came from.
 *
 * Exit codes ({@linkcode EXIT_CODES}): 0 success, 1 runtime failure, 2 bad
 * arguments or config, 3 the model could not be loaded.
 * @module
 */

import { parseArgs } from "node:util";
import {
  Context,
  LlamaError,
  Model,
  Sampler,
  Status,
} from "../bindings/mod.ts";
import { ensureModel } from "../gguf/mod.ts";
import {
  type ChatMessage,
  parseMessages,
  tokenizeChat,
} from "../wasi_nn/engine/chat.ts";
import {
  ConfigError,
  parseConfig,
  validateValue,
} from "../wasi_nn/config/parse.ts";
import { checkConfig } from "../wasi_nn/config/check.ts";
import {
  type ConfigLayer,
  defaultConfig,
  explainConfig,
  formatExplain,
  modelConfig,
  resolveConfig,
} from "../wasi_nn/config/layers.ts";
import { Errno, WasiNnError } from "../wasi_nn/errno.ts";
import { generate } from "../wasi_nn/engine/generate.ts";
import {
  chatOptions,
  contextOptions,
  modelOptions,
  samplerParams,
  taskOptions,
} from "../wasi_nn/config/options.ts";
import { escapeLogText, LOG_LEVELS } from "../wasi_nn/log.ts";
import { checkModelFile } from "../wasi_nn/host/_model_source.ts";
import { EXIT_CODES } from "./exit_codes.ts";
import { openLogFile } from "./log_file.ts";

const c = EXIT_CODES;

const HELP = `Usage: deno run -A cli.ts generate [options]

Generates text for a prompt with llama.cpp, printing only the text on stdout.

Options:
  --model PATH          GGUF model (default: the generated demo model)
  --prompt TEXT         the prompt (special tokens in it are parsed)
  --chat                send --prompt as a user message through the model's chat template
  --system TEXT         a system message (implies --chat)
  --messages JSON|FILE  an OpenAI-style messages array, rendered with the chat template
  --n-predict N         tokens to generate (default 128; -1 = until the context is full)
  --config JSON|FILE    config keys in any style, e.g. '{"temp":0,"ctx-size":2048}'
  --strict              unknown config keys are errors
  --explain-config      print each resolved config value and its layer to stderr
  --json                print {text, tokens, stop_reason, probs, timings} as JSON instead of the text
  --log-level LEVEL     debug, info, warn (default) or error
  -h, --help            this help

Config layers, lowest first: llama.cpp's defaults, the model's general.sampling.*
metadata, this command's defaults (ctx_size 4096 or the model's training context if
smaller, n_predict 128), --config, --n-predict.

Exit codes: 0 ok, ${c.failure} runtime failure, ${c.usage} bad arguments or config, ${c.modelLoad} model load failure.`;

function readJsonArg(
  name: string,
  arg: string | undefined,
): string | undefined {
  if (arg === undefined) return undefined;
  const t = arg.trim();
  if (t.startsWith("{") || t.startsWith("[")) return arg;
  try {
    return Deno.readTextFileSync(arg);
  } catch (e) {
    throw new WasiNnError(
      Errno.InvalidArgument,
      `${name}: cannot read ${arg}: ${(e as Error).message}`,
    );
  }
}

/**
 * Runs the generate subcommand; returns the exit code.
 *
 * @example
 * ```ts ignore
 * import { generateCommand } from "./generate.ts";
 * Deno.exit(await generateCommand(["--prompt", "Hello", "--config", '{"temperature":0}']));
 * ```
 */
export async function generateCommand(args: string[]): Promise<number> {
  let opts;
  try {
    opts = parseArgs({
      args,
      options: {
        model: { type: "string" },
        prompt: { type: "string" },
        chat: { type: "boolean" },
        system: { type: "string" },
        messages: { type: "string" },
        "n-predict": { type: "string" },
        config: { type: "string" },
        strict: { type: "boolean" },
        "explain-config": { type: "boolean" },
        json: { type: "boolean" },
        "log-level": { type: "string", default: "warn" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
    }).values;
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${HELP}`);
    return c.usage;
  }
  if (opts.help) {
    console.log(HELP);
    return 0;
  }
  const level = opts["log-level"]!;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    console.error(
      `error: --log-level must be one of ${
        LOG_LEVELS.join(", ")
      }, got '${level}'`,
    );
    return c.usage;
  }
  // Diagnostics: one line each (control characters escaped) on stderr, and
  // appended to the config's log_file when it names one.
  using logFile: { file?: Deno.FsFile } & Disposable = {
    [Symbol.dispose]() {
      this.file?.close();
    },
  };
  const say = (msg: string) => {
    const line = escapeLogText(msg);
    console.error(line);
    logFile.file?.writeSync(new TextEncoder().encode(`${line}\n`));
  };
  const info = (msg: string) => {
    if (level === "debug" || level === "info") say(msg);
  };
  const warn = (msg: string) => {
    if (level !== "error") say(`warning: ${msg}`);
  };
  const explainOnly = opts["explain-config"] && opts.prompt === undefined &&
    opts.messages === undefined;
  if (
    opts.prompt === undefined && opts.messages === undefined && !explainOnly
  ) {
    console.error(`error: --prompt or --messages is required\n\n${HELP}`);
    return c.usage;
  }

  // 1. The command line's own config layers.
  const layers: ConfigLayer[] = [];
  let messages: ChatMessage[] | undefined;
  try {
    const parsed = parseConfig(readJsonArg("--config", opts.config), {
      strict: opts.strict,
    });
    if (typeof parsed.values.log_file === "string") {
      logFile.file = openLogFile(parsed.values.log_file);
    }
    for (const w of parsed.warnings) warn(w);
    for (const n of parsed.notes) info(`note: ${n}`);
    layers.push({ name: "cli-defaults", values: { n_predict: 128 } });
    layers.push({ name: "config", values: parsed.values });
    if (opts["n-predict"] !== undefined) {
      const raw = opts["n-predict"];
      const n = /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
      layers.push({
        name: "--n-predict",
        values: { n_predict: validateValue("n_predict", n, [], "--n-predict") },
      });
    }
    if (opts.messages !== undefined) {
      messages = parseMessages(readJsonArg("--messages", opts.messages));
    } else if (opts.chat || opts.system !== undefined) {
      messages = [
        ...(opts.system !== undefined
          ? [{ role: "system", content: opts.system }]
          : []),
        ...(opts.prompt !== undefined
          ? [{ role: "user", content: opts.prompt }]
          : []),
      ];
    }
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return c.usage;
  }

  // 2. The model, its metadata layer, and the checks that need it.
  let path = opts.model;
  if (path === undefined) {
    const m = await ensureModel("tiny");
    path = m.path;
    info(
      `using the generated demo model ${path} (random weights: the text is gibberish)`,
    );
  }
  const early = resolveConfig(layers);
  let model: Model;
  try {
    await checkModelFile(path); // a malformed GGUF is refused, not aborted on
    model = await Model.load(path, {
      ...modelOptions(early),
      onProgress: Deno.stderr.isTerminal() && level !== "error"
        ? (f) =>
          Deno.stderr.writeSync(
            new TextEncoder().encode(`\rloading ${(f * 100).toFixed(0)}%`),
          )
        : undefined,
    });
    if (Deno.stderr.isTerminal() && level !== "error") {
      Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
    }
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return c.modelLoad;
  }
  try {
    let cfg;
    try {
      const fromModel = modelConfig(model);
      for (const w of fromModel.warnings) warn(w);
      layers.unshift({ name: "default", values: defaultConfig() }, {
        name: "model",
        values: fromModel.values,
      });
      // this command's context: 4096 tokens, or the model's training context if smaller
      layers[2].values!.ctx_size = Math.min(4096, model.nCtxTrain || 4096);
      const checked = checkConfig(resolveConfig(layers), {
        nCtxTrain: model.nCtxTrain,
        nVocab: model.nVocab,
        cpus: navigator.hardwareConcurrency,
      });
      for (const w of checked.warnings) warn(w);
      cfg = checked.values;
      if (opts["explain-config"]) {
        console.error(formatExplain(explainConfig(layers)));
      }
      if (explainOnly) return 0;
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      return c.usage;
    }
    const ctx = await Context.create(model, contextOptions(cfg));
    let sampler: Sampler;
    let prompt: Int32Array<ArrayBuffer>;
    try {
      sampler = Sampler.create(model, samplerParams(model, cfg, ctx.nCtx));
      if (messages) {
        const chat = tokenizeChat(model, messages, chatOptions(cfg));
        for (const w of chat.warnings) warn(w);
        info(
          `chat prompt (${chat.template} template): ${
            JSON.stringify(chat.text)
          }`,
        );
        prompt = chat.tokens;
      } else {
        prompt = model.tokenize(opts.prompt!, {
          addSpecial: true,
          parseSpecial: true,
        });
      }
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      return e instanceof ConfigError ||
          (e instanceof LlamaError && e.code === Status.Grammar)
        ? c.usage
        : c.failure;
    }
    const ac = new AbortController();
    const onSigint = () => ac.abort();
    Deno.addSignalListener("SIGINT", onSigint);
    const task = taskOptions(cfg);
    const out = new TextEncoder();
    try {
      const r = await generate(ctx, sampler, prompt, {
        ...task.stop,
        ignoreEos: task.ignoreEos,
        contextShift: task.contextShift,
        nKeep: task.nKeep,
        nDiscard: task.nDiscard,
        nProbs: cfg.n_probs ?? 0,
        signal: ac.signal,
        onText: opts.json
          ? undefined
          : (t) => Deno.stdout.writeSync(out.encode(t)),
      });
      if (opts.json) {
        console.log(JSON.stringify({
          text: r.text,
          tokens: r.tokens,
          stop_reason: r.stopReason,
          stopped_by: r.stoppedBy,
          truncated: r.truncated || undefined,
          seed: sampler.seed,
          ...(r.probs ? { probs: r.probs } : {}),
          timings: r.timings,
        }));
      } else if (Deno.stdout.isTerminal()) console.log();
      info(
        `${r.timings.promptTokens} prompt tokens in ${
          r.timings.promptMs.toFixed(1)
        } ms; ${r.tokens.length} tokens at ${
          r.timings.tokensPerSecond.toFixed(1)
        } t/s; stop: ${r.stopReason}`,
      );
    } finally {
      Deno.removeSignalListener("SIGINT", onSigint);
    }
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return e instanceof WasiNnError && e.errno === Errno.InvalidArgument
      ? c.usage
      : c.failure;
  } finally {
    model.close();
  }
}
