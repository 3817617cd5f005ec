/**
 * Checks a GGUF header before llama.cpp sees the file. A malformed model can
 * trip a `GGML_ASSERT` inside llama.cpp's loader, which aborts the whole
 * process; what can be checked from the header alone is checked here:
 *
 * - the header parses within bounds ({@linkcode GGUF_LIMITS}: key, tensor and
 *   array-item counts, key and string lengths, header size);
 * - tensor infos are sane: names short enough for ggml, every dimension
 *   positive, element counts and byte sizes without overflow, each tensor's
 *   data inside the file, aligned and where llama.cpp expects it;
 * - `<arch>.block_count` is within llama.cpp's layer limit and matches the
 *   `blk.N` tensors present; `nextn_predict_layers` and the expert counts
 *   keep llama.cpp's invariants; `rope.scaling.type` is one llama.cpp knows;
 * - the vocabulary (`tokenizer.ggml.tokens`) has no duplicate token (llama.cpp
 *   asserts on one) and its length matches `token_embd`, `output` and
 *   `<arch>.embedding_length`.
 *
 * Only the header is read, never the tensor data, so large models stay fast
 * to load. A problem throws a {@linkcode GgufError} that names the file, what
 * is wrong, the value and the limit.
 *
 * @example
 * ```ts
 * import { GgufError, GgufWriter, validateGgufBytes } from "./mod.ts";
 *
 * const w = new GgufWriter();
 * w.setMetadata("general.architecture", { type: "string", value: "llama" });
 * w.setMetadata("llama.block_count", { type: "uint32", value: 100000 });
 * try {
 *   validateGgufBytes(await w.toBytes());
 * } catch (e) {
 *   console.log(e instanceof GgufError, (e as Error).message);
 *   // true "<bytes>: llama.block_count is 100000; llama.cpp allows 1 to 512 layers"
 * }
 * ```
 * @module
 */

import { GgufError } from "./error.ts";
import {
  type GgufArraySpan,
  type GgufFile,
  type GgufParseLimits,
  parseGguf,
  readGgufHeader,
  readGgufHeaderSync,
  type ReadGgufOptions,
} from "./reader.ts";
import type { GgufValue } from "./types.ts";

/**
 * The bounds a model's header must stay within, with llama.cpp's own limits
 * (`LLAMA_MAX_LAYERS`, `LLAMA_MAX_EXPERTS`, `GGML_MAX_NAME`). The counts and
 * lengths are far above what real models use (tens of keys, a few thousand
 * tensors, vocabularies of up to ~260k tokens, headers of a few MiB) and
 * bound the memory that parsing a hostile header can take.
 *
 * @example
 * ```ts
 * import { GGUF_LIMITS } from "./validate.ts";
 * console.log(GGUF_LIMITS.maxLayers); // 512
 * ```
 */
export const GGUF_LIMITS: Readonly<
  Required<GgufParseLimits> & {
    maxLayers: number;
    maxExperts: number;
    maxTensorNameBytes: number;
  }
> = {
  maxKeys: 4096,
  maxTensors: 65536,
  maxKeyBytes: 1024,
  maxStringBytes: 64 << 20,
  maxArrayItems: 1 << 24,
  maxHeaderBytes: 256 << 20,
  maxLayers: 512,
  maxExperts: 1024,
  maxTensorNameBytes: 63,
};

/** llama.cpp's `LLAMA_ROPE_SCALING_TYPES`: any other value aborts the load. */
const ROPE_SCALING_TYPES = ["none", "linear", "yarn", "longrope"];

const dec = new TextDecoder();
const enc = new TextEncoder();

/** A string read with `binaryStrings` (one char per byte), shown as UTF-8 for messages. */
function shown(binary: string): string {
  const head = binary.slice(0, 40);
  const text = dec.decode(Uint8Array.from(head, (c) => c.charCodeAt(0) & 0xff));
  return JSON.stringify(text) + (binary.length > 40 ? "…" : "");
}

function num(v: GgufValue | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v.value === "number") return v.value;
  if (typeof v.value === "bigint") return Number(v.value);
  if (typeof v.value === "boolean") return v.value ? 1 : 0;
  return undefined;
}

/** A scalar, or the largest item of a per-layer array (llama.cpp's get_key_or_arr). */
function numOrMax(v: GgufValue | undefined): number | undefined {
  if (v?.type !== "array") return num(v);
  const items = v.value as ArrayLike<number | bigint>;
  let max = 0;
  for (let i = 0; i < items.length; i++) max = Math.max(max, Number(items[i]));
  return max;
}

/**
 * Checks a parsed header (see the module doc for what). Throws a
 * {@linkcode GgufError} naming the first problem. Tokens must compare byte
 * for byte as in llama.cpp: parse with `binaryStrings: true`, or skip the
 * string arrays (`skipArray`) and pass `bytes`, the file's first bytes (what
 * the `validateGguf*` functions below do; it is much faster).
 *
 * @example
 * ```ts
 * import { GgufWriter, parseGguf, validateGguf } from "./mod.ts";
 * const w = new GgufWriter();
 * w.setMetadata("general.architecture", { type: "string", value: "llama" });
 * validateGguf(parseGguf(await w.toBytes())); // no tensors, no vocabulary: fine
 * ```
 */
export function validateGguf(file: GgufFile, bytes?: Uint8Array): void {
  const fail = (what: string, offset?: number): never => {
    throw new GgufError(file.source, what, offset);
  };
  const L = GGUF_LIMITS;
  const meta = file.metadata;

  // Tensor infos: llama.cpp's reader wants each tensor right after the
  // previous one (padded to the alignment); anything else is corrupt.
  let expected = 0;
  for (const t of file.tensors) {
    if (t.name.length > L.maxTensorNameBytes) {
      fail(
        `tensor name ${
          shown(t.name)
        } is ${t.name.length} bytes; ggml allows at most ${L.maxTensorNameBytes}`,
      );
    }
    if (t.dims.length === 0) fail(`tensor "${t.name}" has no dimensions`);
    for (let d = 0; d < t.dims.length; d++) {
      if (t.dims[d] < 1) {
        fail(
          `tensor "${t.name}" dimension ${d} is ${
            t.dims[d]
          }; every dimension must be at least 1`,
        );
      }
    }
    if (
      !Number.isSafeInteger(t.nElements) || !Number.isSafeInteger(t.byteLength)
    ) {
      fail(
        `tensor "${t.name}" with dimensions [${
          t.dims.join(", ")
        }] has too many elements (overflow)`,
      );
    }
    if (t.offset !== expected) {
      fail(
        `tensor "${t.name}" data is at offset ${t.offset} of the data section, expected ${expected} (tensors must follow each other, aligned to ${file.alignment} bytes)`,
        file.dataOffset + t.offset,
      );
    }
    expected += Math.ceil(t.byteLength / file.alignment) * file.alignment;
  }
  if (file.dataOffset > L.maxHeaderBytes) {
    fail(
      `the header is ${file.dataOffset} bytes; at most ${L.maxHeaderBytes} allowed`,
    );
  }

  const archValue = meta.get("general.architecture");
  if (archValue === undefined) {
    if (file.tensors.length === 0 && meta.size === 0) return;
    return fail(
      "general.architecture is missing; every llama.cpp model names one",
    );
  }
  if (archValue.type !== "string") {
    fail(`general.architecture must be a string, found ${archValue.type}`);
  }
  const arch = archValue.value as string;
  const key = (k: string) => `${arch}.${k}`;

  // Layers: llama.cpp asserts 1 <= block_count <= LLAMA_MAX_LAYERS.
  const blockCount = num(meta.get(key("block_count")));
  if (blockCount !== undefined) {
    if (
      !Number.isInteger(blockCount) || blockCount < 1 ||
      blockCount > L.maxLayers
    ) {
      fail(
        `${
          key("block_count")
        } is ${blockCount}; llama.cpp allows 1 to ${L.maxLayers} layers`,
      );
    }
    const nextn = num(meta.get(key("nextn_predict_layers")));
    if (nextn !== undefined && nextn > blockCount) {
      fail(
        `${
          key("nextn_predict_layers")
        } is ${nextn}, more than the ${blockCount} layers of ${
          key("block_count")
        }`,
      );
    }
    if (file.tensors.length > 0) {
      const seen = new Set<number>();
      for (const t of file.tensors) {
        const m = /^blk\.(\d+)\./.exec(t.name);
        if (!m) continue;
        const n = Number(m[1]);
        if (n >= blockCount) {
          fail(
            `tensor "${t.name}" is in layer ${n}, but ${
              key("block_count")
            } is ${blockCount} (layers 0 to ${blockCount - 1})`,
          );
        }
        seen.add(n);
      }
      if (seen.size > 0 && seen.size < blockCount) {
        let missing = 0;
        while (seen.has(missing)) missing++;
        fail(
          `${
            key("block_count")
          } is ${blockCount}, but there are tensors for only ${seen.size} layers (none for blk.${missing})`,
        );
      }
    }
    // Per-layer arrays (head counts, ...) of another length than block_count
    // are refused by llama.cpp itself.
  } else if (file.tensors.some((t) => t.name.startsWith("blk."))) {
    fail(`${key("block_count")} is missing, but the file has blk.N tensors`);
  }

  // Experts: llama.cpp's load_hparams asserts these.
  const nExpert = num(meta.get(key("expert_count"))) ?? 0;
  const nUsed = numOrMax(meta.get(key("expert_used_count"))) ?? 0;
  const nGroups = num(meta.get(key("expert_group_count"))) ?? 0;
  const nGroupUsed = num(meta.get(key("expert_group_used_count"))) ?? 0;
  if (nExpert < 0 || nExpert > L.maxExperts) {
    fail(
      `${
        key("expert_count")
      } is ${nExpert}; llama.cpp allows at most ${L.maxExperts} experts`,
    );
  }
  if (nUsed > nExpert) {
    fail(
      `${key("expert_used_count")} is ${nUsed}, more than ${
        key("expert_count")
      } (${nExpert})`,
    );
  }
  if (nExpert > 0) {
    if (nUsed <= 0) {
      fail(
        `${key("expert_count")} is ${nExpert} but ${
          key("expert_used_count")
        } is ${nUsed}; a mixture of experts uses at least one`,
      );
    }
    if (nGroups >= nExpert) {
      fail(
        `${key("expert_group_count")} is ${nGroups}; it must be below ${
          key("expert_count")
        } (${nExpert})`,
      );
    }
    if (
      nGroups > 1 &&
      (nExpert % nGroups !== 0 || nGroupUsed <= 0 || nGroupUsed >= nGroups)
    ) {
      fail(
        `${key("expert_group_count")} ${nGroups} must divide ${
          key("expert_count")
        } ${nExpert}, and ${
          key("expert_group_used_count")
        } (${nGroupUsed}) must be between 1 and ${nGroups - 1}`,
      );
    }
  } else if (nGroups !== 0) {
    fail(
      `${
        key("expert_group_count")
      } is ${nGroups}, but the model has no experts`,
    );
  }

  const rope = meta.get(key("rope.scaling.type"));
  if (
    rope?.type === "string" &&
    !ROPE_SCALING_TYPES.includes(rope.value as string)
  ) {
    fail(
      `${key("rope.scaling.type")} is ${
        shown(rope.value as string)
      }; llama.cpp knows ${ROPE_SCALING_TYPES.join(", ")}`,
    );
  }

  // Vocabulary: llama.cpp asserts every token string is distinct (an empty
  // token becomes "[EMPTY_<id>]" first), and sizes its tensors by it.
  const span = file.skippedArrays?.get("tokenizer.ggml.tokens");
  const tokens = meta.get("tokenizer.ggml.tokens");
  let nTokens: number | undefined;
  let dup: [number, number, string] | undefined;
  if (span?.itemType === "string") {
    if (!bytes) {
      throw new TypeError(
        "validateGguf: the vocabulary was skipped while parsing; pass the bytes",
      );
    }
    nTokens = span.count;
    dup = duplicateInSpan(bytes, span);
  } else if (tokens?.type === "array" && tokens.itemType === "string") {
    const list = tokens.value as string[];
    nTokens = list.length;
    const ids = new Map<string, number>();
    for (let i = 0; i < list.length && !dup; i++) {
      const word = list[i] === "" ? `[EMPTY_${i}]` : list[i];
      const prev = ids.get(word);
      if (prev !== undefined) dup = [prev, i, word];
      ids.set(word, i);
    }
  }
  if (dup) {
    fail(
      `tokenizer.ggml.tokens has token ${dup[1]} equal to token ${dup[0]} (${
        shown(dup[2])
      }); every token must be distinct`,
    );
  }
  if (nTokens !== undefined) {
    const nEmbd = num(meta.get(key("embedding_length")));
    for (const name of ["token_embd.weight", "output.weight"]) {
      const t = file.tensors.find((x) => x.name === name);
      if (!t || t.dims.length !== 2) continue;
      if (t.dims[1] !== nTokens) {
        fail(
          `the vocabulary has ${nTokens} tokens (tokenizer.ggml.tokens) but tensor "${name}" has ${
            t.dims[1]
          } rows; they must match`,
        );
      }
      if (nEmbd !== undefined && t.dims[0] !== nEmbd) {
        fail(
          `tensor "${name}" is ${t.dims[0]} wide but ${
            key("embedding_length")
          } is ${nEmbd}; they must match`,
        );
      }
    }
  }
}

/**
 * The first repeated token of a string array still in the file's bytes, as
 * [first id, repeated id, text one char per byte]: a hash set over the raw
 * bytes, so a 150k-token vocabulary costs a few milliseconds.
 */
function duplicateInSpan(
  bytes: Uint8Array,
  span: GgufArraySpan,
): [number, number, string] | undefined {
  const n = span.count;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const starts = new Uint32Array(n), lens = new Uint32Array(n);
  // Empty tokens are renamed as llama.cpp does; their text goes to `extra`.
  const inExtra = new Uint8Array(n);
  const renamed: number[] = [];
  let pos = span.offset;
  for (let i = 0; i < n; i++) {
    // The parser checked every length against the bounds already.
    const len = view.getUint32(pos, true) + view.getUint32(pos + 4, true) *
        0x100000000;
    starts[i] = pos + 8;
    lens[i] = len;
    if (len === 0) renamed.push(i);
    pos += 8 + len;
  }
  let extra = new Uint8Array(0);
  if (renamed.length > 0) {
    const parts = renamed.map((i) => enc.encode(`[EMPTY_${i}]`));
    extra = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    renamed.forEach((i, k) => {
      extra.set(parts[k], o);
      inExtra[i] = 1;
      starts[i] = o;
      lens[i] = parts[k].length;
      o += parts[k].length;
    });
  }
  let cap = 1;
  while (cap < 2 * n) cap <<= 1;
  const mask = cap - 1;
  const table = new Int32Array(cap).fill(-1);
  for (let i = 0; i < n; i++) {
    const b = inExtra[i] ? extra : bytes, s0 = starts[i], len = lens[i];
    let h = 0x811c9dc5;
    for (let k = s0; k < s0 + len; k++) h = Math.imul(h ^ b[k], 0x01000193);
    let slot = h & mask;
    for (let j = table[slot]; j >= 0; j = table[slot]) {
      if (lens[j] === len) {
        const c = inExtra[j] ? extra : bytes, c0 = starts[j];
        let k = 0;
        while (k < len && c[c0 + k] === b[s0 + k]) k++;
        if (k === len) {
          const shownBytes = b.subarray(s0, s0 + Math.min(len, 64));
          return [j, i, String.fromCharCode(...shownBytes)];
        }
      }
      slot = (slot + 1) & mask;
    }
    table[slot] = i;
  }
  return undefined;
}

/** How the validators parse: bounded, exact bytes, string arrays left in place. */
const PARSE: ReadGgufOptions = {
  limits: GGUF_LIMITS,
  binaryStrings: true,
  skipArray: (_key, itemType) => itemType === "string",
};

/**
 * Parses and checks a GGUF file held in memory (header only; the tensor
 * data is not read). Returns the parsed header.
 *
 * @example
 * ```ts
 * import { GgufWriter, validateGgufBytes } from "./mod.ts";
 * const w = new GgufWriter();
 * w.setMetadata("general.architecture", { type: "string", value: "llama" });
 * console.log(validateGgufBytes(await w.toBytes()).version); // 3
 * ```
 */
export function validateGgufBytes(
  bytes: Uint8Array,
  source?: string,
): GgufFile {
  const file = parseGguf(bytes, { ...PARSE, source });
  validateGguf(file, bytes);
  return file;
}

/**
 * Reads and checks the header of a GGUF file (only the header is read).
 * Returns the parsed header. `source` names the file in messages (default:
 * the path).
 *
 * @example
 * ```ts
 * import { GgufWriter, validateGgufFile } from "./mod.ts";
 * const path = await Deno.makeTempFile({ suffix: ".gguf" });
 * await new GgufWriter().writeFile(path);
 * console.log((await validateGgufFile(path)).tensors.length); // 0
 * await Deno.remove(path);
 * ```
 */
export async function validateGgufFile(
  path: string,
  source?: string,
): Promise<GgufFile> {
  const { file, bytes } = await readGgufHeader(path, { ...PARSE, source });
  validateGguf(file, bytes);
  return file;
}

/**
 * Blocking {@linkcode validateGgufFile}.
 *
 * @example
 * ```ts
 * import { GgufWriter, validateGgufFileSync } from "./mod.ts";
 * const path = await Deno.makeTempFile({ suffix: ".gguf" });
 * await new GgufWriter().writeFile(path);
 * console.log(validateGgufFileSync(path).tensors.length); // 0
 * await Deno.remove(path);
 * ```
 */
export function validateGgufFileSync(path: string, source?: string): GgufFile {
  const { file, bytes } = readGgufHeaderSync(path, { ...PARSE, source });
  validateGguf(file, bytes);
  return file;
}
