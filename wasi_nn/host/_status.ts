/**
 * The host's status view: its sessions, its models with their schedulers,
 * its limits and the process's resident memory.
 *
 * @example
 * ```ts ignore
 * import { hostStatus } from "./_status.ts";
 * const st = hostStatus(store, models.entries());
 * console.log(st.sessions.length, st.models.length);
 * ```
 * @module
 */

import type { SchedulerStats } from "../engine/scheduler.ts";
import { EngineProcess } from "../engine/process/engine_process.ts";
import type { ModelEntry } from "./_models.ts";
import type { Session } from "./_session.ts";
import type { SessionStore } from "./sessions.ts";

/** What `status()` reports. */
export interface HostStatus {
  /** Sessions (execution contexts). */
  sessions: {
    handle: number;
    id: string;
    graph: number;
    model: string;
    busy: boolean;
    cachedTokens: number;
    idleMs: number;
  }[];
  /** Loaded models and their schedulers. */
  models: {
    label: string;
    path: string;
    users: number;
    /** Where its engine runs: "in_process", or "process" with the engine's pid and its crashes in a row. */
    engine: { kind: "in_process" | "process"; pid?: number; crashes: number };
    /** Each scheduler's shape, KV cache size and counters. */
    schedulers: (SchedulerStats & {
      nSeq: number;
      nCtxPerSeq: number;
      /** Bytes of its KV cache. */
      kvBytes: number;
    })[];
  }[];
  /** Limits. */
  limits: { maxSessions: number; idleTimeoutMs: number };
  /** Resident memory of the process (bytes). */
  rss: number;
}

/** The status now, without the schedulers' counters. */
export function hostStatus(
  store: SessionStore<Session>,
  models: ModelEntry[],
): HostStatus {
  const sessions = store.entries().map(({ session: s, idleMs }) => ({
    handle: s.handle,
    id: s.name,
    graph: s.graph.handle,
    model: s.model.label,
    busy: s.busy,
    cachedTokens: s.owner?.cached.length ?? 0,
    idleMs: Math.round(idleMs),
  }));
  return {
    sessions,
    models: models.map((m) => ({
      label: m.label,
      path: m.path,
      users: m.refs,
      engine: {
        kind: m.engine.kind,
        pid: m.engine instanceof EngineProcess ? m.engine.pid : undefined,
        crashes: m.crashes,
      },
      schedulers: [],
    })),
    limits: store.limits,
    rss: Deno.memoryUsage().rss,
  };
}

/** The status with each model's schedulers and their live counters. */
export async function hostStatusWithSchedulers(
  store: SessionStore<Session>,
  models: ModelEntry[],
): Promise<HostStatus> {
  const st = hostStatus(store, models);
  for (const [i, m] of models.entries()) {
    for (const e of m.schedulers.values()) {
      try {
        const s = await e.ready;
        st.models[i].schedulers.push({
          nSeq: s.nSeq,
          nCtxPerSeq: s.nCtxPerSeq,
          kvBytes: s.kvBytes,
          ...s.stats,
        });
      } catch { /* failed to create */ }
    }
  }
  return st;
}
