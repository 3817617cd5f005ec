/**
 * Graphs: what `load` and `load_by_name` return. A graph is a model (shared
 * with other graphs of the same file and options) plus the config it was
 * loaded with. This file also reads what a `load` call asks for: the
 * encoding, the target and the builders (model bytes or `preload:<path>`,
 * then an optional config).
 *
 * @example
 * ```ts ignore
 * import { GraphTable } from "./_graphs.ts";
 * const graphs = new GraphTable();
 * const handle = graphs.add("model.gguf", {}, entry, "default");
 * console.log(graphs.get(handle).name); // default
 * ```
 * @module
 */

import type { ConfigValues } from "../config/parse.ts";
import { Errno, WasiNnError } from "../errno.ts";
import type { ModelEntry } from "./_models.ts";
import type { GuestQuota } from "./_quota.ts";
import type { GuestFolders } from "./_guest_files.ts";

/** A loaded graph. */
export interface Graph {
  handle: number;
  /** The name it was loaded under (load_by_name). */
  name?: string;
  /** The model file (or guest model id). */
  path: string;
  /** The load config: the layer between the host's and the session's. */
  config: ConfigValues;
  model: ModelEntry;
  unloaded: boolean;
  /** The quota of the guest instance that loaded it, if one did: its contexts count there. */
  quota?: GuestQuota;
  /**
   * The folders of the guest instance that loaded it (its preopens): where
   * its prompts' files (the `image` key) are read. Undefined: loaded from
   * TypeScript, no guest (host paths).
   */
  folders?: GuestFolders;
}

/** The host's graphs by handle. */
export class GraphTable {
  #graphs = new Map<number, Graph>();
  #next = 0;

  /** A new graph; one loaded by name keeps its model warm for the next guest. */
  add(
    path: string,
    config: ConfigValues,
    model: ModelEntry,
    name?: string,
    quota?: GuestQuota,
    folders?: GuestFolders,
  ): number {
    const handle = this.#next++;
    if (name !== undefined) model.keepWarm = true;
    this.#graphs.set(handle, {
      handle,
      name,
      path,
      config,
      unloaded: false,
      model,
      quota,
      folders,
    });
    return handle;
  }

  /** The graph with this handle; InvalidArgument when there is none. */
  get(handle: number): Graph {
    const g = this.#graphs.get(handle);
    if (!g) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `no graph with handle ${handle}`,
      );
    }
    return g;
  }

  /** Marks a graph unloaded and forgets it. */
  unload(handle: number): Graph {
    const g = this.get(handle);
    g.unloaded = true;
    this.#graphs.delete(handle);
    return g;
  }

  /** The graphs loaded under a name. */
  named(name: string): Graph[] {
    return [...this.#graphs.values()].filter((g) => g.name === name);
  }

  /** Forgets every graph. */
  clear(): void {
    this.#graphs.clear();
  }
}

/** What a `load` call asks for: a file (`preload:`) or guest bytes, and its config text. */
export interface LoadRequest {
  /** `preload:<path>`: the name or path after the prefix. */
  preload?: string;
  /** GGUF bytes from the guest. */
  bytes?: Uint8Array;
  /** Builder 1, the config, if given. */
  config?: Uint8Array;
}

const dec = new TextDecoder();

/** Checks a `load` call (GGML encoding 6 WasmEdge, 5 WAMR; a target 0..3; a builder) and reads its builders. */
export function loadRequest(
  builders: Uint8Array[],
  encoding: number,
  target: number,
): LoadRequest {
  if (encoding !== 5 && encoding !== 6) {
    throw new WasiNnError(
      Errno.InvalidEncoding,
      `graph encoding ${encoding} is not supported; this host runs GGML models (encoding 6 as in WasmEdge, or 5 as in WAMR)`,
    );
  }
  if (target < 0 || target > 3) {
    throw new WasiNnError(
      Errno.InvalidArgument,
      `execution target ${target} is not one of 0 (CPU), 1 (GPU), 2 (TPU), 3 (AUTO)`,
    );
  }
  if (builders.length === 0) {
    throw new WasiNnError(
      Errno.InvalidArgument,
      "load needs at least one graph builder (the model)",
    );
  }
  const config = builders.length > 1 ? builders[1] : undefined;
  const head = dec.decode(builders[0].subarray(0, 8));
  if (head === "preload:") {
    return { preload: dec.decode(builders[0].subarray(8)), config };
  }
  return { bytes: builders[0], config };
}
