/**
 * Engine processes of the host's models: started with the host's log, their
 * RPC servers checked first (llama.cpp aborts on a server that does not
 * answer), watched, and restarted on the next use after they die, with a
 * backoff when they keep dying. A death names the RPC servers that are gone.
 *
 * @example
 * ```ts ignore
 * import { EngineSupervisor } from "./_engine_supervisor.ts";
 * import { HostLog } from "./_host_log.ts";
 * const engines = new EngineSupervisor(new HostLog(), () => false);
 * const proc = await engines.start("tiny", false, undefined);
 * ```
 * @module
 */

import { checkRpcServers, type ModelLoadOptions } from "../../bindings/mod.ts";
import type { ProjectorOptions } from "../engine/_media_prompt.ts";
import type { ModelEngine } from "../engine/model_engine.ts";
import { EngineProcess } from "../engine/process/engine_process.ts";
import { Errno, WasiNnError } from "../errno.ts";
import type { HostLog } from "./_host_log.ts";

/** What the supervisor knows of a model whose engine may be a process. */
export interface Supervised {
  /** The name it was loaded under (or its path). */
  readonly label: string;
  /** The file a restarted engine loads (a guest model's id once its memory file is closed). */
  path: string;
  /** The load options a restarted engine loads with (its RPC servers too). */
  readonly options: ModelLoadOptions;
  /** Its projector (the `mmproj` key): images and audio in its prompts; loaded again in a restarted engine. */
  readonly projector?: { path: string; options: ProjectorOptions };
  /** From guest bytes: an engine that died cannot be restarted (the bytes are gone). */
  fromGuest: boolean;
  /** What runs llama.cpp for it now. */
  engine: ModelEngine;
  /** Engine deaths in a row (each within a minute of its start). */
  crashes: number;
  /** An engine process being restarted. */
  restarting?: Promise<void>;
}

/** How long an RPC server has to answer the check before a load. */
export const RPC_PROBE_MS = 3000;

/** An engine that dies within this long of its start counts as crashing again. */
const CRASH_WINDOW_MS = 60_000;

/**
 * The wait before restarting an engine after `crashes` deaths in a row: 0,
 * then 0.5 s doubling up to 30 s.
 *
 * @example
 * ```ts
 * import { restartDelay } from "./_engine_supervisor.ts";
 * console.log([1, 2, 3, 10].map(restartDelay)); // [ 0, 500, 1000, 30000 ]
 * ```
 */
export function restartDelay(crashes: number): number {
  return crashes <= 1 ? 0 : Math.min(30_000, 500 * 2 ** (crashes - 2));
}

/** Starts, watches and restarts the engine processes of one host. */
export class EngineSupervisor {
  #log: HostLog;
  #closed: () => boolean;

  /** Logs to `log`; `closed()` says the host is closing (no restart then). */
  constructor(log: HostLog, closed: () => boolean) {
    this.#log = log;
    this.#closed = closed;
  }

  /**
   * Checks that every RPC server a model uses answers, before any endpoint
   * reaches llama.cpp (which aborts on a failed connection).
   */
  async checkRpc(rpc: readonly string[] | undefined): Promise<void> {
    if (!rpc) return;
    try {
      await checkRpcServers([...rpc], { timeoutMs: RPC_PROBE_MS });
    } catch (e) {
      throw new WasiNnError(
        Errno.RuntimeError,
        `${
          (e as Error).message
        }; start rpc-server there, or fix the host's rpc list`,
        { cause: e },
      );
    }
  }

  /**
   * A new engine process whose llama.cpp log goes to the host's log (all of
   * it when `verbose`, else its errors); its RPC servers were checked.
   */
  async start(
    label: string,
    verbose: boolean,
    rpc: readonly string[] | undefined,
  ): Promise<EngineProcess> {
    await this.checkRpc(rpc);
    const log = this.#log;
    return await EngineProcess.start({
      label,
      // A lost RPC server makes llama.cpp abort: name the ones gone.
      explain: rpc ? () => lostRpcServers(rpc) : undefined,
      onLog: (r) => {
        if (verbose || r.level === "error") {
          log.write(r.level, r.message, "llama");
        }
      },
    });
  }

  /**
   * Counts the death of `m`'s engine when it comes, and calls `onDeath`
   * (its schedulers are gone); the next use restarts it (`ensure`).
   */
  watch(m: Supervised, engine: EngineProcess, onDeath: () => void): void {
    const started = performance.now();
    engine.died.then((dead) => {
      // (A restart that replaced it, or the host closing: nothing to do.)
      if (m.engine !== engine || this.#closed()) return;
      m.crashes = performance.now() - started > CRASH_WINDOW_MS
        ? 1
        : m.crashes + 1;
      onDeath();
      this.#log.log("error", dead.message);
    });
  }

  /**
   * Restarts the engine process of `m` if it died (after a backoff when it
   * keeps dying; one restart for all who ask); a model from guest bytes
   * cannot be restarted. `onDeath` is the new engine's, as in `watch`.
   */
  async ensure(m: Supervised, onDeath: () => void): Promise<void> {
    const engine = m.engine;
    if (!(engine instanceof EngineProcess) || !engine.dead) return;
    m.restarting ??= this.#restart(m, engine, onDeath).finally(() => {
      m.restarting = undefined;
    });
    await m.restarting;
  }

  async #restart(
    m: Supervised,
    dead: EngineProcess,
    onDeath: () => void,
  ): Promise<void> {
    if (m.fromGuest) {
      throw new WasiNnError(
        Errno.RuntimeError,
        `${
          dead.dead!.message.split("\n")[0]
        }; a model loaded from guest bytes cannot be restarted: load it again`,
      );
    }
    const delay = restartDelay(m.crashes);
    const log = this.#log;
    log.log(
      "warn",
      `restarting the engine of model '${m.label}' in ${delay} ms (${m.crashes} crash${
        m.crashes === 1 ? "" : "es"
      } in a row)`,
    );
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (this.#closed()) {
      throw new WasiNnError(Errno.RuntimeError, "the host was closed");
    }
    const proc = await this.start(m.label, false, m.options.rpcServers);
    try {
      await proc.load(m.path, m.options);
      if (m.projector) {
        await proc.projector(m.projector.path, m.projector.options);
      }
    } catch (e) {
      await proc.close();
      throw e;
    }
    m.engine = proc;
    this.watch(m, proc, onDeath);
    log.log(
      "info",
      `restarted the engine of model '${m.label}' (engine process ${proc.pid})`,
    );
  }
}

/** The RPC servers of `list` that do not answer now, in words. */
async function lostRpcServers(
  list: readonly string[],
): Promise<string | undefined> {
  const lost: string[] = [];
  await Promise.all(list.map(async (ep) => {
    try {
      await checkRpcServers([ep], { timeoutMs: 500, handshake: false });
    } catch {
      lost.push(ep);
    }
  }));
  return lost.length > 0
    ? `RPC server ${lost.sort().join(", ")} does not answer`
    : undefined;
}
