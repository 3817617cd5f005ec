/**
 * Small file helpers: atomic writes and copies that leave unchanged files alone.
 * @module
 */

/** The file's bytes, or undefined when it cannot be read. */
export async function readOrUndefined(
  path: string,
): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch {
    return undefined;
  }
}

/** Whether two byte arrays are equal. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Writes `data` to `path` through a temporary file and a rename. */
export async function writeAtomic(
  path: string,
  data: Uint8Array,
  mode?: number,
): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    await Deno.writeFile(tmp, data, { mode });
    if (mode !== undefined) await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}

/**
 * Writes `data` to `path` atomically unless the file already holds exactly
 * that; returns whether it wrote.
 */
export async function writeIfChanged(
  path: string,
  data: Uint8Array,
  mode?: number,
): Promise<boolean> {
  const existing = await readOrUndefined(path);
  if (existing && sameBytes(existing, data)) return false;
  await writeAtomic(path, data, mode);
  return true;
}

/** Copies `from` to `to` atomically (keeping the file mode) unless `to` is identical; returns whether it wrote. */
export async function copyIfChanged(
  from: string,
  to: string,
): Promise<boolean> {
  const [data, info] = await Promise.all([
    Deno.readFile(from),
    Deno.stat(from),
  ]);
  await Deno.mkdir(to.replace(/\/[^/]+$/, "") || "/", { recursive: true });
  return await writeIfChanged(to, data, (info.mode ?? 0o755) & 0o777);
}
