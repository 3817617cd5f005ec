/**
 * `file:` URL to path, without `jsr:@std/path` (unreachable here).
 * @module
 */
import { fileURLToPath } from "node:url";

/** Converts a `file:` URL to a filesystem path. */
export function fromFileUrl(url: URL | string): string {
  return fileURLToPath(url);
}
