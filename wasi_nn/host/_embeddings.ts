/**
 * Embeddings (`embedding: true`): the prompt is decoded in the model's one
 * embedding context (made on first use, remade when the options change, one
 * request at a time) and the pooled vector becomes the output, as the JSON
 * WasmEdge's GGML plugin writes: `{"n_embedding": N, "embedding": [...]}`.
 *
 * @example
 * ```ts ignore
 * import { embed } from "./_embeddings.ts";
 * const json = await embed(models, log, entry, tokens, { embedding: true });
 * console.log(new TextDecoder().decode(json));
 * ```
 * @module
 */

import type { ContextOptions } from "../../bindings/mod.ts";
import type { ConfigValues } from "../config/parse.ts";
import type { EmbedContext } from "../engine/model_engine.ts";
import { maxPositions } from "../engine/_positions.ts";
import { Errno, toWasiNn, WasiNnError } from "../errno.ts";
import type { HostLog } from "./_host_log.ts";
import type { ModelCache, ModelEntry } from "./_models.ts";

/** llama_pooling_type's RANK: the output is the model's classifier scores. */
const POOLING_RANK = 4;

const enc = new TextEncoder();

/** What an embedding request needs: its context options, checked against the prompt. */
function plan(
  models: ModelCache,
  m: ModelEntry,
  prompt: Int32Array<ArrayBuffer>,
  cfg: ConfigValues,
) {
  const nBatch = cfg.batch_size ?? 2048;
  if (prompt.length === 0) {
    throw new WasiNnError(
      Errno.InvalidArgument,
      "the embedding input is empty: call set_input first",
    );
  }
  if (prompt.length > nBatch) {
    throw new WasiNnError(
      Errno.PromptTooLong,
      `embedding input is ${prompt.length} tokens but batch-size is ${nBatch}; raise batch-size`,
    );
  }
  const model = m.model;
  const maxPos = maxPositions(model.info.architecture, model.nCtxTrain);
  if (maxPos !== undefined && prompt.length > maxPos) {
    // Past its position table, llama.cpp would abort the process.
    throw new WasiNnError(
      Errno.PromptTooLong,
      `embedding input is ${prompt.length} tokens but '${m.label}' (${model.info.architecture}) has learned positions for ${maxPos} tokens only; shorten or split the input`,
    );
  }
  const opts: ContextOptions = {
    ...models.contextOptions(m, cfg),
    nCtx: Math.max(nBatch, cfg.ctx_size ?? 0),
    nBatch,
    nUbatch: nBatch,
    embeddings: true,
  };
  return {
    opts,
    key: JSON.stringify(opts),
    norm: cfg.embd_normalize ?? 2,
  };
}

/** The pooled embedding of `prompt`, as JSON bytes. */
async function output(
  ctx: EmbedContext,
  prompt: Int32Array<ArrayBuffer>,
  norm: number,
): Promise<Uint8Array> {
  // Without pooling, the last token's embedding; pooled, sequence 0's.
  // Rank pooling gives the classifier's scores, as they are (llama.cpp's
  // server does not normalise rerank scores: one normalised score is ±1).
  const pooling = ctx.poolingType;
  const v = await ctx.embed(
    prompt,
    pooling === 0 ? -1 : 0,
    pooling === POOLING_RANK ? -1 : norm,
  );
  // JSON has no NaN or Infinity: a model that overflows gives null there.
  const parts = Array.from(
    v,
    (x) => Number.isFinite(x) ? Number(x.toPrecision(10)).toString() : "null",
  );
  return enc.encode(
    `{"n_embedding": ${v.length}, "embedding": [${parts.join(",")}]}`,
  );
}

/**
 * Embeds `prompt` with model `m` as `cfg` asks (batch_size, ctx_size,
 * embd_normalize, pooling); returns the output JSON. Requests of one model
 * run one after the other: they share its embedding context.
 */
export async function embed(
  models: ModelCache,
  log: HostLog,
  m: ModelEntry,
  prompt: Int32Array<ArrayBuffer>,
  cfg: ConfigValues,
): Promise<Uint8Array> {
  const p = plan(models, m, prompt, cfg);
  const run = async () => {
    m.embedBusy = true;
    try {
      await models.ensureEngine(m);
      if (m.embed?.key !== p.key) {
        m.embed?.ctx.close();
        m.embed = undefined;
        const bytes = await models.memory.check(m, p.opts);
        log.nativeLevel(cfg);
        m.embed = {
          key: p.key,
          ctx: await m.engine.embedContext(p.opts),
          bytes,
        };
      }
      return await output(m.embed.ctx, prompt, p.norm);
    } finally {
      m.embedBusy = false;
    }
  };
  // One embedding at a time per model (they share one context).
  const next = (m.embedLock ?? Promise.resolve()).then(run);
  m.embedLock = next.catch(() => {});
  try {
    return await next;
  } catch (e) {
    throw toWasiNn(e);
  }
}
