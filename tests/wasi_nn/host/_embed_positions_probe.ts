/**
 * Child process of embeddings_test.ts: one embedding of an N-token input
 * through LlamaHost (set_input and compute, then runInference). Prints one
 * JSON line per way: `{"mode":"compute","errno":0,"n":64}` or
 * `{"mode":..,"errno":102,"message":..}`.
 * A llama.cpp abort ends this process instead of the test run.
 *
 * Usage: deno run -A _embed_positions_probe.ts MODEL WORDS
 */
import { LlamaHost } from "../../../wasi_nn/host/host.ts";
import { WasiNnError } from "../../../wasi_nn/errno.ts";

const [path, words] = Deno.args;
const text = "word ".repeat(Number(words)).trim();
const enc = new TextEncoder();
using h = await LlamaHost.create({
  registry: { resolve: () => path },
  log: () => {},
});
const g = await h.loadByName("m", '{"embedding":true}');
for (const mode of ["compute", "runInference"]) {
  const c = h.initExecutionContext(g);
  try {
    let json: string;
    if (mode === "compute") {
      await h.setInput(c, 0, { dims: [1], type: 3, data: enc.encode(text) });
      await h.compute(c);
      json = new TextDecoder().decode(h.getOutput(c, 0));
    } else {
      json = (await h.runInference(c, text)).text;
    }
    const out = JSON.parse(json);
    console.log(JSON.stringify({ mode, errno: 0, n: out.n_embedding }));
  } catch (e) {
    if (!(e instanceof WasiNnError)) throw e;
    console.log(JSON.stringify({ mode, errno: e.errno, message: e.message }));
  }
  h.finalizeExecutionContext(c);
}
