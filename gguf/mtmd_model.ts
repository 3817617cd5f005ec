/**
 * Synthetic multimodal pairs for tests and benchmarks: a projector ("mmproj") GGUF that
 * llama.cpp's tools/mtmd loads, with seeded random weights, and a text model
 * of the matching family whose n_embd equals the projector's output.
 *
 * - `llava`: a CLIP-style vision tower (class embedding, learned position
 *   embeddings, pre-layernorm, 2 blocks of which the llava graph runs the
 *   first) with the llava MLP projector (`clip.projector_type` "mlp":
 *   mm.0 -> GELU -> mm.2), paired with the `llama` family model. A fixed
 *   64x64 input: 64 image tokens per image.
 * - `gemma3`: a SigLIP-style tower (patch bias, learned positions, no class
 *   embedding, post-layernorm) with Gemma 3's projector ("gemma3": 2x2
 *   average pooling, RMS norm, input projection), paired with the `gemma3`
 *   family model. Images are decoded non-causally: a context's nUbatch
 *   must hold a whole image (16 tokens here). A fixed 64x64 input.
 * - `qwen2vl`: a Qwen2-VL vision tower (two patch convolutions, 2D M-RoPE,
 *   no position table) with the merger projector ("qwen2vl_merger": 2x2
 *   patches merged, mm.0 -> GELU -> mm.2), paired with a `qwen2vl` text
 *   model (M-RoPE, qwen2 vocabulary, Qwen2.5 chat template). Dynamic
 *   resolution: 32x32 pixels per image token.
 * - `qwen2a`: an audio projector: a Whisper encoder (two 1D convolutions,
 *   learned positions, 1 block, average pooling) with Qwen2-Audio's linear
 *   projector ("qwen2a"), paired with a `qwen2` text model. Audio is cut
 *   into 30 s windows of 3000 mel frames: 750 tokens per window.
 *
 * Tensor names, keys and shapes are those of tools/mtmd/clip.cpp and
 * clip-impl.h (load_hparams, load_tensors, models/llava.cpp, siglip.cpp,
 * qwen2vl.cpp and whisper-enc.cpp) in the pinned checkout. Files are cached in
 * `paths().models` under names that carry the seed and
 * {@linkcode MTMD_GENERATOR_VERSION}.
 *
 * @example
 * ```ts ignore
 * import { ensureMtmdPair } from "./mtmd_model.ts";
 * const { model, mmproj } = await ensureMtmdPair("llava");
 * ```
 * @module
 */

import { paths } from "../paths.ts";
import { ensureFamilyModel } from "./family_model.ts";
import {
  exists,
  ModelBuilder,
  readVocab,
  writeAtomically,
} from "./_model_builder.ts";
import { GgmlType } from "./ggml_type.ts";

/** Bump when a generated file's bytes change for the same seed. */
export const MTMD_GENERATOR_VERSION = 1;

/** The projector kinds generated here. */
export const MTMD_KINDS = ["llava", "gemma3", "qwen2vl", "qwen2a"] as const;
/** One projector kind. */
export type MtmdKind = typeof MTMD_KINDS[number];

/** A text model and the projector made for it. */
export interface MtmdPair {
  /** The kind. */
  kind: MtmdKind;
  /** Path of the text model GGUF. */
  model: string;
  /** Path of the projector GGUF. */
  mmproj: string;
  /** The text model's n_embd (= the projector's output width). */
  nEmbd: number;
}

const TEXT_EMBD = 64;

function f32s(b: ModelBuilder, key: string, values: number[]): void {
  b.set(key, {
    type: "array",
    itemType: "float32",
    value: new Float32Array(values),
  });
}

/** Header keys every vision projector has. */
function visionKeys(
  b: ModelBuilder,
  projType: string,
  v: {
    nEmbd: number;
    nHead: number;
    nFf: number;
    nLayer: number;
    imageSize: number;
    patchSize: number;
    eps: number;
  },
): void {
  b.str("general.type", "mmproj");
  b.str("general.name", `synthetic-${projType}-mmproj`);
  b.u32("general.file_type", 0); // all F32
  b.str("clip.projector_type", projType);
  b.bool("clip.has_vision_encoder", true);
  b.u32("clip.vision.embedding_length", v.nEmbd);
  b.u32("clip.vision.feed_forward_length", v.nFf);
  b.u32("clip.vision.block_count", v.nLayer);
  b.u32("clip.vision.projection_dim", TEXT_EMBD);
  b.u32("clip.vision.attention.head_count", v.nHead);
  b.f32("clip.vision.attention.layer_norm_epsilon", v.eps);
  b.u32("clip.vision.image_size", v.imageSize);
  b.u32("clip.vision.patch_size", v.patchSize);
  f32s(b, "clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073]);
  f32s(b, "clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711]);
}

/**
 * One pre-norm transformer block of an encoder tower (LayerNorm, biases):
 * `v.blk.<il>.` of a vision tower, or with `tower` "a" an audio one, whose
 * key projection has no bias (Whisper).
 */
function encoderBlock(
  b: ModelBuilder,
  il: number,
  n: number,
  ff: number,
  tower: "v" | "a" = "v",
) {
  const p = `${tower}.blk.${il}.`;
  for (const t of ["attn_q", "attn_k", "attn_v", "attn_out"]) {
    b.matrix(p + t + ".weight", [n, n]);
    if (tower === "v" || t !== "attn_k") b.normal(p + t + ".bias", [n], 0.02);
  }
  b.ones(p + "ln1.weight", n);
  b.zeros(p + "ln1.bias", n);
  b.ones(p + "ln2.weight", n);
  b.zeros(p + "ln2.bias", n);
  // ffn_down's ne[0] is n_ff (not n_embd), so clip.cpp keeps up and down as they are.
  b.matrix(p + "ffn_up.weight", [n, ff]);
  b.normal(p + "ffn_up.bias", [ff], 0.02);
  b.matrix(p + "ffn_down.weight", [ff, n]);
  b.normal(p + "ffn_down.bias", [n], 0.02);
}

function builder(seed: number): ModelBuilder {
  return new ModelBuilder("clip", {
    seed,
    std: "fan-in",
    matrixType: GgmlType.F32,
  });
}

/** llava: CLIP tower + MLP projector ("mlp"). */
function llavaProjector(seed: number): ModelBuilder {
  const b = builder(seed);
  const n = 32, ff = 64, patch = 8, size = 64, hidden = 64;
  visionKeys(b, "mlp", {
    nEmbd: n,
    nHead: 4,
    nFf: ff,
    nLayer: 2,
    imageSize: size,
    patchSize: patch,
    eps: 1e-5,
  });
  b.bool("clip.use_gelu", false); // quick GELU, as CLIP
  const nPos = (size / patch) ** 2 + 1;
  b.normal(
    "v.patch_embd.weight",
    [patch, patch, 3, n],
    1 / Math.sqrt(patch * patch * 3),
  );
  b.normal("v.class_embd", [n], 1);
  b.normal("v.position_embd.weight", [n, nPos], 0.5);
  b.ones("v.pre_ln.weight", n);
  b.zeros("v.pre_ln.bias", n);
  for (let il = 0; il < 2; il++) encoderBlock(b, il, n, ff);
  b.matrix("mm.0.weight", [n, hidden]);
  b.normal("mm.0.bias", [hidden], 0.02);
  b.matrix("mm.2.weight", [hidden, TEXT_EMBD]);
  b.normal("mm.2.bias", [TEXT_EMBD], 0.02);
  return b;
}

/** gemma3: SigLIP tower + Gemma 3 projector ("gemma3"). */
function gemma3Projector(seed: number): ModelBuilder {
  const b = builder(seed);
  const n = 32, ff = 64, patch = 8, size = 64;
  visionKeys(b, "gemma3", {
    nEmbd: n,
    nHead: 4,
    nFf: ff,
    nLayer: 1,
    imageSize: size,
    patchSize: patch,
    eps: 1e-6,
  });
  b.bool("clip.use_gelu", true);
  b.u32("clip.vision.projector.scale_factor", 2); // 8x8 patches -> 4x4 tokens
  b.normal(
    "v.patch_embd.weight",
    [patch, patch, 3, n],
    1 / Math.sqrt(patch * patch * 3),
  );
  b.normal("v.patch_embd.bias", [n], 0.02);
  b.normal("v.position_embd.weight", [n, (size / patch) ** 2], 0.5);
  encoderBlock(b, 0, n, ff);
  b.ones("v.post_ln.weight", n);
  b.zeros("v.post_ln.bias", n);
  b.ones("mm.soft_emb_norm.weight", n);
  // used transposed: ne0 is the text model's width
  b.normal("mm.input_projection.weight", [TEXT_EMBD, n], 1 / Math.sqrt(n));
  return b;
}

/** qwen2vl: Qwen2-VL tower + merger ("qwen2vl_merger"). */
function qwen2vlProjector(seed: number): ModelBuilder {
  const b = builder(seed);
  const n = 32, ff = 64, patch = 16, hidden = 128;
  visionKeys(b, "qwen2vl_merger", {
    nEmbd: n,
    nHead: 2, // head dim 16: the tower's M-RoPE uses 4 sections of d_head/4
    nFf: ff,
    nLayer: 1,
    imageSize: 448,
    patchSize: patch,
    eps: 1e-6,
  });
  const conv = 1 / Math.sqrt(2 * patch * patch * 3);
  b.normal("v.patch_embd.weight", [patch, patch, 3, n], conv);
  b.normal("v.patch_embd.weight.1", [patch, patch, 3, n], conv);
  encoderBlock(b, 0, n, ff);
  b.ones("v.post_ln.weight", n);
  b.zeros("v.post_ln.bias", n);
  b.matrix("mm.0.weight", [n * 4, hidden]);
  b.normal("mm.0.bias", [hidden], 0.02);
  b.matrix("mm.2.weight", [hidden, TEXT_EMBD]);
  b.normal("mm.2.bias", [TEXT_EMBD], 0.02);
  return b;
}

/** qwen2a: Whisper encoder + linear projector ("qwen2a"). */
function qwen2aProjector(seed: number): ModelBuilder {
  const b = builder(seed);
  const n = 32, ff = 64, nMel = 80;
  b.str("general.type", "mmproj");
  b.str("general.name", "synthetic-qwen2a-mmproj");
  b.u32("general.file_type", 0);
  b.str("clip.projector_type", "qwen2a");
  b.bool("clip.has_audio_encoder", true);
  b.u32("clip.audio.embedding_length", n);
  b.u32("clip.audio.feed_forward_length", ff);
  b.u32("clip.audio.block_count", 1);
  b.u32("clip.audio.projection_dim", TEXT_EMBD);
  b.u32("clip.audio.attention.head_count", 2);
  b.f32("clip.audio.attention.layer_norm_epsilon", 1e-5);
  b.u32("clip.audio.num_mel_bins", nMel);
  // ggml_conv_1d kernels [K, in, out]; biases [1, out] broadcast over frames
  b.normal("a.conv1d.1.weight", [3, nMel, n], 1 / Math.sqrt(3 * nMel));
  b.normal("a.conv1d.1.bias", [1, n], 0.02);
  b.normal("a.conv1d.2.weight", [3, n, n], 1 / Math.sqrt(3 * n));
  b.normal("a.conv1d.2.bias", [1, n], 0.02);
  b.normal("a.position_embd.weight", [n, 1500], 0.5);
  encoderBlock(b, 0, n, ff, "a");
  b.ones("a.post_ln.weight", n);
  b.zeros("a.post_ln.bias", n);
  b.matrix("mm.a.fc.weight", [n, TEXT_EMBD]);
  b.normal("mm.a.fc.bias", [TEXT_EMBD], 0.02);
  return b;
}

/**
 * src/models/qwen2vl.cpp (qwen2 with M-RoPE sections) or qwen2.cpp: q/k/v
 * biases, the qwen2 vocabulary and the Qwen2.5 chat template.
 */
async function qwen2Text(
  seed: number,
  arch: "qwen2vl" | "qwen2",
): Promise<ModelBuilder> {
  const b = new ModelBuilder(arch, {
    seed,
    std: "fan-in",
    matrixType: GgmlType.Q8_0,
  });
  const nHead = 4, nHeadKv = 2, headDim = TEXT_EMBD / nHead, nFf = 192;
  const nKv = headDim * nHeadKv, nLayer = 2;
  b.str("general.type", "model");
  b.str("general.name", `synthetic-${arch}`);
  b.u32("general.file_type", 7);
  b.u32("general.quantization_version", 2);
  const llama = paths().llamaCpp;
  const vocab = await readVocab(`${llama}/models/ggml-vocab-qwen2.gguf`);
  const nVocab = b.tokenizer(
    vocab,
    await Deno.readTextFile(
      `${llama}/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja`,
    ),
  );
  b.u32(b.hp("context_length"), 4096);
  b.u32(b.hp("embedding_length"), TEXT_EMBD);
  b.u32(b.hp("block_count"), nLayer);
  b.u32(b.hp("feed_forward_length"), nFf);
  b.u32(b.hp("attention.head_count"), nHead);
  b.u32(b.hp("attention.head_count_kv"), nHeadKv);
  b.f32(b.hp("attention.layer_norm_rms_epsilon"), 1e-6);
  b.f32(b.hp("rope.freq_base"), 1e6);
  if (arch === "qwen2vl") {
    // sections of head_dim / 2 rotary pairs: temporal, height, width, unused
    b.i32s(b.hp("rope.dimension_sections"), [2, 3, 3, 0]);
  }
  b.matrix("token_embd.weight", [TEXT_EMBD, nVocab], 1);
  b.ones("output_norm.weight", TEXT_EMBD);
  b.matrix("output.weight", [TEXT_EMBD, nVocab]);
  for (let i = 0; i < nLayer; i++) {
    const p = `blk.${i}.`;
    b.ones(p + "attn_norm.weight", TEXT_EMBD);
    b.matrix(p + "attn_q.weight", [TEXT_EMBD, TEXT_EMBD]);
    b.normal(p + "attn_q.bias", [TEXT_EMBD], 0.02);
    b.matrix(p + "attn_k.weight", [TEXT_EMBD, nKv]);
    b.normal(p + "attn_k.bias", [nKv], 0.02);
    b.matrix(p + "attn_v.weight", [TEXT_EMBD, nKv]);
    b.normal(p + "attn_v.bias", [nKv], 0.02);
    b.matrix(p + "attn_output.weight", [TEXT_EMBD, TEXT_EMBD]);
    b.ones(p + "ffn_norm.weight", TEXT_EMBD);
    b.matrix(p + "ffn_gate.weight", [TEXT_EMBD, nFf]);
    b.matrix(p + "ffn_down.weight", [nFf, TEXT_EMBD]);
    b.matrix(p + "ffn_up.weight", [TEXT_EMBD, nFf]);
  }
  return b;
}

async function ensureFile(
  path: string,
  make: () => ModelBuilder | Promise<ModelBuilder>,
): Promise<string> {
  if (await exists(path)) return path;
  return await writeAtomically(path, async (tmp) => {
    await (await make()).writer.writeFile(tmp);
    return { keep: tmp, result: path };
  });
}

/**
 * The text model and projector of a kind, generated on first use into
 * `paths().models` (or `dir`), then reused.
 */
export async function ensureMtmdPair(
  kind: MtmdKind,
  options: { seed?: number; dir?: string } = {},
): Promise<MtmdPair> {
  const seed = (options.seed ?? 1) >>> 0;
  const dir = options.dir ?? paths().models;
  const tag = `s${seed}-m${MTMD_GENERATOR_VERSION}`;
  const projectors = {
    llava: llavaProjector,
    gemma3: gemma3Projector,
    qwen2vl: qwen2vlProjector,
    qwen2a: qwen2aProjector,
  };
  const mmproj = await ensureFile(
    `${dir}/synthetic-mmproj-${kind}-f32-${tag}.gguf`,
    () => projectors[kind](seed),
  );
  const arch = kind === "qwen2vl" ? "qwen2vl" : "qwen2";
  const family = kind === "llava" ? "llama" : kind === "gemma3" ? "gemma3" : "";
  const model = family
    ? (await ensureFamilyModel(family, { seed, dir })).path
    : await ensureFile(
      `${dir}/synthetic-${arch}-q8_0-${tag}.gguf`,
      () => qwen2Text(seed, arch),
    );
  return { kind, model, mmproj, nEmbd: TEXT_EMBD };
}

/**
 * A PNG of `width` x `height` RGB pixels (8-bit, no interlace), written with
 * stored (uncompressed) deflate blocks: `pixel(x, y)` gives [r, g, b].
 */
export function makePng(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number],
): Uint8Array {
  const row = 1 + width * 3;
  const raw = new Uint8Array(row * height);
  for (let y = 0; y < height; y++) {
    raw[y * row] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y);
      raw.set([r & 255, g & 255, b & 255], y * row + 1 + x * 3);
    }
  }
  // zlib stream: header, stored blocks of <= 65535 bytes, adler32
  const blocks: number[] = [0x78, 0x01];
  for (let off = 0; off < raw.length || off === 0; off += 65535) {
    const len = Math.min(65535, raw.length - off);
    const last = off + len >= raw.length ? 1 : 0;
    blocks.push(last, len & 255, len >> 8, ~len & 255, (~len >> 8) & 255);
    for (let i = 0; i < len; i++) blocks.push(raw[off + i]);
    if (last) break;
  }
  let a = 1, b = 0;
  for (const v of raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  blocks.push((b >> 8) & 255, b & 255, (a >> 8) & 255, a & 255);
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, RGB
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", new Uint8Array(blocks)),
    pngChunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  let c = 0xffffffff;
  for (let i = 4; i < 8 + data.length; i++) {
    c = CRC_TABLE[(c ^ out[i]) & 255] ^ (c >>> 8);
  }
  dv.setUint32(8 + data.length, (c ^ 0xffffffff) >>> 0);
  return out;
}
