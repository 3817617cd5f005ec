/**
 * Where things live: the llama.cpp checkout, build outputs, generated models.
 * Every module that needs a path asks here, so the layout is defined once.
 *
 * Run from a clone (a `file:` URL), everything lives under the repository in
 * folders that `.gitignore` covers (`.cache/`, `build/`). Run from JSR (an
 * `https:` URL), everything lives in a per-version folder of the user's cache
 * directory (`$XDG_CACHE_HOME` or `~/.cache`, then `wasi-nn-llamacpp/<version>`).
 *
 * @example
 * ```ts
 * import { paths } from "./paths.ts";
 * console.log(paths().library);
 * ```
 * @module
 */

import { fromFileUrl } from "./_internal/file_url.ts";

/** The pinned llama.cpp release (the one node-llama-cpp@3.21.1 ships). */
export const LLAMA_CPP_COMMIT = "80fb11ac73e66d89eae2c6a91d8a77428fa733ed";
/** The npm package whose tarball carries the pinned llama.cpp as a git bundle. */
export const LLAMA_CPP_NPM_PACKAGE = "node-llama-cpp@3.21.1";
/** This package's version; keep in step with deno.json. */
export const PACKAGE_VERSION = "0.1.0";

/** The locations used by build.ts, the bindings, the model generator and the tests. */
export interface Paths {
  /** Root of all generated files (`<repo>` from a clone, the cache folder from JSR). */
  root: string;
  /** Downloads and sources: `<root>/.cache`. */
  cache: string;
  /** The llama.cpp source tree (`LLAMA_CPP_DIR` overrides). */
  llamaCpp: string;
  /** The CMake build folder for a variant ("cpu" or "cuda"). */
  cmakeBuild: (variant: "cpu" | "cuda") => string;
  /** The built library: `<root>/build/lib/libwasi_nn_backend.so`. */
  library: string;
  /** The chat-template sandbox built with the library: `<root>/build/bin/wnb-chat-render`. */
  chatRender: string;
  /** llama.cpp's RPC server, built with the library from the same checkout: `<root>/build/bin/ggml-rpc-server`. */
  rpcServer: string;
  /** llama.cpp's own tools (llama-simple, llama-bench, ...): `<root>/build/bin`. */
  referenceBin: string;
  /** Generated GGUF models: `<root>/.cache/models`. */
  models: string;
}

/** An environment variable, or undefined when unset, empty or not permitted (no --allow-env). */
export function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env: use the defaults
  }
}

/** The per-user cache folder used when this package runs from JSR. */
export function userCacheRoot(): string {
  const base = envVar("XDG_CACHE_HOME") ??
    `${envVar("HOME") ?? "/tmp"}/.cache`;
  return `${base}/wasi-nn-llamacpp/${PACKAGE_VERSION}`;
}

/** Whether this module was loaded from a local clone (not from JSR). */
export function isLocalCheckout(): boolean {
  return new URL(import.meta.url).protocol === "file:";
}

/** Resolves every path. `WASI_NN_HOME` overrides the root. */
export function paths(): Paths {
  const root = envVar("WASI_NN_HOME") ??
    (isLocalCheckout()
      ? fromFileUrl(new URL(".", import.meta.url)).replace(/\/$/, "")
      : userCacheRoot());
  const cache = `${root}/.cache`;
  return {
    root,
    cache,
    llamaCpp: envVar("LLAMA_CPP_DIR") ??
      `${cache}/llama.cpp-${LLAMA_CPP_COMMIT.slice(0, 8)}`,
    cmakeBuild: (variant) => `${root}/build/cmake-${variant}`,
    library: `${root}/build/lib/libwasi_nn_backend.so`,
    chatRender: `${root}/build/bin/wnb-chat-render`,
    rpcServer: `${root}/build/bin/ggml-rpc-server`,
    referenceBin: `${root}/build/bin`,
    models: `${cache}/models`,
  };
}
