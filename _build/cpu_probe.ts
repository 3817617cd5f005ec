/**
 * Whether this CPU's AMX units work, for a native build (`-march=native`).
 *
 * Some virtual machines report AMX in CPUID (and /proc/cpuinfo) without
 * giving the guest the tile state: the kernel grants the permission, and the
 * first tile instruction then faults (SIGILL or SIGSEGV). ggml's native
 * build compiles its AMX kernels in whenever the compiler sees AMX, so every
 * decode on such a machine kills the process: llama.cpp's own tools too.
 * The probe compiles and runs a few tile instructions; when they fault, the
 * build adds `-mno-amx-*` (see `cmakeDefines`' `noAmx`), and ggml keeps its
 * AVX-512 kernels.
 * @module
 */

import { capture, which } from "./exec.ts";

/** What the probe found: no AMX reported, AMX that works, AMX that faults, or no compiler to tell. */
export type AmxState = "absent" | "usable" | "faults" | "unknown";

/** The probe: the permission request and one tile multiply (AMX-TILE and AMX-INT8, what ggml uses). */
const PROBE_C = `#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
  if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18)) return 2;
  struct {
    uint8_t palette, start, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
  } __attribute__((packed)) cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int i = 0; i < 3; i++) { cfg.colsb[i] = 64; cfg.rows[i] = 16; }
  _tile_loadconfig(&cfg);
  _tile_zero(0); _tile_zero(1); _tile_zero(2);
  _tile_dpbssd(0, 1, 2);
  _tile_release();
  return 0;
}
`;

/** Whether /proc/cpuinfo's flags (of the first CPU) name AMX. */
export function cpuinfoHasAmx(cpuinfo: string): boolean {
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].split(/\s+/) ?? [];
  return flags.includes("amx_tile");
}

/**
 * Probes AMX on this machine: "absent" off x86-64 Linux or when the CPU does
 * not report it, else the result of running the probe ("unknown" when no C
 * compiler takes `-mamx-tile`: then none emits AMX for ggml either).
 */
export async function probeAmx(): Promise<AmxState> {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    return "absent";
  }
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  if (!cpuinfoHasAmx(cpuinfo)) return "absent";
  const cc = await which("cc") ?? await which("gcc") ?? await which("clang");
  if (!cc) return "unknown";
  const dir = await Deno.makeTempDir({ prefix: "wnb-amx-" });
  try {
    await Deno.writeTextFile(`${dir}/p.c`, PROBE_C);
    const built = await capture(cc, [
      ...["-O1", "-mamx-tile", "-mamx-int8", `${dir}/p.c`, "-o", `${dir}/p`],
    ]);
    if (built.code !== 0) return "unknown";
    const ran = await new Deno.Command(`${dir}/p`, {
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return ran.success ? "usable" : "faults";
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
