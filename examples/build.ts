/**
 * Builds the WASI-NN guests: the C examples (`examples/c/`), the
 * AssemblyScript examples (`examples/assemblyscript/`) and the test guest
 * `tests/guests/abi_probe.c`, into `build/guests/*.wasm`. Outputs that are
 * newer than their sources are kept, so calling it again is cheap.
 *
 * C needs Debian's clang and wasi-libc
 * (`apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32`);
 * `WASI_CLANG` names another compiler and `WASI_SYSROOT` a sysroot (e.g. a
 * wasi-sdk). AssemblyScript is installed from npm on first use with
 * `deno install` into `examples/assemblyscript/node_modules`.
 *
 * Command line (`deno task examples`):
 *
 * ```sh
 * deno run -A examples/build.ts [--force] [--quiet] [--only=abi_probe,oneshot]
 * ```
 *
 * @example
 * ```ts
 * import { buildGuests } from "./build.ts";
 * const guests = await buildGuests({ only: ["abi_probe"], quiet: true });
 * console.log(guests.abi_probe); // .../build/guests/abi_probe.wasm
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { fromFileUrl } from "../_internal/file_url.ts";
import { paths } from "../paths.ts";

/** The guests this script builds. */
export const GUEST_NAMES = [
  "oneshot",
  "chat_stream",
  "vision",
  "abi_probe",
  "as_oneshot",
  "as_chat_stream",
] as const;

/** The name of one guest; its file is `build/guests/<name>.wasm`. */
export type GuestName = typeof GUEST_NAMES[number];

/** Absolute paths of the built `.wasm` files, by guest name. */
export type GuestPaths = Record<GuestName, string>;

/** Options for {@linkcode buildGuests}. */
export interface BuildGuestsOptions {
  /** Build only these guests; the others' paths are still returned. Default: all. */
  only?: readonly GuestName[];
  /** Rebuild even when the outputs are newer than the sources. */
  force?: boolean;
  /** Print nothing but errors. Default: false. */
  quiet?: boolean;
}

/** A missing or failing compiler; the message says how to fix it. */
export class GuestBuildError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GuestBuildError";
  }
}

/** The apt command that installs the C toolchain on Debian 12. */
export const APT_INSTALL =
  "apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32";

const ROOT = fromFileUrl(new URL("..", import.meta.url)).replace(/\/$/, "");
const EXAMPLES_C = `${ROOT}/examples/c`;
const EXAMPLES_AS = `${ROOT}/examples/assemblyscript`;
const TESTS = `${ROOT}/tests/guests`;
const THIS_FILE = fromFileUrl(import.meta.url);

interface CGuest {
  lang: "c";
  source: string;
  deps: string[];
}
interface AsGuest {
  lang: "as";
  entry: string; // relative to EXAMPLES_AS
}
type Guest = CGuest | AsGuest;

const GUESTS: Record<GuestName, Guest> = {
  oneshot: c(`${EXAMPLES_C}/oneshot.c`),
  chat_stream: c(`${EXAMPLES_C}/chat_stream.c`),
  vision: c(`${EXAMPLES_C}/vision.c`),
  abi_probe: c(`${TESTS}/abi_probe.c`),
  as_oneshot: { lang: "as", entry: "assembly/oneshot.ts" },
  as_chat_stream: { lang: "as", entry: "assembly/chat_stream.ts" },
};

function c(source: string): CGuest {
  return { lang: "c", source, deps: [`${EXAMPLES_C}/wasi_nn.h`] };
}

/** Where the guests go: `<root>/build/guests` (see `paths.ts`). */
export function guestsDir(): string {
  return `${paths().root}/build/guests`;
}

/** The paths the guests have (or will have) once built; builds nothing. */
export function guestPaths(): GuestPaths {
  const dir = guestsDir();
  return Object.fromEntries(
    GUEST_NAMES.map((name) => [name, `${dir}/${name}.wasm`]),
  ) as GuestPaths;
}

/**
 * Builds the guests that are missing or older than their sources and
 * returns the paths of all of them. Safe to call from several processes at
 * once (`deno test --parallel`): builds are serialized by a lock folder and
 * every output is written to a temporary file, then renamed.
 *
 * @throws {GuestBuildError} when a compiler is missing or a build fails.
 */
export async function buildGuests(
  options: BuildGuestsOptions = {},
): Promise<GuestPaths> {
  const out = guestPaths();
  const wanted = [...(options.only ?? GUEST_NAMES)];
  const stale = async () => {
    const list: GuestName[] = [];
    for (const name of wanted) {
      if (options.force || !await upToDate(out[name], await inputs(name))) {
        list.push(name);
      }
    }
    return list;
  };
  if ((await stale()).length === 0) return out;

  await Deno.mkdir(guestsDir(), { recursive: true });
  await withLock(`${guestsDir()}/.build.lock`, async () => {
    const todo = await stale(); // another process may have built them
    if (todo.some((name) => GUESTS[name].lang === "as")) {
      await ensureAssemblyScript(options.quiet ?? false);
    }
    for (const name of todo) {
      const guest = GUESTS[name];
      if (guest.lang === "c") await compileC(guest, out[name]);
      else await compileAs(guest, out[name]);
      if (!options.quiet) console.log(`built ${relative(out[name])}`);
    }
  });
  return out;
}

// ---------------------------------------------------------------------------
// Freshness

async function inputs(name: GuestName): Promise<string[]> {
  const guest = GUESTS[name];
  if (guest.lang === "c") return [guest.source, ...guest.deps, THIS_FILE];
  const files = [
    `${EXAMPLES_AS}/asconfig.json`,
    `${EXAMPLES_AS}/package.json`,
    THIS_FILE,
  ];
  for await (const entry of Deno.readDir(`${EXAMPLES_AS}/assembly`)) {
    if (entry.isFile && entry.name.endsWith(".ts")) {
      files.push(`${EXAMPLES_AS}/assembly/${entry.name}`);
    }
  }
  return files;
}

async function mtime(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).mtime?.getTime();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

async function upToDate(output: string, sources: string[]): Promise<boolean> {
  const built = await mtime(output);
  if (built === undefined) return false;
  for (const source of sources) {
    const changed = await mtime(source);
    if (changed === undefined) {
      throw new GuestBuildError(`guest source missing: ${source}`);
    }
    if (changed > built) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Compilers

interface RunResult {
  code: number;
  output: string;
}

async function run(
  cmd: string,
  args: string[],
  cwd = ROOT,
): Promise<RunResult> {
  const { code, stdout, stderr } = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code, output: (text.decode(stdout) + text.decode(stderr)).trim() };
}

/** Signs that clang is there but cannot target wasm32-wasi. */
const WASI_MISSING =
  /wasm32-wasi|stdio\.h' file not found|unable to find library -lc|libclang_rt\.builtins-wasm32|wasm-ld|crt1[-\w]*\.o/;

async function compileC(guest: CGuest, output: string): Promise<void> {
  const clang = Deno.env.get("WASI_CLANG") || "clang";
  const sysroot = Deno.env.get("WASI_SYSROOT");
  const tmp = `${output}.${Deno.pid}.tmp`;
  const args = [
    "--target=wasm32-wasi",
    ...(sysroot ? [`--sysroot=${sysroot}`] : []),
    "-O2",
    "-s",
    "-Wall",
    "-Wextra",
    "-o",
    tmp,
    guest.source,
  ];
  let result: RunResult;
  try {
    result = await run(clang, args);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new GuestBuildError(
        `'${clang}' was not found. The C guests need clang with wasi-libc; ` +
          `on Debian/Ubuntu run: ${APT_INSTALL}`,
        { cause: error },
      );
    }
    throw error;
  }
  if (result.code !== 0) {
    await Deno.remove(tmp).catch(() => {});
    const hint = WASI_MISSING.test(result.output)
      ? `\nclang cannot build for wasm32-wasi here; install the WASI ` +
        `toolchain: ${APT_INSTALL}`
      : "";
    throw new GuestBuildError(
      `compiling ${relative(guest.source)} failed:\n${result.output}${hint}`,
    );
  }
  await Deno.rename(tmp, output);
}

const ASC = `${EXAMPLES_AS}/node_modules/assemblyscript/bin/asc.js`;
const WASI_SHIM =
  `${EXAMPLES_AS}/node_modules/@assemblyscript/wasi-shim/asconfig.json`;

/** Records which package.json the installed node_modules came from. */
const INSTALL_STAMP = `${EXAMPLES_AS}/node_modules/.wasi-nn-package.json`;

async function ensureAssemblyScript(quiet: boolean): Promise<void> {
  const manifest = await Deno.readTextFile(`${EXAMPLES_AS}/package.json`);
  const stamp = await Deno.readTextFile(INSTALL_STAMP).catch(() => undefined);
  if (
    stamp === manifest && await mtime(ASC) !== undefined &&
    await mtime(WASI_SHIM) !== undefined
  ) {
    return;
  }
  if (!quiet) console.log("installing AssemblyScript from npm (deno install)");
  const result = await run(Deno.execPath(), ["install"], EXAMPLES_AS);
  if (result.code !== 0 || await mtime(ASC) === undefined) {
    throw new GuestBuildError(
      `installing AssemblyScript into ${
        relative(EXAMPLES_AS)
      }/node_modules failed (it needs the npm registry):\n${result.output}`,
    );
  }
  await Deno.writeTextFile(INSTALL_STAMP, manifest);
}

async function compileAs(guest: AsGuest, output: string): Promise<void> {
  const tmp = `${output}.${Deno.pid}.tmp`;
  const result = await run(
    Deno.execPath(),
    [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      ASC,
      guest.entry,
      "--target",
      "release",
      "-o",
      tmp,
    ],
    EXAMPLES_AS,
  );
  if (result.code !== 0) {
    await Deno.remove(tmp).catch(() => {});
    throw new GuestBuildError(
      `compiling examples/assemblyscript/${guest.entry} failed:\n${result.output}`,
    );
  }
  await Deno.rename(tmp, output);
}

// ---------------------------------------------------------------------------
// Helpers

function relative(path: string): string {
  return path.startsWith(`${ROOT}/`) ? path.slice(ROOT.length + 1) : path;
}

/** Runs `fn` while holding a lock folder; a lock older than 10 minutes is stale. */
async function withLock(lock: string, fn: () => Promise<void>): Promise<void> {
  const staleMs = 10 * 60_000;
  const deadline = Date.now() + staleMs;
  for (;;) {
    try {
      await Deno.mkdir(lock);
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const since = await mtime(lock);
    if (since !== undefined && Date.now() - since > staleMs) {
      await Deno.remove(lock).catch(() => {});
      continue;
    }
    if (Date.now() > deadline) {
      throw new GuestBuildError(
        `timed out waiting for ${lock}; remove it if no build is running`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  try {
    await fn();
  } finally {
    await Deno.remove(lock).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      force: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      only: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      `usage: deno run -A examples/build.ts [--force] [--quiet] [--only=NAME,...]\n` +
        `guests: ${GUEST_NAMES.join(", ")}`,
    );
    Deno.exit(0);
  }
  const only = values.only?.split(",").map((s) => s.trim()).filter(Boolean) as
    | GuestName[]
    | undefined;
  for (const name of only ?? []) {
    if (!GUEST_NAMES.includes(name)) {
      console.error(
        `unknown guest '${name}'; known: ${GUEST_NAMES.join(", ")}`,
      );
      Deno.exit(2);
    }
  }
  try {
    const built = await buildGuests({
      only,
      force: values.force,
      quiet: values.quiet,
    });
    if (!values.quiet) {
      for (const name of only ?? GUEST_NAMES) {
        console.log(`${name}: ${relative(built[name])}`);
      }
    }
  } catch (error) {
    if (!(error instanceof GuestBuildError)) throw error;
    console.error(`error: ${error.message}`);
    Deno.exit(1);
  }
}
