/**
 * Internal: the pieces every synthetic model generator shares. A
 * {@linkcode ModelBuilder} wraps a {@linkcode GgufWriter} with
 * architecture-prefixed hyperparameters, the tokenizer copied from a
 * vocab-only GGUF, and seeded tensors (every tensor has its own PRNG stream,
 * derived from the seed and the tensor name, so adding a tensor does not
 * change the others). {@linkcode writeAtomically} writes a file under a
 * temporary name and renames it, so a reader never sees a partial file.
 * @module
 */

import { fillNormal, streamSeed } from "./_prng.ts";
import { GgmlType } from "./ggml_type.ts";
import { type GgufFile, readGguf } from "./reader.ts";
import type { GgufValue } from "./types.ts";
import { GgufWriter } from "./writer.ts";

/** Options of a {@linkcode ModelBuilder}. */
export interface ModelBuilderOptions {
  /** PRNG seed (unsigned 32-bit). */
  seed: number;
  /**
   * Standard deviation of {@linkcode ModelBuilder.matrix} tensors by
   * default, or `"fan-in"`: `1 / sqrt(dims[0])`, which keeps every
   * projection's output at the scale of its input.
   */
  std: number | "fan-in";
  /** ggml type of weight matrices (falls back to F32 where a row does not fit its blocks). */
  matrixType: number;
}

/** Block sizes of the types a matrix may be written as (F32/F16: 1). */
const BLOCK: Record<number, number> = {
  [GgmlType.F32]: 1,
  [GgmlType.F16]: 1,
  [GgmlType.BF16]: 1,
  [GgmlType.Q8_0]: 32,
};

/** Builds one synthetic model: metadata, tokenizer and seeded tensors. */
export class ModelBuilder {
  /** The writer the model goes to. */
  readonly writer: GgufWriter = new GgufWriter();
  /** Elements of every tensor added so far. */
  params = 0;
  readonly #arch: string;
  readonly #opts: ModelBuilderOptions;

  constructor(arch: string, options: ModelBuilderOptions) {
    this.#arch = arch;
    this.#opts = options;
    this.str("general.architecture", arch);
  }

  /** Sets a string key. */
  str(key: string, value: string): this {
    this.writer.setMetadata(key, { type: "string", value });
    return this;
  }

  /** Sets a uint32 key. */
  u32(key: string, value: number): this {
    this.writer.setMetadata(key, { type: "uint32", value });
    return this;
  }

  /** Sets a float32 key. */
  f32(key: string, value: number): this {
    this.writer.setMetadata(key, { type: "float32", value });
    return this;
  }

  /** Sets a bool key. */
  bool(key: string, value: boolean): this {
    this.writer.setMetadata(key, { type: "bool", value });
    return this;
  }

  /** Sets an int32 array key (llama.cpp reads per-layer values from these). */
  i32s(key: string, values: readonly number[]): this {
    this.writer.setMetadata(key, {
      type: "array",
      itemType: "int32",
      value: new Int32Array(values),
    });
    return this;
  }

  /** A key of this architecture: `hp("block_count")` is `<arch>.block_count`. */
  hp(key: string): string {
    return `${this.#arch}.${key}`;
  }

  /** Sets any value. */
  set(key: string, value: GgufValue): this {
    this.writer.setMetadata(key, value);
    return this;
  }

  /**
   * Copies every `tokenizer.*` key of a vocab-only GGUF (see
   * {@linkcode readVocab}), then sets `tokenizer.chat_template` (or drops it
   * for `false`). Returns the vocabulary size.
   */
  tokenizer(vocab: GgufFile, template: string | false): number {
    const nVocab = vocabSize(vocab);
    for (const [key, value] of vocab.metadata) {
      if (key.startsWith("tokenizer.")) this.writer.setMetadata(key, value);
    }
    if (template === false) {
      this.writer.deleteMetadata("tokenizer.chat_template");
    } else this.str("tokenizer.chat_template", template);
    return nVocab;
  }

  #add(name: string, dims: number[], type: number, fill: () => Float32Array) {
    this.params += dims.reduce((a, b) => a * b, 1);
    this.writer.addTensor({ name, dims, type, data: fill });
  }

  /**
   * A weight matrix (any rank) ~ N(0, std^2) (default: the builder's
   * `std`), in the builder's matrix type, or F32 when `dims[0]` is not a
   * whole number of its blocks.
   */
  matrix(name: string, dims: number[], std?: number): this {
    const base = this.#opts.std;
    std ??= base === "fan-in" ? 1 / Math.sqrt(dims[0]) : base;
    const t = this.#opts.matrixType;
    const type = dims[0] % (BLOCK[t] ?? 1) === 0 ? t : GgmlType.F32;
    return this.normal(name, dims, std, type);
  }

  /** A tensor ~ N(0, std^2) of `type` (default F32). */
  normal(
    name: string,
    dims: number[],
    std: number,
    type: number = GgmlType.F32,
  ): this {
    const seed = streamSeed(this.#opts.seed, name);
    const n = dims.reduce((a, b) => a * b, 1);
    this.#add(
      name,
      dims,
      type,
      () => fillNormal(new Float32Array(n), std, seed),
    );
    return this;
  }

  /** An F32 tensor whose element `i` (flat index) is `f(i)`. */
  values(name: string, dims: number[], f: (i: number) => number): this {
    const n = dims.reduce((a, b) => a * b, 1);
    this.#add(
      name,
      dims,
      GgmlType.F32,
      () => Float32Array.from({ length: n }, (_, i) => f(i)),
    );
    return this;
  }

  /** An F32 vector of ones (a norm weight). */
  ones(name: string, n: number): this {
    return this.values(name, [n], () => 1);
  }

  /** An F32 vector of zeros (a norm bias). */
  zeros(name: string, n: number): this {
    return this.values(name, [n], () => 0);
  }
}

/** Reads a vocab-only GGUF (its header: metadata and tensor infos). */
export function readVocab(path: string): Promise<GgufFile> {
  return readGguf(path);
}

/** The number of tokens of a vocabulary (throws without `tokenizer.ggml.tokens`). */
export function vocabSize(vocab: GgufFile): number {
  const tokens = vocab.metadata.get("tokenizer.ggml.tokens");
  if (tokens?.type !== "array" || tokens.itemType !== "string") {
    throw new Error(`${vocab.source}: no tokenizer.ggml.tokens string array`);
  }
  return tokens.value.length;
}

/** Whether a file exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Removes a file; a missing file is not an error. */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch {
    // already gone
  }
}

/**
 * Creates `path`'s folder, lets `write` produce the file under a temporary
 * name next to it, then renames it into place. Temporary files are removed
 * whatever happens. `write` gets a second temporary name for a step that
 * transforms the first (e.g. llama-quantize) and returns the one to keep.
 */
export async function writeAtomically<T>(
  path: string,
  write: (tmp: string, tmp2: string) => Promise<{ keep: string; result: T }>,
): Promise<T> {
  const parent = path.includes("/")
    ? path.slice(0, path.lastIndexOf("/"))
    : ".";
  await Deno.mkdir(parent || "/", { recursive: true });
  const tag = `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const tmp = `${path}.tmp-${tag}`;
  const tmp2 = `${path}.tmpq-${tag}`;
  try {
    const { keep, result } = await write(tmp, tmp2);
    await Deno.rename(keep, path);
    return result;
  } finally {
    await removeQuietly(tmp);
    await removeQuietly(tmp2);
  }
}
