/**
 * Command-line parsing of build.ts (node:util parseArgs).
 * @module
 */

import { parseArgs } from "node:util";

/** Usage text of `deno task build`. */
export const HELP =
  `Build libwasi_nn_backend.so: the pinned llama.cpp + our shim, in one self-contained library.

Usage: deno run -A build.ts [options]      (deno task build, deno task build:reference)

Options:
  --cpu                       CPU only, even when a GPU and nvcc are present
  --cuda                      build the CUDA backend (fails when nvcc or cuBLAS is missing)
                              default: CUDA when nvcc is found and nvidia-smi lists a GPU
  --cuda-architectures LIST   CMAKE_CUDA_ARCHITECTURES, e.g. "86;90" (env CUDA_ARCHITECTURES);
                              default "native" with a GPU present, else "80;86;89;90"
  --portable                  no -march=native (GGML_NATIVE=OFF): runs on other CPUs of this kind
  --reference                 also build llama.cpp's tools (llama-simple, llama-completion,
                              llama-embedding, llama-bench, llama-batched-bench, llama-quantize)
                              into build/bin
  --jobs N, -j N              parallel compile jobs (default: number of CPU cores)
  --clean                     delete this variant's CMake build folder first (full rebuild)
  --fetch-only                only make sure the llama.cpp source is there, then stop
  --quiet, -q                 print only errors, warnings and the final line
  --help, -h                  show this help

Environment:
  LLAMA_CPP_DIR      use this llama.cpp source tree instead of fetching the pinned release
  WASI_NN_HOME       root of .cache/ and build/ (default: the repository, or ~/.cache from JSR)
  CUDA_ARCHITECTURES same as --cuda-architectures

Outputs: build/lib/libwasi_nn_backend.so, build/bin/wnb-chat-render (the chat-template
sandbox), and llama.cpp's tools in build/bin with --reference;
the full tool output of each build goes to build/cmake-<variant>.log.`;

/** A command-line mistake: print it with the usage hint and exit 2. */
export class UsageError extends Error {
  /** Creates a usage error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** What the command line asks for. */
export interface CliOptions {
  help: boolean;
  quiet: boolean;
  fetchOnly: boolean;
  /** true: --cuda, false: --cpu, undefined: detect. */
  cuda?: boolean;
  cudaArchitectures?: string;
  portable: boolean;
  reference: boolean;
  jobs?: number;
  clean: boolean;
}

/**
 * Parses build.ts arguments. `env` supplies CUDA_ARCHITECTURES (the flag wins).
 * Throws {@linkcode UsageError} on unknown flags, positionals, a bad --jobs,
 * or --cpu with --cuda.
 */
export function parseBuildArgs(
  args: string[],
  env: { CUDA_ARCHITECTURES?: string } = {},
): CliOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        cpu: { type: "boolean", default: false },
        cuda: { type: "boolean", default: false },
        "cuda-architectures": { type: "string" },
        portable: { type: "boolean", default: false },
        reference: { type: "boolean", default: false },
        jobs: { type: "string", short: "j" },
        clean: { type: "boolean", default: false },
        "fetch-only": { type: "boolean", default: false },
        quiet: { type: "boolean", short: "q", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.cpu && values.cuda) {
    throw new UsageError("--cpu and --cuda exclude each other");
  }
  let jobs: number | undefined;
  if (values.jobs !== undefined) {
    jobs = Number(values.jobs);
    if (!/^\d+$/.test(values.jobs) || jobs < 1) {
      throw new UsageError(
        `--jobs needs a positive whole number, got '${values.jobs}'`,
      );
    }
  }
  const architectures = (values["cuda-architectures"] ?? env.CUDA_ARCHITECTURES)
    ?.trim();
  if (
    architectures !== undefined && !/^[A-Za-z0-9_;,-]+$/.test(architectures)
  ) {
    throw new UsageError(
      `--cuda-architectures takes a list such as "86;90" or "native", got '${architectures}'`,
    );
  }
  return {
    help: values.help,
    quiet: values.quiet,
    fetchOnly: values["fetch-only"],
    cuda: values.cuda ? true : values.cpu ? false : undefined,
    cudaArchitectures: architectures
      ? architectures.replaceAll(",", ";")
      : undefined,
    portable: values.portable,
    reference: values.reference,
    jobs,
    clean: values.clean,
  };
}
