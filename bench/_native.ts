/**
 * llama.cpp's own tools as the yardstick: running `llama-bench` and
 * `llama-completion`, and parsing what they print. The parsers are pure
 * (text in, numbers out) so tests can feed them real captured output.
 * @module
 */

/** Decode-only speeds reported by `llama-bench`. */
export interface LlamaBenchResult {
  /** Prompt processing, tokens/s (the test with n_prompt > 0, n_gen = 0); undefined if not run. */
  pp?: number;
  /** Generation, tokens/s (the test with n_gen > 0, n_prompt = 0); undefined if not run. */
  tg?: number;
  /** Every test record as printed (the raw JSON objects). */
  records: Record<string, unknown>[];
}

/** Thrown when a tool's output does not have the expected shape. */
export class ParseError extends Error {
  /** @param message What was missing. */
  constructor(message: string) {
    super(message);
    this.name = "ParseError";
  }
}

/**
 * Parses `llama-bench -o json` (one JSON array) or `-o jsonl` (one object per
 * line) output and picks `avg_ts` of the prompt test and of the generation test.
 */
export function parseLlamaBenchJson(text: string): LlamaBenchResult {
  const trimmed = text.trim();
  let records: Record<string, unknown>[];
  if (trimmed.startsWith("[")) {
    records = JSON.parse(trimmed) as Record<string, unknown>[];
  } else {
    records = trimmed.split("\n").filter((l) => l.trim().startsWith("{")).map((
      l,
    ) => JSON.parse(l) as Record<string, unknown>);
  }
  if (records.length === 0) {
    throw new ParseError("llama-bench printed no test records");
  }
  const out: LlamaBenchResult = { records };
  for (const r of records) {
    const ts = r.avg_ts;
    if (typeof ts !== "number" || !(ts > 0)) {
      throw new ParseError(
        `llama-bench record without a positive avg_ts: ${JSON.stringify(r)}`,
      );
    }
    const nPrompt = Number(r.n_prompt ?? 0);
    const nGen = Number(r.n_gen ?? 0);
    if (nPrompt > 0 && nGen === 0) out.pp = ts;
    else if (nGen > 0 && nPrompt === 0) out.tg = ts;
  }
  return out;
}

/** The perf lines `llama-completion` prints at exit (`common_perf_print`). */
export interface CompletionPerf {
  /** `sampling time`: all of common_sampler's time (samplers plus its own work), ms. */
  samplingMs: number;
  /** `prompt eval time`, ms. */
  promptMs: number;
  /** Prompt tokens evaluated. */
  promptTokens: number;
  /** `eval time`: decode time of the generated tokens, ms. */
  evalMs: number;
  /** Decode calls of generated tokens (`N runs`; one fewer than the tokens sampled). */
  evalRuns: number;
}

const NUM = String.raw`([0-9]+(?:\.[0-9]+)?)`;

/** Parses `common_perf_print`'s lines out of llama-completion's stderr. */
export function parseCompletionPerf(stderr: string): CompletionPerf {
  const grab = (re: RegExp, what: string) => {
    const m = stderr.match(re);
    if (!m) {
      const tail = stderr.trimEnd().split("\n").slice(-8).join("\n");
      throw new ParseError(
        `llama-completion printed no '${what}' line; its stderr ended:\n${tail}`,
      );
    }
    return m;
  };
  const sampling = grab(
    new RegExp(String.raw`sampling time =\s*${NUM} ms`),
    "sampling time",
  );
  const prompt = grab(
    new RegExp(String.raw`prompt eval time =\s*${NUM} ms /\s*([0-9]+) tokens`),
    "prompt eval time",
  );
  // "prompt eval time" counts "tokens"; only the generation line counts "runs".
  const evalLine = grab(
    new RegExp(String.raw`eval time =\s*${NUM} ms /\s*([0-9]+) runs`),
    "eval time",
  );
  return {
    samplingMs: Number(sampling[1]),
    promptMs: Number(prompt[1]),
    promptTokens: Number(prompt[2]),
    evalMs: Number(evalLine[1]),
    evalRuns: Number(evalLine[2]),
  };
}

/**
 * End-to-end generation speed from llama-completion's perf lines: one token
 * costs one decode (eval time per run) plus one sample (sampling time per
 * sampled token). `nSampled` is the `-n` it ran with.
 */
export function completionTokensPerSecond(
  p: CompletionPerf,
  nSampled: number,
): number {
  if (p.evalRuns <= 0 || nSampled <= 0) {
    throw new ParseError(
      `llama-completion generated nothing (${p.evalRuns} runs)`,
    );
  }
  const msPerToken = p.evalMs / p.evalRuns + p.samplingMs / nSampled;
  return 1000 / msPerToken;
}

/** A finished command's output. */
export interface ToolOutput {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Runs a tool to completion with stdin closed. Throws with its stderr tail on a non-zero exit. */
export async function runTool(
  bin: string,
  args: string[],
): Promise<ToolOutput> {
  const out = await new Deno.Command(bin, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const r = {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
  if (r.code !== 0) {
    throw new Error(
      `${bin} ${args.join(" ")} exited with ${r.code}:\n${
        r.stderr.split("\n").slice(-15).join("\n")
      }`,
    );
  }
  return r;
}

/** Settings shared by both sides of a comparison. */
export interface DecodeSettings {
  /** Model file. */
  model: string;
  /** Threads (generation and batch). */
  threads: number;
  /** Prompt tokens of the pp test (0 = skip it). */
  nPrompt: number;
  /** Generated tokens of the tg test (0 = skip it). */
  nGen: number;
  /** Logical and physical batch size. */
  batch: number;
  /** Thread-pool polling (0..100). */
  poll: number;
  /** Tokens already in the context before each test (llama-bench `-d`; a list runs one test per depth). */
  depth?: number[];
  /** Repetitions of each test (default 1). */
  reps?: number;
  /** RPC servers whose devices the model uses (llama-bench `--rpc`), with `-ngl 99`. */
  rpc?: readonly string[];
  /** Share of the layers per device (llama-bench `-ts`, e.g. [1, 1]). */
  tensorSplit?: readonly number[];
}

/** The llama-bench arguments for pp and tg with these settings (one repetition unless `reps`). */
export function llamaBenchArgs(s: DecodeSettings): string[] {
  return [
    ...["-m", s.model, "-p", String(s.nPrompt), "-n", String(s.nGen)],
    ...["-t", String(s.threads), "-b", String(s.batch), "-ub", String(s.batch)],
    ...["--poll", String(s.poll), "-r", String(s.reps ?? 1), "-o", "json"],
    ...(s.depth ? ["-d", s.depth.join(",")] : []),
    ...(s.rpc ? ["--rpc", s.rpc.join(","), "-ngl", "99"] : []),
    ...(s.tensorSplit ? ["-ts", s.tensorSplit.join("/")] : []),
  ];
}

/** Runs llama-bench once (one repetition after its own warmup) and parses it. */
export async function runLlamaBench(
  bin: string,
  s: DecodeSettings,
): Promise<LlamaBenchResult> {
  const r = await runTool(bin, llamaBenchArgs(s));
  return parseLlamaBenchJson(r.stdout);
}

/** Settings of an end-to-end generation run. */
export interface CompletionSettings {
  /** Model file. */
  model: string;
  /** Threads (generation and batch). */
  threads: number;
  /** Prompt text. */
  prompt: string;
  /** Tokens to generate (always all of them: EOS is ignored). */
  nPredict: number;
  /** Context size. */
  nCtx: number;
  /** Logical and physical batch size. */
  batch: number;
  /** Thread-pool polling (0..100). */
  poll: number;
}

/** The llama-completion arguments: greedy, EOS ignored, no conversation, no prompt echo. */
export function completionArgs(s: CompletionSettings): string[] {
  return [
    ...["-m", s.model, "-p", s.prompt, "-n", String(s.nPredict), "--temp", "0"],
    ...[
      "-t",
      String(s.threads),
      "-tb",
      String(s.threads),
      "--poll",
      String(s.poll),
    ],
    ...["-c", String(s.nCtx), "-b", String(s.batch), "-ub", String(s.batch)],
    ...["--ignore-eos", "-no-cnv", "--no-display-prompt", "--seed", "1"],
  ];
}

/** One llama-completion run: its perf lines, its end-to-end speed and the text it printed. */
export interface CompletionResult {
  /** The parsed perf lines. */
  perf: CompletionPerf;
  /** Tokens/s of decode plus sampling. */
  tokensPerSecond: number;
  /** The generated text it printed on stdout. */
  text: string;
}

/**
 * Runs llama-completion and returns its raw output once it has the perf
 * lines. llama-completion logs through an asynchronous logger that is never
 * flushed at exit (llama.cpp issue 22142), so now and then its last lines
 * (the perf lines, the end of the text) are lost: such a run is repeated, up
 * to `attempts` runs in all.
 */
export async function runCompletionRaw(
  bin: string,
  s: CompletionSettings,
  attempts = 4,
  onRetry?: (attempt: number) => void,
): Promise<ToolOutput & { perf: CompletionPerf }> {
  for (let i = 1;; i++) {
    const r = await runTool(bin, completionArgs(s));
    try {
      return { ...r, perf: parseCompletionPerf(r.stderr) };
    } catch (e) {
      if (!(e instanceof ParseError) || i >= attempts) throw e;
      onRetry?.(i);
    }
  }
}

/** Runs llama-completion (see `runCompletionRaw`) and parses its perf lines. */
export async function runCompletion(
  bin: string,
  s: CompletionSettings,
  onRetry?: (attempt: number) => void,
): Promise<CompletionResult> {
  const r = await runCompletionRaw(bin, s, 4, onRetry);
  return {
    perf: r.perf,
    tokensPerSecond: completionTokensPerSecond(r.perf, s.nPredict),
    text: r.stdout,
  };
}
