/**
 * A stand-in rpc-server for the one thing a real one cannot do here: report
 * little free memory (rpc-server reports the machine's). It answers only
 * the memory probe (HELLO, DEVICE_COUNT, GET_DEVICE_MEMORY, in ggml-rpc's
 * wire format and protocol version, read from the llama.cpp checkout) and
 * drops a connection on any other command, recording every command it got:
 * a test can assert that nothing tried to load onto it.
 * @module
 */
import { paths } from "../paths.ts";

/** A running stand-in: its endpoint, the commands it got (by name), `close()`. */
export interface FakeRpcServer extends AsyncDisposable {
  endpoint: string;
  commands: string[];
  close(): Promise<void>;
}

/** ggml-rpc.cpp's command numbers and ggml-rpc.h's protocol version. */
function protocol(): { cmds: string[]; version: number[] } {
  const src = Deno.readTextFileSync(
    `${paths().llamaCpp}/ggml/src/ggml-rpc/ggml-rpc.cpp`,
  );
  const body = /enum rpc_cmd \{([^}]*)\}/.exec(src)![1];
  const cmds = [...body.matchAll(/RPC_CMD_(\w+)/g)].map((m) => m[1]);
  const h = Deno.readTextFileSync(
    `${paths().llamaCpp}/ggml/include/ggml-rpc.h`,
  );
  const version = ["MAJOR", "MINOR", "PATCH"].map((k) =>
    Number(new RegExp(`RPC_PROTO_${k}_VERSION\\s+(\\d+)`).exec(h)![1])
  );
  return { cmds, version };
}

async function readFull(c: Deno.Conn, n: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(n);
  for (let got = 0; got < n;) {
    const k = await c.read(out.subarray(got));
    if (k === null) return null;
    got += k;
  }
  return out;
}

/** Starts one on a free 127.0.0.1 port whose devices report `devices`' memory. */
export function startFakeRpcServer(
  devices: { free: number; total: number }[],
): FakeRpcServer {
  const { cmds, version } = protocol();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const endpoint = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  const commands: string[] = [];
  const conns = new Set<Deno.Conn>();
  const reply = (cmd: string, req: Uint8Array): Uint8Array | undefined => {
    if (cmd === "HELLO") {
      return new Uint8Array([...version, 0, ...new Uint8Array(req.length)]);
    }
    if (cmd === "DEVICE_COUNT") {
      return new Uint8Array(new Uint32Array([devices.length]).buffer);
    }
    if (cmd === "GET_DEVICE_MEMORY") {
      const d = devices[new DataView(req.buffer).getUint32(0, true)];
      if (!d) return undefined;
      return new Uint8Array(
        new BigUint64Array([BigInt(d.free), BigInt(d.total)]).buffer,
      );
    }
    return undefined;
  };
  const serve = async (c: Deno.Conn) => {
    conns.add(c);
    try {
      for (;;) {
        const head = await readFull(c, 9);
        if (!head) break;
        const cmd = cmds[head[0]] ?? `#${head[0]}`;
        const size = Number(new DataView(head.buffer).getBigUint64(1, true));
        const req = size > 0 ? await readFull(c, size) : new Uint8Array(0);
        if (!req) break;
        commands.push(cmd);
        const out = reply(cmd, req);
        if (!out) break;
        const size8 = new Uint8Array(
          new BigUint64Array([BigInt(out.length)]).buffer,
        );
        await c.write(new Uint8Array([...size8, ...out]));
      }
    } catch {
      /* the client went away */
    } finally {
      conns.delete(c);
      try {
        c.close();
      } catch { /* closed */ }
    }
  };
  const accepting = (async () => {
    try {
      for await (const c of listener) serve(c);
    } catch { /* closed */ }
  })();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    listener.close();
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await accepting;
  };
  return { endpoint, commands, close, [Symbol.asyncDispose]: close };
}
