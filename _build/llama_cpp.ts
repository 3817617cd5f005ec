/**
 * The llama.cpp source: a user-given LLAMA_CPP_DIR, or the pinned release
 * taken from the git bundle inside the node-llama-cpp npm tarball.
 * @module
 */

import { LLAMA_CPP_COMMIT, LLAMA_CPP_NPM_PACKAGE } from "../paths.ts";
import { BuildError } from "./errors.ts";
import { capture, requireTool } from "./exec.ts";

/** Path of the git bundle inside the npm tarball. */
export const BUNDLE_IN_TARBALL = "package/llama/gitRelease.bundle";

const GIT_FIX = "apt-get install git";

/** The commit checked out in `dir`, or undefined when it is not a git checkout. */
export async function gitHead(dir: string): Promise<string | undefined> {
  const git = await requireTool("git", GIT_FIX);
  const out = await capture(git, ["-C", dir, "rev-parse", "HEAD"]);
  // rev-parse also succeeds inside a parent repository: insist on dir being the top.
  if (out.code !== 0) return undefined;
  const top = await capture(git, ["-C", dir, "rev-parse", "--show-toplevel"]);
  const real = await Deno.realPath(dir);
  if (top.code !== 0 || top.stdout.trim() !== real) return undefined;
  return out.stdout.trim();
}

/** What {@linkcode checkLlamaCpp} found in a folder. */
export type LlamaCppState =
  | { kind: "missing" }
  | { kind: "not-llama" }
  | { kind: "ok"; head: string }
  | { kind: "wrong-commit"; head: string }
  | { kind: "not-git" };

/** Whether `dir` holds llama.cpp at `expected` (default: the pinned commit). */
export async function checkLlamaCpp(
  dir: string,
  expected: string = LLAMA_CPP_COMMIT,
): Promise<LlamaCppState> {
  try {
    await Deno.stat(dir);
  } catch {
    return { kind: "missing" };
  }
  try {
    await Deno.stat(`${dir}/include/llama.h`);
    await Deno.stat(`${dir}/CMakeLists.txt`);
  } catch {
    return { kind: "not-llama" };
  }
  const head = await gitHead(dir);
  if (!head) return { kind: "not-git" };
  return head === expected
    ? { kind: "ok", head }
    : { kind: "wrong-commit", head };
}

/**
 * Makes sure `dir` holds llama.cpp and returns it. A user-given folder
 * (`userGiven`) at another commit is used with a warning; our own cache folder
 * is moved to the pinned commit, or fetched again. Fetching never happens when
 * the checkout exists at the pinned commit.
 */
export async function ensureLlamaCppDir(
  dir: string,
  options: {
    userGiven: boolean;
    warn: (message: string) => void;
    note: (message: string) => void;
  },
): Promise<string> {
  const state = await checkLlamaCpp(dir);
  switch (state.kind) {
    case "ok":
      return dir;
    case "not-llama":
      throw new BuildError(
        `${dir} exists but is not a llama.cpp source tree (no include/llama.h or CMakeLists.txt)`,
        {
          fix: options.userGiven
            ? "point LLAMA_CPP_DIR at a llama.cpp checkout, or unset it to use the pinned release"
            : `remove ${dir} and run the build again`,
        },
      );
    case "not-git":
      if (options.userGiven) {
        options.warn(
          `cannot tell which llama.cpp commit ${dir} holds (not a git checkout); expected ${LLAMA_CPP_COMMIT}`,
        );
        return dir;
      }
      break;
    case "wrong-commit":
      if (options.userGiven) {
        options.warn(
          `LLAMA_CPP_DIR ${dir} is at ${
            state.head.slice(0, 12)
          }, not the pinned ${
            LLAMA_CPP_COMMIT.slice(0, 12)
          }; building it anyway (other commits are untested)`,
        );
        return dir;
      }
      if (await tryCheckout(dir)) return dir;
      break;
    case "missing":
      break;
  }
  if (state.kind !== "missing") {
    options.note(`replacing ${dir} (${state.kind})`);
    await Deno.remove(dir, { recursive: true });
  }
  await fetchLlamaCpp(dir, options.note);
  return dir;
}

async function tryCheckout(dir: string): Promise<boolean> {
  const git = await requireTool("git", GIT_FIX);
  const out = await capture(git, [
    "-C",
    dir,
    "checkout",
    "--quiet",
    "--detach",
    LLAMA_CPP_COMMIT,
  ]);
  return out.code === 0 && (await gitHead(dir)) === LLAMA_CPP_COMMIT;
}

/** The last `n` lines of a tool's output, without JavaScript stack frames (npm prints them). */
function lastLines(text: string, n = 15): string[] {
  return text.trimEnd().split("\n")
    .filter((line) => !/^(npm error)?\s+at\s/.test(line))
    .slice(-n);
}

/**
 * Fetches the pinned llama.cpp into `dest`: `npm pack` of the node-llama-cpp
 * tarball (no install), extraction of only its git bundle, `git clone` of the
 * bundle, and a check that HEAD is the pinned commit. `dest` appears only once
 * complete.
 */
export async function fetchLlamaCpp(
  dest: string,
  note: (message: string) => void,
): Promise<void> {
  const git = await requireTool("git", GIT_FIX);
  const npm = await requireTool(
    "npm",
    `apt-get install npm (or install Node.js), or set LLAMA_CPP_DIR to a llama.cpp checkout at ${LLAMA_CPP_COMMIT}`,
  );
  const tar = await requireTool("tar", "apt-get install tar");
  const tmp = await Deno.makeTempDir({ prefix: "wasi-nn-llamacpp-fetch-" });
  const partial = `${dest}.partial-${Deno.pid}`;
  try {
    note(
      `fetching llama.cpp ${
        LLAMA_CPP_COMMIT.slice(0, 8)
      } from npm (${LLAMA_CPP_NPM_PACKAGE}, ~35 MB)`,
    );
    const pack = await capture(npm, [
      "pack",
      LLAMA_CPP_NPM_PACKAGE,
      "--json",
      "--ignore-scripts",
    ], {
      cwd: tmp,
    });
    if (pack.code !== 0) {
      throw new BuildError(
        `npm pack ${LLAMA_CPP_NPM_PACKAGE} failed (exit ${pack.code})`,
        {
          fix:
            `check network access to the npm registry (npm config get registry; proxy settings), or set LLAMA_CPP_DIR to a llama.cpp checkout at ${LLAMA_CPP_COMMIT}`,
          logTail: lastLines(pack.stderr || pack.stdout),
        },
      );
    }
    const tarball = tarballName(pack.stdout) ??
      [...Deno.readDirSync(tmp)].find((e) => e.name.endsWith(".tgz"))?.name;
    if (!tarball) {
      throw new BuildError("npm pack did not produce a tarball", {
        fix: "run `npm pack node-llama-cpp@3.21.1` by hand to see why",
        logTail: lastLines(pack.stdout + pack.stderr),
      });
    }
    const untar = await capture(tar, ["-xzf", tarball, BUNDLE_IN_TARBALL], {
      cwd: tmp,
    });
    if (untar.code !== 0) {
      throw new BuildError(`${tarball} has no ${BUNDLE_IN_TARBALL}`, {
        fix:
          `the npm package changed; set LLAMA_CPP_DIR to a llama.cpp checkout at ${LLAMA_CPP_COMMIT}`,
        logTail: lastLines(untar.stderr),
      });
    }
    await Deno.mkdir(dest.replace(/\/[^/]+\/?$/, "") || "/", {
      recursive: true,
    });
    await Deno.remove(partial, { recursive: true }).catch(() => {});
    note(`cloning the llama.cpp git bundle into ${dest}`);
    const clone = await capture(git, [
      "clone",
      "--quiet",
      `${tmp}/${BUNDLE_IN_TARBALL}`,
      partial,
    ]);
    if (clone.code !== 0) {
      throw new BuildError("git clone of the llama.cpp bundle failed", {
        fix: "check free disk space and that git works (git --version)",
        logTail: lastLines(clone.stderr),
      });
    }
    let head = await gitHead(partial);
    if (head !== LLAMA_CPP_COMMIT) {
      await capture(git, [
        "-C",
        partial,
        "checkout",
        "--quiet",
        "--detach",
        LLAMA_CPP_COMMIT,
      ]);
      head = await gitHead(partial);
    }
    if (head !== LLAMA_CPP_COMMIT) {
      throw new BuildError(
        `the llama.cpp bundle is at ${
          head ?? "an unknown commit"
        }, not the pinned ${LLAMA_CPP_COMMIT}`,
        {
          fix:
            `LLAMA_CPP_NPM_PACKAGE and LLAMA_CPP_COMMIT in paths.ts disagree; fix them, or set LLAMA_CPP_DIR`,
        },
      );
    }
    await Deno.rename(partial, dest);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    await Deno.remove(partial, { recursive: true }).catch(() => {});
  }
}

/** The tarball file name from `npm pack --json` output, if it parses. */
export function tarballName(npmPackJson: string): string | undefined {
  try {
    // npm may print notices before the JSON array.
    const start = npmPackJson.indexOf("[");
    const parsed = JSON.parse(npmPackJson.slice(start));
    const name = Array.isArray(parsed) ? parsed[0]?.filename : undefined;
    return typeof name === "string" ? name.replace(/^.*\//, "") : undefined;
  } catch {
    return undefined;
  }
}
