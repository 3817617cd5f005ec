/**
 * Checks the folders a guest is given (`preopens`, WasmEdge's `--dir
 * GUEST:HOST`) before node:wasi sees them: node:wasi reports a missing folder
 * only as "uvwasi_init: failed to open preopen", without saying why.
 *
 * @example
 * ```ts
 * import { checkPreopens, PreopenError } from "./_preopens.ts";
 * try {
 *   checkPreopens({ "/data": "/nonexistent/folder" });
 * } catch (e) {
 *   console.log(e instanceof PreopenError, (e as PreopenError).hostPath); // true /nonexistent/folder
 * }
 * ```
 * @module
 */

/**
 * A preopened folder that cannot be given to the guest: missing, not a
 * folder, or not readable.
 *
 * @example
 * ```ts
 * import { PreopenError } from "./_preopens.ts";
 * const e = new PreopenError("/g", "/nope", "the host folder '/nope' does not exist");
 * console.log(e.message); // preopen /g:/nope: the host folder '/nope' does not exist
 * ```
 */
export class PreopenError extends Error {
  /** The path the guest sees. */
  readonly guestPath: string;
  /** The host folder. */
  readonly hostPath: string;
  /** What is wrong with it. */
  readonly reason: string;

  /** Creates the error; the message reads `preopen GUEST:HOST: reason`. */
  constructor(
    guestPath: string,
    hostPath: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`preopen ${guestPath}:${hostPath}: ${reason}`, options);
    this.name = "PreopenError";
    this.guestPath = guestPath;
    this.hostPath = hostPath;
    this.reason = reason;
  }
}

/**
 * Throws {@linkcode PreopenError} unless every host folder exists and is a
 * folder that this process may read.
 *
 * @example
 * ```ts
 * import { checkPreopens } from "./_preopens.ts";
 * checkPreopens({ ".": "." }); // fine
 * ```
 */
export function checkPreopens(preopens: Record<string, string>): void {
  for (const [guest, host] of Object.entries(preopens)) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(host);
    } catch (cause) {
      const reason = cause instanceof Deno.errors.NotFound
        ? `the host folder '${host}' does not exist`
        : cause instanceof Deno.errors.PermissionDenied ||
            cause instanceof Deno.errors.NotCapable
        ? `no permission to read the host folder '${host}' (run with --allow-read and --allow-write)`
        : `cannot use the host folder '${host}': ${(cause as Error).message}`;
      throw new PreopenError(guest, host, reason, { cause });
    }
    if (!info.isDirectory) {
      throw new PreopenError(
        guest,
        host,
        `'${host}' is not a folder (only folders can be preopened)`,
      );
    }
  }
}
