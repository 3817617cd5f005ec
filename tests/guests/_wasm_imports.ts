/**
 * A small reader for the parts of a WebAssembly binary that say what a guest
 * needs from its host: the import section with function signatures (which
 * `WebAssembly.Module.imports` does not give) and the exported functions'
 * signatures.
 *
 * @example
 * ```ts
 * import { readInterface } from "./_wasm_imports.ts";
 * const wasm = await Deno.readFile("build/guests/oneshot.wasm");
 * for (const imp of readInterface(wasm).imports) {
 *   console.log(imp.module, imp.name, imp.type?.params, imp.type?.results);
 * }
 * ```
 * @module
 */

/** A value type, as written in the text format. */
export type ValType =
  | "i32"
  | "i64"
  | "f32"
  | "f64"
  | "v128"
  | "funcref"
  | "externref";

/** A function type. */
export interface FuncType {
  /** Parameter types. */
  params: ValType[];
  /** Result types. */
  results: ValType[];
}

/** One import, with its signature when it is a function. */
export interface WasmImport {
  /** Import module, e.g. `wasi_ephemeral_nn`. */
  module: string;
  /** Field name, e.g. `compute`. */
  name: string;
  /** Kind, with the same spelling as `WebAssembly.Module.imports`. */
  kind: "function" | "table" | "memory" | "global" | "tag";
  /** The signature of a function import. */
  type?: FuncType;
}

/** One export, with its signature when it is a function. */
export interface WasmExport {
  /** Export name. */
  name: string;
  /** Kind, with the same spelling as `WebAssembly.Module.exports`. */
  kind: "function" | "table" | "memory" | "global" | "tag";
  /** The signature of an exported function. */
  type?: FuncType;
}

/** What a module imports and exports. */
export interface WasmInterface {
  /** Imports in section order. */
  imports: WasmImport[];
  /** Exports in section order. */
  exports: WasmExport[];
}

const VALTYPES: Record<number, ValType> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
};

const KINDS = ["function", "table", "memory", "global", "tag"] as const;

class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array, readonly end = bytes.length) {}

  byte(): number {
    if (this.pos >= this.end) throw new Error("wasm: unexpected end of data");
    return this.bytes[this.pos++];
  }

  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
      if (shift > 35) throw new Error("wasm: LEB128 too long");
    }
    return result;
  }

  name(): string {
    const len = this.u32();
    if (this.pos + len > this.end) throw new Error("wasm: name past end");
    const s = new TextDecoder("utf-8", { fatal: true }).decode(
      this.bytes.subarray(this.pos, this.pos + len),
    );
    this.pos += len;
    return s;
  }

  valtype(): ValType {
    const b = this.byte();
    const t = VALTYPES[b];
    if (t === undefined) {
      throw new Error(`wasm: unsupported value type 0x${b.toString(16)}`);
    }
    return t;
  }

  limits(): void {
    const flags = this.byte();
    this.u32();
    if (flags & 1) this.u32();
  }
}

/**
 * Reads the type, import, function and export sections of a module.
 * Throws on a malformed module or on type encodings it does not know (the
 * GC proposal's recursive types, for instance).
 */
export function readInterface(wasm: Uint8Array): WasmInterface {
  const r = new Reader(wasm);
  const magic = [0x00, 0x61, 0x73, 0x6d];
  for (const m of magic) {
    if (r.byte() !== m) throw new Error("wasm: bad magic number");
  }
  if (r.byte() !== 1 || r.byte() !== 0 || r.byte() !== 0 || r.byte() !== 0) {
    throw new Error("wasm: unsupported version");
  }
  const types: FuncType[] = [];
  const imports: WasmImport[] = [];
  const funcTypes: number[] = []; // type index per function (imports first)
  const rawExports: { name: string; kind: number; index: number }[] = [];

  while (r.pos < wasm.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    if (end > wasm.length) throw new Error("wasm: section past end");
    const s = new Reader(wasm, end);
    s.pos = r.pos;
    if (id === 1) {
      for (let n = s.u32(); n > 0; n--) {
        const form = s.byte();
        if (form !== 0x60) {
          throw new Error(`wasm: unsupported type form 0x${form.toString(16)}`);
        }
        const params = Array.from({ length: s.u32() }, () => s.valtype());
        const results = Array.from({ length: s.u32() }, () => s.valtype());
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let n = s.u32(); n > 0; n--) {
        const module = s.name();
        const name = s.name();
        const kind = s.byte();
        if (kind === 0) {
          const index = s.u32();
          const type = types[index];
          if (type === undefined) throw new Error("wasm: bad type index");
          funcTypes.push(index);
          imports.push({ module, name, kind: "function", type });
        } else if (kind === 1) {
          s.valtype();
          s.limits();
          imports.push({ module, name, kind: "table" });
        } else if (kind === 2) {
          s.limits();
          imports.push({ module, name, kind: "memory" });
        } else if (kind === 3) {
          s.valtype();
          s.byte();
          imports.push({ module, name, kind: "global" });
        } else if (kind === 4) {
          s.byte();
          s.u32();
          imports.push({ module, name, kind: "tag" });
        } else {
          throw new Error(`wasm: bad import kind ${kind}`);
        }
      }
    } else if (id === 3) {
      for (let n = s.u32(); n > 0; n--) funcTypes.push(s.u32());
    } else if (id === 7) {
      for (let n = s.u32(); n > 0; n--) {
        rawExports.push({ name: s.name(), kind: s.byte(), index: s.u32() });
      }
    }
    r.pos = end;
  }

  const exports = rawExports.map(({ name, kind, index }): WasmExport => {
    const kindName = KINDS[kind];
    if (kindName === undefined) throw new Error(`wasm: bad export kind`);
    if (kindName !== "function") return { name, kind: kindName };
    const type = types[funcTypes[index]];
    if (type === undefined) throw new Error("wasm: bad function index");
    return { name, kind: kindName, type };
  });
  return { imports, exports };
}

/** A signature as text: `(i32, i32) -> i32`. */
export function formatType(type: FuncType | undefined): string {
  if (type === undefined) return "(not a function)";
  return `(${type.params.join(", ")}) -> ${type.results.join(", ") || "()"}`;
}
