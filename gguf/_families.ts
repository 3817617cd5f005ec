/**
 * Internal: one synthetic model per model family that llama.cpp treats
 * differently (memory kind, attention kind, encoder, MoE). Each family has
 * its traits (what tests need to know about it) and a build function that
 * writes the hyperparameters and tensors its llama.cpp loader
 * (`src/models/<arch>.cpp` in the pinned checkout) asks for: the same
 * names, shapes and required keys.
 *
 * Weights are written for finite, non-degenerate activations: weight
 * matrices ~ N(0, 1/fan_in) (so every block's output is at the scale of its
 * input, and the context changes the output), token embeddings ~ N(0, 1),
 * norm weights 1, biases small, and the recurrent parameters as their
 * models initialise them (Mamba: A = -(1..d_state), D = 1, dt in
 * [0.001, 0.1]).
 * @module
 */

import type { ModelBuilder } from "./_model_builder.ts";

/**
 * The model families, written once: tests iterate over this list.
 *
 * - `llama`: plain KV cache (the `tiny` preset's shape and tokenizer).
 * - `qwen3`: KV cache, GQA, q/k norms, BPE tokenizer (qwen2 vocabulary).
 * - `gemma3`: sliding-window attention (window 64) on every other layer.
 * - `phi3`: fused QKV and gate/up projections.
 * - `mamba`: recurrent memory only (Mamba 1 SSM).
 * - `lfm2`: hybrid memory: short-convolution (recurrent) and attention layers.
 * - `qwen3moe`: mixture of experts (4 experts, top-2).
 * - `bert`: non-causal encoder with CLS pooling; embeddings, no generation.
 *
 * @example
 * ```ts
 * import { MODEL_FAMILIES } from "./family_model.ts";
 * console.log(MODEL_FAMILIES.includes("mamba")); // true
 * ```
 */
export const MODEL_FAMILIES = [
  "llama",
  "qwen3",
  "gemma3",
  "phi3",
  "mamba",
  "lfm2",
  "qwen3moe",
  "bert",
] as const;

/** One model family name. */
export type ModelFamily = typeof MODEL_FAMILIES[number];

/**
 * How a family keeps its context, as llama.cpp's memory modules see it:
 * `kv` (a plain KV cache: any tail can be dropped, positions shifted),
 * `swa` (KV cache whose sliding-window layers forget old positions),
 * `recurrent` (one state per sequence: no tail can be dropped),
 * `hybrid` (recurrent layers and KV layers), `none` (an encoder: no
 * memory between calls).
 */
export type FamilyMemory = "kv" | "swa" | "recurrent" | "hybrid" | "none";

/** What tests need to know about a family. */
export interface ModelFamilyTraits {
  /** `general.architecture`. */
  arch: string;
  /** Its memory kind. */
  memory: FamilyMemory;
  /** Whether it generates text (`false`: an embedding-only encoder). */
  generates: boolean;
  /** Whether attention is causal. */
  causal: boolean;
  /** Embedding width. */
  nEmbd: number;
  /** Layers. */
  nLayer: number;
  /** Training context (`<arch>.context_length`). */
  nCtxTrain: number;
  /** Sliding-window size in tokens, for `swa` families. */
  swaWindow?: number;
  /** Layers that use the sliding window (the others attend to everything). */
  swaLayers?: readonly number[];
  /** Layers with recurrent state, for `recurrent` and `hybrid` families. */
  recurrentLayers?: readonly number[];
  /** Experts per MoE layer and how many each token uses. */
  experts?: { count: number; used: number };
  /** `<arch>.pooling_type` (llama_pooling_type: 1 mean, 2 CLS), for encoders. */
  poolingType?: number;
  /** The vocab-only GGUF (in the checkout's `models/`) its tokenizer comes from. */
  vocab: string;
  /**
   * Where `tokenizer.chat_template` comes from: a file of the checkout's
   * `models/templates/`, `"builtin:llama2"` (`LLAMA2_CHAT_TEMPLATE`, for
   * families the checkout has no template for), or `null` (none).
   */
  chatTemplate: string | null;
}

const LLAMA_SPM = "ggml-vocab-llama-spm.gguf";
const QWEN2 = "ggml-vocab-qwen2.gguf";
const QWEN3_TEMPLATE = "Qwen-Qwen3-0.6B.jinja";

/**
 * The traits of each family.
 *
 * @example
 * ```ts
 * import { MODEL_FAMILIES, MODEL_FAMILY_TRAITS } from "./family_model.ts";
 * const generating = MODEL_FAMILIES.filter((f) => MODEL_FAMILY_TRAITS[f].generates);
 * console.log(MODEL_FAMILY_TRAITS.gemma3.swaWindow, generating.length); // 64 7
 * ```
 */
export const MODEL_FAMILY_TRAITS: Readonly<
  Record<ModelFamily, Readonly<ModelFamilyTraits>>
> = {
  llama: {
    arch: "llama",
    memory: "kv",
    generates: true,
    causal: true,
    nEmbd: 64,
    nLayer: 2,
    nCtxTrain: 4096,
    vocab: LLAMA_SPM,
    chatTemplate: "builtin:llama2",
  },
  qwen3: {
    arch: "qwen3",
    memory: "kv",
    generates: true,
    causal: true,
    nEmbd: 64,
    nLayer: 2,
    nCtxTrain: 4096,
    vocab: QWEN2,
    chatTemplate: QWEN3_TEMPLATE,
  },
  gemma3: {
    arch: "gemma3",
    memory: "swa",
    generates: true,
    causal: true,
    nEmbd: 64,
    nLayer: 2,
    nCtxTrain: 4096,
    swaWindow: 64,
    swaLayers: [0],
    vocab: LLAMA_SPM,
    chatTemplate: "google-gemma-2-2b-it.jinja",
  },
  phi3: {
    arch: "phi3",
    memory: "kv",
    generates: true,
    causal: true,
    nEmbd: 64,
    nLayer: 2,
    nCtxTrain: 4096,
    vocab: "ggml-vocab-phi-3.gguf",
    chatTemplate: "microsoft-Phi-3.5-mini-instruct.jinja",
  },
  mamba: {
    arch: "mamba",
    memory: "recurrent",
    generates: true,
    causal: true,
    nEmbd: 64,
    nLayer: 2,
    nCtxTrain: 4096,
    recurrentLayers: [0, 1],
    vocab: LLAMA_SPM,
    chatTemplate: "builtin:llama2",
  },
  lfm2: {
    arch: "lfm2",
    memory: "hybrid",
    generates: true,
    causal: true,
    nEmbd: 64,
    nLayer: 3,
    nCtxTrain: 4096,
    recurrentLayers: [0, 2],
    vocab: LLAMA_SPM,
    chatTemplate: "LFM2.5-Instruct.jinja",
  },
  qwen3moe: {
    arch: "qwen3moe",
    memory: "kv",
    generates: true,
    causal: true,
    nEmbd: 64,
    nLayer: 2,
    nCtxTrain: 4096,
    experts: { count: 4, used: 2 },
    vocab: QWEN2,
    chatTemplate: QWEN3_TEMPLATE,
  },
  bert: {
    arch: "bert",
    memory: "none",
    generates: false,
    causal: false,
    nEmbd: 64,
    nLayer: 2,
    nCtxTrain: 512,
    poolingType: 2,
    vocab: "ggml-vocab-bert-bge.gguf",
    chatTemplate: null,
  },
};

/** Writes a family's hyperparameters and tensors (the tokenizer is already in). */
export type FamilyBuild = (b: ModelBuilder, nVocab: number) => void;

const N_HEAD = 4;
const N_FF = 192;

/** `<arch>.*` keys every transformer family has. */
function transformerKeys(
  b: ModelBuilder,
  t: ModelFamilyTraits,
  nHeadKv: number | number[],
  nFf = N_FF,
): void {
  b.u32(b.hp("context_length"), t.nCtxTrain);
  b.u32(b.hp("embedding_length"), t.nEmbd);
  b.u32(b.hp("block_count"), t.nLayer);
  b.u32(b.hp("feed_forward_length"), nFf);
  b.u32(b.hp("attention.head_count"), N_HEAD);
  if (typeof nHeadKv === "number") {
    b.u32(b.hp("attention.head_count_kv"), nHeadKv);
  } else b.i32s(b.hp("attention.head_count_kv"), nHeadKv);
}

/**
 * Token embedding, final norm and a separate output matrix. (Tied to the
 * embedding, as in small Qwen3 and Gemma 3 models, random weights make
 * greedy decoding repeat the last prompt token forever.)
 */
function embeddings(
  b: ModelBuilder,
  nEmbd: number,
  nVocab: number,
  outputNorm = "output_norm.weight",
): void {
  b.matrix("token_embd.weight", [nEmbd, nVocab], 1);
  b.ones(outputNorm, nEmbd);
  b.matrix("output.weight", [nEmbd, nVocab]);
}

/** Separate Q, K, V and output projections. */
function attention(b: ModelBuilder, p: string, nEmbd: number, nKv: number) {
  b.matrix(p + "attn_q.weight", [nEmbd, nEmbd]);
  b.matrix(p + "attn_k.weight", [nEmbd, nKv]);
  b.matrix(p + "attn_v.weight", [nEmbd, nKv]);
  b.matrix(p + "attn_output.weight", [nEmbd, nEmbd]);
}

/** Per-head RMS norms of Q and K. */
function qkNorms(b: ModelBuilder, p: string, headDim: number) {
  b.ones(p + "attn_q_norm.weight", headDim);
  b.ones(p + "attn_k_norm.weight", headDim);
}

/** A gated (SwiGLU/GeGLU) feed-forward block. */
function gatedFfn(b: ModelBuilder, p: string, nEmbd: number, nFf = N_FF) {
  b.matrix(p + "ffn_gate.weight", [nEmbd, nFf]);
  b.matrix(p + "ffn_down.weight", [nFf, nEmbd]);
  b.matrix(p + "ffn_up.weight", [nEmbd, nFf]);
}

const T = MODEL_FAMILY_TRAITS;

/**
 * src/models/llama.cpp: the `tiny` preset's tensors, but with fan-in
 * scaled weights (tiny's N(0, 0.02^2) leave the output depending on the
 * last token only, so a wrong cache would go unseen).
 */
function llama(b: ModelBuilder, nVocab: number): void {
  const t = T.llama, headDim = t.nEmbd / N_HEAD;
  transformerKeys(b, t, N_HEAD);
  b.f32(b.hp("attention.layer_norm_rms_epsilon"), 1e-5);
  b.f32(b.hp("rope.freq_base"), 1e4);
  b.u32(b.hp("rope.dimension_count"), headDim);
  embeddings(b, t.nEmbd, nVocab);
  for (let i = 0; i < t.nLayer; i++) {
    const p = `blk.${i}.`;
    b.ones(p + "attn_norm.weight", t.nEmbd);
    attention(b, p, t.nEmbd, t.nEmbd);
    b.ones(p + "ffn_norm.weight", t.nEmbd);
    gatedFfn(b, p, t.nEmbd);
  }
}

/** src/models/qwen3.cpp: GQA (4 heads, 2 KV heads), q/k norms. */
function qwen3(b: ModelBuilder, nVocab: number): void {
  const t = T.qwen3, headDim = t.nEmbd / N_HEAD, nHeadKv = 2;
  transformerKeys(b, t, nHeadKv);
  b.u32(b.hp("attention.key_length"), headDim);
  b.u32(b.hp("attention.value_length"), headDim);
  b.f32(b.hp("rope.freq_base"), 1e6);
  b.f32(b.hp("attention.layer_norm_rms_epsilon"), 1e-6);
  embeddings(b, t.nEmbd, nVocab);
  for (let i = 0; i < t.nLayer; i++) {
    const p = `blk.${i}.`;
    b.ones(p + "attn_norm.weight", t.nEmbd);
    attention(b, p, t.nEmbd, headDim * nHeadKv);
    qkNorms(b, p, headDim);
    b.ones(p + "ffn_norm.weight", t.nEmbd);
    gatedFfn(b, p, t.nEmbd);
  }
}

/**
 * src/models/gemma3.cpp: sliding-window attention on the layers where
 * `il % pattern < pattern - 1` (pattern 2: layer 0; layer 1 is global),
 * pre and post norms around attention and FFN, GELU gate, embeddings
 * scaled by sqrt(n_embd).
 */
function gemma3(b: ModelBuilder, nVocab: number): void {
  const t = T.gemma3, headDim = t.nEmbd / N_HEAD, nHeadKv = 2;
  transformerKeys(b, t, nHeadKv);
  b.u32(b.hp("attention.key_length"), headDim);
  b.u32(b.hp("attention.value_length"), headDim);
  b.u32(b.hp("attention.sliding_window"), t.swaWindow!);
  b.u32(b.hp("attention.sliding_window_pattern"), 2);
  b.f32(b.hp("rope.freq_base"), 1e6);
  b.f32(b.hp("rope.freq_base_swa"), 1e4);
  b.f32(b.hp("attention.layer_norm_rms_epsilon"), 1e-6);
  embeddings(b, t.nEmbd, nVocab);
  for (let i = 0; i < t.nLayer; i++) {
    const p = `blk.${i}.`;
    b.ones(p + "attn_norm.weight", t.nEmbd);
    attention(b, p, t.nEmbd, headDim * nHeadKv);
    b.ones(p + "post_attention_norm.weight", t.nEmbd);
    qkNorms(b, p, headDim);
    b.ones(p + "ffn_norm.weight", t.nEmbd);
    gatedFfn(b, p, t.nEmbd);
    b.ones(p + "post_ffw_norm.weight", t.nEmbd);
  }
}

/** src/models/phi3.cpp: fused `attn_qkv`, `ffn_up` holding gate and up (SwiGLU). */
function phi3(b: ModelBuilder, nVocab: number): void {
  const t = T.phi3, headDim = t.nEmbd / N_HEAD;
  transformerKeys(b, t, N_HEAD);
  b.u32(b.hp("rope.scaling.original_context_length"), t.nCtxTrain);
  b.u32(b.hp("rope.dimension_count"), headDim);
  b.f32(b.hp("rope.freq_base"), 1e4);
  b.f32(b.hp("attention.layer_norm_rms_epsilon"), 1e-5);
  embeddings(b, t.nEmbd, nVocab);
  for (let i = 0; i < t.nLayer; i++) {
    const p = `blk.${i}.`;
    b.ones(p + "attn_norm.weight", t.nEmbd);
    b.matrix(p + "attn_qkv.weight", [t.nEmbd, 3 * t.nEmbd]);
    b.matrix(p + "attn_output.weight", [t.nEmbd, t.nEmbd]);
    b.ones(p + "ffn_norm.weight", t.nEmbd);
    b.matrix(p + "ffn_down.weight", [N_FF, t.nEmbd]);
    b.matrix(p + "ffn_up.weight", [t.nEmbd, 2 * N_FF]);
  }
}

/**
 * src/models/mamba.cpp (+ mamba-base.cpp): d_inner = 2 * n_embd (the only
 * expansion llama.cpp supports), d_state 16, d_conv 4, dt_rank
 * ceil(n_embd / 16). Conv, A, D and dt tensors are F32 as in converted
 * models (ggml_ssm_conv and ggml_ssm_scan take F32).
 */
function mamba(b: ModelBuilder, nVocab: number): void {
  const t = T.mamba;
  const dInner = 2 * t.nEmbd, dState = 16, dConv = 4;
  const dtRank = Math.ceil(t.nEmbd / 16);
  b.u32(b.hp("context_length"), t.nCtxTrain);
  b.u32(b.hp("embedding_length"), t.nEmbd);
  b.u32(b.hp("block_count"), t.nLayer);
  b.u32(b.hp("ssm.conv_kernel"), dConv);
  b.u32(b.hp("ssm.inner_size"), dInner);
  b.u32(b.hp("ssm.state_size"), dState);
  b.u32(b.hp("ssm.time_step_rank"), dtRank);
  b.f32(b.hp("attention.layer_norm_rms_epsilon"), 1e-5);
  embeddings(b, t.nEmbd, nVocab);
  // dt spread log-uniformly over [0.001, 0.1]; the bias is its inverse softplus.
  const dt = (i: number) =>
    Math.exp(Math.log(1e-3) + (i / (dInner - 1)) * Math.log(100));
  for (let i = 0; i < t.nLayer; i++) {
    const p = `blk.${i}.`;
    b.ones(p + "attn_norm.weight", t.nEmbd);
    b.matrix(p + "ssm_in.weight", [t.nEmbd, 2 * dInner]);
    b.normal(p + "ssm_conv1d.weight", [dConv, dInner], 1 / Math.sqrt(dConv));
    b.zeros(p + "ssm_conv1d.bias", dInner);
    b.matrix(p + "ssm_x.weight", [dInner, dtRank + 2 * dState]);
    b.normal(p + "ssm_dt.weight", [dtRank, dInner], 1 / Math.sqrt(dtRank));
    b.values(p + "ssm_dt.bias", [dInner], (j) => {
      const d = dt(j);
      return d + Math.log(-Math.expm1(-d));
    });
    b.values(p + "ssm_a", [dState, dInner], (j) => -((j % dState) + 1));
    b.values(p + "ssm_d", [dInner], () => 1);
    b.matrix(p + "ssm_out.weight", [dInner, t.nEmbd]);
  }
}

/**
 * src/models/lfm2.cpp: a layer is a short convolution (recurrent state)
 * where its `head_count_kv` is 0, attention otherwise; the final norm is
 * named `token_embd_norm`.
 */
function lfm2(b: ModelBuilder, nVocab: number): void {
  const t = T.lfm2, headDim = t.nEmbd / N_HEAD, nHeadKv = 2, lCache = 3;
  const recurrent = new Set(t.recurrentLayers);
  const kv = Array.from(
    { length: t.nLayer },
    (_, i) => recurrent.has(i) ? 0 : nHeadKv,
  );
  transformerKeys(b, t, kv);
  b.u32(b.hp("shortconv.l_cache"), lCache);
  b.f32(b.hp("rope.freq_base"), 1e6);
  b.f32(b.hp("attention.layer_norm_rms_epsilon"), 1e-5);
  embeddings(b, t.nEmbd, nVocab, "token_embd_norm.weight");
  for (let i = 0; i < t.nLayer; i++) {
    const p = `blk.${i}.`;
    b.ones(p + "ffn_norm.weight", t.nEmbd);
    gatedFfn(b, p, t.nEmbd);
    b.ones(p + "attn_norm.weight", t.nEmbd);
    if (recurrent.has(i)) {
      b.normal(
        p + "shortconv.conv.weight",
        [lCache, t.nEmbd],
        1 / Math.sqrt(lCache),
      );
      b.matrix(p + "shortconv.in_proj.weight", [t.nEmbd, 3 * t.nEmbd]);
      b.matrix(p + "shortconv.out_proj.weight", [t.nEmbd, t.nEmbd]);
    } else {
      qkNorms(b, p, headDim);
      attention(b, p, t.nEmbd, headDim * nHeadKv);
    }
  }
}

/** src/models/qwen3moe.cpp: qwen3 attention, every FFN a softmax-routed MoE. */
function qwen3moe(b: ModelBuilder, nVocab: number): void {
  const t = T.qwen3moe, headDim = t.nEmbd / N_HEAD, nHeadKv = 2;
  const { count, used } = t.experts!;
  const nFfExp = 64;
  transformerKeys(b, t, nHeadKv);
  b.u32(b.hp("expert_feed_forward_length"), nFfExp);
  b.u32(b.hp("expert_count"), count);
  b.u32(b.hp("expert_used_count"), used);
  b.u32(b.hp("attention.key_length"), headDim);
  b.u32(b.hp("attention.value_length"), headDim);
  b.f32(b.hp("rope.freq_base"), 1e6);
  b.f32(b.hp("attention.layer_norm_rms_epsilon"), 1e-6);
  embeddings(b, t.nEmbd, nVocab);
  for (let i = 0; i < t.nLayer; i++) {
    const p = `blk.${i}.`;
    b.ones(p + "attn_norm.weight", t.nEmbd);
    attention(b, p, t.nEmbd, headDim * nHeadKv);
    qkNorms(b, p, headDim);
    b.ones(p + "ffn_norm.weight", t.nEmbd);
    // The router stays F32, as llama-quantize leaves it.
    b.normal(
      p + "ffn_gate_inp.weight",
      [t.nEmbd, count],
      1 / Math.sqrt(t.nEmbd),
    );
    b.matrix(p + "ffn_gate_exps.weight", [t.nEmbd, nFfExp, count]);
    b.matrix(p + "ffn_down_exps.weight", [nFfExp, t.nEmbd, count]);
    b.matrix(p + "ffn_up_exps.weight", [t.nEmbd, nFfExp, count]);
  }
}

/**
 * src/models/bert.cpp: learned positions and token types, post-LayerNorm
 * blocks with biases, GELU FFN, no output matrix; non-causal, CLS pooling.
 */
function bert(b: ModelBuilder, nVocab: number): void {
  const t = T.bert, nFf = 128;
  transformerKeys(b, t, N_HEAD, nFf);
  b.f32(b.hp("attention.layer_norm_epsilon"), 1e-12);
  b.bool(b.hp("attention.causal"), false);
  b.u32(b.hp("pooling_type"), t.poolingType!);
  const bias = (name: string, n: number) => b.normal(name, [n], 0.02);
  const layerNorm = (name: string) => {
    b.ones(name + ".weight", t.nEmbd);
    b.zeros(name + ".bias", t.nEmbd);
  };
  b.matrix("token_embd.weight", [t.nEmbd, nVocab], 1);
  b.normal("token_types.weight", [t.nEmbd, 2], 0.1);
  b.normal("position_embd.weight", [t.nEmbd, t.nCtxTrain], 0.1);
  layerNorm("token_embd_norm");
  for (let i = 0; i < t.nLayer; i++) {
    const p = `blk.${i}.`;
    for (const m of ["attn_q", "attn_k", "attn_v", "attn_output"]) {
      b.matrix(`${p}${m}.weight`, [t.nEmbd, t.nEmbd]);
      bias(`${p}${m}.bias`, t.nEmbd);
    }
    layerNorm(p + "attn_output_norm");
    b.matrix(p + "ffn_up.weight", [t.nEmbd, nFf]);
    bias(p + "ffn_up.bias", nFf);
    b.matrix(p + "ffn_down.weight", [nFf, t.nEmbd]);
    bias(p + "ffn_down.bias", t.nEmbd);
    layerNorm(p + "layer_output_norm");
  }
}

/** The build function of every family. */
export const FAMILY_BUILDS: Readonly<Record<ModelFamily, FamilyBuild>> = {
  llama,
  qwen3,
  gemma3,
  phi3,
  mamba,
  lfm2,
  qwen3moe,
  bert,
};
