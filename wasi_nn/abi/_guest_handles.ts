/**
 * One guest instance's handle tables, as wasmtime and WasmEdge keep them: the
 * graph and execution-context handles a guest sees are its own u32 counters
 * from 0, mapped to the host's handles. A handle that another instance holds
 * is, for this one, a handle that never existed (InvalidArgument). The name
 * cache of `load_by_name` (a second load of a name still loaded returns the
 * same handle) is per instance too.
 *
 * @example
 * ```ts
 * import { GuestHandles } from "./_guest_handles.ts";
 * const t = new GuestHandles();
 * const g = t.addGraph(41, "default");
 * console.log(g, t.graph(g), t.graphByName("default")); // 0 41 0
 * ```
 * @module
 */

import { Errno, WasiNnError } from "../errno.ts";

/** The tables of one guest instance: guest handle -> host handle. */
export class GuestHandles {
  #graphs = new Map<number, { host: number; name?: string }>();
  #names = new Map<string, number>();
  #contexts = new Map<number, number>();
  #nextGraph = 0;
  #nextContext = 0;

  /** Records a graph the host loaded; returns the guest's handle for it. */
  addGraph(host: number, name?: string): number {
    const g = this.#nextGraph++;
    this.#graphs.set(g, { host, name });
    if (name !== undefined) this.#names.set(name, g);
    return g;
  }

  /** The guest handle of a name this instance loaded and did not unload. */
  graphByName(name: string): number | undefined {
    return this.#names.get(name);
  }

  /** The host handle of a guest graph; InvalidArgument for any other number. */
  graph(g: number): number {
    const e = this.#graphs.get(g);
    if (!e) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `no graph with handle ${g} in this guest instance`,
      );
    }
    return e.host;
  }

  /** Forgets a graph (after the host unloaded it); returns its host handle. */
  removeGraph(g: number): number {
    const host = this.graph(g);
    const name = this.#graphs.get(g)!.name;
    if (name !== undefined && this.#names.get(name) === g) {
      this.#names.delete(name);
    }
    this.#graphs.delete(g);
    return host;
  }

  /** Records a context the host made; returns the guest's handle for it. */
  addContext(host: number): number {
    const c = this.#nextContext++;
    this.#contexts.set(c, host);
    return c;
  }

  /** The host handle of a guest context; InvalidArgument for any other number. */
  context(c: number): number {
    const host = this.#contexts.get(c);
    if (host === undefined) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `no execution context with handle ${c} in this guest instance`,
      );
    }
    return host;
  }

  /** Forgets a context (after the host finalized it); returns its host handle. */
  removeContext(c: number): number {
    const host = this.context(c);
    this.#contexts.delete(c);
    return host;
  }

  /** Host handles still held: what to free when the instance ends. */
  held(): { graphs: number[]; contexts: number[] } {
    return {
      graphs: [...this.#graphs.values()].map((e) => e.host),
      contexts: [...this.#contexts.values()],
    };
  }

  /** Empties the tables (the instance ended). */
  clear(): void {
    this.#graphs.clear();
    this.#names.clear();
    this.#contexts.clear();
  }
}
