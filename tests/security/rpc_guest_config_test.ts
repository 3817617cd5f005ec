/**
 * The RPC endpoints are the operator's (issue 13): the host key `rpc` is
 * read from the host config only. A guest that names `rpc` in its load or
 * session config makes the host connect nowhere: a loopback listener that
 * counts connections sees none, the log warns that the key is ignored, and
 * the guest's model loads and runs locally. (A control shows the counter counts: the endpoint check does
 * connect to it.)
 */
import assert from "node:assert/strict";
import { Errno, WasiNnError } from "../../wasi_nn/errno.ts";
import { LlamaHost } from "../../wasi_nn/host/host.ts";
import { parseConfig } from "../../wasi_nn/config/parse.ts";
import { modelOptions, rpcServers } from "../../wasi_nn/config/options.ts";
import { checkRpcServers } from "../../bindings/mod.ts";
import { tinyModel } from "../_helpers.ts";
import { guest } from "../_host_guest.ts";

/** A loopback listener that counts the connections it accepts. */
function countingListener() {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const endpoint = `127.0.0.1:${(l.addr as Deno.NetAddr).port}`;
  let connections = 0;
  const serving = (async () => {
    for await (const c of l) {
      connections++;
      c.close();
    }
  })();
  return {
    endpoint,
    get connections() {
      return connections;
    },
    async close() {
      l.close();
      await serving.catch(() => {});
    },
  };
}

Deno.test("a guest config naming rpc connects nothing; the model loads and runs locally", async () => {
  const listener = countingListener();
  try {
    const path = await tinyModel();
    const logs: string[] = [];
    const host = await LlamaHost.create({
      registry: {
        resolve: (n: string) => {
          if (n === "default") return path;
          throw new WasiNnError(Errno.NotFound, `no model named '${n}'`);
        },
      },
      hostConfig: {},
      log: (_level, msg) => logs.push(msg),
    });
    using _ = host;
    const g = guest(host, "rpc.wasm");
    const rpc = JSON.stringify(listener.endpoint);
    const graph = await g.loadByName(
      `{"n-predict":4,"temp":0,"ctx-size":256,"n-gpu-layers":99,"rpc":${rpc}}`,
    );
    const ctx = await g.context(graph);
    assert.equal(await g.setInput(ctx, 1, `{"rpc":${rpc}}`), 0);
    assert.equal(await g.compute(ctx), 0);
    assert.equal(g.outputTokens(ctx), 4);
    g.imports[Symbol.dispose]();
    for (const where of ["config of 'default'", "set_input(1)"]) {
      assert.ok(
        logs.some((l) =>
          l.includes(where) && l.includes("'rpc' is the operator's key") &&
          l.includes("ignored")
        ),
        `${where}: ${logs.join("\n")}`,
      );
    }
    assert.equal(
      listener.connections,
      0,
      "a guest's rpc made the host connect",
    );

    // The parsed guest config holds the key, but the model options never
    // carry it: only the host config's rpc is read (rpcServers).
    const { values } = parseConfig({ rpc: listener.endpoint });
    assert.deepEqual(values.rpc, [listener.endpoint]);
    assert.equal("rpcServers" in modelOptions(values), false);
    assert.deepEqual(rpcServers({}), undefined);

    // Control: the counter counts a real connect.
    await checkRpcServers([listener.endpoint], { handshake: false });
    for (let i = 0; i < 100 && listener.connections === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(listener.connections, 1);
  } finally {
    await listener.close();
  }
});
