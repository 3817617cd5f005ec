/**
 * Shared test fixtures: the generated models and llama.cpp's reference tools.
 * @module
 */

import { ensureModel } from "../gguf/mod.ts";
import { paths } from "../paths.ts";
import { isFile } from "../_internal/fs.ts";

let tiny: Promise<string> | undefined;

/** Path of the generated tiny model (generated on first use, then cached). */
export function tinyModel(): Promise<string> {
  tiny ??= ensureModel("tiny").then((m) => m.path);
  return tiny;
}

/** Path of a llama.cpp reference tool, or undefined when not built. */
export function referenceTool(name: string): string | undefined {
  const p = `${paths().referenceBin}/${name}`;
  return isFile(p) ? p : undefined;
}

/** The longest a test's child process may run (then it is killed). */
export const CHILD_TIMEOUT_MS = 300_000;

/** Runs a command (killed after `timeoutMs`, default 5 minutes); returns stdout, stderr and the exit code. */
export async function run(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    // A hung child fails its test instead of hanging the run.
    signal: AbortSignal.timeout(options.timeoutMs ?? CHILD_TIMEOUT_MS),
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/**
 * llama-completion's generated text for `prompt` (`-no-cnv
 * --no-display-prompt --ignore-eos -c 512 -t 2`, plus `flags`): no prompt
 * echo, single turn. Its stdout ends with "\n\n", written through
 * llama.cpp's asynchronous log thread, which can lose the tail of the
 * output at exit on a loaded machine; the closing "\n\n" proves the text
 * before it is complete, so this retries until it is there.
 */
export async function completionText(
  model: string,
  prompt: string,
  nPredict: number,
  flags: string[] = [],
): Promise<string> {
  const tool = referenceTool("llama-completion");
  if (!tool) {
    throw new Error("llama-completion is not built (build.ts --reference)");
  }
  for (let attempt = 1;; attempt++) {
    const r = await run(tool, [
      "-m",
      model,
      "-p",
      prompt,
      "-n",
      String(nPredict),
      "-no-cnv",
      "--no-display-prompt",
      "-c",
      "512",
      "-t",
      "2",
      "--ignore-eos",
      ...flags,
    ]);
    if (r.code !== 0) {
      throw new Error(
        `llama-completion failed (${r.code}):\n${r.stderr.slice(-2000)}`,
      );
    }
    if (r.stdout.endsWith("\n\n")) return r.stdout.slice(0, -2);
    if (attempt >= 20) {
      throw new Error(
        `llama-completion's output stayed truncated: ${
          JSON.stringify(r.stdout)
        }`,
      );
    }
  }
}

/**
 * Runs a leak probe of `_rss_probe.ts` in a process of its own and returns
 * how many bytes its resident memory grew over the second half of its cycles.
 */
export async function rssGrowth(probe: "load" | "scheduler"): Promise<number> {
  const r = await run(Deno.execPath(), [
    "run",
    "-A",
    new URL("./_rss_probe.ts", import.meta.url).pathname,
    probe,
  ]);
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  if (r.code !== 0 || !line.startsWith("{")) {
    throw new Error(
      `the ${probe} probe failed (${r.code}): ${r.stderr.slice(-800)}`,
    );
  }
  return JSON.parse(line).grown;
}
