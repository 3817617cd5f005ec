/**
 * llama.cpp's rpc-server (build/bin/ggml-rpc-server) on free loopback ports,
 * for the `--rpc` bench leg and the RPC tests: ready once it answers the RPC
 * HELLO; `close()` kills it and waits, so no server outlives its user.
 * @module
 */
import { probeRpcServer } from "../bindings/mod.ts";
import { paths } from "../paths.ts";

/** A 127.0.0.1 port nothing listens on (the kernel's choice, closed again). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** One rpc-server on a free loopback port; `close()` kills it and waits. */
export interface Server extends AsyncDisposable {
  endpoint: string;
  close(): Promise<void>;
}

/** Options of {@linkcode startServer}. */
export interface ServerOptions {
  /** The port (default: a free one). */
  port?: number;
  /** rpc-server's `-d`: the devices it serves, e.g. `["CPU", "CPU"]` for two (default: its choice, one). */
  devices?: string[];
}

/** Starts a server on a loopback port, with one thread. */
export async function startServer(o: ServerOptions = {}): Promise<Server> {
  const port = o.port ?? freePort();
  const endpoint = `127.0.0.1:${port}`;
  const child = new Deno.Command(paths().rpcServer, {
    args: [
      ...["-H", "127.0.0.1", "-p", String(port), "-t", "1"],
      ...(o.devices ? ["-d", o.devices.join(",")] : []),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream(),
  );
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await stderr.catch(() => {});
  };
  // Ready once it answers the RPC HELLO (it listens after printing its devices).
  for (let i = 0;; i++) {
    try {
      await probeRpcServer(endpoint, { timeoutMs: 2000 });
      break;
    } catch (e) {
      if (i >= 200) {
        await close();
        throw e;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { endpoint, close, [Symbol.asyncDispose]: close };
}
