// Tests of build.ts's pure logic (arguments, CMake options, cache reuse,
// progress parsing, CUDA detection rules) and of the llama.cpp commit check
// against real git repositories.
import assert from "node:assert/strict";
import { fromFileUrl } from "../_internal/file_url.ts";
import { LLAMA_CPP_COMMIT, paths } from "../paths.ts";
import { parseBuildArgs, UsageError } from "../_build/args.ts";
import {
  cmakeDefines,
  configureReason,
  DEFAULT_CUDA_ARCHITECTURES,
  definesToArgs,
  NO_AMX_FLAGS,
  parseCMakeCache,
  PORTABLE_X86_FLAGS,
  sourceMismatch,
} from "../_build/cmake.ts";
import { cpuinfoHasAmx, probeAmx } from "../_build/cpu_probe.ts";
import {
  chooseCudaArchitectures,
  chooseVariant,
  gpuListed,
  parseNvccTop,
  parsePipShow,
} from "../_build/cuda.ts";
import { copyIfChanged } from "../_build/fs.ts";
import {
  checkLlamaCpp,
  ensureLlamaCppDir,
  gitHead,
  tarballName,
} from "../_build/llama_cpp.ts";
import { NATIVE_FILES, nativeSourceDir } from "../_build/native.ts";
import { BuildError } from "../_build/errors.ts";
import {
  BuildProgressTracker,
  formatProgress,
  parseProgressLine,
} from "../_build/progress.ts";

const NATIVE_DIR = fromFileUrl(new URL("../native", import.meta.url));

Deno.test("parseBuildArgs: defaults", () => {
  assert.deepEqual(parseBuildArgs([]), {
    help: false,
    quiet: false,
    fetchOnly: false,
    cuda: undefined,
    cudaArchitectures: undefined,
    portable: false,
    reference: false,
    jobs: undefined,
    clean: false,
  });
});

Deno.test("parseBuildArgs: flags", () => {
  const cli = parseBuildArgs([
    "--cuda",
    "--portable",
    "--reference",
    "--quiet",
    "--jobs",
    "4",
    "--clean",
    "--cuda-architectures",
    "86,90",
  ]);
  assert.deepEqual(cli.cuda, true);
  assert.deepEqual(cli.portable, true);
  assert.deepEqual(cli.reference, true);
  assert.deepEqual(cli.quiet, true);
  assert.deepEqual(cli.jobs, 4);
  assert.deepEqual(cli.clean, true);
  assert.deepEqual(cli.cudaArchitectures, "86;90");
  assert.deepEqual(parseBuildArgs(["--cpu"]).cuda, false);
  assert.deepEqual(parseBuildArgs(["-j", "3"]).jobs, 3);
  assert.deepEqual(parseBuildArgs(["-h"]).help, true);
  assert.deepEqual(parseBuildArgs(["--fetch-only"]).fetchOnly, true);
});

Deno.test("parseBuildArgs: CUDA_ARCHITECTURES from the environment; the flag wins", () => {
  assert.deepEqual(
    parseBuildArgs([], { CUDA_ARCHITECTURES: "89" }).cudaArchitectures,
    "89",
  );
  assert.deepEqual(
    parseBuildArgs(["--cuda-architectures", "90"], { CUDA_ARCHITECTURES: "89" })
      .cudaArchitectures,
    "90",
  );
});

Deno.test("parseBuildArgs: mistakes are usage errors", () => {
  for (
    const args of [
      ["--cpu", "--cuda"],
      ["--jobs", "0"],
      ["--jobs", "two"],
      ["--jobs", "1.5"],
      ["--nope"],
      ["positional"],
      ["--cuda-architectures", "86; rm -rf /"],
    ]
  ) {
    assert.throws(() => parseBuildArgs(args), UsageError, args.join(" "));
  }
});

Deno.test("cmakeDefines: CPU defaults are the options of the shared configure", () => {
  const defines = cmakeDefines({
    llamaCppDir: "/src/llama.cpp",
    variant: "cpu",
    portable: false,
    arch: "x86_64",
  });
  assert.deepEqual(definesToArgs(defines), [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CPP_DIR=/src/llama.cpp",
    "-DWASI_NN_REFERENCE_TOOLS=ON",
    "-DGGML_NATIVE=ON",
    "-DGGML_CUDA=OFF",
    "-DGGML_OPENMP=OFF",
    "-DGGML_RPC=ON",
    "-DGGML_RPC_RDMA=OFF",
    "-DCMAKE_C_FLAGS=",
    "-DCMAKE_CXX_FLAGS=",
  ]);
});

Deno.test("cmakeDefines: noAmx adds -mno-amx-* to a native x86-64 build only, beside cuBLAS's include", () => {
  const base = {
    llamaCppDir: "/l",
    variant: "cpu" as const,
    portable: false,
    arch: "x86_64",
    noAmx: true,
  };
  const native = new Map(cmakeDefines(base));
  assert.deepEqual(native.get("CMAKE_C_FLAGS"), NO_AMX_FLAGS.join(" "));
  assert.deepEqual(native.get("CMAKE_CXX_FLAGS"), NO_AMX_FLAGS.join(" "));
  assert.deepEqual(native.get("GGML_NATIVE"), "ON");
  for (const other of [{ portable: true }, { arch: "aarch64" }]) {
    const d = new Map(cmakeDefines({ ...base, ...other }));
    assert.deepEqual(d.get("CMAKE_C_FLAGS"), "", JSON.stringify(other));
  }
  const cuda = new Map(cmakeDefines({
    ...base,
    variant: "cuda",
    cublas: { includeDir: "/inc", cublas: "/lib/libcublas.so.13" },
  }));
  assert.deepEqual(
    cuda.get("CMAKE_CXX_FLAGS"),
    [...NO_AMX_FLAGS, "-I/inc"].join(" "),
  );
});

Deno.test("the AMX probe: cpuinfo's flags decide whether it runs, and what it finds is what the build uses", async () => {
  assert.equal(
    cpuinfoHasAmx("flags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n"),
    true,
  );
  assert.equal(
    cpuinfoHasAmx("flags\t\t: fpu avx2 fma\nbugs\t: amx_tile\n"),
    false,
  );
  assert.equal(cpuinfoHasAmx(""), false);
  const state = await probeAmx();
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  if (!cpuinfoHasAmx(cpuinfo)) assert.equal(state, "absent");
  else assert.notEqual(state, "absent");
  // The library of this checkout was configured from the same probe.
  const cache = await Deno.readTextFile(
    `${paths().cmakeBuild("cpu")}/CMakeCache.txt`,
  ).then(parseCMakeCache, () => undefined);
  if (cache?.get("GGML_NATIVE") === "ON") {
    assert.equal(
      cache.get("CMAKE_C_FLAGS")?.includes("-mno-amx-tile") ?? false,
      state === "faults",
      `AMX ${state}, CMAKE_C_FLAGS '${cache.get("CMAKE_C_FLAGS")}'`,
    );
  }
});

Deno.test("cmakeDefines: --portable turns off GGML_NATIVE and, on x86-64, sets ggml's ISA options", () => {
  const x86 = new Map(
    cmakeDefines({
      llamaCppDir: "/l",
      variant: "cpu",
      portable: true,
      arch: "x86_64",
    }),
  );
  assert.deepEqual(x86.get("GGML_NATIVE"), "OFF");
  for (const flag of PORTABLE_X86_FLAGS) assert.deepEqual(x86.get(flag), "ON");
  const arm = new Map(
    cmakeDefines({
      llamaCppDir: "/l",
      variant: "cpu",
      portable: true,
      arch: "aarch64",
    }),
  );
  assert.deepEqual(arm.get("GGML_NATIVE"), "OFF");
  assert.deepEqual(arm.has("GGML_AVX2"), false);
});

Deno.test("cmakeDefines: CUDA with architectures, compiler and pip cuBLAS hints", () => {
  const defines = new Map(cmakeDefines({
    llamaCppDir: "/l",
    variant: "cuda",
    portable: false,
    arch: "x86_64",
    cudaArchitectures: "90",
    cudaCompiler: "/usr/local/cuda/bin/nvcc",
    cublas: {
      includeDir: "/py/nvidia/cublas/include",
      cublas: "/py/nvidia/cublas/lib/libcublas.so.13",
      cublasLt: "/py/nvidia/cublas/lib/libcublasLt.so.13",
    },
  }));
  assert.deepEqual(defines.get("GGML_CUDA"), "ON");
  assert.deepEqual(defines.get("CMAKE_CUDA_ARCHITECTURES"), "90");
  assert.deepEqual(
    defines.get("CMAKE_CUDA_COMPILER"),
    "/usr/local/cuda/bin/nvcc",
  );
  assert.deepEqual(
    defines.get("CUDA_cublas_LIBRARY"),
    "/py/nvidia/cublas/lib/libcublas.so.13",
  );
  assert.deepEqual(
    defines.get("CUDA_cublasLt_LIBRARY"),
    "/py/nvidia/cublas/lib/libcublasLt.so.13",
  );
  assert.deepEqual(
    defines.get("CMAKE_CUDA_FLAGS"),
    "-I/py/nvidia/cublas/include",
  );
  assert.deepEqual(
    defines.get("CMAKE_SHARED_LINKER_FLAGS"),
    "-Wl,-rpath,/py/nvidia/cublas/lib",
  );
  const plain = new Map(
    cmakeDefines({
      llamaCppDir: "/l",
      variant: "cuda",
      portable: false,
      arch: "x86_64",
    }),
  );
  assert.deepEqual(
    plain.get("CMAKE_CUDA_ARCHITECTURES"),
    DEFAULT_CUDA_ARCHITECTURES,
  );
  assert.deepEqual(plain.has("CUDA_cublas_LIBRARY"), false);
});

const CACHE_SNIPPET = `# This is the CMakeCache file.
//Choose the type of build
CMAKE_BUILD_TYPE:STRING=Release
//llama.cpp source tree
LLAMA_CPP_DIR:PATH=/src/llama.cpp
WASI_NN_REFERENCE_TOOLS:BOOL=ON
GGML_NATIVE:BOOL=ON
GGML_CUDA:BOOL=OFF
GGML_OPENMP:BOOL=OFF
GGML_RPC:BOOL=ON
GGML_RPC_RDMA:BOOL=OFF
CMAKE_C_FLAGS:STRING=
CMAKE_CXX_FLAGS:STRING=
CMAKE_CUDA_FLAGS:STRING=
"WEIRD:NAME":STRING=x=y
//Source directory with the top level CMakeLists.txt file for this project
CMAKE_HOME_DIRECTORY:INTERNAL=/repo/native
`;

Deno.test("parseCMakeCache reads NAME:TYPE=VALUE entries", () => {
  const cache = parseCMakeCache(CACHE_SNIPPET);
  assert.deepEqual(cache.get("CMAKE_BUILD_TYPE"), "Release");
  assert.deepEqual(cache.get("LLAMA_CPP_DIR"), "/src/llama.cpp");
  assert.deepEqual(cache.get("CMAKE_CUDA_FLAGS"), "");
  assert.deepEqual(cache.get("WEIRD:NAME"), "x=y");
  assert.deepEqual(cache.get("CMAKE_HOME_DIRECTORY"), "/repo/native");
  assert.deepEqual(cache.has("# This is the CMakeCache file."), false);
});

Deno.test("configureReason: skip only for the same options, source and a finished configure", () => {
  const cache = parseCMakeCache(CACHE_SNIPPET);
  const cpu = cmakeDefines({
    llamaCppDir: "/src/llama.cpp",
    variant: "cpu",
    portable: false,
    arch: "x86_64",
  });
  assert.deepEqual(
    configureReason(cache, cpu, "/repo/native", true),
    undefined,
  );
  assert.deepEqual(
    configureReason(cache, cpu, "/repo/native/", true),
    undefined,
  );
  assert.deepEqual(
    configureReason(undefined, cpu, "/repo/native", true),
    "no CMakeCache.txt yet",
  );
  assert.deepEqual(
    configureReason(cache, cpu, "/repo/native", false),
    "the previous configure did not finish",
  );
  assert.ok(
    configureReason(cache, cpu, "/elsewhere/native", true)?.includes(
      "/repo/native",
    ),
  );
  const portable = cmakeDefines({
    llamaCppDir: "/src/llama.cpp",
    variant: "cpu",
    portable: true,
    arch: "aarch64",
  });
  assert.deepEqual(
    configureReason(cache, portable, "/repo/native", true),
    "GGML_NATIVE changed (ON -> OFF)",
  );
  const otherLlama = cmakeDefines({
    llamaCppDir: "/other",
    variant: "cpu",
    portable: false,
    arch: "x86_64",
  });
  assert.ok(
    configureReason(cache, otherLlama, "/repo/native", true)?.startsWith(
      "LLAMA_CPP_DIR",
    ),
  );
  // Booleans compare by meaning.
  const onAsTrue = parseCMakeCache(
    CACHE_SNIPPET.replace("GGML_NATIVE:BOOL=ON", "GGML_NATIVE:BOOL=TRUE"),
  );
  assert.deepEqual(
    configureReason(onAsTrue, cpu, "/repo/native", true),
    undefined,
  );
  assert.deepEqual(sourceMismatch(cache, "/repo/native"), false);
  assert.deepEqual(sourceMismatch(cache, "/x"), true);
  assert.deepEqual(sourceMismatch(undefined, "/x"), false);
});

Deno.test({
  name: "configureReason: the repository's CPU build folder needs no configure",
  ignore: !existsSync(`${paths().cmakeBuild("cpu")}/CMakeCache.txt`),
  async fn() {
    const dir = paths().cmakeBuild("cpu");
    const cache = parseCMakeCache(
      Deno.readTextFileSync(`${dir}/CMakeCache.txt`),
    );
    const defines = cmakeDefines({
      llamaCppDir: cache.get("LLAMA_CPP_DIR")!,
      variant: "cpu",
      portable: cache.get("GGML_NATIVE") === "OFF",
      arch: Deno.build.arch,
      noAmx: cache.get("GGML_NATIVE") !== "OFF" &&
        await probeAmx() === "faults",
    });
    assert.deepEqual(
      configureReason(
        cache,
        defines,
        NATIVE_DIR,
        existsSync(`${dir}/Makefile`),
      ),
      undefined,
    );
  },
});

Deno.test("parseProgressLine: Make lines", () => {
  assert.deepEqual(
    parseProgressLine(
      "[ 54%] Building CXX object llama.cpp/src/CMakeFiles/llama.dir/models/llama4.cpp.o",
    ),
    {
      percent: 54,
      action: "compile",
      detail: "llama.cpp/src/models/llama4.cpp",
    },
  );
  assert.deepEqual(
    parseProgressLine(
      "[  0%] Building C object llama.cpp/ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o",
    ),
    { percent: 0, action: "compile", detail: "llama.cpp/ggml/src/ggml.c" },
  );
  assert.deepEqual(
    parseProgressLine(
      "[100%] Linking CXX shared library lib/libwasi_nn_backend.so",
    ),
    {
      percent: 100,
      action: "link",
      detail: "libwasi_nn_backend.so",
    },
  );
  assert.deepEqual(
    parseProgressLine(
      "[100%] Linking CXX executable ../../../bin/llama-simple",
    ),
    {
      percent: 100,
      action: "link",
      detail: "llama-simple",
    },
  );
  assert.deepEqual(parseProgressLine("[ 83%] Built target llama"), {
    percent: 83,
    action: "built",
    detail: "llama",
    target: "llama",
  });
  assert.deepEqual(
    parseProgressLine("[  9%] Generating build details from Git")?.action,
    "other",
  );
  assert.deepEqual(
    parseProgressLine("/src/x.cpp:1:12: error: expected ')'"),
    undefined,
  );
  assert.deepEqual(
    parseProgressLine("gmake[2]: *** [Makefile2:131] Error 2"),
    undefined,
  );
  assert.deepEqual(parseProgressLine("-- Configuring done"), undefined);
});

Deno.test("parseProgressLine: Ninja lines", () => {
  assert.deepEqual(
    parseProgressLine(
      "[12/48] Building CXX object llama.cpp/src/CMakeFiles/llama.dir/llama.cpp.o",
    ),
    { percent: 25, action: "compile", detail: "llama.cpp/src/llama.cpp" },
  );
  assert.deepEqual(
    parseProgressLine(
      "[48/48] Linking CXX shared library lib/libwasi_nn_backend.so",
    )?.percent,
    100,
  );
});

Deno.test("BuildProgressTracker: steps through the make goals, percent never goes back", () => {
  // Shape of a real `cmake --build --target wasi_nn_backend llama-simple` log:
  // each goal counts from 0% to 100% again.
  const lines = [
    "[  0%] Building C object llama.cpp/ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o",
    "[  3%] Built target ggml-base",
    "warning: something noisy",
    "[ 83%] Built target llama",
    "[100%] Linking CXX shared library lib/libwasi_nn_backend.so",
    "[100%] Built target wasi_nn_backend",
    "[  3%] Built target ggml-base",
    "[ 98%] Built target llama",
    "[100%] Linking CXX executable ../../../bin/llama-simple",
    "[100%] Built target llama-simple",
  ];
  const tracker = new BuildProgressTracker(["wasi_nn_backend", "llama-simple"]);
  const events = lines.map((line) => tracker.update(line));
  assert.deepEqual(events[2], undefined);
  const shown = events.filter((e) => e !== undefined);
  assert.deepEqual(shown.map((e) => e.step), [1, 1, 1, 1, 1, 2, 2, 2, 2]);
  assert.deepEqual(shown.map((e) => e.percent), [
    0,
    1,
    41,
    50,
    50,
    51,
    99,
    100,
    100,
  ]);
  assert.deepEqual(shown[3].detail, "linking libwasi_nn_backend.so");
  assert.deepEqual(shown[5].target, "llama-simple");
  assert.deepEqual(shown.at(-1)?.detail, "built llama-simple");
  assert.deepEqual(
    formatProgress(shown[5]),
    "[build 2/2 llama-simple]  51% built ggml-base",
  );
  assert.deepEqual(
    formatProgress({ phase: "configure", detail: "no CMakeCache.txt yet" }),
    "[configure] no CMakeCache.txt yet",
  );
});

Deno.test("CUDA: variant, architectures, nvidia-smi output", () => {
  assert.deepEqual(chooseVariant(undefined, { nvcc: true, gpu: true }), "cuda");
  assert.deepEqual(chooseVariant(undefined, { nvcc: true, gpu: false }), "cpu"); // nvcc without a GPU (this machine)
  assert.deepEqual(chooseVariant(undefined, { nvcc: false, gpu: true }), "cpu");
  assert.deepEqual(chooseVariant(true, { nvcc: false, gpu: false }), "cuda");
  assert.deepEqual(chooseVariant(false, { nvcc: true, gpu: true }), "cpu");
  assert.deepEqual(chooseCudaArchitectures(undefined, true), "native");
  assert.deepEqual(chooseCudaArchitectures(undefined, false), "80;86;89;90");
  assert.deepEqual(chooseCudaArchitectures("90", true), "90");
  assert.ok(gpuListed("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0f3c...)\n"));
  assert.ok(!gpuListed("No devices found.\n"));
  assert.ok(!gpuListed(""));
});

Deno.test("parseNvccTop finds the toolkit behind nvcc (also through a wrapper script)", () => {
  const output = `#$ _NVVM_BRANCH_=nvvm
#$ _HERE_=/usr/local/cuda-13.0/bin
#$ TOP=/usr/local/cuda-13.0/bin/..
#$ INCLUDES="-I/usr/local/cuda-13.0/bin/../targets/x86_64-linux/include"
`;
  assert.equal(parseNvccTop(output), "/usr/local/cuda-13.0");
  assert.equal(
    parseNvccTop("nvcc fatal   : No input files specified"),
    undefined,
  );
});

Deno.test("parsePipShow finds cuBLAS in a pip package listing", () => {
  const output = `Name: nvidia-cublas
Version: 13.0.0.19
Summary: CUBLAS native runtime libraries
Location: /opt/venv/lib/python3.12/site-packages
Requires:
Required-by: torch
Files:
  nvidia/__init__.py
  nvidia/cu13/include/cublas.h
  nvidia/cu13/include/cublas_api.h
  nvidia/cu13/include/cublas_v2.h
  nvidia/cu13/lib/libcublas.so.13
  nvidia/cu13/lib/libcublasLt.so.13
  nvidia/cu13/lib/libnvblas.so.13
  nvidia_cublas-13.0.0.19.dist-info/RECORD
`;
  assert.deepEqual(parsePipShow(output), {
    includeDir: "/opt/venv/lib/python3.12/site-packages/nvidia/cu13/include",
    cublas:
      "/opt/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13",
    cublasLt:
      "/opt/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublasLt.so.13",
  });
  assert.deepEqual(
    parsePipShow("WARNING: Package(s) not found: nvidia-cublas\n"),
    undefined,
  );
  assert.deepEqual(
    parsePipShow(output.replace(/.*cublas_v2\.h\n/, "")),
    undefined,
  );
});

Deno.test("tarballName reads npm pack --json output", () => {
  const json =
    `npm notice some notice\n[\n  {\n    "id": "node-llama-cpp@3.21.1",\n    "filename": "node-llama-cpp-3.21.1.tgz"\n  }\n]\n`;
  assert.deepEqual(tarballName(json), "node-llama-cpp-3.21.1.tgz");
  assert.deepEqual(tarballName("not json"), undefined);
});

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function git(dir: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", {
    args: [
      "-C",
      dir,
      "-c",
      "user.email=t@example.com",
      "-c",
      "user.name=t",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

/** A tiny git repository shaped like a llama.cpp tree. */
async function fakeLlamaRepo(): Promise<{ dir: string; head: string }> {
  const dir = await Deno.makeTempDir({ prefix: "build_test_llama_" });
  await Deno.mkdir(`${dir}/include`);
  await Deno.writeTextFile(`${dir}/include/llama.h`, "// test\n");
  await Deno.writeTextFile(`${dir}/CMakeLists.txt`, "# test\n");
  await git(dir, "init", "-q");
  await git(dir, "add", ".");
  await git(dir, "commit", "-q", "-m", "test");
  return { dir, head: await git(dir, "rev-parse", "HEAD") };
}

Deno.test("checkLlamaCpp verifies the commit of a real git checkout", async () => {
  const { dir, head } = await fakeLlamaRepo();
  try {
    assert.deepEqual(await gitHead(dir), head);
    assert.deepEqual(await checkLlamaCpp(dir, head), { kind: "ok", head });
    assert.deepEqual(await checkLlamaCpp(dir), { kind: "wrong-commit", head });
    assert.deepEqual(await checkLlamaCpp(`${dir}/missing`), {
      kind: "missing",
    });
    // A folder inside a checkout is not itself a checkout.
    assert.deepEqual(await checkLlamaCpp(`${dir}/include`), {
      kind: "not-llama",
    });
    await Deno.remove(`${dir}/.git`, { recursive: true });
    assert.deepEqual(await checkLlamaCpp(dir), { kind: "not-git" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ensureLlamaCppDir: a user-given tree at another commit is used with a warning, not fetched", async () => {
  const { dir, head } = await fakeLlamaRepo();
  try {
    const warnings: string[] = [];
    const notes: string[] = [];
    const result = await ensureLlamaCppDir(dir, {
      userGiven: true,
      warn: (m) => warnings.push(m),
      note: (m) => notes.push(m),
    });
    assert.deepEqual(result, dir);
    assert.deepEqual(warnings.length, 1);
    assert.ok(
      warnings[0].includes(head.slice(0, 12)) &&
        warnings[0].includes(LLAMA_CPP_COMMIT.slice(0, 12)),
    );
    assert.deepEqual(notes, []);
    assert.deepEqual(await gitHead(dir), head);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "the cached llama.cpp checkout is at the pinned commit",
  ignore: Deno.env.get("LLAMA_CPP_DIR") !== undefined ||
    !existsSync(paths().llamaCpp),
  async fn() {
    assert.deepEqual(await checkLlamaCpp(paths().llamaCpp), {
      kind: "ok",
      head: LLAMA_CPP_COMMIT,
    });
  },
});

Deno.test("copyIfChanged copies atomically, keeps the mode, and skips identical files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "build_test_copy_" });
  try {
    await Deno.writeTextFile(`${dir}/a`, "one");
    await Deno.chmod(`${dir}/a`, 0o755);
    assert.deepEqual(await copyIfChanged(`${dir}/a`, `${dir}/out/b`), true);
    assert.deepEqual(await Deno.readTextFile(`${dir}/out/b`), "one");
    assert.deepEqual((await Deno.stat(`${dir}/out/b`)).mode! & 0o777, 0o755);
    assert.deepEqual(await copyIfChanged(`${dir}/a`, `${dir}/out/b`), false);
    await Deno.writeTextFile(`${dir}/a`, "two");
    assert.deepEqual(await copyIfChanged(`${dir}/a`, `${dir}/out/b`), true);
    assert.deepEqual(await Deno.readTextFile(`${dir}/out/b`), "two");
    assert.deepEqual([...Deno.readDirSync(`${dir}/out`)].map((e) => e.name), [
      "b",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("NATIVE_FILES lists every file of native/ the CMake build uses", () => {
  const present = [...Deno.readDirSync(NATIVE_DIR)]
    .filter((e) => e.isFile && !e.name.endsWith(".c")) // C host examples are not part of the library
    .map((e) => e.name)
    .sort();
  assert.deepEqual([...NATIVE_FILES].sort(), present);
});

Deno.test("nativeSourceDir: a local native/ is used in place", async () => {
  assert.equal(
    await nativeSourceDir(new URL("../native/", import.meta.url), "/unused"),
    NATIVE_DIR,
  );
});

Deno.test("nativeSourceDir: a remote native/ is fetched into <root>/native, unchanged files are left alone", async () => {
  const root = await Deno.makeTempDir({ prefix: "build_test_native_" });
  let missing = "";
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const name = new URL(request.url).pathname.replace(
        /^\/pkg\/native\//,
        "",
      );
      if (name === missing) return new Response("not found", { status: 404 });
      try {
        return new Response(await Deno.readFile(`${NATIVE_DIR}/${name}`));
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  try {
    const url = new URL(`http://127.0.0.1:${server.addr.port}/pkg/native/`);
    const dir = await nativeSourceDir(url, root);
    assert.equal(dir, `${root}/native`);
    for (const name of NATIVE_FILES) {
      assert.deepEqual(
        await Deno.readFile(`${dir}/${name}`),
        await Deno.readFile(`${NATIVE_DIR}/${name}`),
      );
    }
    const before = (await Deno.stat(`${dir}/CMakeLists.txt`)).mtime;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await nativeSourceDir(url, root);
    assert.deepEqual((await Deno.stat(`${dir}/CMakeLists.txt`)).mtime, before);
    missing = NATIVE_FILES[1];
    await assert.rejects(nativeSourceDir(url, root), BuildError);
  } finally {
    await server.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});
