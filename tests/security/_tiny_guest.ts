/**
 * A WASI-NN guest assembled byte by byte, so that the security tests need no
 * wasm toolchain: `_start` calls `load_by_name` (or
 * `load_by_name_with_config`) once with the given name (and config) and
 * exits with the errno it got as its exit code (0 on success).
 *
 * @example
 * ```ts ignore
 * import { tinyGuest } from "./_tiny_guest.ts";
 * await Deno.writeFile("/tmp/g.wasm", tinyGuest("x\n[ERR] forged"));
 * ```
 * @module
 */

import { section, sleb, str, uleb, vec } from "../_wasm.ts";

const enc = new TextEncoder();

/**
 * The guest's bytes. The name sits at offset 16 of its memory, the config
 * right after it; the graph handle is written at offset 0.
 */
export function tinyGuest(name: string, config?: string): Uint8Array {
  const nameBytes = enc.encode(name);
  const cfgBytes = config === undefined ? undefined : enc.encode(config);
  const i32 = 0x7f;
  const withConfig = cfgBytes !== undefined;
  const nnType = withConfig
    ? [0x60, 5, i32, i32, i32, i32, i32, 1, i32]
    : [0x60, 3, i32, i32, i32, 1, i32];
  const types = section(1, vec([nnType, [0x60, 0, 0], [0x60, 1, i32, 0]]));
  const imports = section(
    2,
    vec([
      [
        ...str("wasi_ephemeral_nn"),
        ...str(withConfig ? "load_by_name_with_config" : "load_by_name"),
        0x00,
        0,
      ],
      [...str("wasi_snapshot_preview1"), ...str("proc_exit"), 0x00, 2],
    ]),
  );
  const funcs = section(3, vec([[1]]));
  const pages =
    Math.ceil((16 + nameBytes.length + (cfgBytes?.length ?? 0)) / 65536) + 1;
  const memory = section(5, vec([[0x00, ...uleb(pages)]]));
  const exports = section(
    7,
    vec([[...str("memory"), 0x02, 0], [...str("_start"), 0x00, 2]]),
  );
  const cfgAt = 16 + nameBytes.length;
  const args = [
    0x41,
    ...sleb(16), // name_ptr
    0x41,
    ...sleb(nameBytes.length), // name_len
    ...(withConfig
      ? [0x41, ...sleb(cfgAt), 0x41, ...sleb(cfgBytes.length)]
      : []),
    0x41,
    ...sleb(0), // out_graph_ptr
  ];
  const body = [0, ...args, 0x10, 0, 0x10, 1, 0x0b]; // proc_exit(nn(...)); end
  const code = section(10, vec([[...uleb(body.length), ...body]]));
  const payload = [...nameBytes, ...(cfgBytes ?? [])];
  const data = section(
    11,
    vec([[0x00, 0x41, ...sleb(16), 0x0b, ...uleb(payload.length), ...payload]]),
  );
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...types,
    ...imports,
    ...funcs,
    ...memory,
    ...exports,
    ...code,
    ...data,
  ]);
}
