/**
 * `cli.ts --version`: this package's version and llama.cpp's.
 *
 * @example
 * ```ts ignore
 * import { versionText } from "./version.ts";
 * console.log(await versionText());
 * ```
 * @module
 */

import { LLAMA_CPP_COMMIT, PACKAGE_VERSION } from "../paths.ts";

/**
 * The `--version` text: this package's version, and llama.cpp's commit and
 * build number from the library when it loads, else the pinned commit.
 *
 * @example
 * ```ts ignore
 * import { versionText } from "./version.ts";
 * console.log(await versionText()); // wasi-nn-llamacpp 0.1.0 / llama.cpp ...
 * ```
 */
export async function versionText(): Promise<string> {
  return `wasi-nn-llamacpp ${PACKAGE_VERSION}\nllama.cpp ${await llamaCommit()}`;
}

/**
 * llama.cpp's commit, from the library when it loads, else the pinned one.
 * Read straight from the bindings (what `LlamaHost.llamaBuild` reports),
 * without loading the host and its config schema.
 */
async function llamaCommit(): Promise<string> {
  try {
    const { backendInfo } = await import("../bindings/mod.ts");
    const info = backendInfo();
    return `${info.llama_commit} (build ${info.llama_build_number})`;
  } catch {
    return `${LLAMA_CPP_COMMIT} (pinned; the library did not load)`;
  }
}
