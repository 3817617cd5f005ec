/**
 * Whether a real (symlink-resolved) path lies in a real folder: the folder
 * itself or below it, never a sibling that only shares its name's start.
 *
 * @example
 * ```ts
 * import { isInside } from "./_path_inside.ts";
 * console.log(isInside("/srv/models/a.gguf", "/srv/models")); // true
 * console.log(isInside("/srv/models2/a.gguf", "/srv/models")); // false
 * ```
 * @module
 */

import { sep } from "node:path";

/** `real` is `dir` or inside it (both real paths). */
export function isInside(real: string, dir: string): boolean {
  const prefix = dir.endsWith(sep) ? dir : dir + sep;
  return real === dir || real.startsWith(prefix);
}
