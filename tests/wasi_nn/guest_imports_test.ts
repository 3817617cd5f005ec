// Tests of the wasi_ephemeral_nn marshalling layer (wasi_nn/guest_imports.ts)
// against a real wasm module, assembled byte by byte below: it imports the 12
// functions and exports `call_<name>` wrappers that forward their arguments,
// plus (optionally) a 1-page `memory`. The host is a small recording object,
// because the marshalling layer is the unit under test.

import {
  deepStrictEqual,
  rejects,
  strictEqual as assertEquals,
} from "node:assert/strict";
import {
  createWasiNnImports,
  WASI_NN_FUNCTIONS,
  type WasiNnFunctionName,
  type WasiNnLogLevel,
  type WasiNnSyncHostApi,
} from "../../wasi_nn/guest_imports.ts";
import { Errno, WasiNnError } from "../../wasi_nn/errno.ts";
import {
  GuestLinkError,
  runGuest,
  TRAP_EXIT_CODE,
} from "../../wasi_nn/run_guest.ts";
import type { TensorInput, WasiNnHostApi } from "../../wasi_nn/host_api.ts";
import "../../wasi_nn/_jspi.ts";

// ---------------------------------------------------------------- wasm bytes

const PARAMS: Record<WasiNnFunctionName, number> = {
  load: 5,
  load_by_name: 3,
  load_by_name_with_config: 5,
  init_execution_context: 2,
  set_input: 3,
  compute: 1,
  get_output: 5,
  get_output_single: 5,
  compute_single: 1,
  fini_single: 1,
  unload: 1,
  finalize_execution_context: 1,
};

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}
const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];
const str = (s: string) => {
  const b = [...new TextEncoder().encode(s)];
  return [...leb(b.length), ...b];
};
const section = (id: number, body: number[]) => [
  id,
  ...leb(body.length),
  ...body,
];

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

/** Records every call; behaviour per method can be overridden. */
class RecordingHost implements WasiNnHostApi {
  calls: Call[] = [];
  // deno-lint-ignore no-explicit-any
  impl: Partial<Record<keyof WasiNnHostApi, (...args: any[]) => any>> = {};

  #run<T>(name: keyof WasiNnHostApi, args: unknown[], fallback: T): T {
    this.calls.push([name, ...args]);
    const fn = this.impl[name];
    return fn ? fn(...args) : fallback;
  }
  load(builders: Uint8Array[], encoding: number, target: number) {
    const copies = builders.map((b) => [...b]);
    return Promise.resolve(this.#run("load", [copies, encoding, target], 1));
  }
  loadByName(name: string, config?: string) {
    return Promise.resolve(this.#run("loadByName", [name, config], 7));
  }
  initExecutionContext(graph: number) {
    return this.#run("initExecutionContext", [graph], 3);
  }
  setInput(ctx: number, index: number, tensor: TensorInput) {
    const copy = {
      dims: [...tensor.dims],
      type: tensor.type,
      data: [...tensor.data],
    };
    return Promise.resolve(
      this.#run("setInput", [ctx, index, copy], undefined),
    );
  }
  compute(ctx: number) {
    return Promise.resolve(this.#run("compute", [ctx], undefined));
  }
  getOutput(ctx: number, index: number) {
    return this.#run(
      "getOutput",
      [ctx, index],
      new TextEncoder().encode("hello world"),
    );
  }
  computeSingle(ctx: number) {
    return Promise.resolve(this.#run("computeSingle", [ctx], undefined));
  }
  getOutputSingle(ctx: number, index: number) {
    return this.#run(
      "getOutputSingle",
      [ctx, index],
      new TextEncoder().encode("tok"),
    );
  }
  finiSingle(ctx: number) {
    this.#run("finiSingle", [ctx], undefined);
  }
  unload(graph: number) {
    this.#run("unload", [graph], undefined);
  }
  finalizeExecutionContext(ctx: number) {
    this.#run("finalizeExecutionContext", [ctx], undefined);
  }
}

interface Guest {
  host: RecordingHost;
  logs: [WasiNnLogLevel, string][];
  memory: WebAssembly.Memory;
  /** Calls `call_<name>` through WebAssembly.promising; resolves to the errno. */
  call(name: WasiNnFunctionName, ...args: number[]): Promise<number>;
  bytes(ptr: number, len: number): number[];
  u32(ptr: number): number;
  put(ptr: number, data: string | number[]): void;
  putU32(ptr: number, ...values: number[]): void;
}

function guest(
  options: {
    withMemory?: boolean;
    mode?: "jspi" | "sync";
    host?: RecordingHost;
  } = {},
): Guest {
  const host = options.host ?? new RecordingHost();
  const logs: [WasiNnLogLevel, string][] = [];
  const linked: { instance?: WebAssembly.Instance } = {};
  const imports = createWasiNnImports(host, {
    getMemory: () =>
      linked.instance?.exports.memory as WebAssembly.Memory | undefined,
    log: (level, msg) => logs.push([level, msg]),
    mode: options.mode ?? "jspi",
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
    call: (name, ...args) =>
      options.mode === "sync"
        ? Promise.resolve(exports[`call_${name}`](...args))
        : WebAssembly.promising(exports[`call_${name}`])(...args),
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
  };
}

const SENTINEL = 0xaaaaaaaa;
const PAGE = 65536;

// ------------------------------------------------------------------- load_by_name

Deno.test("load_by_name passes the name and writes the graph handle", async () => {
  const g = guest();
  g.put(100, "default");
  g.putU32(200, SENTINEL);
  assertEquals(await g.call("load_by_name", 100, 7, 200), 0);
  deepStrictEqual(g.host.calls, [["loadByName", "default", undefined]]);
  assertEquals(g.u32(200), 7);
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
  assertEquals(g.u32(PAGE - 4), 7);
  // An empty name at the very end is in bounds; the host decides (here: ok).
  assertEquals(await g.call("load_by_name", PAGE, 0, 200), 0);
  deepStrictEqual(g.host.calls[1], ["loadByName", "", undefined]);
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
  g.host.impl.unload = () => {
    throw "a string";
  };
  assertEquals(await g.call("unload", 1), Errno.RuntimeError);
  deepStrictEqual(g.logs.map(([level]) => level), ["debug", "error", "error"]);
  assertEquals(g.logs[1][1].includes("boom"), true);
});

Deno.test("load_by_name_with_config passes the config; config_len 0 means none", async () => {
  const g = guest();
  const config = '{"n-predict":8,"ctx-size":512}';
  g.put(100, "default");
  g.put(300, config);
  assertEquals(
    await g.call("load_by_name_with_config", 100, 7, 300, config.length, 200),
    0,
  );
  assertEquals(
    await g.call("load_by_name_with_config", 100, 7, 300, 0, 204),
    0,
  );
  deepStrictEqual(g.host.calls, [
    ["loadByName", "default", config],
    ["loadByName", "default", undefined],
  ]);
  assertEquals(g.u32(200), 7);
  assertEquals(g.u32(204), 7);
  // A config running past the end of memory.
  assertEquals(
    await g.call("load_by_name_with_config", 100, 7, PAGE - 2, 3, 200),
    Errno.InvalidArgument,
  );
  assertEquals(g.host.calls.length, 2);
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
  assertEquals(g.u32(600), 1);
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
  assertEquals(await g.call("load", 0, 0, 5, 0, 600), 0); // no builders
  assertEquals(g.host.calls.length, 2);
  deepStrictEqual(g.host.calls[1], ["load", [], 5, 0]);
});

// ------------------------------------------------------------------- contexts

Deno.test("init_execution_context writes the handle; graph is unsigned", async () => {
  const g = guest();
  g.host.impl.initExecutionContext = () => 0xfffffffe;
  assertEquals(await g.call("init_execution_context", -1, 40), 0);
  deepStrictEqual(g.host.calls, [["initExecutionContext", 0xffffffff]]);
  assertEquals(g.u32(40), 0xfffffffe);
  g.putU32(40, SENTINEL);
  assertEquals(
    await g.call("init_execution_context", 0, PAGE - 2),
    Errno.InvalidArgument,
  );
  assertEquals(g.host.calls.length, 1);
  g.host.impl.initExecutionContext = () => {
    throw new WasiNnError(Errno.InvalidArgument, "bad graph");
  };
  assertEquals(
    await g.call("init_execution_context", 9, 40),
    Errno.InvalidArgument,
  );
  assertEquals(g.u32(40), SENTINEL);
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
  g.putU32(400, 1);
  g.put(2000, "hello");
  putTensor(g, 300, { type: 0x0103 }); // only the low byte counts
  assertEquals(await g.call("set_input", 4, 0, 300), 0);
  putTensor(g, 300, { dimsLen: 0, dataLen: 0 });
  assertEquals(await g.call("set_input", 4, 1, 300), 0);
  g.putU32(400, 1, 5);
  putTensor(g, 300, { dimsLen: 2, type: 4 });
  assertEquals(await g.call("set_input", -2, -1, 300), 0);
  deepStrictEqual(g.host.calls, [
    ["setInput", 4, 0, { dims: [1], type: 3, data: [104, 101, 108, 108, 111] }],
    ["setInput", 4, 1, { dims: [], type: 3, data: [] }],
    ["setInput", 0xfffffffe, 0xffffffff, {
      dims: [1, 5],
      type: 4,
      data: [104, 101, 108, 108, 111],
    }],
  ]);
});

Deno.test("set_input accepts F16, F32, U8, I32 and rejects F64, I64 and unknown types", async () => {
  const g = guest();
  g.put(2000, "hello");
  g.putU32(400, 1);
  for (const type of [0, 1, 3, 4]) {
    putTensor(g, 300, { type });
    assertEquals(await g.call("set_input", 0, 0, 300), 0, `type ${type}`);
  }
  for (const type of [2, 5, 6, 255]) {
    putTensor(g, 300, { type });
    assertEquals(
      await g.call("set_input", 0, 0, 300),
      Errno.InvalidArgument,
      `type ${type}`,
    );
  }
  assertEquals(g.host.calls.length, 4);
});

Deno.test("set_input: bad tensor, dims or data pointers are InvalidArgument", async () => {
  const g = guest();
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
      await g.call("set_input", 0, 0, ptr),
      Errno.InvalidArgument,
      label,
    );
  }
  deepStrictEqual(g.host.calls, []);
});

// ------------------------------------------------------------------- compute

Deno.test("compute and compute_single pass the context; errnos come through", async () => {
  const g = guest();
  assertEquals(await g.call("compute", 3), 0);
  assertEquals(await g.call("compute_single", 3), 0);
  g.host.impl.compute = () =>
    Promise.reject(new WasiNnError(Errno.ContextFull, "full"));
  g.host.impl.computeSingle = () =>
    Promise.reject(new WasiNnError(Errno.EndOfSequence, "eos"));
  assertEquals(await g.call("compute", 3), Errno.ContextFull);
  assertEquals(await g.call("compute_single", 3), Errno.EndOfSequence);
  g.host.impl.compute = () =>
    Promise.reject(new WasiNnError(Errno.PromptTooLong, "long"));
  assertEquals(await g.call("compute", -1), Errno.PromptTooLong);
  deepStrictEqual(g.host.calls.map((c) => c.slice(0, 2)), [
    ["compute", 3],
    ["computeSingle", 3],
    ["compute", 3],
    ["computeSingle", 3],
    ["compute", 0xffffffff],
  ]);
});

Deno.test("JSPI: the guest suspends while the host awaits; the event loop runs", async () => {
  const g = guest();
  const order: string[] = [];
  g.host.impl.compute = async () => {
    order.push("compute start");
    await new Promise((resolve) => setTimeout(resolve, 20));
    order.push("compute end");
  };
  const pending = g.call("compute", 0);
  setTimeout(() => order.push("timer"), 0);
  assertEquals(await pending, 0);
  deepStrictEqual(order, ["compute start", "timer", "compute end"]);
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
  deepStrictEqual(
    await Promise.all([a.call("compute", 1), b.call("compute", 2)]),
    [0, 0],
  );
  assertEquals(maxActive, 2);
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
    g.host.impl[method] = () => new TextEncoder().encode("hello world");
    g.put(5000, new Array(16).fill(0xee));
    g.putU32(100, SENTINEL);
    assertEquals(await g.call(fn, 2, 1, 5000, 64, 100), 0);
    deepStrictEqual(g.bytes(5000, 12), [
      ...new TextEncoder().encode("hello world"),
      0xee,
    ]);
    assertEquals(g.u32(100), 11);
    deepStrictEqual(g.host.calls, [[method, 2, 1]]);
    // Exactly the size of the output fits.
    g.putU32(100, SENTINEL);
    assertEquals(await g.call(fn, 2, 0, 6000, 11, 100), 0);
    assertEquals(g.u32(100), 11);
  });

  Deno.test(`${fn}: too small a buffer is TooLarge (7), size written, nothing copied`, async () => {
    const g = guest();
    g.host.impl[method] = () => new TextEncoder().encode("hello world");
    g.put(5000, new Array(16).fill(0xee));
    g.putU32(100, SENTINEL);
    assertEquals(await g.call(fn, 2, 0, 5000, 10, 100), Errno.TooLarge);
    assertEquals(g.u32(100), 11);
    deepStrictEqual(g.bytes(5000, 16), new Array(16).fill(0xee));
    assertEquals(await g.call(fn, 2, 0, 5000, 0, 100), Errno.TooLarge);
  });

  Deno.test(`${fn}: bad buffer or out_written is InvalidArgument, host not called`, async () => {
    const g = guest();
    assertEquals(
      await g.call(fn, 0, 0, PAGE - 10, 24576, 100),
      Errno.InvalidArgument,
    );
    assertEquals(await g.call(fn, 0, 0, -16, 32, 100), Errno.InvalidArgument);
    assertEquals(
      await g.call(fn, 0, 0, 5000, 64, PAGE - 1),
      Errno.InvalidArgument,
    );
    deepStrictEqual(g.host.calls, []);
    // An empty output into an empty buffer at the end of memory is fine.
    g.host.impl[method] = () => new Uint8Array(0);
    assertEquals(await g.call(fn, 0, 0, PAGE, 0, 100), 0);
    assertEquals(g.u32(100), 0);
  });
}

Deno.test("get_output: host errors are errnos and leave memory untouched", async () => {
  const g = guest();
  g.host.impl.getOutput = () => {
    throw new WasiNnError(Errno.InvalidArgument, "bad ctx");
  };
  g.putU32(100, SENTINEL);
  assertEquals(
    await g.call("get_output", 9, 0, 5000, 64, 100),
    Errno.InvalidArgument,
  );
  assertEquals(g.u32(100), SENTINEL);
});

// ------------------------------------------------------------------- the rest

Deno.test("fini_single, unload and finalize_execution_context pass their handle", async () => {
  const g = guest();
  assertEquals(await g.call("fini_single", 1), 0);
  assertEquals(await g.call("unload", 2), 0);
  assertEquals(await g.call("finalize_execution_context", -3), 0);
  g.host.impl.unload = () => {
    throw new WasiNnError(Errno.InvalidArgument, "no such graph");
  };
  assertEquals(await g.call("unload", 2), Errno.InvalidArgument);
  deepStrictEqual(g.host.calls, [
    ["finiSingle", 1],
    ["unload", 2],
    ["finalizeExecutionContext", 0xfffffffd],
    ["unload", 2],
  ]);
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
  assertEquals(await g.call("load_by_name", 100, 7, 200), 0);
  assertEquals(g.u32(200), 12);
  assertEquals(await g.call("compute", 0), 0);
  assertEquals(g.memory.buffer.byteLength, 3 * PAGE);
  // The new pages are usable at once.
  assertEquals(
    await g.call("get_output", 0, 0, 2 * PAGE + 100, 64, 3 * PAGE - 4),
    0,
  );
  assertEquals(g.u32(3 * PAGE - 4), 11);
  deepStrictEqual(g.bytes(2 * PAGE + 100, 11), [
    ...new TextEncoder().encode("hello world"),
  ]);
});

Deno.test("a guest without exported memory gets MissingMemory (3), never a trap", async () => {
  const g = guest({ withMemory: false });
  assertEquals(await g.call("load_by_name", 0, 0, 0), Errno.MissingMemory);
  assertEquals(await g.call("load", 0, 0, 6, 0, 0), Errno.MissingMemory);
  assertEquals(await g.call("set_input", 0, 0, 0), Errno.MissingMemory);
  assertEquals(await g.call("get_output", 0, 0, 0, 0, 0), Errno.MissingMemory);
  assertEquals(
    await g.call("init_execution_context", 0, 0),
    Errno.MissingMemory,
  );
  // Calls that need no memory still work.
  assertEquals(await g.call("compute", 0), 0);
  assertEquals(await g.call("unload", 0), 0);
  deepStrictEqual(g.host.calls.map((c) => c[0]), ["compute", "unload"]);
});

Deno.test("without getMemory, memory calls are MissingMemory", async () => {
  const host = new RecordingHost();
  const imports = createWasiNnImports(host, { mode: "sync" });
  const fns = imports.wasi_ephemeral_nn as Record<
    string,
    (...a: number[]) => number
  >;
  assertEquals(fns.get_output(0, 0, 0, 0, 0), Errno.MissingMemory);
  assertEquals(fns.fini_single(0), 0);
  assertEquals(
    await Promise.resolve(fns.compute(0)),
    Errno.UnsupportedOperation,
  );
});

Deno.test("the import object has exactly the 12 ABI functions", () => {
  const imports = createWasiNnImports(new RecordingHost());
  deepStrictEqual(Object.keys(imports), ["wasi_ephemeral_nn"]);
  deepStrictEqual(
    Object.keys(imports.wasi_ephemeral_nn).sort(),
    [...WASI_NN_FUNCTIONS].sort(),
  );
  // Light calls are plain functions in either mode.
  assertEquals(typeof imports.wasi_ephemeral_nn.get_output, "function");
  assertEquals(
    imports.wasi_ephemeral_nn.compute instanceof WebAssembly.Suspending,
    true,
  );
});

// ------------------------------------------------------------------- sync mode

Deno.test("sync mode: async-only host calls are UnsupportedOperation, logged once", async () => {
  const g = guest({ mode: "sync" });
  g.put(100, "default");
  g.putU32(200, SENTINEL);
  assertEquals(
    await g.call("load_by_name", 100, 7, 200),
    Errno.UnsupportedOperation,
  );
  assertEquals(
    await g.call("load_by_name", 100, 7, 200),
    Errno.UnsupportedOperation,
  );
  assertEquals(await g.call("compute", 0), Errno.UnsupportedOperation);
  assertEquals(g.u32(200), SENTINEL);
  deepStrictEqual(g.host.calls, []);
  deepStrictEqual(g.logs.map(([level]) => level), ["error", "error"]);
  // Light calls work.
  assertEquals(await g.call("get_output", 0, 0, 5000, 64, 100), 0);
  assertEquals(g.u32(100), 11);
});

Deno.test("sync mode: the host's ...Sync variants are used when present", async () => {
  const host = new RecordingHost() as RecordingHost & WasiNnSyncHostApi;
  const seen: unknown[] = [];
  host.loadByNameSync = (name, config) => {
    seen.push(["loadByNameSync", name, config]);
    return 21;
  };
  host.setInputSync = (ctx, index, tensor) => {
    seen.push(["setInputSync", ctx, index, tensor.type, [...tensor.data]]);
  };
  host.computeSync = (ctx) => {
    seen.push(["computeSync", ctx]);
    throw new WasiNnError(Errno.ContextFull, "full");
  };
  const g = guest({ mode: "sync", host });
  g.put(100, "default");
  assertEquals(
    await g.call("load_by_name_with_config", 100, 7, 100, 7, 200),
    0,
  );
  assertEquals(g.u32(200), 21);
  g.putU32(400, 1);
  g.put(2000, "hi");
  putTensor(g, 300, { dataLen: 2 });
  assertEquals(await g.call("set_input", 1, 0, 300), 0);
  assertEquals(await g.call("compute", 1), Errno.ContextFull);
  deepStrictEqual(seen, [
    ["loadByNameSync", "default", "default"],
    ["setInputSync", 1, 0, 3, [104, 105]],
    ["computeSync", 1],
  ]);
  deepStrictEqual(host.calls, []);
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
  const exit7 = command([
    ...i32(0),
    ...i32(16),
    0x10,
    1, // init_execution_context(0, 16)
    0x1a, // drop
    ...i32(3),
    0x10,
    2, // compute(3)
    0x1a,
    ...i32(7),
    0x10,
    0, // proc_exit(7)
  ]);
  assertEquals(await runGuest({ wasm: exit7, args: [], host }), 7);
  deepStrictEqual(host.calls.map((c) => c.slice(0, 2)), [
    ["initExecutionContext", 0],
    ["compute", 3],
    // The context the guest left behind is finalized at the end.
    ["finalizeExecutionContext", 3],
  ]);
  assertEquals(await runGuest({ wasm: command([]), args: ["a"], host }), 0);
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
