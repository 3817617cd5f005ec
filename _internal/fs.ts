/**
 * Tiny filesystem checks shared by the build, the bindings, the CLI and the
 * bench.
 * @module
 */

/** Whether `path` is a regular file (false when missing or unreadable). */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Whether anything exists at `path` (false when missing or unreadable). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
