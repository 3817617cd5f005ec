/**
 * Devices of other machines through llama.cpp's RPC backend: `ggml-rpc-server`
 * (built with the library, `paths().rpcServer`) runs on each machine, and a
 * model lists the endpoints whose devices it uses (`ModelLoadOptions.rpcServers`,
 * llama.cpp's `--rpc`).
 *
 * llama.cpp aborts the whole process when an endpoint it talks to does not
 * answer. The functions here talk to an endpoint themselves first (a TCP
 * connect within a timeout and the RPC HELLO with its protocol version) and
 * throw a LlamaError naming it instead: `Status.InvalidArgument` for a
 * malformed entry, `Status.Unreachable` for one that does not answer. The
 * shim probes again before each load that names an endpoint. A server that
 * dies while a model uses it still ends the process: load such models in a
 * process of their own. `rpc-server` has no authentication: bind it to
 * 127.0.0.1 or a private network only.
 *
 * @example
 * ```ts ignore
 * import { checkRpcServers, Model, rpcServerMemory } from "./mod.ts";
 * const servers = await checkRpcServers("127.0.0.1:50052,127.0.0.1:50053");
 * const [{ free }] = await rpcServerMemory(servers[0]);
 * console.log(`${servers[0]}: ${free} bytes free`);
 * using model = await Model.load("model.gguf", {
 *   rpcServers: servers,
 *   nGpuLayers: 99,
 *   tensorSplit: [1, 1],
 * });
 * ```
 * @module
 */

import { symbols } from "./_library.ts";
import { check, cstr, errorBuffer, errorMessage } from "./_buffers.ts";
import { LlamaError, Status } from "./errors.ts";
import { parseRpcList, RPC_MAX_SERVERS } from "./_rpc_endpoints.ts";

export { RPC_MAX_SERVERS };

/** Options of the endpoint checks. */
export interface RpcCheckOptions {
  /** Limit of each endpoint's probe in ms (default 5000). */
  timeoutMs?: number;
  /**
   * Also send the RPC HELLO and check the protocol version (default true).
   * An rpc-server serves one client at a time: while another client (a model
   * of another process) holds it, the HELLO gets no reply and the check
   * fails; `false` checks only that something accepts TCP connections.
   */
  handshake?: boolean;
}

/**
 * Whether the library holds ggml's RPC backend (built with `GGML_RPC=ON`).
 *
 * @example
 * ```ts ignore
 * import { rpcSupported } from "./rpc.ts";
 * console.log(rpcSupported()); // true
 * ```
 */
export function rpcSupported(): boolean {
  return symbols().wnb_rpc_supported() === 1;
}

/**
 * Splits and checks an RPC endpoint list without connecting: a
 * `"host:port,host:port"` string (llama.cpp's `--rpc`; spaces around entries
 * are dropped) or an array of endpoints. Each host is an IPv4 address or a
 * host name (llama.cpp's client resolves IPv4 only), each port 1..65535; at
 * most {@linkcode RPC_MAX_SERVERS}, none twice. Throws
 * LlamaError(InvalidArgument) naming the first bad entry. Needs no library.
 *
 * @example
 * ```ts
 * import { parseRpcServers } from "./rpc.ts";
 * console.log(parseRpcServers("127.0.0.1:50052, 10.0.0.2:50052"));
 * // ["127.0.0.1:50052", "10.0.0.2:50052"]
 * try {
 *   parseRpcServers("127.0.0.1:50052,nohost");
 * } catch (e) {
 *   console.log((e as Error).message); // ... entry 2 "nohost" is not host:port ...
 * }
 * ```
 */
export function parseRpcServers(list: string | readonly string[]): string[] {
  return parseRpcList(list);
}

/**
 * Checks that one endpoint answers (see {@linkcode RpcCheckOptions}),
 * without llama.cpp. Throws LlamaError: InvalidArgument for a malformed
 * endpoint, Unreachable naming the endpoint and the reason (refused, no
 * answer in time, a host that does not resolve, not an rpc-server or another
 * protocol version).
 *
 * @example
 * ```ts ignore
 * import { probeRpcServer } from "./rpc.ts";
 * await probeRpcServer("127.0.0.1:50052", { timeoutMs: 1000 });
 * ```
 */
export async function probeRpcServer(
  endpoint: string,
  options: RpcCheckOptions = {},
): Promise<void> {
  const [ep] = parseRpcList([endpoint]);
  const err = errorBuffer();
  const status = await symbols().wnb_rpc_probe(
    cstr(ep),
    options.timeoutMs ?? 0,
    options.handshake === false ? 0 : 1,
    err,
  );
  check(status, err, `probing RPC server ${ep}`);
}

/**
 * Parses an endpoint list ({@linkcode parseRpcServers}) and checks that every
 * endpoint answers ({@linkcode probeRpcServer}, all at once). Returns the
 * endpoints. Throws LlamaError(InvalidArgument) for a malformed list, or
 * LlamaError(Unreachable) naming every endpoint that did not answer, and why.
 * Call it before any endpoint reaches a model load.
 *
 * @example
 * ```ts ignore
 * import { checkRpcServers } from "./rpc.ts";
 * const servers = await checkRpcServers("127.0.0.1:50052,127.0.0.1:50053", { timeoutMs: 2000 });
 * console.log(servers.length); // 2
 * ```
 */
export async function checkRpcServers(
  list: string | readonly string[],
  options: RpcCheckOptions = {},
): Promise<string[]> {
  const endpoints = parseRpcList(list);
  const s = symbols();
  const results = await Promise.all(endpoints.map(async (ep) => {
    const err = errorBuffer();
    const status = await s.wnb_rpc_probe(
      cstr(ep),
      options.timeoutMs ?? 0,
      options.handshake === false ? 0 : 1,
      err,
    );
    return { status, message: errorMessage(err) };
  }));
  const failed = results.filter((r) => r.status !== Status.Ok);
  if (failed.length > 0) {
    const code = failed.some((r) => r.status !== Status.Unreachable)
      ? failed.find((r) => r.status !== Status.Unreachable)!.status
      : Status.Unreachable;
    throw new LlamaError(
      code as Status,
      failed.length === 1
        ? failed[0].message
        : `${failed.length} RPC servers do not answer: ${
          failed.map((r) => r.message).join("; ")
        }`,
    );
  }
  return endpoints;
}

/**
 * Registers an endpoint's devices with ggml as llama.cpp's `--rpc` does
 * (registered once per process, probed on every call: a registered server
 * that died since throws LlamaError (Unreachable) naming it); returns its
 * device count. A model
 * uses them only when its `rpcServers` name the endpoint (a load that names
 * one registers it itself: calling this first is optional).
 *
 * @example
 * ```ts ignore
 * import { addRpcServer } from "./rpc.ts";
 * console.log(await addRpcServer("127.0.0.1:50052")); // 1
 * ```
 */
export async function addRpcServer(
  endpoint: string,
  options: { timeoutMs?: number } = {},
): Promise<number> {
  const [ep] = parseRpcList([endpoint]);
  const err = errorBuffer();
  const n = new Int32Array(1);
  const status = await symbols().wnb_rpc_add_server(
    cstr(ep),
    options.timeoutMs ?? 0,
    n,
    err,
  );
  check(status, err, `registering RPC server ${ep}`);
  return n[0];
}

/** Free and total memory of one device of an RPC server, in bytes. */
export interface RpcDeviceMemory {
  /** Free bytes. */
  free: number;
  /** Total bytes. */
  total: number;
}

/**
 * Free and total memory of every device of an endpoint, in the server's
 * device order (`ggml_backend_rpc_get_device_memory`), after the probe, for
 * memory fitting. Does not register the endpoint. Throws LlamaError
 * (Unreachable) naming the endpoint when it does not answer.
 *
 * @example
 * ```ts ignore
 * import { rpcServerMemory } from "./rpc.ts";
 * const [{ free, total }] = await rpcServerMemory("127.0.0.1:50052");
 * console.log(`${(free / 2 ** 30).toFixed(1)} of ${(total / 2 ** 30).toFixed(1)} GiB free`);
 * ```
 */
export async function rpcServerMemory(
  endpoint: string,
  options: { timeoutMs?: number } = {},
): Promise<RpcDeviceMemory[]> {
  const [ep] = parseRpcList([endpoint]);
  const err = errorBuffer();
  // A server with more devices than this answers again with room for them.
  for (let cap = 8;;) {
    const free = new BigUint64Array(cap);
    const total = new BigUint64Array(cap);
    const n = await symbols().wnb_rpc_server_memory(
      cstr(ep),
      options.timeoutMs ?? 0,
      free,
      total,
      cap,
      err,
    );
    if (n < 0) check(-n, err, `reading the memory of RPC server ${ep}`);
    if (n > cap) {
      cap = n;
      continue;
    }
    return Array.from(
      { length: n },
      (_, i) => ({ free: Number(free[i]), total: Number(total[i]) }),
    );
  }
}
