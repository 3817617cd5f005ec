/**
 * Synthetic models of every model family that llama.cpp treats differently:
 * plain KV cache (llama, qwen3, phi3), sliding-window attention (gemma3),
 * recurrent memory (mamba), hybrid memory (lfm2), mixture of experts
 * (qwen3moe) and a non-causal encoder (bert). Seeded random weights
 * (deterministic: the same seed gives the same bytes), a real tokenizer
 * and the family's real chat template, both from the pinned llama.cpp
 * checkout. Each is small (n_embd 64, 2-3 layers) and runs in llama.cpp's
 * own tools. Unlike the `tiny` preset's, their weights are scaled so that
 * the output depends on the whole context, not on the last token alone.
 *
 * {@linkcode MODEL_FAMILIES} lists the names once; tests iterate over it
 * and read {@linkcode MODEL_FAMILY_TRAITS} for what differs (memory kind,
 * whether it generates, SWA window, experts, pooling).
 *
 * Command line: `deno run -A gguf/family_model.ts <family>...|all
 * [--seed N] [--force]` prints the paths.
 *
 * @example
 * ```ts
 * import { ensureFamilyModel, MODEL_FAMILIES, MODEL_FAMILY_TRAITS } from "./family_model.ts";
 *
 * for (const family of MODEL_FAMILIES) {
 *   if (!MODEL_FAMILY_TRAITS[family].generates) continue;
 *   const model = await ensureFamilyModel(family);
 *   console.log(family, MODEL_FAMILY_TRAITS[family].memory, model.path);
 * }
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { paths } from "../paths.ts";
import { FAMILY_BUILDS } from "./_families.ts";
import {
  MODEL_FAMILIES,
  MODEL_FAMILY_TRAITS,
  type ModelFamily,
} from "./_families.ts";
import {
  exists,
  ModelBuilder,
  readVocab,
  writeAtomically,
} from "./_model_builder.ts";
import { GgmlType } from "./ggml_type.ts";
import { readGguf } from "./reader.ts";
import { LLAMA2_CHAT_TEMPLATE } from "./synthetic_model.ts";

export {
  type FamilyMemory,
  MODEL_FAMILIES,
  MODEL_FAMILY_TRAITS,
  type ModelFamily,
  type ModelFamilyTraits,
} from "./_families.ts";

/**
 * Bump when a family model's bytes change for the same seed: cached files
 * carry it in their name, so old ones are not reused.
 *
 * @example
 * ```ts
 * import { FAMILY_GENERATOR_VERSION } from "./family_model.ts";
 * console.log(`synthetic-mamba-q8_0-s1-g${FAMILY_GENERATOR_VERSION}.gguf`);
 * ```
 */
export const FAMILY_GENERATOR_VERSION = 1;

/** Options of {@linkcode ensureFamilyModel} and {@linkcode writeFamilyModel}. */
export interface FamilyModelOptions {
  /** PRNG seed (unsigned 32-bit). Default 1. */
  seed?: number;
  /** Cache folder. Default `paths().models`. */
  dir?: string;
  /** Write exactly this path instead of a cache file name in `dir`. */
  out?: string;
  /** Regenerate even if the file exists. */
  force?: boolean;
}

/** What was written, or found in the cache. */
export interface FamilyModelInfo {
  /** Path of the GGUF file. */
  path: string;
  /** The family. */
  family: ModelFamily;
  /** `general.architecture`. */
  arch: string;
  /** Whether this call wrote the file (`false`: reused from the cache). */
  generated: boolean;
  /** File size in bytes. */
  byteLength: number;
  /** Vocabulary size. */
  nVocab: number;
  /** Parameter count (elements of all tensors). */
  params: number;
  /** The seed. */
  seed: number;
}

/**
 * Whether a string names a family.
 *
 * @example
 * ```ts
 * import { isModelFamily } from "./family_model.ts";
 * console.log(isModelFamily("mamba"), isModelFamily("gpt2")); // true false
 * ```
 */
export function isModelFamily(name: string): name is ModelFamily {
  return (MODEL_FAMILIES as readonly string[]).includes(name);
}

function checkFamily(family: string): asserts family is ModelFamily {
  if (!isModelFamily(family)) {
    throw new RangeError(
      `unknown model family "${family}" (known: ${MODEL_FAMILIES.join(", ")})`,
    );
  }
}

async function chatTemplate(family: ModelFamily): Promise<string | false> {
  const source = MODEL_FAMILY_TRAITS[family].chatTemplate;
  if (source === null) return false;
  if (source === "builtin:llama2") return LLAMA2_CHAT_TEMPLATE;
  return await Deno.readTextFile(
    `${paths().llamaCpp}/models/templates/${source}`,
  );
}

/**
 * Writes the synthetic model of a family to `path` (no caching; see
 * {@linkcode ensureFamilyModel}). Tensors are generated one at a time while
 * the file is written.
 *
 * @example
 * ```ts
 * import { writeFamilyModel } from "./family_model.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".gguf" });
 * const info = await writeFamilyModel(path, "mamba", { seed: 7 });
 * console.log(info.arch, info.byteLength, info.params);
 * await Deno.remove(path);
 * ```
 */
export async function writeFamilyModel(
  path: string,
  family: ModelFamily,
  options: Pick<FamilyModelOptions, "seed"> = {},
): Promise<FamilyModelInfo> {
  checkFamily(family);
  const seed = (options.seed ?? 1) >>> 0;
  const traits = MODEL_FAMILY_TRAITS[family];
  const b = new ModelBuilder(traits.arch, {
    seed,
    std: "fan-in",
    matrixType: GgmlType.Q8_0,
  });
  b.str("general.type", "model");
  b.str("general.name", `synthetic-${family}`);
  b.str(
    "general.description",
    `Synthetic ${family} model: seeded random weights (seed ${seed}), ` +
      `tokenizer from ${traits.vocab}; family generator ` +
      `v${FAMILY_GENERATOR_VERSION}`,
  );
  b.u32("general.file_type", 7); // LLAMA_FTYPE_MOSTLY_Q8_0
  b.u32("general.quantization_version", 2);
  const vocab = await readVocab(`${paths().llamaCpp}/models/${traits.vocab}`);
  const nVocab = b.tokenizer(vocab, await chatTemplate(family));
  FAMILY_BUILDS[family](b, nVocab);
  await b.writer.writeFile(path);
  return {
    path,
    family,
    arch: traits.arch,
    generated: true,
    byteLength: (await Deno.stat(path)).size,
    nVocab,
    params: b.params,
    seed,
  };
}

/**
 * Returns the synthetic model of a family, generating it on first use into
 * the model cache (`paths().models`, never committed). The file name carries
 * the family, seed and {@linkcode FAMILY_GENERATOR_VERSION}; files are
 * written under a temporary name and renamed, so a reader never sees a
 * partial file.
 *
 * @example
 * ```ts
 * import { ensureFamilyModel } from "./family_model.ts";
 *
 * const model = await ensureFamilyModel("gemma3");
 * console.log(model.path); // .../.cache/models/synthetic-gemma3-q8_0-s1-g1.gguf
 * ```
 */
export async function ensureFamilyModel(
  family: ModelFamily,
  options: FamilyModelOptions = {},
): Promise<FamilyModelInfo> {
  checkFamily(family);
  const seed = (options.seed ?? 1) >>> 0;
  const dir = options.dir ?? paths().models;
  const path = options.out ??
    `${dir}/synthetic-${family}-q8_0-s${seed}-g${FAMILY_GENERATOR_VERSION}.gguf`;
  if (!options.force && await exists(path)) {
    const file = await readGguf(path);
    const tokens = file.metadata.get("tokenizer.ggml.tokens");
    return {
      path,
      family,
      arch: MODEL_FAMILY_TRAITS[family].arch,
      generated: false,
      byteLength: file.byteLength,
      nVocab: tokens?.type === "array" ? tokens.value.length : 0,
      params: file.tensors.reduce((n, t) => n + t.nElements, 0),
      seed,
    };
  }
  return await writeAtomically(path, async (tmp) => {
    const info = await writeFamilyModel(tmp, family, { seed });
    return { keep: tmp, result: { ...info, path } };
  });
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      seed: { type: "string" },
      force: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const names = positionals.includes("all") ? [...MODEL_FAMILIES] : positionals;
  const bad = names.filter((n) => !isModelFamily(n));
  if (values.help || names.length === 0 || bad.length > 0) {
    console.error(
      `usage: deno run -A gguf/family_model.ts <family>...|all [--seed N] [--force]\n` +
        `families: ${MODEL_FAMILIES.join(", ")}` +
        (bad.length ? `\nunknown: ${bad.join(", ")}` : ""),
    );
    Deno.exit(values.help ? 0 : 2);
  }
  for (const family of names as ModelFamily[]) {
    const t0 = performance.now();
    const info = await ensureFamilyModel(family, {
      force: values.force,
      seed: values.seed === undefined ? undefined : Number(values.seed),
    });
    console.error(
      `${info.generated ? "generated" : "cached"}: ${family} (${info.arch}), ` +
        `${
          (info.params / 1e6).toFixed(2)
        }M params, ${info.byteLength} bytes, ` +
        `${Math.round(performance.now() - t0)} ms`,
    );
    console.log(info.path);
  }
}
