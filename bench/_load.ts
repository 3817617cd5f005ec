/**
 * Foreign CPU load: how much CPU other processes (or the hypervisor, as
 * steal time) took while a pair ran. On a 2-core machine, thread pools that
 * spin-wait collapse when anything else runs, so a pair that shared the CPUs
 * measures the neighbours, not us: such pairs are run again.
 *
 * Linux only (`/proc`); elsewhere the load reads as unknown (NaN) and no pair
 * is discarded.
 * @module
 */

/** Clock ticks of the whole machine and of this process (its reaped children included). */
export interface CpuSnapshot {
  /** performance.now() when taken. */
  wallMs: number;
  /** Busy ticks of all CPUs (user, nice, system, irq, softirq, steal). */
  busyTicks: number;
  /** This process's ticks plus those of its waited-for children. */
  ownTicks: number;
}

/** Ticks per second of /proc (USER_HZ; 100 on every mainstream Linux). */
const USER_HZ = 100;

/** Parses the aggregate `cpu` line of /proc/stat into busy ticks. */
export function parseProcStatBusy(text: string): number {
  const line = text.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) throw new Error("no cpu line in /proc/stat");
  const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line.trim()
    .split(/\s+/)
    .slice(1).map(Number);
  return user + nice + system + irq + softirq + (steal || 0);
}

/** Parses /proc/self/stat: utime + stime + cutime + cstime. */
export function parseProcSelfTicks(text: string): number {
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state): utime..cstime are fields 14..17.
  return Number(rest[11]) + Number(rest[12]) + Number(rest[13]) +
    Number(rest[14]);
}

/** Takes a snapshot, or undefined where /proc is not readable. */
export function cpuSnapshot(): CpuSnapshot | undefined {
  try {
    return {
      wallMs: performance.now(),
      busyTicks: parseProcStatBusy(Deno.readTextFileSync("/proc/stat")),
      ownTicks: parseProcSelfTicks(Deno.readTextFileSync("/proc/self/stat")),
    };
  } catch {
    return undefined;
  }
}

/**
 * CPUs' worth of work done by anything but this process and its children
 * between two snapshots (e.g. 0.5 = half a core on average); NaN if unknown.
 */
export function foreignLoad(
  a: CpuSnapshot | undefined,
  b: CpuSnapshot | undefined,
): number {
  if (!a || !b || b.wallMs <= a.wallMs) return NaN;
  const foreignTicks = (b.busyTicks - a.busyTicks) - (b.ownTicks - a.ownTicks);
  return Math.max(0, foreignTicks / USER_HZ) / ((b.wallMs - a.wallMs) / 1000);
}
