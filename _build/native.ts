/**
 * The CMake source folder (`native/`). From a clone it is used in place; from
 * JSR (an `https:` import) its files are fetched next to this module and
 * written under `<root>/native/`, rewriting only files whose content changed
 * so that an unchanged build stays incremental.
 * @module
 */

import { fromFileUrl } from "../_internal/file_url.ts";
import { BuildError } from "./errors.ts";
import { writeIfChanged } from "./fs.ts";

/** Every file of `native/` the CMake build needs. Keep in step with native/. */
export const NATIVE_FILES = [
  "CMakeLists.txt",
  "wasi_nn_shim.cpp",
  "wasi_nn_shim.h",
  "chat_render.cpp",
  "chat_render.h",
  "wnb_chat_render.cpp",
  "wnb_internal.h",
  "wnb_mtmd.cpp",
  "wnb_rpc.cpp",
  "wnb_rpc.h",
];

/**
 * The local path of the CMake source folder for `nativeUrl` (the URL of
 * `native/` next to build.ts), fetching it into `<root>/native` when remote.
 */
export async function nativeSourceDir(
  nativeUrl: URL,
  root: string,
): Promise<string> {
  if (nativeUrl.protocol === "file:") {
    return fromFileUrl(nativeUrl).replace(/\/$/, "");
  }
  const dir = `${root}/native`;
  await Deno.mkdir(dir, { recursive: true });
  for (const name of NATIVE_FILES) {
    const url = new URL(name, nativeUrl);
    let data: Uint8Array;
    try {
      const response = await fetch(url);
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`HTTP ${response.status} ${response.statusText}`);
      }
      data = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      throw new BuildError(`cannot fetch ${url}: ${(error as Error).message}`, {
        fix:
          "check network access (and run with --allow-net), or build from a clone of the repository",
      });
    }
    await writeIfChanged(`${dir}/${name}`, data);
  }
  return dir;
}
