/**
 * Checks every guest that `examples/build.ts` builds against the ABI: it
 * imports only functions of `wasi_ephemeral_nn` (with the signatures of
 * docs/wasi-nn-abi.md §2, all i32) and `wasi_snapshot_preview1` (with the
 * preview1 signatures), exports `memory` and `_start`, and imports exactly
 * the wasi-nn functions it is meant to use.
 * @module
 */
import assert from "node:assert/strict";
import {
  buildGuests,
  GUEST_NAMES,
  type GuestName,
} from "../../examples/build.ts";
import {
  formatType,
  type FuncType,
  readInterface,
  type ValType,
} from "./_wasm_imports.ts";

const I32: ValType = "i32";
const I64: ValType = "i64";
const fn = (params: ValType[], results: ValType[] = [I32]): FuncType => ({
  params,
  results,
});
const i32s = (n: number): ValType[] => Array(n).fill(I32);

/** docs/wasi-nn-abi.md §2: every parameter and the result are i32. */
const WASI_NN: Record<string, FuncType> = {
  load: fn(i32s(5)),
  load_by_name: fn(i32s(3)),
  load_by_name_with_config: fn(i32s(5)),
  init_execution_context: fn(i32s(2)),
  set_input: fn(i32s(3)),
  compute: fn(i32s(1)),
  get_output: fn(i32s(5)),
  get_output_single: fn(i32s(5)),
  compute_single: fn(i32s(1)),
  fini_single: fn(i32s(1)),
  unload: fn(i32s(1)),
  finalize_execution_context: fn(i32s(1)),
};

/** wasi_snapshot_preview1 (witx), lowered to core wasm types. */
const PREVIEW1: Record<string, FuncType> = {
  args_get: fn(i32s(2)),
  args_sizes_get: fn(i32s(2)),
  environ_get: fn(i32s(2)),
  environ_sizes_get: fn(i32s(2)),
  clock_res_get: fn(i32s(2)),
  clock_time_get: fn([I32, I64, I32]),
  fd_advise: fn([I32, I64, I64, I32]),
  fd_allocate: fn([I32, I64, I64]),
  fd_close: fn(i32s(1)),
  fd_datasync: fn(i32s(1)),
  fd_fdstat_get: fn(i32s(2)),
  fd_fdstat_set_flags: fn(i32s(2)),
  fd_fdstat_set_rights: fn([I32, I64, I64]),
  fd_filestat_get: fn(i32s(2)),
  fd_filestat_set_size: fn([I32, I64]),
  fd_filestat_set_times: fn([I32, I64, I64, I32]),
  fd_pread: fn([I32, I32, I32, I64, I32]),
  fd_prestat_get: fn(i32s(2)),
  fd_prestat_dir_name: fn(i32s(3)),
  fd_pwrite: fn([I32, I32, I32, I64, I32]),
  fd_read: fn(i32s(4)),
  fd_readdir: fn([I32, I32, I32, I64, I32]),
  fd_renumber: fn(i32s(2)),
  fd_seek: fn([I32, I64, I32, I32]),
  fd_sync: fn(i32s(1)),
  fd_tell: fn(i32s(2)),
  fd_write: fn(i32s(4)),
  path_create_directory: fn(i32s(3)),
  path_filestat_get: fn(i32s(5)),
  path_filestat_set_times: fn([I32, I32, I32, I32, I64, I64, I32]),
  path_link: fn(i32s(7)),
  path_open: fn([I32, I32, I32, I32, I32, I64, I64, I32, I32]),
  path_readlink: fn(i32s(6)),
  path_remove_directory: fn(i32s(3)),
  path_rename: fn(i32s(6)),
  path_symlink: fn(i32s(5)),
  path_unlink_file: fn(i32s(3)),
  poll_oneoff: fn(i32s(4)),
  proc_exit: fn(i32s(1), []),
  proc_raise: fn(i32s(1)),
  sched_yield: fn([]),
  random_get: fn(i32s(2)),
  sock_accept: fn(i32s(3)),
  sock_recv: fn(i32s(6)),
  sock_send: fn(i32s(5)),
  sock_shutdown: fn(i32s(2)),
};

const MODULES: Record<string, Record<string, FuncType>> = {
  wasi_ephemeral_nn: WASI_NN,
  wasi_snapshot_preview1: PREVIEW1,
};

const LOAD_CONFIG = ["load_by_name_with_config", "init_execution_context"];
const AS_LOAD = ["load_by_name", ...LOAD_CONFIG]; // Graph.load uses both

/** The wasi-nn functions each guest must import, no more, no fewer. */
const EXPECTED_NN: Record<GuestName, string[]> = {
  oneshot: [...LOAD_CONFIG, "set_input", "compute", "get_output"],
  chat_stream: [
    ...LOAD_CONFIG,
    "set_input",
    "compute_single",
    "get_output_single",
    "fini_single",
  ],
  vision: [
    ...LOAD_CONFIG,
    "set_input",
    "compute",
    "get_output",
    "compute_single",
    "get_output_single",
    "fini_single",
  ],
  abi_probe: Object.keys(WASI_NN),
  as_oneshot: [...AS_LOAD, "set_input", "compute", "get_output"],
  as_chat_stream: [
    ...AS_LOAD,
    "set_input",
    "compute_single",
    "get_output_single",
    "fini_single",
  ],
};

// Built on first use, inside a test, so a missing compiler fails the tests
// (with the apt command in the message) rather than the module load.
let built: ReturnType<typeof buildGuests> | undefined;

for (const name of GUEST_NAMES) {
  Deno.test(`guest ${name}: imports and exports follow the ABI`, async () => {
    built ??= buildGuests({ quiet: true });
    const bytes = await Deno.readFile((await built)[name]);
    const module = new WebAssembly.Module(bytes); // validates the binary
    const { imports, exports } = readInterface(bytes);

    // Our reader agrees with the engine on names and kinds.
    assert.deepStrictEqual(
      imports.map(({ module, name, kind }) => ({ module, name, kind })),
      WebAssembly.Module.imports(module),
    );
    assert.deepStrictEqual(
      exports.map(({ name, kind }) => ({ name, kind })),
      WebAssembly.Module.exports(module),
    );

    const problems: string[] = [];
    for (const imp of imports) {
      const where = `${imp.module}.${imp.name}`;
      const table = MODULES[imp.module];
      if (table === undefined) {
        problems.push(`${where}: module not provided by the host`);
      } else if (imp.kind !== "function") {
        problems.push(`${where}: a ${imp.kind}, not a function`);
      } else if (!(imp.name in table)) {
        problems.push(`${where}: not a function of ${imp.module}`);
      } else if (formatType(imp.type) !== formatType(table[imp.name])) {
        problems.push(
          `${where}: ${formatType(imp.type)}, ABI says ${
            formatType(table[imp.name])
          }`,
        );
      }
    }
    assert.deepStrictEqual(problems, []);

    const nn = imports.filter((i) => i.module === "wasi_ephemeral_nn")
      .map((i) => i.name).sort();
    assert.deepStrictEqual(nn, [...EXPECTED_NN[name]].sort());

    const memory = exports.find((e) => e.name === "memory");
    assert.ok(memory?.kind === "memory", "exports its memory as `memory`");
    const start = exports.find((e) => e.name === "_start");
    assert.deepStrictEqual(
      formatType(start?.type),
      "() -> ()",
      "exports _start",
    );
  });
}
