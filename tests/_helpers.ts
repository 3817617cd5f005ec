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

/** Runs a command; returns stdout, stderr and the exit code. */
export async function run(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/** Resident set size of this process in bytes. */
export function rss(): number {
  return Deno.memoryUsage().rss;
}
