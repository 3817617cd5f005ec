/**
 * Parsing of llama.cpp `--rpc` lists (`host:port,host:port`), with the rules
 * the shim applies (native/wnb_rpc.cpp): pure, no library needed, so the
 * config table can check a list too.
 * @module
 */

import { LlamaError, Status } from "./errors.ts";

/** The most endpoints one list may hold (ggml-rpc's GGML_RPC_MAX_SERVERS). */
export const RPC_MAX_SERVERS = 16;

const HOST = /^[A-Za-z0-9._-]+$/;

/**
 * Why one endpoint is malformed, or undefined when it is `host:port` with an
 * IPv4 address or host name and a port 1..65535.
 */
export function endpointProblem(entry: string): string | undefined {
  if (entry === "") return "is empty (expected host:port)";
  const parts = entry.split(":");
  if (parts.length !== 2) {
    return "is not host:port (an IPv4 address or host name, then :port; IPv6 is not supported)";
  }
  const [host, port] = parts;
  if (host === "") return "has no host (expected host:port)";
  if (!HOST.test(host)) {
    return "has a host with characters other than letters, digits, '.', '-' and '_'";
  }
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    return "has no port 1..65535 (expected host:port)";
  }
  return undefined;
}

/**
 * Splits and checks an RPC endpoint list: a `"host:port,host:port"` string
 * (spaces around entries are dropped) or an array of endpoints. Throws
 * LlamaError(InvalidArgument) naming the first bad entry, a repeated entry,
 * an empty list or more than {@linkcode RPC_MAX_SERVERS} entries.
 */
export function parseRpcList(list: string | readonly string[]): string[] {
  const entries = typeof list === "string"
    ? list.split(",").map((e) => e.trim())
    : list.map((e) => e.trim());
  const shown = typeof list === "string" ? list : list.join(",");
  const where = `RPC endpoint list ${JSON.stringify(shown)}`;
  if (entries.length === 0 || (entries.length === 1 && entries[0] === "")) {
    throw new LlamaError(
      Status.InvalidArgument,
      `${where} is empty (expected host:port,host:port)`,
    );
  }
  if (entries.length > RPC_MAX_SERVERS) {
    throw new LlamaError(
      Status.InvalidArgument,
      `${where} has ${entries.length} entries; at most ${RPC_MAX_SERVERS}`,
    );
  }
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    const problem = endpointProblem(entry);
    if (problem) {
      throw new LlamaError(
        Status.InvalidArgument,
        `${where}: entry ${i + 1} ${JSON.stringify(entry)} ${problem}`,
      );
    }
    if (seen.has(entry)) {
      throw new LlamaError(
        Status.InvalidArgument,
        `${where}: entry ${i + 1} ${JSON.stringify(entry)} is listed twice`,
      );
    }
    seen.add(entry);
  });
  return entries;
}
