/**
 * Running external tools: finding them on PATH, capturing their output, and
 * streaming long runs into a log file line by line.
 * @module
 */

import { BuildError } from "./errors.ts";

/** Whether `path` is an executable regular file. */
async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** The full path of `name` on PATH (or `name` itself when it has a slash), else undefined. */
export async function which(name: string): Promise<string | undefined> {
  if (name.includes("/")) return await isExecutable(name) ? name : undefined;
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter(Boolean);
  for (const dir of dirs) {
    const candidate = `${dir}/${name}`;
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Finds a required tool or throws a BuildError naming the fix. */
export async function requireTool(name: string, fix: string): Promise<string> {
  const found = await which(name);
  if (!found) throw new BuildError(`${name} not found on PATH`, { fix });
  return found;
}

/** Output of a finished command. */
export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a short command and captures its output. Throws only when it cannot start. */
export async function capture(
  cmd: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<Captured> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** Result of {@linkcode runLogged}. */
export interface LoggedRun {
  code: number;
  /** The last lines of output (stdout and stderr interleaved as they came). */
  tail: string[];
}

/**
 * Runs a long command, appends everything it prints to `log`, calls `onLine`
 * for each output line, and keeps the last `tailLines` lines for error reports.
 */
export async function runLogged(
  cmd: string,
  args: string[],
  options: {
    log: Deno.FsFile;
    cwd?: string;
    onLine?: (line: string) => void;
    tailLines?: number;
  },
): Promise<LoggedRun> {
  const { log, onLine } = options;
  const tailLines = options.tailLines ?? 40;
  const encoder = new TextEncoder();
  log.writeSync(encoder.encode(`\n$ ${[cmd, ...args].join(" ")}\n`));
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const tail: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let pending = "";
    const emit = (line: string) => {
      tail.push(line);
      if (tail.length > tailLines) tail.shift();
      onLine?.(line);
    };
    for await (const chunk of stream) {
      log.writeSync(chunk);
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split(/\r?\n|\r/);
      pending = lines.pop() ?? "";
      for (const line of lines) emit(line);
    }
    pending += decoder.decode();
    if (pending) emit(pending);
  };
  const [status] = await Promise.all([
    child.status,
    pump(child.stdout),
    pump(child.stderr),
  ]);
  return { code: status.code, tail };
}
