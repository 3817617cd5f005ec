/**
 * Which model files guests may load: names preloaded with WasmEdge's
 * `--nn-preload NAME:ENCODING:TARGET:PATH`, plus folders from which a guest may
 * load a GGUF file by path (as WAMR's llama.cpp backend does).
 *
 * @example
 * ```ts
 * import { ModelRegistry } from "./registry.ts";
 * const registry = new ModelRegistry();
 * registry.preload("default:GGML:AUTO:model.gguf");
 * console.log(registry.resolve("default")); // "model.gguf"
 * ```
 * @module
 */

import { Errno, WasiNnError } from "../errno.ts";
import { isInside } from "./_path_inside.ts";

/** The execution targets `--nn-preload` accepts (case-insensitive on input). */
export type NnTarget = "cpu" | "gpu" | "tpu" | "auto";

/** One preloaded model: the parsed form of `NAME:ENCODING:TARGET:PATH`. */
export interface NnPreload {
  /** The name guests pass to `load_by_name` (exact byte match). */
  name: string;
  /** The encoding; only GGML is supported. */
  encoding: "ggml";
  /** The execution target named on the command line (lower case). */
  target: NnTarget;
  /** The model file as given (relative paths are relative to the host's CWD). */
  path: string;
}

const TARGETS: readonly NnTarget[] = ["cpu", "gpu", "tpu", "auto"];

/**
 * Parses a WasmEdge `--nn-preload` value, `NAME:ENCODING:TARGET:PATH`.
 *
 * The value is split on `:`; ENCODING (`ggml`) and TARGET (`cpu`, `gpu`,
 * `tpu` or `auto`) are case-insensitive, and everything after TARGET is joined
 * back with `:` into the path, so paths may contain colons. Throws a
 * `TypeError` naming the bad part.
 *
 * @example
 * ```ts
 * import { parseNnPreload } from "./registry.ts";
 * const model = parseNnPreload("default:GGML:AUTO:C:/models/a.gguf");
 * console.log(model); // { name: "default", encoding: "ggml", target: "auto", path: "C:/models/a.gguf" }
 * ```
 */
export function parseNnPreload(spec: string): NnPreload {
  const parts = spec.split(":");
  const where = `in --nn-preload '${spec}'`;
  if (parts.length < 4) {
    throw new TypeError(
      `expected NAME:ENCODING:TARGET:PATH ${where} (found ${parts.length} part${
        parts.length === 1 ? "" : "s"
      })`,
    );
  }
  const [name, encoding, target] = parts;
  const path = parts.slice(3).join(":");
  if (name === "") throw new TypeError(`empty NAME ${where}`);
  if (encoding.toLowerCase() !== "ggml") {
    throw new TypeError(
      `unsupported ENCODING '${encoding}' ${where}: only GGML is supported`,
    );
  }
  const lowerTarget = target.toLowerCase() as NnTarget;
  if (!TARGETS.includes(lowerTarget)) {
    throw new TypeError(
      `unknown TARGET '${target}' ${where}: expected CPU, GPU, TPU or AUTO`,
    );
  }
  if (path === "") throw new TypeError(`empty PATH ${where}`);
  return { name, encoding: "ggml", target: lowerTarget, path };
}

/** Options of {@linkcode ModelRegistry}'s constructor. */
export interface ModelRegistryOptions {
  /** Preloaded models: `NAME:ENCODING:TARGET:PATH` strings or parsed entries. */
  preloads?: Iterable<string | NnPreload>;
  /** Folders from which guests may load model files by path. */
  allowDirs?: Iterable<string>;
}

/**
 * Maps the names guests pass to `load_by_name*` to model files.
 *
 * A name is looked up among the preloaded models first (exact match). If it is
 * not one, it is treated as a file path, which is accepted only when its real
 * path (symlinks and `..` resolved) is a regular file inside one of the allowed
 * folders. Anything else is refused with `WasiNnError(NotFound)` (errno 8).
 *
 * @example
 * ```ts
 * import { ModelRegistry } from "./registry.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/tiny.gguf`, "GGUF");
 * const registry = new ModelRegistry({
 *   preloads: ["default:GGML:CPU:/models/llama.gguf"],
 *   allowDirs: [dir],
 * });
 * console.log(registry.resolve("default")); // "/models/llama.gguf"
 * console.log(registry.resolve(`${dir}/tiny.gguf`)); // the file's real path
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class ModelRegistry {
  #models = new Map<string, NnPreload>();
  #dirs: string[] = [];

  /** Creates a registry, optionally with preloads and allowed folders. */
  constructor(options: ModelRegistryOptions = {}) {
    for (const spec of options.preloads ?? []) this.preload(spec);
    for (const dir of options.allowDirs ?? []) this.allowDir(dir);
  }

  /**
   * Adds a preloaded model, either from a `NAME:ENCODING:TARGET:PATH` string
   * (parsed with {@linkcode parseNnPreload}) or an entry, or as
   * `preload(name, path, target = "auto")`. The file is not checked here: a
   * missing file gives errno 103 (ModelNotFound) when a guest loads it. Throws
   * a `TypeError` for a bad spec or a name that is already preloaded.
   *
   * @example
   * ```ts
   * import { ModelRegistry } from "./registry.ts";
   * const registry = new ModelRegistry();
   * const entry = registry.preload("llama2:ggml:gpu:/models/llama-2-7b.gguf");
   * console.log(entry.target); // "gpu"
   * registry.preload("tiny", ".cache/models/tiny.gguf");
   * console.log(registry.resolve("tiny")); // ".cache/models/tiny.gguf"
   * ```
   */
  preload(
    spec: string | NnPreload,
    path?: string,
    target: NnTarget = "auto",
  ): NnPreload {
    let entry: NnPreload;
    if (path !== undefined) {
      if (typeof spec !== "string" || spec === "") {
        throw new TypeError(
          "preload(name, path): the name must be a non-empty string",
        );
      }
      if (path === "") {
        throw new TypeError(`preload('${spec}', path): empty path`);
      }
      if (!TARGETS.includes(target)) {
        throw new TypeError(
          `preload('${spec}', path, target): unknown target '${target}'`,
        );
      }
      entry = { name: spec, encoding: "ggml", target, path };
    } else {
      entry = typeof spec === "string" ? parseNnPreload(spec) : { ...spec };
    }
    if (this.#models.has(entry.name)) {
      throw new TypeError(
        `model name '${entry.name}' is preloaded twice (${
          this.#models.get(entry.name)!.path
        } and ${entry.path})`,
      );
    }
    this.#models.set(entry.name, entry);
    return { ...entry };
  }

  /**
   * Allows guests to load model files by path from `dir` and its subfolders.
   * The folder's real path is taken now; returns it. Throws an `Error` if the
   * folder does not exist or is not a directory.
   *
   * @example
   * ```ts
   * import { ModelRegistry } from "./registry.ts";
   * const registry = new ModelRegistry();
   * console.log(registry.allowDir(Deno.cwd()));
   * ```
   */
  allowDir(dir: string): string {
    let real: string;
    try {
      real = Deno.realPathSync(dir);
    } catch (cause) {
      throw new Error(
        `cannot allow model folder '${dir}': ${describe(cause)}`,
        { cause },
      );
    }
    if (!Deno.statSync(real).isDirectory) {
      throw new Error(
        `cannot allow model folder '${dir}': '${real}' is not a directory`,
      );
    }
    if (!this.#dirs.includes(real)) this.#dirs.push(real);
    return real;
  }

  /**
   * The preloaded entry for `name`, if any.
   *
   * @example
   * ```ts
   * import { ModelRegistry } from "./registry.ts";
   * const registry = new ModelRegistry({ preloads: ["default:GGML:AUTO:m.gguf"] });
   * console.log(registry.get("default")?.path, registry.get("other")); // "m.gguf" undefined
   * ```
   */
  get(name: string): NnPreload | undefined {
    const entry = this.#models.get(name);
    return entry && { ...entry };
  }

  /**
   * The preloaded names, in the order they were added.
   *
   * @example
   * ```ts
   * import { ModelRegistry } from "./registry.ts";
   * const registry = new ModelRegistry({ preloads: ["a:GGML:CPU:a.gguf", "b:GGML:CPU:b.gguf"] });
   * console.log(registry.names); // ["a", "b"]
   * ```
   */
  get names(): string[] {
    return [...this.#models.keys()];
  }

  /**
   * The allowed folders (real paths), in the order they were added.
   *
   * @example
   * ```ts
   * import { ModelRegistry } from "./registry.ts";
   * const registry = new ModelRegistry({ allowDirs: [Deno.cwd()] });
   * console.log(registry.allowedDirs.length); // 1
   * ```
   */
  get allowedDirs(): string[] {
    return [...this.#dirs];
  }

  /**
   * The model file for a name or path a guest passed to `load_by_name*`.
   *
   * 1. A preloaded name returns its path as given (whether the file exists is
   *    the host's check at load time: errno 103, ModelNotFound).
   * 2. Otherwise the string is taken as a path (relative to the host's CWD). If
   *    its real path is a regular file inside an allowed folder, that real path
   *    is returned.
   * 3. Otherwise throws `WasiNnError` with errno 8 (NotFound) and a message
   *    saying why, listing the preloaded names and allowed folders.
   *
   * @example
   * ```ts
   * import { ModelRegistry } from "./registry.ts";
   * import { WasiNnError } from "../errno.ts";
   * const registry = new ModelRegistry({ preloads: ["default:GGML:AUTO:m.gguf"] });
   * try {
   *   registry.resolve("/etc/passwd");
   * } catch (err) {
   *   console.log((err as WasiNnError).errno); // 8
   * }
   * ```
   */
  resolve(nameOrPath: string): string {
    const entry = this.#models.get(nameOrPath);
    if (entry) return entry.path;

    const names = this.#models.size === 0
      ? "no models are preloaded"
      : `preloaded: ${
        [...this.#models.keys()].map((n) => `'${n}'`).join(", ")
      }`;
    const notFound = (why: string) =>
      new WasiNnError(
        Errno.NotFound,
        `model '${nameOrPath}' is not a preloaded name (${names}) ${why}`,
      );
    if (this.#dirs.length === 0) {
      throw notFound(
        "and loading models by path is not allowed (no allowed folders; use --nn-allow-dir DIR)",
      );
    }
    const allowed = `allowed folders: ${this.#dirs.join(", ")}`;
    if (nameOrPath === "" || nameOrPath.includes("\0")) {
      throw notFound(`and is not a valid path (${allowed})`);
    }
    let real: string;
    try {
      real = Deno.realPathSync(nameOrPath);
    } catch (cause) {
      throw notFound(
        `and cannot be loaded as a path: ${describe(cause)} (${allowed})`,
      );
    }
    if (!this.#dirs.some((dir) => isInside(real, dir))) {
      throw notFound(
        `and as a path it resolves to '${real}', outside the allowed folders (${allowed})`,
      );
    }
    let isFile = false;
    try {
      isFile = Deno.statSync(real).isFile;
    } catch {
      // vanished since realpath: treated as not a file
    }
    if (!isFile) {
      throw notFound(`and as a path '${real}' is not a regular file`);
    }
    return real;
  }
}

function describe(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file or directory";
  if (
    err instanceof Deno.errors.PermissionDenied ||
    err instanceof Deno.errors.NotCapable
  ) {
    return "permission denied";
  }
  return err instanceof Error ? err.message : String(err);
}
