/**
 * Where a model comes from, checked before llama.cpp sees it.
 *
 * - Operator files (preloads, `--nn-allow-dir`, `cli.ts generate`): the GGUF
 *   header is checked with `gguf/validate.ts` (only the header is read), so
 *   that a malformed file is refused with a clear error instead of tripping
 *   a `GGML_ASSERT` that aborts the process.
 * - Guest bytes (`load`): at most `max_load_mb` (checked before anything is
 *   copied), held in a sealed anonymous memory file (`MemFile`, never on
 *   disk, gone with the process even after SIGKILL) for as long as the load
 *   takes, and checked the same way.
 *
 * @example
 * ```ts ignore
 * import { checkModelFile } from "./_model_source.ts";
 * await checkModelFile("model.gguf"); // throws InvalidArgument when malformed
 * ```
 * @module
 */

import { MemFile } from "../../bindings/mod.ts";
import { GgufError, validateGgufFile } from "../../gguf/mod.ts";
import type { ConfigValues } from "../config/parse.ts";
import { specOf } from "../config/_keys.ts";
import { Errno, toWasiNn, WasiNnError } from "../errno.ts";
import { mib } from "./_memory.ts";

/** Model bytes a guest passed to `load`, held in memory while they load. */
export interface GuestModel {
  /** A unique name (fd numbers are reused, so it keys the model cache). */
  id: string;
  /** The memory file; close it when the load has finished or failed. */
  file: MemFile;
}

let guestModels = 0;

/** The host's `max_load_mb` (or its default), in bytes. */
function loadLimit(hostConfig: ConfigValues): number {
  const mb = (hostConfig.max_load_mb ??
    specOf("max_load_mb")!.default) as number;
  return mb * 1048576;
}

/**
 * Refuses guest model bytes over the host's `max_load_mb`, or more than the
 * free memory can hold a copy of, before anything is copied.
 *
 * @example
 * ```ts ignore
 * checkGuestModelSize(9 << 30, {}); // InvalidArgument: over max_load_mb 4096
 * ```
 */
export function checkGuestModelSize(
  size: number,
  hostConfig: ConfigValues,
): void {
  const limit = loadLimit(hostConfig);
  if (size > limit) {
    throw new WasiNnError(
      Errno.InvalidArgument,
      `the model bytes given to load are ${size} bytes (${
        mib(size)
      }), over the host's max_load_mb of ${
        limit / 1048576
      } (${limit} bytes); ` +
        "raise max_load_mb in the host config, or preload the model (--nn-preload) and use load_by_name",
    );
  }
  const free = Deno.systemMemoryInfo().available;
  if (free > 0 && size > free) {
    throw new WasiNnError(
      Errno.RuntimeError,
      `the model bytes given to load are ${size} bytes (${
        mib(size)
      }), but only ${
        mib(free)
      } of memory is free to hold them while they load; free memory, or preload the model (--nn-preload) and use load_by_name`,
    );
  }
}

/**
 * Copies guest model bytes into a sealed memory file (without blocking the
 * event loop) and checks its header. The caller closes `file` once the load
 * has finished or failed; on a malformed header it is closed here.
 */
export async function openGuestModel(bytes: Uint8Array): Promise<GuestModel> {
  let file: MemFile;
  try {
    file = await MemFile.create(bytes);
  } catch (e) {
    throw toWasiNn(e);
  }
  const id = `guest model #${++guestModels} (${file.size} bytes)`;
  try {
    await validateGgufFile(file.path, id);
  } catch (e) {
    file.close();
    throw e instanceof GgufError ? malformedModel(e) : toWasiNn(e);
  }
  return { id, file };
}

/** The error for a GGUF that the checks refuse: InvalidArgument, saying what is wrong. */
export function malformedModel(e: GgufError): WasiNnError {
  return new WasiNnError(
    Errno.InvalidArgument,
    `${e.message}; the model was refused before llama.cpp saw it (a malformed GGUF can abort the process): re-convert or re-download it`,
    { cause: e },
  );
}

/** Files whose header passed, by path: their identity then, so that a replaced file is checked again. */
const checked = new Map<string, string>();

/**
 * The identity of a regular file (device, inode, size, mtime), or undefined
 * when it is missing or not a regular file: then llama.cpp's loader gives its
 * own error (ModelNotFound for a missing file).
 */
function identity(path: string): string | undefined {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `cannot read model file ${path} to check it: ${
          (e as Error).message
        }; grant read access to it (--allow-read)`,
      );
    }
    return undefined;
  }
  if (!st.isFile) return undefined;
  return `${st.dev}:${st.ino}:${st.size}:${st.mtime?.getTime()}`;
}

function remember(path: string, id: string): void {
  if (checked.size >= 256) checked.clear();
  checked.set(path, id);
}

/**
 * Checks an operator's model file before it loads (header only; a file
 * already checked and unchanged is not read again). Throws InvalidArgument
 * naming the file and what is wrong.
 */
export async function checkModelFile(path: string): Promise<void> {
  const id = identity(path);
  if (id === undefined || checked.get(path) === id) return;
  try {
    await validateGgufFile(path);
  } catch (e) {
    throw e instanceof GgufError ? malformedModel(e) : toWasiNn(e);
  }
  remember(path, id);
}
