/**
 * Builds `libwasi_nn_backend.so`: the pinned llama.cpp (fetched once from the
 * git bundle inside the `node-llama-cpp` npm tarball, or `LLAMA_CPP_DIR`),
 * ggml and our shim, linked into one self-contained shared library. With
 * `--reference` it also builds llama.cpp's own tools for side-by-side tests
 * and benchmarks.
 *
 * Run it as `deno task build` (or `deno run -A build.ts --help`), or call
 * {@linkcode build} from code. An unchanged tree rebuilds in seconds: the
 * configure step is skipped when CMakeCache.txt already holds the same
 * options, and the CMake build is incremental.
 *
 * @example Command line
 * ```sh
 * deno task build                 # CPU, or CUDA when nvcc and a GPU are present
 * deno task build --cpu --quiet   # CPU only, print only the final line
 * deno task build:reference       # also llama-simple, llama-bench, ... into build/bin
 * ```
 *
 * @example From code
 * ```ts ignore
 * import { build } from "./build.ts";
 * const result = await build({ cuda: false, progress: "lines" });
 * console.log(result.library, result.backends);
 * ```
 *
 * @example What `--reference` builds
 * ```ts
 * import { REFERENCE_TOOLS } from "./build.ts";
 * console.log(REFERENCE_TOOLS.includes("llama-completion")); // true
 * ```
 * @module
 */

import { pathExists } from "./_internal/fs.ts";
import { isAbsolute, resolve } from "node:path";
import { envVar, paths } from "./paths.ts";
import { HELP, parseBuildArgs, UsageError } from "./_build/args.ts";
import {
  cmakeDefines,
  configureReason,
  type CublasHints,
  definesToArgs,
  parseCMakeCache,
  sourceMismatch,
  type Variant,
} from "./_build/cmake.ts";
import {
  chooseCudaArchitectures,
  chooseVariant,
  cudaToolkitRoot,
  findNvcc,
  findPipCublas,
  hasNvidiaGpu,
  systemHasCublas,
} from "./_build/cuda.ts";
import { BuildError } from "./_build/errors.ts";
import { probeAmx } from "./_build/cpu_probe.ts";
import { requireTool, runLogged, which } from "./_build/exec.ts";
import { copyIfChanged } from "./_build/fs.ts";
import { ensureLlamaCppDir } from "./_build/llama_cpp.ts";
import { nativeSourceDir } from "./_build/native.ts";
import {
  type BuildProgress,
  BuildProgressTracker,
  ProgressReporter,
} from "./_build/progress.ts";

export { BuildError } from "./_build/errors.ts";
export type { BuildProgress } from "./_build/progress.ts";
export type { Variant } from "./_build/cmake.ts";

/**
 * llama.cpp's own tools that `reference: true` (`--reference`) builds into
 * `paths().referenceBin`.
 *
 * @example
 * ```ts
 * import { REFERENCE_TOOLS } from "./build.ts";
 * console.log(REFERENCE_TOOLS.includes("llama-bench")); // true
 * ```
 */
export const REFERENCE_TOOLS: readonly string[] = [
  "llama-simple",
  "llama-completion",
  "llama-embedding",
  "llama-bench",
  "llama-batched-bench",
  "llama-quantize",
  // llama.cpp's tools/mtmd CLI: greedy parity for images and audio in the prompt.
  "llama-mtmd-cli",
  // llama.cpp's tests/test-chat-template.cpp (defined in native/CMakeLists.txt):
  // renders a chat template for given messages with llama.cpp's chat code.
  "test-chat-template",
];

/** The CMake target of our library. */
const LIBRARY_TARGET = "wasi_nn_backend";
/** The CMake target of the chat-template sandbox, built with the library. */
const CHAT_RENDER_TARGET = "wnb-chat-render";
/**
 * llama.cpp's RPC server (tools/rpc), built with the library from the same
 * checkout: its protocol must match the library's RPC client exactly.
 */
const RPC_SERVER_TARGET = "ggml-rpc-server";

/**
 * Options of {@linkcode build}.
 *
 * @example
 * ```ts
 * import type { BuildOptions } from "./build.ts";
 * const options: BuildOptions = { cuda: false, reference: true, jobs: 2 };
 * ```
 */
export interface BuildOptions {
  /** true: build CUDA (fail without nvcc/cuBLAS); false: CPU only; undefined: CUDA when nvcc and a GPU are present. */
  cuda?: boolean;
  /** CMAKE_CUDA_ARCHITECTURES; default "native" with a GPU present, else "80;86;89;90". */
  cudaArchitectures?: string;
  /** No `-march=native` (GGML_NATIVE=OFF), for a library that runs on other CPUs. */
  portable?: boolean;
  /** Also build llama.cpp's tools ({@linkcode REFERENCE_TOOLS}) into `paths().referenceBin`. */
  reference?: boolean;
  /** Parallel compile jobs; default: the number of CPU cores. */
  jobs?: number;
  /** Delete the variant's CMake build folder first. */
  clean?: boolean;
  /** The llama.cpp source tree; default `paths().llamaCpp` (`LLAMA_CPP_DIR`, else the pinned release). */
  llamaCppDir?: string;
  /** How progress is shown on stderr: "auto" (a bar on a terminal, else plain lines; the default), "bar", "lines" or "none". */
  progress?: "auto" | "bar" | "lines" | "none";
  /** Called for every progress event, whatever `progress` is. */
  onProgress?: (event: BuildProgress) => void;
  /** Receives warnings (default: printed to stderr in every progress mode). */
  onWarning?: (message: string) => void;
}

/**
 * What {@linkcode build} produced.
 *
 * @example
 * ```ts ignore
 * import { build, type BuildResult } from "./build.ts";
 * const result: BuildResult = await build({ progress: "none" });
 * console.log(`${result.library}: ${(result.sizeBytes / 1e6).toFixed(1)} MB`);
 * ```
 */
export interface BuildResult {
  /** The library: `paths().library`. */
  library: string;
  /** The chat-template sandbox: `paths().chatRender`. */
  chatRender: string;
  /** llama.cpp's RPC server from the same checkout: `paths().rpcServer`. */
  rpcServer: string;
  /** Its size in bytes. */
  sizeBytes: number;
  /** Whether the library file changed in this run. */
  libraryChanged: boolean;
  /** The variant built ("cpu" or "cuda"). */
  variant: Variant;
  /** The ggml backends inside the library. */
  backends: ("cpu" | "cuda" | "rpc")[];
  /** The reference tools copied (full paths), empty without `reference`. */
  referenceTools: string[];
  /** The llama.cpp source tree used. */
  llamaCppDir: string;
  /** The CMake build folder. */
  buildDir: string;
  /** The full log of the CMake runs. */
  logPath: string;
  /** Whether the CMake configure step ran (false: the cached one was reused). */
  configured: boolean;
  /** Wall-clock seconds of the whole build. */
  seconds: number;
}

/**
 * Options of {@linkcode ensureLlamaCpp}.
 *
 * @example
 * ```ts
 * import type { EnsureLlamaCppOptions } from "./build.ts";
 * const options: EnsureLlamaCppOptions = { llamaCppDir: "/tmp/llama.cpp" };
 * ```
 */
export interface EnsureLlamaCppOptions {
  /** Where the source tree is or goes; default `paths().llamaCpp`. A given folder at another commit only warns. */
  llamaCppDir?: string;
  /** Receives warnings (default: printed to stderr). */
  onWarning?: (message: string) => void;
  /** Receives progress notes such as "fetching ..." (default: printed to stderr). */
  onNote?: (message: string) => void;
}

/**
 * Makes sure the llama.cpp source tree is there and returns its path: uses
 * `LLAMA_CPP_DIR` (or `llamaCppDir`) when it exists, otherwise fetches the
 * pinned release (`npm pack node-llama-cpp@3.21.1`, only its git bundle is
 * extracted and cloned; about 30 s). Never fetches when the checkout is
 * already at the pinned commit (`LLAMA_CPP_COMMIT` in paths.ts).
 *
 * @example
 * ```ts ignore
 * import { ensureLlamaCpp } from "./build.ts";
 * const dir = await ensureLlamaCpp();
 * console.log(`llama.cpp source: ${dir}`);
 * ```
 */
export async function ensureLlamaCpp(
  options: EnsureLlamaCppOptions = {},
): Promise<string> {
  const { dir, userGiven } = llamaCppLocation(options.llamaCppDir);
  return await ensureLlamaCppDir(dir, {
    userGiven,
    warn: options.onWarning ??
      ((message) => console.error(`warning: ${message}`)),
    note: options.onNote ?? ((message) => console.error(message)),
  });
}

function llamaCppLocation(
  given: string | undefined,
): { dir: string; userGiven: boolean } {
  const fromEnv = envVar("LLAMA_CPP_DIR");
  const dir = given ?? paths().llamaCpp;
  return {
    dir: isAbsolute(dir) ? dir : resolve(dir),
    userGiven: given !== undefined || fromEnv !== undefined,
  };
}

const COMPILER_FIX =
  "apt-get install build-essential (gcc, g++, make), or set CC/CXX";

/** Fails early, with the fix, when cmake, make or a C/C++ compiler is missing. */
async function checkToolchain(): Promise<string> {
  const cmake = await requireTool(
    "cmake",
    "apt-get install cmake (3.18 or newer)",
  );
  const generator = envVar("CMAKE_GENERATOR") ?? "Unix Makefiles";
  if (
    generator.includes("Makefiles") &&
    !(await which("make") ?? await which("gmake"))
  ) {
    throw new BuildError("make not found on PATH", { fix: COMPILER_FIX });
  }
  if (generator.includes("Ninja")) {
    await requireTool("ninja", "apt-get install ninja-build");
  }
  const cxx = envVar("CXX")?.split(" ")[0];
  const cc = envVar("CC")?.split(" ")[0];
  if (
    !(cxx
      ? await which(cxx)
      : await which("c++") ?? await which("g++") ?? await which("clang++"))
  ) {
    throw new BuildError(`no C++ compiler found${cxx ? ` (CXX=${cxx})` : ""}`, {
      fix: COMPILER_FIX,
    });
  }
  if (
    !(cc
      ? await which(cc)
      : await which("cc") ?? await which("gcc") ?? await which("clang"))
  ) {
    throw new BuildError(`no C compiler found${cc ? ` (CC=${cc})` : ""}`, {
      fix: COMPILER_FIX,
    });
  }
  return cmake;
}

const CUBLAS_FIX =
  "install cuBLAS (the CUDA toolkit's libcublas and its headers, e.g. apt-get install libcublas-dev-13-0, " +
  "or `python3 -m pip install nvidia-cublas`), or build with --cpu";

/** The variant to build, with the nvcc path and any cuBLAS hints CUDA needs. */
async function resolveVariant(
  options: BuildOptions,
  warn: (message: string) => void,
): Promise<
  { variant: Variant; nvcc?: string; gpu: boolean; cublas?: CublasHints }
> {
  if (options.cuda === false) return { variant: "cpu", gpu: false };
  const [nvcc, gpu] = await Promise.all([findNvcc(), hasNvidiaGpu()]);
  const variant = chooseVariant(options.cuda, {
    nvcc: nvcc !== undefined,
    gpu,
  });
  if (variant === "cpu") return { variant, gpu };
  if (!nvcc) {
    throw new BuildError("CUDA requested but nvcc was not found", {
      fix:
        "install the CUDA toolkit and put its bin/ on PATH, or build with --cpu",
    });
  }
  // Hand CMake the toolkit's own nvcc, not a wrapper script on PATH.
  const root = await cudaToolkitRoot(nvcc);
  const compiler = await which(`${root}/bin/nvcc`) ?? nvcc;
  if (await systemHasCublas(root)) return { variant, nvcc: compiler, gpu };
  const cublas = await findPipCublas();
  if (cublas) return { variant, nvcc: compiler, gpu, cublas };
  if (options.cuda) {
    throw new BuildError(
      "CUDA requested but cuBLAS (cublas_v2.h, libcublas) was not found",
      {
        fix: CUBLAS_FIX,
      },
    );
  }
  warn(
    `a GPU and nvcc are present but cuBLAS is not (${CUBLAS_FIX}); building CPU only`,
  );
  return { variant: "cpu", gpu };
}

/** A BuildError for a failed configure, naming the likely cause. */
function configureError(
  tail: string[],
  logPath: string,
  variant: Variant,
): BuildError {
  const text = tail.join("\n");
  let message = "CMake configure failed";
  let fix =
    `read the log; if the build folder is stale, run again with --clean`;
  if (
    /No CMAKE_(C|CXX)_COMPILER could be found|CMAKE_(C|CXX)_COMPILER.*(not|no longer) (found|exist)/
      .test(text)
  ) {
    message = "CMake found no working C/C++ compiler";
    fix = COMPILER_FIX;
  } else if (variant === "cuda" && /cublas/i.test(text)) {
    message = "CMake configure failed: cuBLAS not found";
    fix = CUBLAS_FIX;
  } else if (
    variant === "cuda" &&
    /CMAKE_CUDA_COMPILER|CUDA compiler|CUDAToolkit/.test(text)
  ) {
    message = "CMake configure failed: the CUDA toolkit is not usable";
    fix = "check `nvcc --version` and CUDA_ARCHITECTURES, or build with --cpu";
  } else if (/LLAMA_CPP_DIR must point/.test(text)) {
    message =
      "CMake configure failed: LLAMA_CPP_DIR is not a llama.cpp source tree";
    fix = "point LLAMA_CPP_DIR at a llama.cpp checkout, or unset it";
  }
  return new BuildError(message, { fix, logPath, logTail: tail });
}

/** A BuildError for a failed compile or link. */
function compileError(
  tail: string[],
  logPath: string,
  jobs: number,
): BuildError {
  const text = tail.join("\n");
  if (
    /Killed signal terminated program|internal compiler error: Killed|virtual memory exhausted/
      .test(text)
  ) {
    return new BuildError("the compiler ran out of memory", {
      fix: `run again with fewer jobs (--jobs ${
        Math.max(1, Math.floor(jobs / 2))
      })`,
      logPath,
      logTail: tail,
    });
  }
  return new BuildError("compilation failed", {
    fix:
      "see the compiler errors above (the full log has all of them); if the build folder is stale, run again with --clean",
    logPath,
    logTail: tail,
  });
}

/**
 * Builds `paths().library` (and, with `reference`, llama.cpp's tools into
 * `paths().referenceBin`): fetches llama.cpp if needed, configures CMake when
 * the cached options differ, builds incrementally and copies the outputs
 * atomically. Throws {@linkcode BuildError} naming the cause and a fix.
 *
 * Needs `--allow-run --allow-read --allow-write --allow-env` (and
 * `--allow-net` when run from JSR, to fetch `native/`).
 *
 * @example
 * ```ts ignore
 * import { build, BuildError } from "./build.ts";
 * try {
 *   const result = await build({ reference: true });
 *   console.log(`${result.library} (${result.backends.join("+")}) in ${result.seconds.toFixed(1)} s`);
 * } catch (error) {
 *   if (error instanceof BuildError) console.error(error.message, "\nfix:", error.fix);
 *   throw error;
 * }
 * ```
 */
export async function build(options: BuildOptions = {}): Promise<BuildResult> {
  const start = performance.now();
  const mode = options.progress ?? "auto";
  const reporter = await ProgressReporter.create(
    mode === "auto" ? (Deno.stderr.isTerminal() ? "bar" : "lines") : mode,
  );
  const warn = options.onWarning ??
    ((message: string) => reporter.warn(message));
  const emit = (event: BuildProgress) => {
    options.onProgress?.(event);
    reporter.update(event);
  };
  try {
    const cmake = await checkToolchain();
    const p = paths();
    const { dir, userGiven } = llamaCppLocation(options.llamaCppDir);
    emit({ phase: "fetch", detail: `llama.cpp at ${dir}` });
    const llamaCppDir = await ensureLlamaCppDir(dir, {
      userGiven,
      warn,
      note: (message) => reporter.note(message),
    });

    const { variant, nvcc, gpu, cublas } = await resolveVariant(options, warn);
    const buildDir = p.cmakeBuild(variant);
    const logPath = `${buildDir}.log`;
    if (options.clean) {
      await Deno.remove(buildDir, { recursive: true }).catch(() => {});
    }
    const sourceDir = await nativeSourceDir(
      new URL("./native/", import.meta.url),
      p.root,
    );
    const portable = options.portable ?? false;
    const amx = portable ? "absent" : await probeAmx();
    if (amx === "faults") {
      reporter.note(
        "this CPU reports AMX but its tile instructions fault (a virtual machine without the tile state): building without AMX",
      );
    }
    const defines = cmakeDefines({
      llamaCppDir,
      variant,
      portable,
      arch: Deno.build.arch,
      noAmx: amx === "faults",
      cudaArchitectures: variant === "cuda"
        ? chooseCudaArchitectures(options.cudaArchitectures, gpu)
        : undefined,
      cudaCompiler: nvcc,
      cublas,
    });

    let cache = await Deno.readTextFile(`${buildDir}/CMakeCache.txt`)
      .then(parseCMakeCache, () => undefined);
    if (sourceMismatch(cache, sourceDir)) {
      reporter.note(
        `${buildDir} belongs to another source folder; starting it afresh`,
      );
      await Deno.remove(buildDir, { recursive: true });
      cache = undefined;
    }
    const generated = await pathExists(`${buildDir}/Makefile`) ||
      await pathExists(`${buildDir}/build.ninja`);
    const reason = configureReason(cache, defines, sourceDir, generated);
    const jobs = options.jobs ?? navigator.hardwareConcurrency ?? 2;

    await Deno.mkdir(buildDir, { recursive: true });
    using log = await Deno.open(logPath, {
      write: true,
      create: true,
      truncate: true,
    });

    if (reason !== undefined) {
      emit({ phase: "configure", detail: reason });
      const configure = await runLogged(cmake, [
        "-S",
        sourceDir,
        "-B",
        buildDir,
        ...definesToArgs(defines),
      ], {
        log,
        onLine: (line) => {
          if (line.startsWith("-- ")) {
            emit({ phase: "configure", detail: line.slice(3) });
          }
        },
      });
      if (configure.code !== 0) {
        throw configureError(configure.tail, logPath, variant);
      }
    }

    const targets = [
      LIBRARY_TARGET,
      CHAT_RENDER_TARGET,
      RPC_SERVER_TARGET,
      ...(options.reference ? REFERENCE_TOOLS : []),
    ];
    const tracker = new BuildProgressTracker(targets);
    emit({
      phase: "build",
      percent: 0,
      step: 1,
      steps: targets.length,
      target: targets[0],
      detail: "",
    });
    const compiled = await runLogged(cmake, [
      "--build",
      buildDir,
      "-j",
      String(jobs),
      "--target",
      ...targets,
    ], {
      log,
      onLine: (line) => {
        const event = tracker.update(line);
        if (event) emit(event);
      },
    });
    if (compiled.code !== 0) throw compileError(compiled.tail, logPath, jobs);

    emit({ phase: "copy", percent: 100, detail: p.library });
    const libraryChanged = await copyIfChanged(
      `${buildDir}/lib/lib${LIBRARY_TARGET}.so`,
      p.library,
    );
    await copyIfChanged(`${buildDir}/bin/${CHAT_RENDER_TARGET}`, p.chatRender);
    await copyIfChanged(`${buildDir}/bin/${RPC_SERVER_TARGET}`, p.rpcServer);
    const referenceTools: string[] = [];
    for (const tool of options.reference ? REFERENCE_TOOLS : []) {
      const to = `${p.referenceBin}/${tool}`;
      await copyIfChanged(`${buildDir}/bin/${tool}`, to);
      referenceTools.push(to);
    }
    const { size } = await Deno.stat(p.library);
    return {
      library: p.library,
      chatRender: p.chatRender,
      rpcServer: p.rpcServer,
      sizeBytes: size,
      libraryChanged,
      variant,
      backends: variant === "cuda" ? ["cpu", "cuda", "rpc"] : ["cpu", "rpc"],
      referenceTools,
      llamaCppDir,
      buildDir,
      logPath,
      configured: reason !== undefined,
      seconds: (performance.now() - start) / 1000,
    };
  } finally {
    reporter.clear();
  }
}

/** The final line of a successful build. */
function summary(result: BuildResult): string {
  const tools = result.referenceTools.length
    ? `, ${result.referenceTools.length} reference tools in ${
      result.referenceTools[0].replace(/\/[^/]+$/, "")
    }`
    : "";
  return `built ${result.library} (${
    (result.sizeBytes / 1e6).toFixed(1)
  } MB, backends: ${result.backends.join("+")}${tools}) in ${
    result.seconds.toFixed(1)
  } s`;
}

/** Prints a failure: cause, the tool's last output lines, the full log, and the fix. */
function printError(error: unknown): void {
  if (error instanceof BuildError) {
    console.error(`error: ${error.message}`);
    if (error.logTail?.length) {
      console.error(`--- last ${error.logTail.length} lines of output ---`);
      for (const line of error.logTail) console.error(line);
      console.error("---");
    }
    if (error.logPath) console.error(`full log: ${error.logPath}`);
    console.error(`fix: ${error.fix}`);
  } else if (
    error instanceof Deno.errors.NotCapable ||
    error instanceof Deno.errors.PermissionDenied
  ) {
    console.error(`error: ${(error as Error).message}`);
    console.error(
      "fix: run with -A (or --allow-run --allow-read --allow-write --allow-env --allow-net)",
    );
  } else {
    console.error(
      `error: ${
        error instanceof Error ? error.stack ?? error.message : String(error)
      }`,
    );
  }
}

/**
 * The command line: parses `args`, builds, prints the final line, and returns
 * the exit code (0 ok, 1 build failure, 2 usage error).
 *
 * @example
 * ```ts ignore
 * import { main } from "./build.ts";
 * Deno.exit(await main(["--cpu", "--quiet"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let cli;
  try {
    cli = parseBuildArgs(args, {
      CUDA_ARCHITECTURES: envVar("CUDA_ARCHITECTURES"),
    });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`error: ${error.message}\nRun with --help for usage.`);
    return 2;
  }
  if (cli.help) {
    console.log(HELP);
    return 0;
  }
  try {
    if (cli.fetchOnly) {
      const dir = await ensureLlamaCpp({
        onNote: cli.quiet ? () => {} : undefined,
      });
      console.log(`llama.cpp source: ${dir}`);
      return 0;
    }
    const result = await build({
      cuda: cli.cuda,
      cudaArchitectures: cli.cudaArchitectures,
      portable: cli.portable,
      reference: cli.reference,
      jobs: cli.jobs,
      clean: cli.clean,
      progress: cli.quiet ? "none" : "auto",
    });
    console.log(summary(result));
    return 0;
  } catch (error) {
    printError(error);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
