// Tests of the wasi_ephemeral_nn marshalling layer (wasi_nn/guest_imports.ts)
// against a real wasm module, assembled byte by byte below: it imports the 12
// functions and exports `call_<name>` wrappers that forward their arguments,
// plus (optionally) a 1-page `memory`. The host is a small recording object,
// because the marshalling layer is the unit under test. Each instance has its
// own handles (from 0) that stand for the host's: tests first get real ones
// through load_by_name and init_execution_context (open() below) and check
// that the host receives its own handles, never the guest's.

import {
  deepStrictEqual,
  rejects,
  strictEqual as assertEquals,
} from "node:assert/strict";
import {
  createWasiNnImports,
  WASI_NN_FUNCTIONS,
  type WasiNnFunctionName,
  type WasiNnImports,
} from "../../../wasi_nn/abi/guest_imports.ts";
import type { LogLevel as WasiNnLogLevel } from "../../../wasi_nn/log.ts";
import { Errno, WasiNnError } from "../../../wasi_nn/errno.ts";
import {
  GuestLinkError,
  runGuest,
  TRAP_EXIT_CODE,
} from "../../../wasi_nn/abi/run_guest.ts";
import type { TensorInput, WasiNnHostApi } from "../../../wasi_nn/host/api.ts";
import "../../../wasi_nn/abi/_jspi.ts";
import { NN_PARAMS, section, str, uleb, vec } from "../../_wasm.ts";

// ---------------------------------------------------------------- wasm bytes

const PARAMS = NN_PARAMS;
const leb = uleb;

interface ImportSpec {
  module: string;
  name: string;
  params: number; // all i32
  results: number; // 0 or 1 i32
}
interface FuncSpec {
  export: string;
  params: number;
  results: number;
  body: number[]; // instructions, without locals and the final `end`
}

/** Assembles a module: function imports, then functions, optionally a memory. */
function assemble(
  imports: ImportSpec[],
  funcs: FuncSpec[],
  withMemory: boolean,
): WebAssembly.Module {
  return new WebAssembly.Module(assembleBytes(imports, funcs, withMemory));
}

function assembleBytes(
  imports: ImportSpec[],
  funcs: FuncSpec[],
  withMemory: boolean,
): Uint8Array<ArrayBuffer> {
  const I32 = 0x7f;
  const type = (params: number, results: number) => [
    0x60,
    ...vec(Array.from({ length: params }, () => [I32])),
    ...vec(Array.from({ length: results }, () => [I32])),
  ];
  const types = [
    ...imports.map((i) => type(i.params, i.results)),
    ...funcs.map((f) => type(f.params, f.results)),
  ];
  const exports = funcs.map((f, i) => [
    ...str(f.export),
    0x00,
    ...leb(imports.length + i),
  ]);
  if (withMemory) exports.push([...str("memory"), 0x02, 0x00]);
  const bodies = funcs.map((f) => {
    const body = [0x00, ...f.body, 0x0b]; // no locals; end
    return [...leb(body.length), ...body];
  });
  const bytes = new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(
      2,
      vec(imports.map((imp, i) => [
        ...str(imp.module),
        ...str(imp.name),
        0x00,
        ...leb(i),
      ])),
    ),
    ...section(3, vec(funcs.map((_, i) => leb(imports.length + i)))),
    ...(withMemory ? section(5, vec([[0x00, 0x01]])) : []), // 1 page, no max
    ...section(7, vec(exports)),
    ...section(10, vec(bodies)),
  ]);
  return bytes;
}

/** A module importing all 12 functions and exporting `call_<name>` wrappers. */
function guestModule(withMemory: boolean): WebAssembly.Module {
  return assemble(
    WASI_NN_FUNCTIONS.map((name) => ({
      module: "wasi_ephemeral_nn",
      name,
      params: PARAMS[name],
      results: 1,
    })),
    WASI_NN_FUNCTIONS.map((name, i) => {
      const body: number[] = [];
      for (let p = 0; p < PARAMS[name]; p++) body.push(0x20, p); // local.get p
      body.push(0x10, ...leb(i)); // call import i
      return { export: `call_${name}`, params: PARAMS[name], results: 1, body };
    }),
    withMemory,
  );
}

const WITH_MEMORY = guestModule(true);
const WITHOUT_MEMORY = guestModule(false);

// ------------------------------------------------------------- fake host

type Call = [string, ...unknown[]];

/**
 * Records every call; behaviour per method can be overridden. By default the
 * host hands out its own handles, distinct per call and never the small
 * numbers a guest sees: graphs 7, 8, 9, ... (load and load_by_name), contexts
 * 3, 4, 5, ... A test that mixed guest and host handles up would see them.
 */
class RecordingHost implements WasiNnHostApi {
  calls: Call[] = [];
  // deno-lint-ignore no-explicit-any
  impl: Partial<Record<keyof WasiNnHostApi, (...args: any[]) => any>> = {};
  #nextGraph = 7;
  #nextContext = 3;

  #run<T>(name: keyof WasiNnHostApi, args: unknown[], fallback: () => T): T {
    this.calls.push([name, ...args]);
    const fn = this.impl[name];
    return fn ? fn(...args) : fallback();
  }
  load(builders: Uint8Array[], encoding: number, target: number) {
    const copies = builders.map((b) => [...b]);
    return Promise.resolve(
      this.#run("load", [copies, encoding, target], () => this.#nextGraph++),
    );
  }
  loadByName(name: string, config?: string) {
    return Promise.resolve(
      this.#run("loadByName", [name, config], () => this.#nextGraph++),
    );
  }
  initExecutionContext(graph: number) {
    return this.#run(
      "initExecutionContext",
      [graph],
      () => this.#nextContext++,
    );
  }
  setInput(ctx: number, index: number, tensor: TensorInput) {
    const copy = {
      dims: [...tensor.dims],
      type: tensor.type,
      data: [...tensor.data],
    };
    return Promise.resolve(
      this.#run("setInput", [ctx, index, copy], () => undefined),
    );
  }
  compute(ctx: number) {
    return Promise.resolve(this.#run("compute", [ctx], () => undefined));
  }
  getOutput(ctx: number, index: number) {
    return this.#run(
      "getOutput",
      [ctx, index],
      () => new TextEncoder().encode("hello world"),
    );
  }
  computeSingle(ctx: number) {
    return Promise.resolve(
      this.#run("computeSingle", [ctx], () => undefined),
    );
  }
  getOutputSingle(ctx: number, index: number) {
    return this.#run(
      "getOutputSingle",
      [ctx, index],
      () => new TextEncoder().encode("tok"),
    );
  }
  finiSingle(ctx: number) {
    this.#run("finiSingle", [ctx], () => undefined);
  }
  unload(graph: number) {
    this.#run("unload", [graph], () => undefined);
  }
  finalizeExecutionContext(ctx: number) {
    this.#run("finalizeExecutionContext", [ctx], () => undefined);
  }
}

interface Guest {
  host: RecordingHost;
  logs: [WasiNnLogLevel, string][];
  memory: WebAssembly.Memory;
  /** The import object this instance was linked with. */
  imports: WasiNnImports;
  /** Calls `call_<name>` through WebAssembly.promising; resolves to the errno. */
  call(name: WasiNnFunctionName, ...args: number[]): Promise<number>;
  bytes(ptr: number, len: number): number[];
  u32(ptr: number): number;
  put(ptr: number, data: string | number[]): void;
  putU32(ptr: number, ...values: number[]): void;
  /**
   * For a guest without exported memory: makes `getMemory` return (or stop
   * returning) `memory`, as a runtime that links memory late would.
   */
  lend(on: boolean): void;
}

function guest(
  options: {
    withMemory?: boolean;
    host?: RecordingHost;
  } = {},
): Guest {
  const host = options.host ?? new RecordingHost();
  const logs: [WasiNnLogLevel, string][] = [];
  const linked: { instance?: WebAssembly.Instance; lent?: WebAssembly.Memory } =
    {};
  const imports = createWasiNnImports(host, {
    getMemory: () =>
      (linked.instance?.exports.memory as WebAssembly.Memory | undefined) ??
        linked.lent,
    log: (level, msg) => logs.push([level, msg]),
  });
  const instance = linked.instance = new WebAssembly.Instance(
    options.withMemory === false ? WITHOUT_MEMORY : WITH_MEMORY,
    imports,
  );
  const memory = (instance.exports.memory as WebAssembly.Memory | undefined) ??
    new WebAssembly.Memory({ initial: 1 });
  const mem = () => new Uint8Array(memory.buffer);
  const exports = instance.exports as Record<
    string,
    (...a: number[]) => number
  >;
  return {
    host,
    logs,
    memory,
    imports,
    call: (name, ...args) =>
      WebAssembly.promising(exports[`call_${name}`])(...args),
    bytes: (ptr, len) => [...mem().subarray(ptr, ptr + len)],
    u32: (ptr) => new DataView(memory.buffer).getUint32(ptr, true),
    put: (ptr, data) =>
      mem().set(
        typeof data === "string" ? new TextEncoder().encode(data) : data,
        ptr,
      ),
    putU32: (ptr, ...values) => {
      const view = new DataView(memory.buffer);
      values.forEach((v, i) => view.setUint32(ptr + 4 * i, v >>> 0, true));
    },
    lend: (on) => {
      linked.lent = on ? memory : undefined;
    },
  };
}

const SENTINEL = 0xaaaaaaaa;
const PAGE = 65536;
/** Where open() and context() put their name and out-parameters. */
const SCRATCH = 40000;

/**
 * Gets real handles the way a guest does: load_by_name(name), then
 * init_execution_context. Returns the guest's handles; the host calls this
 * made are removed from `host.calls`, so a test sees only its own.
 */
async function open(
  g: Guest,
  name = "default",
): Promise<{ graph: number; ctx: number }> {
  const before = g.host.calls.length;
  g.put(SCRATCH, name);
  g.putU32(SCRATCH + 64, SENTINEL);
  assertEquals(
    await g.call("load_by_name", SCRATCH, name.length, SCRATCH + 64),
    0,
    `load_by_name(${name})`,
  );
  const graph = g.u32(SCRATCH + 64);
  assertEquals(graph === SENTINEL, false);
  g.host.calls.splice(before);
  return { graph, ctx: await context(g, graph) };
}

/** A further context of `graph` (guest handles); its host call removed too. */
async function context(g: Guest, graph: number): Promise<number> {
  const before = g.host.calls.length;
  g.putU32(SCRATCH + 68, SENTINEL);
  assertEquals(
    await g.call("init_execution_context", graph, SCRATCH + 68),
    0,
    `init_execution_context(${graph})`,
  );
  g.host.calls.splice(before);
  const ctx = g.u32(SCRATCH + 68);
  assertEquals(ctx === SENTINEL, false);
  return ctx;
}

/** Messages of the debug log lines, for asserting why a call failed. */
const debugLines = (g: Guest) =>
  g.logs.filter(([level]) => level === "debug").map(([, m]) => m);

// ------------------------------------------------------------------- load_by_name

Deno.test("load_by_name passes the name and writes the guest's graph handle", async () => {
  const g = guest();
  g.put(100, "default");
  g.putU32(200, SENTINEL);
  assertEquals(await g.call("load_by_name", 100, 7, 200), 0);
  deepStrictEqual(g.host.calls, [["loadByName", "default", undefined]]);
  // The guest's own handle (from 0), not the host's 7.
  assertEquals(g.u32(200), 0);
  // ... which stands for the host's 7.
  assertEquals(await g.call("init_execution_context", 0, 204), 0);
  deepStrictEqual(g.host.calls[1], ["initExecutionContext", 7]);
});

Deno.test("load_by_name ignores one trailing NUL (Rust CString)", async () => {
  const g = guest();
  g.put(100, "default\0");
  assertEquals(await g.call("load_by_name", 100, 8, 200), 0);
  deepStrictEqual(g.host.calls, [["loadByName", "default", undefined]]);
});

Deno.test("load_by_name uses name_len, not a NUL terminator", async () => {
  const g = guest();
  g.put(100, "default-extra");
  assertEquals(await g.call("load_by_name", 100, 7, 200), 0);
  deepStrictEqual(g.host.calls, [["loadByName", "default", undefined]]);
});

Deno.test("load_by_name: an embedded NUL is InvalidArgument; nothing written", async () => {
  const g = guest();
  g.put(100, "de\0fault");
  g.putU32(200, SENTINEL);
  assertEquals(
    await g.call("load_by_name", 100, 8, 200),
    Errno.InvalidArgument,
  );
  deepStrictEqual(g.host.calls, []);
  assertEquals(g.u32(200), SENTINEL);
});

Deno.test("load_by_name: invalid UTF-8 is InvalidArgument", async () => {
  const g = guest();
  g.put(100, [0x64, 0xff, 0x66]);
  assertEquals(
    await g.call("load_by_name", 100, 3, 200),
    Errno.InvalidArgument,
  );
  deepStrictEqual(g.host.calls, []);
});

Deno.test("load_by_name: bad pointers are InvalidArgument, overflow-safe", async () => {
  const g = guest();
  const cases: [number, number, number][] = [
    [PAGE - 3, 4, 200], // name runs 1 byte past the end
    [-1, 2, 200], // 0xffffffff + 2 wraps in 32 bits
    [0, -1, 200], // length 0xffffffff
    [PAGE, 1, 200],
    [100, 7, PAGE - 3], // out_graph straddles the end
    [100, 7, -4], // out_graph 0xfffffffc
  ];
  g.put(100, "default");
  for (const [ptr, len, out] of cases) {
    assertEquals(
      await g.call("load_by_name", ptr, len, out),
      Errno.InvalidArgument,
      `ptr=${ptr} len=${len} out=${out}`,
    );
  }
  deepStrictEqual(g.host.calls, []);
  assertEquals(g.logs.length, cases.length);
  assertEquals(g.logs.every(([level]) => level === "debug"), true);
});

Deno.test("load_by_name: a name ending exactly at the end of memory is fine", async () => {
  const g = guest();
  g.put(PAGE - 7, "default");
  assertEquals(await g.call("load_by_name", PAGE - 7, 7, PAGE - 4), 0);
  assertEquals(g.u32(PAGE - 4), 0);
  // An empty name at the very end is in bounds; the host decides (here: ok).
  g.putU32(200, SENTINEL);
  assertEquals(await g.call("load_by_name", PAGE, 0, 200), 0);
  deepStrictEqual(g.host.calls[1], ["loadByName", "", undefined]);
  assertEquals(g.u32(200), 1);
});

Deno.test("load_by_name: host WasiNnError errno goes to the guest; nothing written", async () => {
  for (
    const errno of [Errno.NotFound, Errno.ModelNotFound, Errno.InvalidArgument]
  ) {
    const g = guest();
    g.host.impl.loadByName = () => {
      throw new WasiNnError(errno, "nope");
    };
    g.put(100, "default");
    g.putU32(200, SENTINEL);
    assertEquals(await g.call("load_by_name", 100, 7, 200), errno);
    assertEquals(g.u32(200), SENTINEL);
    assertEquals(g.logs.length, 1);
    assertEquals(g.logs[0][0], "debug");
    assertEquals(g.logs[0][1].includes("nope"), true);
  }
});

Deno.test("a rejected promise and a plain Error become RuntimeError (5), logged at error", async () => {
  const g = guest();
  g.host.impl.loadByName = () =>
    Promise.reject(new WasiNnError(Errno.ModelNotFound, "gone"));
  g.put(100, "default");
  assertEquals(await g.call("load_by_name", 100, 7, 200), Errno.ModelNotFound);
  g.host.impl.loadByName = () => {
    throw new TypeError("boom");
  };
  assertEquals(await g.call("load_by_name", 100, 7, 200), Errno.RuntimeError);
  delete g.host.impl.loadByName;
  // A failed load left nothing behind: this one reaches the host again.
  const { graph } = await open(g);
  deepStrictEqual(g.host.calls, [
    ["loadByName", "default", undefined],
    ["loadByName", "default", undefined],
  ]);
  g.host.impl.unload = () => {
    throw "a string";
  };
  assertEquals(await g.call("unload", graph), Errno.RuntimeError);
  deepStrictEqual(g.host.calls[2], ["unload", 7]);
  deepStrictEqual(g.logs.map(([level]) => level), ["debug", "error", "error"]);
  assertEquals(g.logs[1][1].includes("boom"), true);
});

Deno.test("load_by_name_with_config passes the config; config_len 0 means none", async () => {
  const g = guest();
  const config = '{"n-predict":8,"ctx-size":512}';
  g.put(100, "default");
  g.put(120, "other");
  g.put(300, config);
  g.putU32(200, SENTINEL, SENTINEL);
  assertEquals(
    await g.call("load_by_name_with_config", 100, 7, 300, config.length, 200),
    0,
  );
  assertEquals(
    await g.call("load_by_name_with_config", 120, 5, 300, 0, 204),
    0,
  );
  deepStrictEqual(g.host.calls, [
    ["loadByName", "default", config],
    ["loadByName", "other", undefined],
  ]);
  assertEquals(g.u32(200), 0);
  assertEquals(g.u32(204), 1);
  // A config running past the end of memory, even for a name already loaded.
  g.putU32(208, SENTINEL);
  assertEquals(
    await g.call("load_by_name_with_config", 100, 7, PAGE - 2, 3, 208),
    Errno.InvalidArgument,
  );
  assertEquals(g.host.calls.length, 2);
  assertEquals(g.u32(208), SENTINEL);
});

// ------------------------------------------------------------------- load

Deno.test("load reads the builder array and passes encoding and target", async () => {
  const g = guest();
  g.put(1000, "preload:/m.gguf");
  g.put(1100, "{}");
  g.putU32(500, 1000, 15, 1100, 2);
  g.putU32(600, SENTINEL);
  assertEquals(await g.call("load", 500, 2, 6, 3, 600), 0);
  deepStrictEqual(g.host.calls, [[
    "load",
    [[...new TextEncoder().encode("preload:/m.gguf")], [0x7b, 0x7d]],
    6,
    3,
  ]]);
  assertEquals(g.u32(600), 0);
  // The guest's 0 stands for the host's 7.
  assertEquals(await g.call("init_execution_context", 0, 604), 0);
  deepStrictEqual(g.host.calls[1], ["initExecutionContext", 7]);
});

Deno.test("load: bad builder array or entries are InvalidArgument", async () => {
  const g = guest();
  g.putU32(500, 1000, 15);
  g.putU32(PAGE - 8, 1000, 15);
  g.putU32(700, PAGE - 4, 5);
  const cases: [number, number][] = [
    [500, 0x20000000], // 2^29 entries * 8 bytes = 4 GiB
    [-8, 1],
    [PAGE - 4, 1], // the pair itself straddles the end
    [700, 1], // entry 0 runs past the end
  ];
  for (const [ptr, len] of cases) {
    assertEquals(
      await g.call("load", ptr, len, 6, 0, 600),
      Errno.InvalidArgument,
    );
  }
  assertEquals(await g.call("load", 500, 1, 6, 0, PAGE), Errno.InvalidArgument);
  deepStrictEqual(g.host.calls, []);
  assertEquals(await g.call("load", PAGE - 8, 1, 5, 0, 600), 0);
  assertEquals(g.u32(600), 0);
  assertEquals(await g.call("load", 0, 0, 5, 0, 600), 0); // no builders
  assertEquals(g.u32(600), 1);
  assertEquals(g.host.calls.length, 2);
  deepStrictEqual(g.host.calls[1], ["load", [], 5, 0]);
});

// ------------------------------------------------------------------- contexts

Deno.test("init_execution_context maps the graph to the host's; writes the guest's own handle", async () => {
  const g = guest();
  g.put(100, "default");
  assertEquals(await g.call("load_by_name", 100, 7, 200), 0); // host graph 7
  g.host.impl.initExecutionContext = () => 0xfffffffe;
  g.putU32(40, SENTINEL, SENTINEL);
  assertEquals(await g.call("init_execution_context", 0, 40), 0);
  assertEquals(g.u32(40), 0); // the guest's handle, not the host's 0xfffffffe
  delete g.host.impl.initExecutionContext;
  assertEquals(await g.call("init_execution_context", 0, 44), 0);
  assertEquals(g.u32(44), 1);
  // The host's handles reach the host unsigned, each for its own guest handle.
  assertEquals(await g.call("compute", 0), 0);
  assertEquals(await g.call("compute", 1), 0);
  deepStrictEqual(g.host.calls.slice(1), [
    ["initExecutionContext", 7],
    ["initExecutionContext", 7],
    ["compute", 0xfffffffe],
    ["compute", 3],
  ]);
  g.host.calls = [];
  g.putU32(40, SENTINEL);
  assertEquals(
    await g.call("init_execution_context", 0, PAGE - 2),
    Errno.InvalidArgument,
  );
  // Graphs this guest never got, including the host's own 7: nothing called.
  for (const graph of [-1, 1, 7, -0x80000000]) {
    assertEquals(
      await g.call("init_execution_context", graph, 40),
      Errno.InvalidArgument,
      `graph ${graph}`,
    );
  }
  deepStrictEqual(g.host.calls, []);
  g.host.impl.initExecutionContext = () => {
    throw new WasiNnError(Errno.InvalidArgument, "bad graph");
  };
  assertEquals(
    await g.call("init_execution_context", 0, 40),
    Errno.InvalidArgument,
  );
  deepStrictEqual(g.host.calls, [["initExecutionContext", 7]]);
  assertEquals(g.u32(40), SENTINEL);
  assertEquals(debugLines(g).at(-1)?.includes("bad graph"), true);
});

// ------------------------------------------------------------------- set_input

function putTensor(g: Guest, at: number, fields: {
  dimsPtr?: number;
  dimsLen?: number;
  type?: number;
  dataPtr?: number;
  dataLen?: number;
}) {
  g.putU32(
    at,
    fields.dimsPtr ?? 400,
    fields.dimsLen ?? 1,
    fields.type ?? 3,
    fields.dataPtr ?? 2000,
    fields.dataLen ?? 5,
  );
}

Deno.test("set_input reads the 20-byte tensor: low byte of type, dims, data", async () => {
  const g = guest();
  const { graph, ctx } = await open(g); // host context 3
  const second = await context(g, graph); // host context 4
  assertEquals(second, 1);
  g.putU32(400, 1);
  g.put(2000, "hello");
  putTensor(g, 300, { type: 0x0103 }); // only the low byte counts
  assertEquals(await g.call("set_input", ctx, 0, 300), 0);
  putTensor(g, 300, { dimsLen: 0, dataLen: 0 });
  assertEquals(await g.call("set_input", ctx, 1, 300), 0);
  g.putU32(400, 1, 5);
  putTensor(g, 300, { dimsLen: 2, type: 4 });
  assertEquals(await g.call("set_input", second, -1, 300), 0);
  deepStrictEqual(g.host.calls, [
    ["setInput", 3, 0, { dims: [1], type: 3, data: [104, 101, 108, 108, 111] }],
    ["setInput", 3, 1, { dims: [], type: 3, data: [] }],
    ["setInput", 4, 0xffffffff, {
      dims: [1, 5],
      type: 4,
      data: [104, 101, 108, 108, 111],
    }],
  ]);
});

Deno.test("set_input accepts F16, F32, U8, I32 and rejects F64, I64 and unknown types", async () => {
  const g = guest();
  const { ctx } = await open(g);
  g.put(2000, "hello");
  g.putU32(400, 1);
  for (const type of [0, 1, 3, 4]) {
    putTensor(g, 300, { type });
    assertEquals(await g.call("set_input", ctx, 0, 300), 0, `type ${type}`);
  }
  for (const type of [2, 5, 6, 255]) {
    putTensor(g, 300, { type });
    assertEquals(
      await g.call("set_input", ctx, 0, 300),
      Errno.InvalidArgument,
      `type ${type}`,
    );
  }
  assertEquals(g.host.calls.length, 4);
  assertEquals(
    g.host.calls.every((c) => c[0] === "setInput" && c[1] === 3),
    true,
  );
  assertEquals(debugLines(g).every((m) => m.includes("tensor.type")), true);
});

Deno.test("set_input: bad tensor, dims or data pointers are InvalidArgument", async () => {
  const g = guest();
  const { ctx } = await open(g);
  const cases: [string, () => void, number][] = [
    ["tensor straddles the end", () => {}, PAGE - 16],
    ["tensor at 0xffffffff", () => {}, -1],
    [
      "data past the end",
      () => putTensor(g, 300, { dataPtr: PAGE - 2, dataLen: 5 }),
      300,
    ],
    [
      "data length overflow",
      () => putTensor(g, 300, { dataPtr: 8, dataLen: -4 }),
      300,
    ],
    [
      "dims past the end",
      () => putTensor(g, 300, { dimsPtr: PAGE - 4, dimsLen: 2 }),
      300,
    ],
    [
      "dims_len * 4 > 2^32",
      () => putTensor(g, 300, { dimsLen: 0x40000001 }),
      300,
    ],
  ];
  for (const [label, setup, ptr] of cases) {
    setup();
    assertEquals(
      await g.call("set_input", ctx, 0, ptr),
      Errno.InvalidArgument,
      label,
    );
  }
  deepStrictEqual(g.host.calls, []);
  // Refused for the pointers, not for the handle.
  const lines = debugLines(g);
  assertEquals(lines.length, cases.length);
  assertEquals(
    lines.every((m) => m.includes("tensor") && m.includes("past the end")),
    true,
    lines.join("\n"),
  );
});

// ------------------------------------------------------------------- compute

Deno.test("compute and compute_single pass the host's context; errnos come through", async () => {
  const g = guest();
  const { graph, ctx } = await open(g); // host context 3
  const other = await context(g, graph); // host context 4
  assertEquals(await g.call("compute", ctx), 0);
  assertEquals(await g.call("compute_single", other), 0);
  g.host.impl.compute = () =>
    Promise.reject(new WasiNnError(Errno.ContextFull, "full"));
  g.host.impl.computeSingle = () =>
    Promise.reject(new WasiNnError(Errno.EndOfSequence, "eos"));
  assertEquals(await g.call("compute", other), Errno.ContextFull);
  assertEquals(await g.call("compute_single", ctx), Errno.EndOfSequence);
  g.host.impl.compute = () =>
    Promise.reject(new WasiNnError(Errno.PromptTooLong, "long"));
  assertEquals(await g.call("compute", ctx), Errno.PromptTooLong);
  deepStrictEqual(g.host.calls.map((c) => c.slice(0, 2)), [
    ["compute", 3],
    ["computeSingle", 4],
    ["compute", 4],
    ["computeSingle", 3],
    ["compute", 3],
  ]);
  // Contexts this guest never got (0xffffffff, the host's own 3, ...): the
  // host is not asked.
  for (const bad of [-1, 2, 3, -2]) {
    assertEquals(await g.call("compute", bad), Errno.InvalidArgument);
    assertEquals(await g.call("compute_single", bad), Errno.InvalidArgument);
  }
  assertEquals(g.host.calls.length, 5);
});

Deno.test("JSPI: the guest suspends while the host awaits; the event loop runs", async () => {
  const g = guest();
  const { ctx } = await open(g);
  const order: string[] = [];
  g.host.impl.compute = async () => {
    order.push("compute start");
    await new Promise((resolve) => setTimeout(resolve, 20));
    order.push("compute end");
  };
  const pending = g.call("compute", ctx);
  setTimeout(() => order.push("timer"), 0);
  assertEquals(await pending, 0);
  deepStrictEqual(order, ["compute start", "timer", "compute end"]);
  deepStrictEqual(g.host.calls, [["compute", 3]]);
});

Deno.test("JSPI: two guest instances share one host concurrently", async () => {
  const host = new RecordingHost();
  let active = 0;
  let maxActive = 0;
  host.impl.compute = async () => {
    maxActive = Math.max(maxActive, ++active);
    await new Promise((resolve) => setTimeout(resolve, 10));
    active--;
  };
  const a = guest({ host });
  const b = guest({ host });
  const ha = await open(a); // host graph 7, context 3
  const hb = await open(b); // host graph 8, context 4
  deepStrictEqual([ha, hb], [{ graph: 0, ctx: 0 }, { graph: 0, ctx: 0 }]);
  deepStrictEqual(
    await Promise.all([a.call("compute", ha.ctx), b.call("compute", hb.ctx)]),
    [0, 0],
  );
  assertEquals(maxActive, 2);
  deepStrictEqual(host.calls, [["compute", 3], ["compute", 4]]);
});

// ------------------------------------------------------------------- get_output

for (
  const [fn, method] of [["get_output", "getOutput"], [
    "get_output_single",
    "getOutputSingle",
  ]] as const
) {
  Deno.test(`${fn}: copies the bytes and writes the size`, async () => {
    const g = guest();
    const { graph } = await open(g); // host context 3
    const ctx = await context(g, graph); // host context 4
    g.host.impl[method] = () => new TextEncoder().encode("hello world");
    g.put(5000, new Array(16).fill(0xee));
    g.putU32(100, SENTINEL);
    assertEquals(await g.call(fn, ctx, 1, 5000, 64, 100), 0);
    deepStrictEqual(g.bytes(5000, 12), [
      ...new TextEncoder().encode("hello world"),
      0xee,
    ]);
    assertEquals(g.u32(100), 11);
    deepStrictEqual(g.host.calls, [[method, 4, 1]]);
    // Exactly the size of the output fits.
    g.putU32(100, SENTINEL);
    assertEquals(await g.call(fn, ctx, -1, 6000, 11, 100), 0);
    assertEquals(g.u32(100), 11);
    deepStrictEqual(g.host.calls[1], [method, 4, 0xffffffff]);
  });

  Deno.test(`${fn}: too small a buffer is TooLarge (7), size written, nothing copied`, async () => {
    const g = guest();
    const { ctx } = await open(g);
    g.host.impl[method] = () => new TextEncoder().encode("hello world");
    g.put(5000, new Array(16).fill(0xee));
    g.putU32(100, SENTINEL);
    assertEquals(await g.call(fn, ctx, 0, 5000, 10, 100), Errno.TooLarge);
    assertEquals(g.u32(100), 11);
    deepStrictEqual(g.bytes(5000, 16), new Array(16).fill(0xee));
    assertEquals(await g.call(fn, ctx, 0, 5000, 0, 100), Errno.TooLarge);
    deepStrictEqual(g.host.calls, [[method, 3, 0], [method, 3, 0]]);
  });

  Deno.test(`${fn}: bad buffer or out_written is InvalidArgument, host not called`, async () => {
    const g = guest();
    const { ctx } = await open(g);
    assertEquals(
      await g.call(fn, ctx, 0, PAGE - 10, 24576, 100),
      Errno.InvalidArgument,
    );
    assertEquals(await g.call(fn, ctx, 0, -16, 32, 100), Errno.InvalidArgument);
    assertEquals(
      await g.call(fn, ctx, 0, 5000, 64, PAGE - 1),
      Errno.InvalidArgument,
    );
    deepStrictEqual(g.host.calls, []);
    // Refused for the pointers, not for the handle.
    assertEquals(
      debugLines(g).every((m) => m.includes("past the end")),
      true,
      debugLines(g).join("\n"),
    );
    // An empty output into an empty buffer at the end of memory is fine.
    g.host.impl[method] = () => new Uint8Array(0);
    g.putU32(100, SENTINEL);
    assertEquals(await g.call(fn, ctx, 0, PAGE, 0, 100), 0);
    assertEquals(g.u32(100), 0);
    deepStrictEqual(g.host.calls, [[method, 3, 0]]);
  });
}

Deno.test("get_output: host errors are errnos and leave memory untouched", async () => {
  const g = guest();
  const { ctx } = await open(g);
  g.host.impl.getOutput = () => {
    throw new WasiNnError(Errno.InvalidArgument, "bad ctx");
  };
  g.put(5000, new Array(16).fill(0xee));
  g.putU32(100, SENTINEL);
  assertEquals(
    await g.call("get_output", ctx, 0, 5000, 64, 100),
    Errno.InvalidArgument,
  );
  assertEquals(g.u32(100), SENTINEL);
  deepStrictEqual(g.bytes(5000, 16), new Array(16).fill(0xee));
  deepStrictEqual(g.host.calls, [["getOutput", 3, 0]]);
  assertEquals(debugLines(g).at(-1)?.includes("bad ctx"), true);
});

// ------------------------------------------------------------------- the rest

Deno.test("fini_single, unload and finalize_execution_context pass the host's handle", async () => {
  const g = guest();
  const { graph, ctx } = await open(g); // host graph 7, context 3
  const { graph: other } = await open(g, "other"); // host graph 8, context 4
  assertEquals(await g.call("fini_single", ctx), 0);
  assertEquals(await g.call("finalize_execution_context", ctx), 0);
  assertEquals(await g.call("unload", graph), 0);
  deepStrictEqual(g.host.calls, [
    ["finiSingle", 3],
    ["finalizeExecutionContext", 3],
    ["unload", 7],
  ]);
  // Gone from this guest's tables: a second finalize or unload, or any use,
  // is InvalidArgument and never reaches the host.
  assertEquals(
    await g.call("finalize_execution_context", ctx),
    Errno.InvalidArgument,
  );
  assertEquals(await g.call("fini_single", ctx), Errno.InvalidArgument);
  assertEquals(await g.call("compute", ctx), Errno.InvalidArgument);
  assertEquals(await g.call("unload", graph), Errno.InvalidArgument);
  assertEquals(
    await g.call("init_execution_context", graph, 40),
    Errno.InvalidArgument,
  );
  // Handles never handed out, 0xfffffffd among them.
  for (const bad of [-3, -1, 5, 7, 8]) {
    assertEquals(await g.call("fini_single", bad), Errno.InvalidArgument);
    assertEquals(await g.call("unload", bad), Errno.InvalidArgument);
    assertEquals(
      await g.call("finalize_execution_context", bad),
      Errno.InvalidArgument,
    );
  }
  assertEquals(g.host.calls.length, 3);
  // A host error comes through as its errno.
  g.host.impl.unload = () => {
    throw new WasiNnError(Errno.InvalidArgument, "no such graph");
  };
  assertEquals(await g.call("unload", other), Errno.InvalidArgument);
  deepStrictEqual(g.host.calls[3], ["unload", 8]);
  assertEquals(debugLines(g).at(-1)?.includes("no such graph"), true);
});

Deno.test("memory growth between and during calls: views are re-created", async () => {
  const g = guest();
  g.host.impl.compute = async () => {
    await Promise.resolve();
    g.memory.grow(1); // detaches every view over the old buffer
  };
  g.host.impl.loadByName = async () => {
    await Promise.resolve();
    g.memory.grow(1);
    return 12;
  };
  g.put(100, "default");
  g.putU32(200, SENTINEL);
  assertEquals(await g.call("load_by_name", 100, 7, 200), 0);
  assertEquals(g.u32(200), 0);
  assertEquals(await g.call("init_execution_context", 0, 204), 0);
  const ctx = g.u32(204);
  assertEquals(await g.call("compute", ctx), 0);
  assertEquals(g.memory.buffer.byteLength, 3 * PAGE);
  // The new pages are usable at once.
  assertEquals(
    await g.call("get_output", ctx, 0, 2 * PAGE + 100, 64, 3 * PAGE - 4),
    0,
  );
  assertEquals(g.u32(3 * PAGE - 4), 11);
  deepStrictEqual(g.bytes(2 * PAGE + 100, 11), [
    ...new TextEncoder().encode("hello world"),
  ]);
  deepStrictEqual(g.host.calls, [
    ["loadByName", "default", undefined],
    ["initExecutionContext", 12],
    ["compute", 3],
    ["getOutput", 3, 0],
  ]);
});

Deno.test("a guest without exported memory gets MissingMemory (3), never a trap", async () => {
  const g = guest({ withMemory: false });
  assertEquals(await g.call("load_by_name", 0, 0, 0), Errno.MissingMemory);
  assertEquals(await g.call("load", 0, 0, 6, 0, 0), Errno.MissingMemory);
  assertEquals(await g.call("get_output", 0, 0, 0, 0, 0), Errno.MissingMemory);
  assertEquals(
    await g.call("init_execution_context", 0, 0),
    Errno.MissingMemory,
  );
  deepStrictEqual(g.host.calls, []);
  // Handles obtained while memory was there (set_input checks its handle
  // before memory, so it needs a real one to show MissingMemory) ...
  g.lend(true);
  const { graph, ctx } = await open(g);
  g.lend(false);
  assertEquals(await g.call("set_input", ctx, 0, 0), Errno.MissingMemory);
  assertEquals(
    await g.call("get_output", ctx, 0, 0, 0, 0),
    Errno.MissingMemory,
  );
  // ... still work in the calls that need no memory.
  assertEquals(await g.call("compute", ctx), 0);
  assertEquals(await g.call("finalize_execution_context", ctx), 0);
  assertEquals(await g.call("unload", graph), 0);
  // Unknown handles there are InvalidArgument, not MissingMemory.
  assertEquals(await g.call("compute", 5), Errno.InvalidArgument);
  assertEquals(await g.call("unload", 5), Errno.InvalidArgument);
  deepStrictEqual(g.host.calls, [
    ["compute", 3],
    ["finalizeExecutionContext", 3],
    ["unload", 7],
  ]);
});

Deno.test("without getMemory, memory calls are MissingMemory", () => {
  const host = new RecordingHost();
  const imports = createWasiNnImports(host);
  const fns = imports.wasi_ephemeral_nn as Record<
    string,
    (...a: number[]) => number
  >;
  assertEquals(fns.get_output(0, 0, 0, 0, 0), Errno.MissingMemory);
  // A call that needs no memory checks the handle (none here) instead.
  assertEquals(fns.fini_single(0), Errno.InvalidArgument);
  deepStrictEqual(host.calls, []);
});

Deno.test("the import object has exactly the 12 ABI functions", () => {
  const imports = createWasiNnImports(new RecordingHost());
  deepStrictEqual(Object.keys(imports), ["wasi_ephemeral_nn"]);
  deepStrictEqual(
    Object.keys(imports.wasi_ephemeral_nn).sort(),
    [...WASI_NN_FUNCTIONS].sort(),
  );
  // Light calls are plain functions, heavy ones Suspending.
  assertEquals(typeof imports.wasi_ephemeral_nn.get_output, "function");
  assertEquals(
    imports.wasi_ephemeral_nn.compute instanceof WebAssembly.Suspending,
    true,
  );
  assertEquals(typeof imports[Symbol.dispose], "function");
});

Deno.test("without JSPI, createWasiNnImports and runGuest throw, naming what is missing and the Deno that has it", async () => {
  const wasm = WebAssembly as unknown as Record<string, unknown>;
  const suspending = wasm.Suspending;
  const missing = (e: unknown) =>
    e instanceof TypeError &&
    /WebAssembly\.Suspending and WebAssembly\.promising/.test(e.message) &&
    /Deno 2\.3\.2 or later/.test(e.message);
  wasm.Suspending = undefined;
  try {
    let thrown: unknown;
    try {
      createWasiNnImports(new RecordingHost());
    } catch (e) {
      thrown = e;
    }
    assertEquals(missing(thrown), true, String(thrown));
    await rejects(
      runGuest({ wasm: WITH_MEMORY, args: [], host: new RecordingHost() }),
      missing,
    );
  } finally {
    wasm.Suspending = suspending;
  }
  assertEquals(typeof createWasiNnImports(new RecordingHost()), "object");
});

// ------------------------------------------------------- per-instance handles

/** Each function that takes a handle, called with `h` and valid pointers. */
const HANDLE_CALLS: [WasiNnFunctionName, "graph" | "ctx", number[]][] = [
  ["init_execution_context", "graph", [40]],
  ["unload", "graph", []],
  ["set_input", "ctx", [0, 300]],
  ["compute", "ctx", []],
  ["compute_single", "ctx", []],
  ["get_output", "ctx", [0, 5000, 64, 100]],
  ["get_output_single", "ctx", [0, 5000, 64, 100]],
  ["fini_single", "ctx", []],
  ["finalize_execution_context", "ctx", []],
];

/** Prepares a valid tensor at 300 and sentinels in every out-parameter. */
function prepare(g: Guest) {
  g.putU32(400, 1);
  g.put(2000, "hello");
  putTensor(g, 300, {});
  g.putU32(40, SENTINEL);
  g.putU32(100, SENTINEL);
  g.put(5000, new Array(16).fill(0xee));
}

Deno.test("handles this instance never got are InvalidArgument; the host is not called", async () => {
  const g = guest();
  // A fresh instance holds nothing: not even 0.
  const unknown = [0, 1, 3, 7, -1, -2, -0x80000000, 0x7fffffff];
  const check = async (handles: number[], label: string) => {
    for (const [fn, , rest] of HANDLE_CALLS) {
      for (const h of handles) {
        prepare(g);
        assertEquals(
          await g.call(fn, h, ...rest),
          Errno.InvalidArgument,
          `${label}: ${fn}(${h})`,
        );
        assertEquals(g.u32(40), SENTINEL, `${fn}(${h}) wrote out_ctx`);
        assertEquals(g.u32(100), SENTINEL, `${fn}(${h}) wrote out_written`);
        deepStrictEqual(g.bytes(5000, 16), new Array(16).fill(0xee));
        const line = debugLines(g).at(-1) ?? "";
        assertEquals(
          /no (graph|execution context) with handle/.test(line),
          true,
          line,
        );
      }
    }
  };
  await check(unknown, "fresh");
  deepStrictEqual(g.host.calls, []);
  // Holding graphs 0 and 1 (host 7 and 8) and context 0: the host's
  // numbers and the next ones are still unknown to this guest.
  const { graph, ctx } = await open(g);
  await open(g, "other");
  deepStrictEqual([graph, ctx], [0, 0]);
  const contexts = HANDLE_CALLS.filter(([, kind]) => kind === "ctx");
  const graphs = HANDLE_CALLS.filter(([, kind]) => kind === "graph");
  for (const [fn, , rest] of contexts) {
    for (const h of [2, 3, 4, -1, -2]) {
      prepare(g);
      assertEquals(
        await g.call(fn, h, ...rest),
        Errno.InvalidArgument,
        `${fn}(${h})`,
      );
    }
  }
  for (const [fn, , rest] of graphs) {
    for (const h of [2, 7, 51, -1, -2]) {
      prepare(g);
      assertEquals(
        await g.call(fn, h, ...rest),
        Errno.InvalidArgument,
        `${fn}(${h})`,
      );
    }
  }
  deepStrictEqual(g.host.calls, []);
});

Deno.test("two instances on one host: each sees its own handles from 0; neither reaches the other's", async () => {
  const host = new RecordingHost();
  const a = guest({ host });
  const b = guest({ host });
  const ha = await open(a); // host graph 7, context 3
  assertEquals(await a.call("compute", ha.ctx), 0);
  deepStrictEqual(host.calls, [["compute", 3]]);
  host.calls = [];
  // B never loaded anything: A's 0s do not exist for it.
  for (const [fn, , rest] of HANDLE_CALLS) {
    prepare(b);
    assertEquals(await b.call(fn, 0, ...rest), Errno.InvalidArgument, fn);
    assertEquals(b.u32(100), SENTINEL, `${fn} wrote out_written`);
    deepStrictEqual(b.bytes(5000, 16), new Array(16).fill(0xee), fn);
  }
  deepStrictEqual([...host.calls], []);
  // B loads the same name: its own load (the cache is per instance), its own 0s.
  const hb = await open(b); // host graph 8, context 4
  deepStrictEqual(hb, { graph: 0, ctx: 0 });
  prepare(b);
  assertEquals(await b.call("set_input", hb.ctx, 0, 300), 0);
  assertEquals(await b.call("compute", hb.ctx), 0);
  assertEquals(await a.call("compute", ha.ctx), 0);
  assertEquals(await b.call("get_output", hb.ctx, 0, 5000, 64, 100), 0);
  assertEquals(await b.call("finalize_execution_context", hb.ctx), 0);
  assertEquals(await b.call("unload", hb.graph), 0);
  // B is done; A's handles still stand for A's host handles.
  prepare(a);
  assertEquals(await a.call("get_output", ha.ctx, 0, 5000, 64, 100), 0);
  assertEquals(a.u32(100), 11);
  assertEquals(await a.call("finalize_execution_context", ha.ctx), 0);
  assertEquals(await a.call("unload", ha.graph), 0);
  deepStrictEqual(host.calls.map((c) => c.slice(0, 2)), [
    ["setInput", 4],
    ["compute", 4],
    ["compute", 3],
    ["getOutput", 4],
    ["finalizeExecutionContext", 4],
    ["unload", 8],
    ["getOutput", 3],
    ["finalizeExecutionContext", 3],
    ["unload", 7],
  ]);
});

Deno.test("load_by_name: a name this instance holds returns its handle without the host", async () => {
  const g = guest();
  g.put(100, "default\0");
  g.put(120, "other");
  g.put(300, '{"ctx-size":512}');
  g.putU32(200, SENTINEL, SENTINEL, SENTINEL, SENTINEL, SENTINEL);
  assertEquals(await g.call("load_by_name", 100, 7, 200), 0);
  // Again, with a config (ignored, as in WasmEdge) and with a trailing NUL.
  assertEquals(
    await g.call("load_by_name_with_config", 100, 7, 300, 16, 204),
    0,
  );
  assertEquals(await g.call("load_by_name", 100, 8, 208), 0);
  assertEquals(await g.call("load_by_name", 120, 5, 212), 0);
  deepStrictEqual([g.u32(200), g.u32(204), g.u32(208), g.u32(212)], [
    0,
    0,
    0,
    1,
  ]);
  deepStrictEqual(g.host.calls, [
    ["loadByName", "default", undefined],
    ["loadByName", "other", undefined],
  ]);
  // After unload the name is loaded afresh: the host again, a new handle.
  assertEquals(await g.call("unload", 0), 0);
  assertEquals(await g.call("load_by_name", 100, 7, 216), 0);
  assertEquals(g.u32(216), 2);
  assertEquals(
    await g.call("init_execution_context", 0, 40),
    Errno.InvalidArgument,
  );
  assertEquals(await g.call("init_execution_context", 2, 40), 0);
  assertEquals(await g.call("init_execution_context", 1, 44), 0);
  deepStrictEqual(g.host.calls.slice(2), [
    ["unload", 7],
    ["loadByName", "default", undefined],
    ["initExecutionContext", 9],
    ["initExecutionContext", 8],
  ]);
});

Deno.test("[Symbol.dispose] finalizes held contexts and unloads held graphs once", async () => {
  const host = new RecordingHost();
  const g = guest({ host });
  const other = guest({ host });
  const a = await open(g); // host graph 7, context 3
  const c1 = await context(g, a.graph); // host context 4
  const b = await open(g, "b"); // host graph 8, context 5
  const o = await open(other); // host graph 9, context 6
  // What the guest freed itself is not freed again.
  assertEquals(await g.call("finalize_execution_context", c1), 0);
  host.calls = [];
  g.imports[Symbol.dispose]();
  const sorted = (kind: string) =>
    host.calls.filter((c) => c[0] === kind).map((c) => c[1] as number).sort();
  deepStrictEqual(sorted("finalizeExecutionContext"), [3, 5]);
  deepStrictEqual(sorted("unload"), [7, 8]);
  assertEquals(host.calls.length, 4);
  // Contexts before the graphs they belong to.
  deepStrictEqual(
    host.calls.map((c) => c[0]),
    [
      "finalizeExecutionContext",
      "finalizeExecutionContext",
      "unload",
      "unload",
    ],
  );
  // Twice is safe: nothing more.
  g.imports[Symbol.dispose]();
  assertEquals(host.calls.length, 4);
  // The disposed instance's handles are gone; the other instance's stand.
  for (const ctx of [a.ctx, b.ctx]) {
    assertEquals(await g.call("compute", ctx), Errno.InvalidArgument);
  }
  assertEquals(await g.call("unload", a.graph), Errno.InvalidArgument);
  assertEquals(await other.call("compute", o.ctx), 0);
  deepStrictEqual(host.calls.slice(4), [["compute", 6]]);
});

Deno.test("[Symbol.dispose]: a host that already freed a handle does not stop the rest", async () => {
  const host = new RecordingHost();
  const g = guest({ host });
  await open(g); // host graph 7, context 3
  await open(g, "b"); // host graph 8, context 4
  host.impl.finalizeExecutionContext = (ctx: number) => {
    if (ctx === 3) throw new WasiNnError(Errno.InvalidArgument, "expired");
  };
  host.impl.unload = (graph: number) => {
    if (graph === 7) throw new Error("host closed");
  };
  g.imports[Symbol.dispose]();
  deepStrictEqual(
    host.calls.map((c) => c.slice(0, 2)).sort(),
    [
      ["finalizeExecutionContext", 3],
      ["finalizeExecutionContext", 4],
      ["unload", 7],
      ["unload", 8],
    ],
  );
  g.imports[Symbol.dispose]();
  assertEquals(host.calls.length, 4);
});

Deno.test("`using` an import object releases what its instance holds", async () => {
  const host = new RecordingHost();
  {
    const memory = new WebAssembly.Memory({ initial: 1 });
    using imports = createWasiNnImports(host, { getMemory: () => memory });
    const exports = new WebAssembly.Instance(WITH_MEMORY, imports)
      .exports as Record<string, (...a: number[]) => number>;
    const call = (name: WasiNnFunctionName, ...args: number[]) =>
      WebAssembly.promising(exports[`call_${name}`])(...args);
    new Uint8Array(memory.buffer).set(new TextEncoder().encode("default"), 0);
    assertEquals(await call("load_by_name", 0, 7, 100), 0);
    host.calls = []; // the load itself (host graph 7)
    assertEquals(await call("init_execution_context", 0, 104), 0);
  }
  deepStrictEqual(host.calls, [
    ["initExecutionContext", 7],
    ["finalizeExecutionContext", 3],
    ["unload", 7],
  ]);
});

// ------------------------------------------------------------------- runGuest

const PROC_EXIT: ImportSpec = {
  module: "wasi_snapshot_preview1",
  name: "proc_exit",
  params: 1,
  results: 0,
};
const NN = (name: WasiNnFunctionName): ImportSpec => ({
  module: "wasi_ephemeral_nn",
  name,
  params: PARAMS[name],
  results: 1,
});
const i32 = (n: number) => [0x41, ...sleb(n)]; // i32.const n

function sleb(n: number): number[] {
  const out: number[] = [];
  while (true) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(byte & 0x40)) || (n === -1 && (byte & 0x40))) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** A command module: imports proc_exit (0), init_execution_context (1), compute (2). */
function commandBytes(
  start: number[],
  options: { memory?: boolean; extra?: ImportSpec[] } = {},
): Uint8Array<ArrayBuffer> {
  return assembleBytes(
    [
      PROC_EXIT,
      NN("init_execution_context"),
      NN("compute"),
      ...(options.extra ?? []),
    ],
    [{ export: "_start", params: 0, results: 0, body: start }],
    options.memory ?? true,
  );
}
const command = (
  start: number[],
  options?: { memory?: boolean; extra?: ImportSpec[] },
) => new WebAssembly.Module(commandBytes(start, options));

async function quietly<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; stderr: string }> {
  const original = console.error;
  let stderr = "";
  console.error = (...parts: unknown[]) => {
    stderr += parts.join(" ") + "\n";
  };
  try {
    return { value: await fn(), stderr };
  } finally {
    console.error = original;
  }
}

Deno.test("runGuest: exit codes from proc_exit and from _start returning", async () => {
  const host = new RecordingHost();
  const i32Load = [0x28, 0x02, 0x00]; // i32.load align=4 offset=0
  const exit7 = command([
    ...i32(0),
    ...i32(0),
    ...i32(8),
    0x10,
    3, // load_by_name("", 0, 8)
    0x1a, // drop
    ...i32(8),
    ...i32Load,
    ...i32(16),
    0x10,
    1, // init_execution_context(*8, 16)
    0x1a,
    ...i32(16),
    ...i32Load,
    0x10,
    2, // compute(*16)
    0x1a,
    ...i32(7),
    0x10,
    0, // proc_exit(7)
  ], { extra: [NN("load_by_name")] });
  assertEquals(await runGuest({ wasm: exit7, args: [], host }), 7);
  deepStrictEqual(host.calls.map((c) => c.slice(0, 2)), [
    ["loadByName", ""],
    ["initExecutionContext", 7],
    ["compute", 3],
    // What the guest left behind is released at the end.
    ["finalizeExecutionContext", 3],
    ["unload", 7],
  ]);
  // A second run on the same host: its own handles from 0 (the guest reads
  // 0s and they stand for the host's new 8 and 4), its own load.
  host.calls = [];
  assertEquals(await runGuest({ wasm: exit7, args: [], host }), 7);
  deepStrictEqual(host.calls.map((c) => c.slice(0, 2)), [
    ["loadByName", ""],
    ["initExecutionContext", 8],
    ["compute", 4],
    ["finalizeExecutionContext", 4],
    ["unload", 8],
  ]);
  assertEquals(await runGuest({ wasm: command([]), args: ["a"], host }), 0);
  assertEquals(host.calls.length, 5);
});

Deno.test("runGuest: a trap prints the error with a hint and returns 134", async () => {
  const { value, stderr } = await quietly(() =>
    runGuest({
      wasm: command([0x00]),
      args: [],
      argv0: "panic.wasm",
      host: new RecordingHost(),
    })
  );
  assertEquals(value, TRAP_EXIT_CODE);
  assertEquals(TRAP_EXIT_CODE, 134);
  assertEquals(
    stderr.includes("panic.wasm trapped: RuntimeError: unreachable"),
    true,
    stderr,
  );
  assertEquals(stderr.includes("Rust panic"), true);
});

Deno.test("runGuest: missing imports are listed before anything runs", async () => {
  const host = new RecordingHost();
  const guest = command([], {
    extra: [
      { module: "wasi_nn", name: "load", params: 4, results: 1 },
      {
        module: "wasi_ephemeral_nn",
        name: "load_whisper",
        params: 1,
        results: 1,
      },
    ],
  });
  await rejects(
    () => runGuest({ wasm: guest, args: [], argv0: "whisper.wasm", host }),
    (err: unknown) => {
      assertEquals(err instanceof GuestLinkError, true);
      deepStrictEqual((err as GuestLinkError).missing, [
        "wasi_nn.load",
        "wasi_ephemeral_nn.load_whisper",
      ]);
      const message = (err as Error).message;
      assertEquals(
        message.startsWith("whisper.wasm imports 2 items"),
        true,
        message,
      );
      assertEquals(message.includes("legacy `wasi_nn`"), true);
      return true;
    },
  );
  deepStrictEqual(host.calls, []);
});

Deno.test("runGuest: no memory or no _start is a GuestLinkError", async () => {
  const host = new RecordingHost();
  await rejects(
    () => runGuest({ wasm: command([], { memory: false }), args: [], host }),
    (err: unknown) =>
      err instanceof GuestLinkError && /no memory/.test((err as Error).message),
  );
  await rejects(
    () => runGuest({ wasm: WITH_MEMORY, args: [], host }),
    (err: unknown) =>
      err instanceof GuestLinkError && /no _start/.test((err as Error).message),
  );
});

Deno.test("runGuest: bytes and file paths are accepted; a bad file throws", async () => {
  const host = new RecordingHost();
  const bytes = commandBytes([...i32(5), 0x10, 0]); // proc_exit(5)
  assertEquals(await runGuest({ wasm: bytes, args: [], host }), 5);
  const path = await Deno.makeTempFile({ suffix: ".wasm" });
  try {
    await Deno.writeFile(path, bytes);
    assertEquals(await runGuest({ wasm: path, args: [], host }), 5);
    await Deno.writeTextFile(path, "not wasm");
    await rejects(
      () => runGuest({ wasm: path, args: [], host }),
      WebAssembly.CompileError,
    );
  } finally {
    await Deno.remove(path);
  }
  await rejects(
    () => runGuest({ wasm: `${path}.missing`, args: [], host }),
    Deno.errors.NotFound,
  );
});
