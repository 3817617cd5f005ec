/**
 * Renders chat templates in a process of their own (`wnb-chat-render`, built
 * with the library): a chat template is a program, and one a guest chose, or
 * found inside a model it sent, can allocate without bound, loop for ever or
 * overflow the stack. The child sets its own memory and time limits before
 * it reads the request, renders with the same C++ code as the shim, caps its
 * output, and answers in JSON; one process serves one prompt. Whatever goes
 * wrong becomes a ConfigError (InvalidArgument) naming the limit.
 *
 * @example
 * ```ts
 * import { renderIsolated, TEMPLATE_LIMITS } from "./_chat_sandbox.ts";
 * const [text] = await renderIsolated({
 *   template: "{% for m in messages %}[{{ m.content }}]{% endfor %}",
 *   bos_token: "<s>", eos_token: "</s>", add_bos: true, add_eos: false,
 *   renders: [{ messages: [{ role: "user", content: "Hi" }], add_generation_prompt: true }],
 * }, TEMPLATE_LIMITS);
 * console.log(text); // [Hi]
 * ```
 * @module
 */

import { paths } from "../../paths.ts";
import { ConfigError } from "../errno.ts";

/**
 * Limits of one template rendering (the renders of one prompt together).
 *
 * @example
 * ```ts
 * import type { TemplateLimits } from "./_chat_sandbox.ts";
 * const l: TemplateLimits = { timeoutMs: 2000, maxMemoryMb: 256, maxOutputBytes: 4 << 20 };
 * console.log(l.timeoutMs);
 * ```
 */
export interface TemplateLimits {
  /** Wall-clock time, in ms (`chat_template_timeout_ms`). */
  timeoutMs: number;
  /** Address space of the renderer, in MiB (`chat_template_max_memory_mb`). */
  maxMemoryMb: number;
  /** Bytes of rendered text, all renders of the prompt together (`chat_template_max_output_bytes`). */
  maxOutputBytes: number;
}

/**
 * The default limits. Measured on the project's machine (2 cores): each of
 * llama.cpp's 68 reference templates (models/templates/) renders a 4-message
 * chat twice in 10-30 ms including the process start, in 7 MiB of resident
 * memory, and needs at least 16 MiB of address space. The limits leave 60x
 * on time and 16x on memory, and 4 MiB of text is about a million tokens.
 *
 * @example
 * ```ts
 * import { TEMPLATE_LIMITS } from "./_chat_sandbox.ts";
 * console.log(TEMPLATE_LIMITS.timeoutMs); // 2000
 * ```
 */
export const TEMPLATE_LIMITS: Readonly<TemplateLimits> = Object.freeze({
  timeoutMs: 2000,
  maxMemoryMb: 256,
  maxOutputBytes: 4 << 20,
});

/**
 * What `wnb-chat-render` reads: a template, what it needs of the model, and
 * the renders of one prompt.
 *
 * @example
 * ```ts
 * import type { RenderRequest } from "./_chat_sandbox.ts";
 * const r: RenderRequest = { template: "{{ messages[0].content }}", bos_token: "", eos_token: "", add_bos: false, add_eos: false, renders: [] };
 * console.log(r.renders.length);
 * ```
 */
export interface RenderRequest {
  /** Jinja source. */
  template: string;
  /** The model's BOS text. */
  bos_token: string;
  /** The model's EOS text. */
  eos_token: string;
  /** The tokenizer adds BOS (a leading BOS text is dropped). */
  add_bos: boolean;
  /** The tokenizer adds EOS (a trailing EOS text is dropped). */
  add_eos: boolean;
  /** Each render: messages and whether to open the assistant's turn. */
  renders: { messages: unknown[]; add_generation_prompt: boolean }[];
}

const FIELD = "chat_template";

function limitArgs(l: TemplateLimits): string[] {
  return [
    "--max-memory-mb",
    String(l.maxMemoryMb),
    "--timeout-ms",
    String(l.timeoutMs),
    "--max-output-bytes",
    String(l.maxOutputBytes),
  ];
}

function missing(e: unknown): Error {
  if (e instanceof Deno.errors.NotFound) {
    return new Error(
      `the chat-template renderer ${paths().chatRender} is missing: build it with 'deno task build'`,
    );
  }
  return e as Error;
}

/** The suggestion that goes with each limit. */
const HINT: Record<string, (l: TemplateLimits) => string> = {
  time: (l) =>
    `chat templates may run ${l.timeoutMs} ms (host key chat_template_timeout_ms); avoid long loops`,
  memory: (l) =>
    `chat templates may use ${l.maxMemoryMb} MiB (host key chat_template_max_memory_mb); avoid building huge strings or ranges`,
  output: (l) =>
    `a rendered prompt may have ${l.maxOutputBytes} bytes (host key chat_template_max_output_bytes)`,
  stack: () =>
    "recursive macros and deeply nested expressions are not allowed in chat templates",
};

/** The answer of the child, or the ConfigError it stands for. */
function interpret(
  code: number,
  signal: Deno.Signal | null,
  stdout: Uint8Array,
  stderr: Uint8Array,
  limits: TemplateLimits,
  killed: boolean,
  template: string,
  what: string,
): string[] {
  let answer:
    | { prompts?: string[]; error?: { kind: string; message: string } }
    | undefined;
  try {
    answer = JSON.parse(new TextDecoder().decode(stdout));
  } catch {
    answer = undefined;
  }
  if (answer?.prompts && code === 0) return answer.prompts;
  const kind = killed ? "time" : answer?.error?.kind;
  const shown = `${what} ${
    JSON.stringify(
      template.length > 40 ? template.slice(0, 40) + "…" : template,
    )
  }`;
  if (kind === "time" || kind === "memory" || kind === "output") {
    const why = kind === "time"
      ? `ran past the time limit of ${limits.timeoutMs} ms`
      : kind === "memory"
      ? `needed more than the memory limit of ${limits.maxMemoryMb} MiB`
      : answer!.error!.message.replace(/^the chat template's /, "its ");
    throw new ConfigError(
      FIELD,
      template,
      `${shown} ${why}`,
      HINT[kind](limits),
      "range",
    );
  }
  if (kind === "stack") {
    throw new ConfigError(
      FIELD,
      template,
      `${shown} overflowed the stack (too deep recursion or nesting)`,
      HINT.stack(limits),
      "range",
    );
  }
  if (kind === "messages" || kind === "template") {
    throw new ConfigError(
      kind === "messages" ? "messages" : FIELD,
      template,
      answer!.error!.message,
      kind === "template"
        ? "check the Jinja syntax of the template"
        : undefined,
      "format",
    );
  }
  const end = signal
    ? `was killed by ${signal}`
    : `exited with status ${code}${
      answer?.error ? `: ${answer.error.message}` : ""
    }`;
  const tail = new TextDecoder().decode(stderr.subarray(-400)).trim();
  throw new ConfigError(
    FIELD,
    template,
    `${shown} could not be rendered: the renderer ${end}${
      tail ? ` (${tail.split("\n").at(-1)})` : ""
    }`,
    "a template that crashes the renderer is refused; check it with a plain Jinja engine",
    "format",
  );
}

/** Reads a stream, keeping at most `cap` bytes (the rest is drained and dropped). */
async function readCapped(
  stream: ReadableStream<Uint8Array>,
  cap: number,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of stream) {
    if (n >= cap) continue;
    const keep = chunk.subarray(0, cap - n);
    parts.push(keep);
    n += keep.length;
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** JSON escaping may grow text 6x (`\u0000`); above that the answer is cut (and refused). */
const answerCap = (l: TemplateLimits) => l.maxOutputBytes * 6 + 65536;

/**
 * Renders in a `wnb-chat-render` child without blocking the event loop. The
 * child stops itself at the limits; a child still running 1 s past the time
 * limit is killed. Throws ConfigError naming the limit that was hit (and
 * the template: `what` says whose it is).
 *
 * @example
 * ```ts
 * import { renderIsolated, TEMPLATE_LIMITS } from "./_chat_sandbox.ts";
 * try {
 *   await renderIsolated({ template: "{% for i in range(10000000000) %}x{% endfor %}", bos_token: "", eos_token: "", add_bos: false, add_eos: false, renders: [{ messages: [{ role: "user", content: "Hi" }], add_generation_prompt: true }] }, { ...TEMPLATE_LIMITS, timeoutMs: 200 });
 * } catch (e) {
 *   console.log((e as Error).message); // Field 'chat_template': the chat template "{% for i in range(10000000000) %}x{% end…" ran past the time limit of 200 ms (...)
 * }
 * ```
 */
export async function renderIsolated(
  request: RenderRequest,
  limits: TemplateLimits,
  what = "the chat template",
): Promise<string[]> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(paths().chatRender, {
      args: limitArgs(limits),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    throw missing(e);
  }
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, limits.timeoutMs + 1000);
  try {
    const writer = child.stdin.getWriter();
    const sent = writer.write(new TextEncoder().encode(JSON.stringify(request)))
      .then(() => writer.close())
      .catch(() => {}); // the child may stop reading (a limit): its answer says why
    const [stdout, stderr, status] = await Promise.all([
      readCapped(child.stdout, answerCap(limits)),
      readCapped(child.stderr, 65536),
      child.status,
    ]);
    await sent;
    return interpret(
      status.code,
      status.signal,
      stdout,
      stderr,
      limits,
      killed,
      request.template,
      what,
    );
  } finally {
    clearTimeout(timer);
  }
}
