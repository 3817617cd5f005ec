/**
 * Finds and opens libwasi_nn_backend.so once per process. The only file that
 * calls `Deno.dlopen`.
 *
 * Lookup order: `WASI_NN_BACKEND_LIB`, the build output of this checkout
 * (`build/lib/`), then the per-version cache a JSR user's `build` fills.
 * @module
 */

import { isFile } from "../_internal/fs.ts";
import { envVar, paths, userCacheRoot } from "../paths.ts";
import { LlamaError, Status } from "./errors.ts";
import {
  CONTEXT_PARAMS,
  MODEL_PARAMS,
  MTMD_PARAMS,
  SAMPLER_PARAMS,
} from "./_struct.ts";
import { SYMBOLS, type Symbols } from "./_symbols.ts";

/** The ABI version these bindings were written for (`WNB_ABI_VERSION`). */
export const ABI_VERSION = 4;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
let openedPath = "";

function candidates(): string[] {
  const list: string[] = [];
  const fromEnv = envVar("WASI_NN_BACKEND_LIB");
  if (fromEnv) list.push(fromEnv);
  list.push(paths().library);
  list.push(`${userCacheRoot()}/build/lib/libwasi_nn_backend.so`);
  return [...new Set(list)];
}

/** Opens the library (once) and returns its symbols. Throws a LlamaError naming the paths tried. */
export function symbols(): Symbols {
  if (lib) return lib.symbols;
  const tried = candidates();
  const path = tried.find(isFile);
  if (!path) {
    throw new LlamaError(
      Status.Usage,
      `libwasi_nn_backend.so not found; run \`deno task build\` (or set WASI_NN_BACKEND_LIB). Tried:\n  ${
        tried.join("\n  ")
      }`,
    );
  }
  let opened: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    opened = Deno.dlopen(path, SYMBOLS);
  } catch (e) {
    throw new LlamaError(
      Status.Usage,
      `cannot open ${path}: ${
        (e as Error).message
      }. It may be stale: rebuild with \`deno task build\`.`,
      { cause: e },
    );
  }
  const s = opened.symbols;
  const abi = s.wnb_abi_version();
  const sizes: [string, number, number][] = [
    ["wnb_model_params", s.wnb_sizeof_model_params(), MODEL_PARAMS.size],
    ["wnb_context_params", s.wnb_sizeof_context_params(), CONTEXT_PARAMS.size],
    ["wnb_sampler_params", s.wnb_sizeof_sampler_params(), SAMPLER_PARAMS.size],
    ["wnb_mtmd_params", s.wnb_sizeof_mtmd_params(), MTMD_PARAMS.size],
  ];
  const bad = sizes.filter(([, a, b]) => a !== b);
  if (abi !== ABI_VERSION || bad.length > 0) {
    opened.close();
    throw new LlamaError(
      Status.Usage,
      `${path} has ABI ${abi} (bindings expect ${ABI_VERSION})${
        bad.map(([n, a, b]) => `, sizeof ${n} ${a} != ${b}`).join("")
      }: rebuild with \`deno task build\`.`,
    );
  }
  s.wnb_init();
  lib = opened;
  openedPath = path;
  return s;
}

/** The path of the opened library ("" before the first use). */
export function libraryPath(): string {
  return openedPath;
}
