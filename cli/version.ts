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

/** llama.cpp's commit, from the library when it loads, else the pinned one. */
async function llamaCommit(): Promise<string> {
  try {
    const { LlamaHost } = await import("../wasi_nn/host/host.ts");
    const { ModelRegistry } = await import("../wasi_nn/host/registry.ts");
    const host = await LlamaHost.create({ registry: new ModelRegistry() });
    try {
      const { commit, number } = host.llamaBuild;
      return `${commit} (build ${number})`;
    } finally {
      host.close();
    }
  } catch {
    return `${LLAMA_CPP_COMMIT} (pinned; the library did not load)`;
  }
}
