/**
 * Synthetic llama-architecture models for tests and benchmarks: seeded random
 * weights (deterministic: the same seed gives the same bytes) and a real
 * tokenizer copied from a vocab-only GGUF of the pinned llama.cpp checkout.
 * The text they generate is gibberish, but loading, tokenizing, sampling, KV
 * handling and compute cost are those of a real model of that shape.
 *
 * Weights: matrices ~ N(0, 0.02^2), token embeddings ~ N(0, 1) (so the
 * current token is not drowned by the context average, which made greedy
 * output repeat one token), norms = 1. Every tensor has its own PRNG stream
 * (mulberry32 seeded from the seed and the tensor name; Box-Muller normals).
 *
 * Presets:
 * - `tiny`: n_embd 64, 2 layers, 4 heads, n_ff 192, written as Q8_0 (~5 MB).
 * - `bench`: n_embd 512, 8 layers, 8 heads, n_ff 1536 (~60M parameters),
 *   written as F16 and quantized to Q8_0 by llama.cpp's `llama-quantize`.
 *
 * Other architectures (SWA, recurrent, hybrid, MoE, encoder): see
 * `family_model.ts` (`ensureFamilyModel`).
 *
 * Command line: `deno run -A gguf/synthetic_model.ts tiny|bench [--out PATH]
 * [--seed N] [--force]` prints the model's path.
 *
 * @example
 * ```ts
 * import { ensureModel } from "./synthetic_model.ts";
 *
 * const tiny = await ensureModel("tiny");
 * console.log(tiny.path, tiny.type, tiny.params);
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { paths } from "../paths.ts";
import {
  exists,
  ModelBuilder,
  readVocab,
  vocabSize,
  writeAtomically,
} from "./_model_builder.ts";
import { fnv1a } from "./_prng.ts";
import { GgmlType } from "./ggml_type.ts";
import { readGguf } from "./reader.ts";
import type { GgufValue } from "./types.ts";

/**
 * Bump when the generator's output changes for the same options: cached
 * files carry it in their name, so old ones are not reused.
 *
 * @example
 * ```ts
 * import { SYNTHETIC_GENERATOR_VERSION } from "./synthetic_model.ts";
 * console.log(`synthetic-tiny-q8_0-s1-g${SYNTHETIC_GENERATOR_VERSION}.gguf`);
 * ```
 */
export const SYNTHETIC_GENERATOR_VERSION = 1;

/** Hyperparameters of a synthetic llama model (the vocabulary comes from the vocab file). */
export interface SyntheticModelShape {
  /** Embedding width (`llama.embedding_length`). */
  nEmbd: number;
  /** Transformer blocks (`llama.block_count`). */
  nLayer: number;
  /** Attention heads (`llama.attention.head_count`). */
  nHead: number;
  /** Key/value heads (`llama.attention.head_count_kv`); `nHead` for plain MHA. */
  nHeadKv: number;
  /** Feed-forward width (`llama.feed_forward_length`). */
  nFf: number;
  /** Training context (`llama.context_length`). */
  nCtxTrain: number;
  /** RoPE base frequency (`llama.rope.freq_base`). */
  ropeFreqBase: number;
  /** RMS norm epsilon (`llama.attention.layer_norm_rms_epsilon`). */
  rmsEps: number;
  /**
   * No `output.weight`: the output layer reuses `token_embd.weight`, as in
   * Llama 3.2 1B/3B or Gemma (llama.cpp then copies it to the output
   * layer's device). Default false.
   */
  tieEmbeddings?: boolean;
  /**
   * A `rope_freqs.weight` of ones (Llama 3.1's RoPE frequency factors;
   * llama.cpp copies it to every device that holds a layer). Default false.
   */
  ropeFreqs?: boolean;
}

/** The tensor types the generator writes itself (norms are always F32). */
export type SyntheticTensorType = "f32" | "f16" | "q8_0";

/** A named preset: shape, generator type, and the optional llama-quantize step. */
export interface SyntheticPreset {
  /** Hyperparameters. */
  shape: SyntheticModelShape;
  /** Type of the 2-D tensors the generator writes. */
  type: SyntheticTensorType;
  /** llama-quantize type applied afterwards (e.g. `"Q8_0"`), if any. */
  quantize?: string;
}

/** The preset names. */
export type SyntheticPresetName = "tiny" | "bench";

/**
 * The presets.
 *
 * @example
 * ```ts
 * import { SYNTHETIC_PRESETS } from "./synthetic_model.ts";
 * const { nEmbd, nLayer } = SYNTHETIC_PRESETS.bench.shape;
 * console.log(nEmbd, nLayer, SYNTHETIC_PRESETS.bench.quantize); // 512 8 "Q8_0"
 * ```
 */
export const SYNTHETIC_PRESETS: Readonly<
  Record<SyntheticPresetName, Readonly<SyntheticPreset>>
> = {
  tiny: {
    shape: {
      nEmbd: 64,
      nLayer: 2,
      nHead: 4,
      nHeadKv: 4,
      nFf: 192,
      nCtxTrain: 2048,
      ropeFreqBase: 10000,
      rmsEps: 1e-5,
    },
    type: "q8_0",
  },
  bench: {
    shape: {
      nEmbd: 512,
      nLayer: 8,
      nHead: 8,
      nHeadKv: 8,
      nFf: 1536,
      nCtxTrain: 2048,
      ropeFreqBase: 10000,
      rmsEps: 1e-5,
    },
    type: "f16",
    quantize: "Q8_0",
  },
};

/**
 * A Llama-2 style chat template (`[INST] ... [/INST]`, `<<SYS>>` system
 * block, BOS before each later turn), valid for the llama-spm vocabulary.
 * llama.cpp's built-in detection maps it to `llama2-sys-bos`; the rendered
 * prompt has no leading BOS because the tokenizer adds one.
 *
 * @example
 * ```ts
 * import { LLAMA2_CHAT_TEMPLATE } from "./synthetic_model.ts";
 * console.log(LLAMA2_CHAT_TEMPLATE.includes("[INST]")); // true
 * ```
 */
export const LLAMA2_CHAT_TEMPLATE: string = "{%- for message in messages -%}" +
  "{%- if message['role'] == 'system' -%}" +
  "{{- '[INST] <<SYS>>\\n' + message['content'] + '\\n<</SYS>>\\n\\n' -}}" +
  "{%- elif message['role'] == 'user' -%}" +
  "{%- if loop.first -%}{{- '[INST] ' -}}" +
  "{%- elif messages[loop.index0 - 1]['role'] == 'assistant' -%}" +
  "{{- bos_token + '[INST] ' -}}" +
  "{%- endif -%}" +
  "{{- message['content'] + ' [/INST]' -}}" +
  "{%- elif message['role'] == 'assistant' -%}" +
  "{{- message['content'] + eos_token -}}" +
  "{%- endif -%}" +
  "{%- endfor -%}";

/** Default sampling settings recorded as `general.sampling.*` (only the ones given are written). */
export interface SyntheticSamplingOptions {
  /** `general.sampling.sequence`: sampler names separated by `;`. */
  sequence?: string;
  /** `general.sampling.top_k` (int32). */
  topK?: number;
  /** `general.sampling.top_p`. */
  topP?: number;
  /** `general.sampling.min_p`. */
  minP?: number;
  /** `general.sampling.xtc_probability`. */
  xtcProbability?: number;
  /** `general.sampling.xtc_threshold`. */
  xtcThreshold?: number;
  /** `general.sampling.temp`. */
  temp?: number;
  /** `general.sampling.penalty_last_n` (int32). */
  penaltyLastN?: number;
  /** `general.sampling.penalty_repeat`. */
  penaltyRepeat?: number;
  /** `general.sampling.mirostat` (int32: 0, 1 or 2). */
  mirostat?: number;
  /** `general.sampling.mirostat_tau`. */
  mirostatTau?: number;
  /** `general.sampling.mirostat_eta`. */
  mirostatEta?: number;
}

/** Options of {@linkcode writeSyntheticModel}. */
export interface SyntheticModelOptions {
  /** PRNG seed (unsigned 32-bit). Default 1. */
  seed?: number;
  /** Type of the 2-D tensors; default: the preset's. */
  type?: SyntheticTensorType;
  /** Overrides of the preset's hyperparameters. */
  shape?: Partial<SyntheticModelShape>;
  /** Standard deviation of the random weight matrices. Default 0.02. */
  initStd?: number;
  /** Standard deviation of the token embeddings. Default 1. */
  embedStd?: number;
  /**
   * Vocab-only GGUF whose `tokenizer.*` keys are copied. Default:
   * `<llamaCpp>/models/ggml-vocab-llama-spm.gguf`.
   */
  vocabPath?: string;
  /**
   * `tokenizer.chat_template`: a Jinja string, or `false` for none (a
   * template in the vocab file is then dropped too). Default
   * {@linkcode LLAMA2_CHAT_TEMPLATE}.
   */
  chatTemplate?: string | false;
  /** Write these `general.sampling.*` keys. Default: none. */
  sampling?: SyntheticSamplingOptions;
  /** `general.name`. Default `synthetic-<preset>`. */
  name?: string;
}

/** What was written, or found in the cache. */
export interface SyntheticModelInfo {
  /** Path of the GGUF file. */
  path: string;
  /** The preset it was made from. */
  preset: SyntheticPresetName;
  /** Type of its 2-D tensors: the generator's, or the llama-quantize type in lower case. */
  type: string;
  /** Whether llama-quantize was applied. */
  quantized: boolean;
  /** Whether this call wrote the file (`false`: reused from the cache). */
  generated: boolean;
  /** The hyperparameters. */
  shape: SyntheticModelShape;
  /** Vocabulary size. */
  nVocab: number;
  /** Parameter count. */
  params: number;
  /** File size in bytes. */
  byteLength: number;
  /** The seed. */
  seed: number;
  /** Why the result differs from what the preset asks for (e.g. llama-quantize missing). */
  note?: string;
}

/** Options of {@linkcode ensureModel}. */
export interface EnsureModelOptions extends SyntheticModelOptions {
  /** Cache folder. Default `paths().models`. */
  dir?: string;
  /** Write exactly this path instead of a cache file name in `dir`. */
  out?: string;
  /** Regenerate even if the file exists. */
  force?: boolean;
  /**
   * llama-quantize type to apply (e.g. `"Q8_0"`, `"Q4_K_M"`), or `false` to
   * skip. Default: the preset's (`bench`: Q8_0; `tiny`: none).
   */
  quantize?: string | false;
  /** The llama-quantize binary. Default `${paths().referenceBin}/llama-quantize`. */
  quantizeBin?: string;
  /** Threads for llama-quantize. Default 2. */
  quantizeThreads?: number;
}

const GGML_OF: Record<SyntheticTensorType, number> = {
  f32: GgmlType.F32,
  f16: GgmlType.F16,
  q8_0: GgmlType.Q8_0,
};

/** `general.file_type` (llama_ftype) of each generator type. */
const FILE_TYPE_OF: Record<SyntheticTensorType, number> = {
  f32: 0,
  f16: 1,
  q8_0: 7,
};

/**
 * The parameter count of a llama model of this shape and vocabulary
 * (with a separate output matrix unless `tieEmbeddings`, and the RoPE
 * factors with `ropeFreqs`).
 *
 * @example
 * ```ts
 * import { SYNTHETIC_PRESETS, syntheticParamCount } from "./synthetic_model.ts";
 * console.log(syntheticParamCount(SYNTHETIC_PRESETS.bench.shape, 32000)); // 60039680
 * ```
 */
export function syntheticParamCount(
  shape: SyntheticModelShape,
  nVocab: number,
): number {
  const { nEmbd, nLayer, nHead, nHeadKv, nFf } = shape;
  const headDim = nEmbd / nHead;
  const perLayer = 2 * nEmbd + // attn_norm, ffn_norm
    nEmbd * nEmbd * 2 + // q, output
    nEmbd * headDim * nHeadKv * 2 + // k, v
    nEmbd * nFf * 3; // gate, up, down
  return (shape.tieEmbeddings ? 1 : 2) * nVocab * nEmbd + nEmbd +
    nLayer * perLayer + (shape.ropeFreqs ? headDim / 2 : 0);
}

function resolveShape(
  preset: SyntheticPresetName,
  options: SyntheticModelOptions,
): SyntheticModelShape {
  const base = SYNTHETIC_PRESETS[preset];
  if (!base) {
    throw new RangeError(
      `unknown preset "${preset}" (known: ${
        Object.keys(SYNTHETIC_PRESETS).join(", ")
      })`,
    );
  }
  const shape = { ...base.shape, ...options.shape };
  if (shape.nEmbd % shape.nHead !== 0 || shape.nHead % shape.nHeadKv !== 0) {
    throw new RangeError(
      `bad shape: nEmbd ${shape.nEmbd} must divide by nHead ${shape.nHead}, ` +
        `which must divide by nHeadKv ${shape.nHeadKv}`,
    );
  }
  return shape;
}

function defaultVocabPath(): string {
  return `${paths().llamaCpp}/models/ggml-vocab-llama-spm.gguf`;
}

function samplingMetadata(s: SyntheticSamplingOptions): [string, GgufValue][] {
  const out: [string, GgufValue][] = [];
  const i32 = (k: string, v?: number) => {
    if (v !== undefined) out.push([k, { type: "int32", value: v }]);
  };
  const f32 = (k: string, v?: number) => {
    if (v !== undefined) out.push([k, { type: "float32", value: v }]);
  };
  const p = "general.sampling.";
  if (s.sequence !== undefined) {
    out.push([p + "sequence", { type: "string", value: s.sequence }]);
  }
  i32(p + "top_k", s.topK);
  f32(p + "top_p", s.topP);
  f32(p + "min_p", s.minP);
  f32(p + "xtc_probability", s.xtcProbability);
  f32(p + "xtc_threshold", s.xtcThreshold);
  f32(p + "temp", s.temp);
  i32(p + "penalty_last_n", s.penaltyLastN);
  f32(p + "penalty_repeat", s.penaltyRepeat);
  i32(p + "mirostat", s.mirostat);
  f32(p + "mirostat_tau", s.mirostatTau);
  f32(p + "mirostat_eta", s.mirostatEta);
  return out;
}

/**
 * Writes a synthetic model of a preset to `path` (no llama-quantize step;
 * see {@linkcode ensureModel} for that and for caching). Tensors are
 * generated one at a time while the file is written.
 *
 * @example
 * ```ts
 * import { writeSyntheticModel } from "./synthetic_model.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".gguf" });
 * const info = await writeSyntheticModel(path, "tiny", { seed: 7 });
 * console.log(info.byteLength, info.params);
 * await Deno.remove(path);
 * ```
 */
export async function writeSyntheticModel(
  path: string,
  preset: SyntheticPresetName,
  options: SyntheticModelOptions = {},
): Promise<SyntheticModelInfo> {
  const shape = resolveShape(preset, options);
  const type = options.type ?? SYNTHETIC_PRESETS[preset].type;
  const ggmlType = GGML_OF[type];
  if (ggmlType === undefined) throw new RangeError(`unknown type "${type}"`);
  const seed = (options.seed ?? 1) >>> 0;
  const std = options.initStd ?? 0.02;
  const embedStd = options.embedStd ?? 1;
  const vocabPath = options.vocabPath ?? defaultVocabPath();
  const { nEmbd, nLayer, nHead, nHeadKv, nFf } = shape;
  const headDim = nEmbd / nHead;
  const nEmbdKv = headDim * nHeadKv;

  const b = new ModelBuilder("llama", { seed, std, matrixType: ggmlType });
  b.str("general.type", "model");
  b.str("general.name", options.name ?? `synthetic-${preset}`);
  b.str(
    "general.description",
    `Synthetic ${preset} model: seeded random weights (seed ${seed}, ` +
      `std ${std}, embeddings std ${embedStd}), tokenizer from ${
        vocabPath.split("/").pop()
      }; ` +
      `generator v${SYNTHETIC_GENERATOR_VERSION}`,
  );
  b.u32("general.file_type", FILE_TYPE_OF[type]);
  if (type === "q8_0") b.u32("general.quantization_version", 2);
  b.u32("llama.context_length", shape.nCtxTrain);
  b.u32("llama.embedding_length", nEmbd);
  b.u32("llama.block_count", nLayer);
  b.u32("llama.feed_forward_length", nFf);
  b.u32("llama.attention.head_count", nHead);
  b.u32("llama.attention.head_count_kv", nHeadKv);
  b.f32("llama.attention.layer_norm_rms_epsilon", shape.rmsEps);
  b.f32("llama.rope.freq_base", shape.ropeFreqBase);
  b.u32("llama.rope.dimension_count", headDim);
  // Before the tokenizer keys, as in earlier versions (same bytes).
  const vocab = await readVocab(vocabPath);
  const nVocab = vocabSize(vocab);
  b.u32("llama.vocab_size", nVocab);
  for (const [key, value] of samplingMetadata(options.sampling ?? {})) {
    b.set(key, value);
  }
  b.tokenizer(vocab, options.chatTemplate ?? LLAMA2_CHAT_TEMPLATE);

  b.matrix("token_embd.weight", [nEmbd, nVocab], embedStd);
  b.ones("output_norm.weight", nEmbd);
  if (!shape.tieEmbeddings) b.matrix("output.weight", [nEmbd, nVocab]);
  if (shape.ropeFreqs) b.ones("rope_freqs.weight", headDim / 2);
  for (let i = 0; i < nLayer; i++) {
    const p = `blk.${i}.`;
    b.ones(p + "attn_norm.weight", nEmbd);
    b.matrix(p + "attn_q.weight", [nEmbd, nEmbd]);
    b.matrix(p + "attn_k.weight", [nEmbd, nEmbdKv]);
    b.matrix(p + "attn_v.weight", [nEmbd, nEmbdKv]);
    b.matrix(p + "attn_output.weight", [nEmbd, nEmbd]);
    b.ones(p + "ffn_norm.weight", nEmbd);
    b.matrix(p + "ffn_gate.weight", [nEmbd, nFf]);
    b.matrix(p + "ffn_down.weight", [nFf, nEmbd]);
    b.matrix(p + "ffn_up.weight", [nEmbd, nFf]);
  }

  await b.writer.writeFile(path);
  return {
    path,
    preset,
    type,
    quantized: false,
    generated: true,
    shape,
    nVocab,
    params: syntheticParamCount(shape, nVocab),
    byteLength: (await Deno.stat(path)).size,
    seed,
  };
}

/** File name of a cached model: preset, type, seed, generator version, and a hash of other options. */
function cacheName(
  preset: SyntheticPresetName,
  type: string,
  seed: number,
  options: SyntheticModelOptions,
): string {
  const extra: Record<string, unknown> = {};
  if (
    options.type !== undefined &&
    options.type !== SYNTHETIC_PRESETS[preset].type
  ) extra.type = options.type;
  if (options.shape && Object.keys(options.shape).length > 0) {
    extra.shape = resolveShape(preset, options);
  }
  if (options.initStd !== undefined && options.initStd !== 0.02) {
    extra.initStd = options.initStd;
  }
  if (options.embedStd !== undefined && options.embedStd !== 1) {
    extra.embedStd = options.embedStd;
  }
  if (options.vocabPath !== undefined) extra.vocabPath = options.vocabPath;
  if (
    options.chatTemplate !== undefined &&
    options.chatTemplate !== LLAMA2_CHAT_TEMPLATE
  ) extra.chatTemplate = options.chatTemplate;
  if (options.sampling && Object.keys(options.sampling).length > 0) {
    extra.sampling = Object.fromEntries(
      Object.entries(options.sampling).sort(([a], [b]) => a < b ? -1 : 1),
    );
  }
  if (options.name !== undefined) extra.name = options.name;
  const hash = Object.keys(extra).length > 0
    ? `-h${fnv1a(JSON.stringify(extra)).toString(16).padStart(8, "0")}`
    : "";
  return `synthetic-${preset}-${type}-s${seed}-g${SYNTHETIC_GENERATOR_VERSION}${hash}.gguf`;
}

async function runQuantize(
  bin: string,
  input: string,
  output: string,
  type: string,
  threads: number,
): Promise<void> {
  const { code, stdout, stderr } = await new Deno.Command(bin, {
    args: [input, output, type, String(threads)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    const text = new TextDecoder().decode(stderr) +
      new TextDecoder().decode(stdout);
    throw new Error(
      `${bin} ${input} ${output} ${type} failed (exit ${code}):\n` +
        text.split("\n").slice(-20).join("\n"),
    );
  }
}

/**
 * Returns a synthetic model of a preset, generating it on first use into the
 * model cache (`paths().models`). The file name carries the preset, type,
 * seed and generator version (plus a hash of any other non-default option),
 * so a generator change makes a new file. Files are written under a temporary
 * name and renamed, so a reader never sees a partial file.
 *
 * Presets with a quantize step (`bench`) are written as F16 and passed to
 * llama-quantize; when that binary is missing the F16 file is kept and
 * `note` says so.
 *
 * @example
 * ```ts
 * import { ensureModel } from "./synthetic_model.ts";
 *
 * const model = await ensureModel("tiny");
 * if (model.note) console.warn(model.note);
 * console.log(model.path); // .../.cache/models/synthetic-tiny-q8_0-s1-g1.gguf
 * ```
 */
export async function ensureModel(
  preset: SyntheticPresetName,
  options: EnsureModelOptions = {},
): Promise<SyntheticModelInfo> {
  const shape = resolveShape(preset, options);
  const spec = SYNTHETIC_PRESETS[preset];
  const genType = options.type ?? spec.type;
  const seed = (options.seed ?? 1) >>> 0;
  const quantize = options.quantize === undefined
    ? spec.quantize
    : options.quantize || undefined;
  const quantizeBin = options.quantizeBin ??
    `${paths().referenceBin}/llama-quantize`;
  let note: string | undefined;
  let finalType: string = genType;
  if (quantize) {
    if (await exists(quantizeBin)) finalType = quantize.toLowerCase();
    else {
      note = `llama-quantize not found at ${quantizeBin}: kept ${genType} ` +
        `instead of ${quantize}`;
    }
  }
  const dir = options.dir ?? paths().models;
  const path = options.out ??
    `${dir}/${cacheName(preset, finalType, seed, options)}`;
  const info = (generated: boolean, byteLength: number, nVocab: number) => {
    const out: SyntheticModelInfo = {
      path,
      preset,
      type: finalType,
      quantized: finalType !== genType,
      generated,
      shape,
      nVocab,
      params: syntheticParamCount(shape, nVocab),
      byteLength,
      seed,
    };
    if (note) out.note = note;
    return out;
  };

  if (!options.force && await exists(path)) {
    const file = await readGguf(path);
    const vocab = file.metadata.get("llama.vocab_size");
    return info(false, file.byteLength, vocab ? vocab.value as number : 0);
  }

  return await writeAtomically(path, async (tmpGen, tmpQuant) => {
    const written = await writeSyntheticModel(tmpGen, preset, options);
    let keep = tmpGen;
    if (finalType !== genType) {
      await runQuantize(
        quantizeBin,
        tmpGen,
        tmpQuant,
        quantize!,
        options.quantizeThreads ?? 2,
      );
      keep = tmpQuant;
    }
    const byteLength = (await Deno.stat(keep)).size;
    return { keep, result: info(true, byteLength, written.nVocab) };
  });
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      seed: { type: "string" },
      force: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const preset = positionals[0];
  if (values.help || (preset !== "tiny" && preset !== "bench")) {
    console.error(
      "usage: deno run -A gguf/synthetic_model.ts tiny|bench [--out PATH] [--seed N] [--force]",
    );
    Deno.exit(values.help ? 0 : 2);
  }
  const info = await ensureModel(preset, {
    out: values.out,
    force: values.force || values.out !== undefined,
    seed: values.seed === undefined ? undefined : Number(values.seed),
  });
  if (info.note) console.error(`note: ${info.note}`);
  console.error(
    `${
      info.generated ? "generated" : "cached"
    }: ${info.preset} ${info.type}, ` +
      `${(info.params / 1e6).toFixed(2)}M params, ${info.byteLength} bytes`,
  );
  console.log(info.path);
}
