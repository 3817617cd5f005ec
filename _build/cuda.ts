/**
 * CUDA detection: nvcc, an NVIDIA GPU, and cuBLAS (from the toolkit, or from
 * the `nvidia-cublas` Python package that torch environments carry).
 * @module
 */

import { pathExists } from "../_internal/fs.ts";
import { capture, which } from "./exec.ts";
import {
  type CublasHints,
  DEFAULT_CUDA_ARCHITECTURES,
  type Variant,
} from "./cmake.ts";

/** Finds nvcc on PATH or in the usual toolkit folders. */
export async function findNvcc(): Promise<string | undefined> {
  return await which("nvcc") ??
    await which("/usr/local/cuda/bin/nvcc") ??
    await which("/opt/cuda/bin/nvcc");
}

/** Whether `nvidia-smi -L` lists at least one GPU. */
export async function hasNvidiaGpu(): Promise<boolean> {
  const smi = await which("nvidia-smi");
  if (!smi) return false;
  try {
    const out = await capture(smi, ["-L"]);
    return out.code === 0 && gpuListed(out.stdout);
  } catch {
    return false;
  }
}

/** Whether `nvidia-smi -L` output lists a GPU (`GPU 0: NVIDIA H100 ...`). */
export function gpuListed(nvidiaSmiOutput: string): boolean {
  return /^GPU \d+:/m.test(nvidiaSmiOutput);
}

/**
 * The variant to build: `cuda` true forces CUDA, false forbids it, undefined
 * builds CUDA when nvcc is found and a GPU is present.
 */
export function chooseVariant(
  cuda: boolean | undefined,
  found: { nvcc: boolean; gpu: boolean },
): Variant {
  if (cuda !== undefined) return cuda ? "cuda" : "cpu";
  return found.nvcc && found.gpu ? "cuda" : "cpu";
}

/** CMAKE_CUDA_ARCHITECTURES: the explicit list, else `native` with a GPU, else a fixed list. */
export function chooseCudaArchitectures(
  explicit: string | undefined,
  gpu: boolean,
): string {
  if (explicit) return explicit;
  return gpu ? "native" : DEFAULT_CUDA_ARCHITECTURES;
}

/**
 * The toolkit root from `nvcc -v --dryrun` output (`#$ TOP=/usr/local/cuda-13.0/bin/..`),
 * which also sees through wrapper scripts.
 */
export function parseNvccTop(output: string): string | undefined {
  const top = /^#\$ TOP=(.+)$/m.exec(output)?.[1].trim().replace(/^"|"$/g, "");
  return top?.replace(/\/bin\/\.\.\/?$/, "").replace(/\/$/, "");
}

/** The CUDA toolkit root of `nvcc` (where bin/, include/ and lib64/ are). */
export async function cudaToolkitRoot(nvcc: string): Promise<string> {
  try {
    const out = await capture(nvcc, [
      "-v",
      "--dryrun",
      "-x",
      "cu",
      "-c",
      "/dev/null",
      "-o",
      "/dev/null",
    ]);
    const top = parseNvccTop(out.stderr + out.stdout);
    if (top) return top;
  } catch {
    // fall through to the path of nvcc itself
  }
  const real = await Deno.realPath(nvcc).catch(() => nvcc);
  return real.replace(/\/bin\/nvcc$/, "");
}

/** Whether the CUDA toolkit at `root` (or the system) has cuBLAS headers and an unversioned libcublas.so. */
export async function systemHasCublas(root: string): Promise<boolean> {
  const triple = `${Deno.build.arch}-linux`;
  const includes = [
    `${root}/include`,
    `${root}/targets/${triple}/include`,
    "/usr/include",
  ];
  const libs = [
    `${root}/lib64`,
    `${root}/lib`,
    `${root}/targets/${triple}/lib`,
    `/usr/lib/${triple}-gnu`,
    "/usr/lib64",
  ];
  let header = false;
  for (const dir of includes) {
    if (await pathExists(`${dir}/cublas_v2.h`)) header = true;
  }
  let lib = false;
  for (const dir of libs) {
    if (await pathExists(`${dir}/libcublas.so`)) lib = true;
  }
  return header && lib;
}

/**
 * Reads `python3 -m pip show -f <package>` output: where cublas_v2.h,
 * libcublas and libcublasLt lie. Undefined when the output lacks them.
 */
export function parsePipShow(output: string): CublasHints | undefined {
  const location = /^Location:\s*(.+)$/m.exec(output)?.[1].trim();
  if (!location) return undefined;
  const files = output.split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.includes(": "));
  const find = (pattern: RegExp) => {
    const hit =
      files.filter((f) => pattern.test(f)).sort((a, b) =>
        a.length - b.length
      )[0];
    return hit ? `${location}/${hit}` : undefined;
  };
  const header = find(/(^|\/)include\/cublas_v2\.h$/);
  const cublas = find(/(^|\/)libcublas\.so(\.\d+)*$/);
  if (!header || !cublas) return undefined;
  return {
    includeDir: header.replace(/\/cublas_v2\.h$/, ""),
    cublas,
    cublasLt: find(/(^|\/)libcublasLt\.so(\.\d+)*$/),
  };
}

/** The Python packages that may carry cuBLAS, newest naming first. */
export const CUBLAS_PIP_PACKAGES = [
  "nvidia-cublas",
  "nvidia-cublas-cu13",
  "nvidia-cublas-cu12",
];

/** Looks for cuBLAS in the Python environment of `python3` (best effort). */
export async function findPipCublas(): Promise<CublasHints | undefined> {
  const python = await which("python3") ?? await which("python");
  if (!python) return undefined;
  for (const pkg of CUBLAS_PIP_PACKAGES) {
    try {
      const out = await capture(python, ["-m", "pip", "show", "-f", pkg]);
      if (out.code !== 0) continue;
      const hints = parsePipShow(out.stdout);
      if (hints) return hints;
    } catch {
      return undefined;
    }
  }
  return undefined;
}
