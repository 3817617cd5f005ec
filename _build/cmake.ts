/**
 * CMake option derivation and CMakeCache.txt comparison, so that an unchanged
 * build skips the configure step.
 * @module
 */

/** The build variant: its own CMake build folder. */
export type Variant = "cpu" | "cuda";

/** cuBLAS locations to hand to CMake's FindCUDAToolkit when the toolkit lacks it. */
export interface CublasHints {
  /** Folder holding `cublas_v2.h`. */
  includeDir: string;
  /** Full path of libcublas (possibly versioned, e.g. `libcublas.so.13`). */
  cublas: string;
  /** Full path of libcublasLt. */
  cublasLt?: string;
}

/** Inputs of {@linkcode cmakeDefines}. */
export interface CMakeInputs {
  llamaCppDir: string;
  variant: Variant;
  /**
   * GGML_NATIVE=OFF: no `-march=native`. On x86-64 this sets ggml's own
   * non-native instruction set (SSE4.2, AVX, AVX2, BMI2, FMA, F16C: any x86-64
   * CPU since 2013); elsewhere the compiler's baseline for the architecture.
   */
  portable: boolean;
  /** The CPU architecture (`Deno.build.arch`). */
  arch: string;
  /**
   * A native x86-64 build without AMX (`-mno-amx-*`): the CPU reports AMX but
   * its tile instructions fault (`cpu_probe.ts`).
   */
  noAmx?: boolean;
  /** CMAKE_CUDA_ARCHITECTURES (cuda only). */
  cudaArchitectures?: string;
  /** nvcc, when it is not simply `nvcc` on PATH (cuda only). */
  cudaCompiler?: string;
  /** cuBLAS outside the CUDA toolkit (cuda only). */
  cublas?: CublasHints;
}

/**
 * The `-D` options of the configure step, in a stable order. The reference
 * tools are always configured, so the library and tool builds share one
 * configure.
 */
export function cmakeDefines(inputs: CMakeInputs): [string, string][] {
  const defines: [string, string][] = [
    ["CMAKE_BUILD_TYPE", "Release"],
    ["LLAMA_CPP_DIR", inputs.llamaCppDir],
    ["WASI_NN_REFERENCE_TOOLS", "ON"],
    ["GGML_NATIVE", inputs.portable ? "OFF" : "ON"],
    ["GGML_CUDA", inputs.variant === "cuda" ? "ON" : "OFF"],
    // ggml's own thread pool instead of OpenMP: OpenMP gives every calling
    // thread its own team, and Deno's non-blocking FFI calls come from
    // varying threads, so a process soon holds more spinning threads than
    // cores and every decode slows by 20-45%. Without OpenMP the `poll`
    // setting also takes effect. The reference tools are built the same way.
    ["GGML_OPENMP", "OFF"],
    // ggml's RPC backend (models split across rpc-server processes, issue 13)
    // in the one library, on every variant. No RDMA: it would link
    // libibverbs into a library that must stay self-contained.
    ["GGML_RPC", "ON"],
    ["GGML_RPC_RDMA", "OFF"],
  ];
  if (inputs.portable && inputs.arch === "x86_64") {
    // Explicit, because option() keeps the values cached by an earlier native
    // configure of the same folder (where they default to OFF).
    for (const flag of PORTABLE_X86_FLAGS) defines.push([flag, "ON"]);
  }
  const cFlags: string[] = [];
  if (inputs.noAmx && !inputs.portable && inputs.arch === "x86_64") {
    // gcc and clang let an explicit -mno-* win over -march=native, whatever
    // the order, so ggml's own -march=native still applies the rest.
    cFlags.push(...NO_AMX_FLAGS);
  }
  const cxxFlags = [...cFlags];
  if (inputs.variant === "cuda") {
    defines.push([
      "CMAKE_CUDA_ARCHITECTURES",
      inputs.cudaArchitectures ?? DEFAULT_CUDA_ARCHITECTURES,
    ]);
    if (inputs.cudaCompiler) {
      defines.push(["CMAKE_CUDA_COMPILER", inputs.cudaCompiler]);
    }
    const cublas = inputs.cublas;
    if (cublas) {
      defines.push(["CUDA_cublas_LIBRARY", cublas.cublas]);
      if (cublas.cublasLt) {
        defines.push(["CUDA_cublasLt_LIBRARY", cublas.cublasLt]);
      }
      const libDir = cublas.cublas.replace(/\/[^/]+$/, "");
      defines.push(["CMAKE_CUDA_FLAGS", `-I${cublas.includeDir}`]);
      cxxFlags.push(`-I${cublas.includeDir}`);
      defines.push(["CMAKE_SHARED_LINKER_FLAGS", `-Wl,-rpath,${libDir}`]);
      defines.push(["CMAKE_EXE_LINKER_FLAGS", `-Wl,-rpath,${libDir}`]);
    }
  }
  // Always given (empty too): a cached value of an earlier configure stays
  // otherwise.
  defines.push(["CMAKE_C_FLAGS", cFlags.join(" ")]);
  defines.push(["CMAKE_CXX_FLAGS", cxxFlags.join(" ")]);
  return defines;
}

/** The compiler flags of a native x86-64 build whose AMX faults. */
export const NO_AMX_FLAGS = ["-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16"];

/** ggml's instruction-set options that a non-native x86-64 build turns on. */
export const PORTABLE_X86_FLAGS = [
  "GGML_SSE42",
  "GGML_AVX",
  "GGML_AVX2",
  "GGML_BMI2",
  "GGML_FMA",
  "GGML_F16C",
];

/** CUDA architectures built when no GPU is present to ask: Ampere, Ada, Hopper. */
export const DEFAULT_CUDA_ARCHITECTURES = "80;86;89;90";

/** `-DNAME=VALUE` arguments for the defines. */
export function definesToArgs(defines: [string, string][]): string[] {
  return defines.map(([name, value]) => `-D${name}=${value}`);
}

/** Parses CMakeCache.txt into a map of variable name to value. */
export function parseCMakeCache(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#") || line.startsWith("//")) continue;
    const match = /^("[^"]+"|[^:=]+)(?::[^=]*)?=(.*)$/.exec(line);
    if (match) entries.set(match[1].replace(/^"|"$/g, ""), match[2]);
  }
  return entries;
}

const TRUE_VALUES = new Set(["ON", "TRUE", "YES", "Y", "1"]);
const FALSE_VALUES = new Set(["OFF", "FALSE", "NO", "N", "0", ""]);

function sameValue(a: string, b: string): boolean {
  if (a === b) return true;
  const [x, y] = [a.toUpperCase(), b.toUpperCase()];
  return (TRUE_VALUES.has(x) && TRUE_VALUES.has(y)) ||
    (FALSE_VALUES.has(x) && FALSE_VALUES.has(y));
}

/**
 * Why the configure step must run, or undefined when the existing cache was
 * made from the same source folder with the same options and its generated
 * build files are there.
 */
export function configureReason(
  cache: Map<string, string> | undefined,
  defines: [string, string][],
  sourceDir: string,
  generated: boolean,
): string | undefined {
  if (!cache) return "no CMakeCache.txt yet";
  if (sourceMismatch(cache, sourceDir)) {
    return `the build folder was configured for ${
      cache.get("CMAKE_HOME_DIRECTORY")
    }`;
  }
  for (const [name, value] of defines) {
    const cached = cache.get(name);
    if (cached === undefined) return `${name} is not set yet`;
    if (!sameValue(cached, value)) {
      return `${name} changed (${cached} -> ${value})`;
    }
  }
  if (!generated) return "the previous configure did not finish";
  return undefined;
}

/** Whether the build folder was configured for a different source folder (cmake refuses to reuse it). */
export function sourceMismatch(
  cache: Map<string, string> | undefined,
  sourceDir: string,
): boolean {
  const home = cache?.get("CMAKE_HOME_DIRECTORY");
  return home !== undefined &&
    home.replace(/\/$/, "") !== sourceDir.replace(/\/$/, "");
}
