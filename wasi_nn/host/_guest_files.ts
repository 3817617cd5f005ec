/**
 * Files a prompt names (the `image` key): read through the folders the
 * guest was given (its preopens, WasmEdge's `--dir GUEST:HOST`), and
 * nothing else. A guest path is matched to the preopen it lies in; `..`
 * out of it, or a symlink whose target is outside it, is NotFound, as is a
 * path in no preopen. A file over the host's `max_image_mb` is
 * InvalidArgument, refused before it is read. Without preopens (a host used
 * from TypeScript, no guest), the path is the host's own: the embedding
 * program is trusted.
 *
 * @example
 * ```ts
 * import { readPromptFile } from "./_guest_files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/a.jpg`, new Uint8Array([1, 2, 3]));
 * const bytes = await readPromptFile("/data/a.jpg", { "/data": dir }, 1 << 20);
 * console.log(bytes.length); // 3
 * ```
 * @module
 */

import { posix, sep } from "node:path";
import { Errno, WasiNnError } from "../errno.ts";
import { isInside } from "./_path_inside.ts";

/** A guest's preopens: the guest path of each folder, and the host folder it is. */
export type GuestFolders = Readonly<Record<string, string>>;

/** The host path of `guestPath` inside one of `folders`, or why there is none. */
function hostPathOf(
  guestPath: string,
  folders: GuestFolders,
): { host: string; folder: string; root: string } | string {
  const path = posix.normalize(guestPath);
  if (path === ".." || path.startsWith("../")) {
    return "it leads out of the guest's folders ('..')";
  }
  let best: { folder: string; g: string; root: string } | undefined;
  for (const [folder, root] of Object.entries(folders)) {
    // "." names the folder relative paths resolve in.
    const g = posix.normalize(folder) === "." ? "" : posix.normalize(folder);
    const inside = g === ""
      ? !path.startsWith("/")
      : g === "/"
      ? path.startsWith("/")
      : path === g || path.startsWith(`${g}/`);
    if (inside && (!best || g.length > best.g.length)) {
      best = { folder, g, root };
    }
  }
  if (!best) {
    const names = Object.keys(folders);
    return names.length === 0
      ? "the guest was given no folders (--dir GUEST:HOST)"
      : `it is in none of the guest's folders (${names.join(", ")})`;
  }
  const rest = path.slice(best.g.length).replace(/^\/+/, "");
  return {
    host: rest === "" ? best.root : `${best.root}${sep}${rest}`,
    folder: best.folder,
    root: best.root,
  };
}

/**
 * The bytes of the file a prompt names, at most `maxBytes`. `folders`
 * undefined: `path` is a host path (no guest). Throws WasiNnError: NotFound
 * (missing, not a file, or outside the guest's folders) or InvalidArgument
 * (too big), each naming the path and why.
 */
export async function readPromptFile(
  path: string,
  folders: GuestFolders | undefined,
  maxBytes: number,
  what = "image",
): Promise<Uint8Array> {
  const notFound = (why: string, cause?: unknown) =>
    new WasiNnError(Errno.NotFound, `${what} '${path}': ${why}`, { cause });
  // A failed realpath, stat or open: missing, or why it cannot be opened.
  const unopened = (e: unknown, missing = "no such file") =>
    notFound(
      e instanceof Deno.errors.NotFound
        ? missing
        : `cannot be opened (${(e as Error).message})`,
      e,
    );
  let host = path;
  if (folders !== undefined) {
    const where = hostPathOf(path, folders);
    if (typeof where === "string") throw notFound(where);
    // Symlinks: the real file must be inside the real folder.
    let real: string, root: string;
    try {
      root = await Deno.realPath(where.root);
      real = await Deno.realPath(where.host);
    } catch (e) {
      throw unopened(e, `no such file in the guest's folder ${where.folder}`);
    }
    if (!isInside(real, root)) {
      throw notFound(
        `it resolves outside the guest's folder ${where.folder} (a symlink)`,
      );
    }
    host = real;
  }
  // A regular file only (opening a FIFO would wait for a writer).
  let kind: Deno.FileInfo;
  try {
    kind = await Deno.stat(host);
  } catch (e) {
    throw unopened(e);
  }
  if (!kind.isFile) throw notFound("it is not a regular file");
  let file: Deno.FsFile;
  try {
    file = await Deno.open(host, { read: true });
  } catch (e) {
    throw unopened(e);
  }
  using f = file;
  const info = await f.stat();
  if (!info.isFile) throw notFound("it is not a regular file");
  if (info.size > maxBytes) {
    throw mediaTooBig(`${what} '${path}'`, info.size, maxBytes);
  }
  const out = new Uint8Array(info.size);
  let n = 0;
  while (n < out.length) {
    const r = await f.read(out.subarray(n));
    if (r === null) break;
    n += r;
  }
  return out.subarray(0, n);
}

/** InvalidArgument for a prompt's image or audio over the host's cap (`source` names it). */
export function mediaTooBig(
  source: string,
  size: number,
  maxBytes: number,
): WasiNnError {
  return new WasiNnError(
    Errno.InvalidArgument,
    `${source} is ${mib(size)} MiB; the host takes at most ${
      mib(maxBytes)
    } MiB (host key max_image_mb)`,
  );
}

function mib(bytes: number): string {
  return (bytes / (1 << 20)).toFixed(bytes < 1 << 20 ? 2 : 1);
}
