/**
 * GGUF, the model file format of llama.cpp: read and write it, and generate
 * test models of every model family with seeded random weights and a real
 * tokenizer.
 *
 * - {@linkcode readGguf} / {@linkcode parseGguf}: header, metadata and tensor
 *   infos (only the header is read from a file); {@linkcode readTensorData}.
 * - {@linkcode validateGgufFile} / {@linkcode validateGgufBytes}: check a
 *   header against what makes llama.cpp abort, before llama.cpp sees it.
 * - {@linkcode GgufWriter}: metadata of every type, tensors streamed to a file.
 * - {@linkcode ensureModel}: the cached synthetic `tiny` or `bench` model.
 * - {@linkcode ensureFamilyModel}: a cached synthetic model of each family
 *   llama.cpp treats differently ({@linkcode MODEL_FAMILIES}: SWA, recurrent,
 *   hybrid, MoE, encoder, ...), with {@linkcode MODEL_FAMILY_TRAITS}.
 *
 * @example
 * ```ts
 * import { GgmlType, GgufWriter, parseGguf } from "./mod.ts";
 *
 * const w = new GgufWriter();
 * w.setMetadata("general.architecture", { type: "string", value: "llama" });
 * w.addTensor({ name: "t", dims: [8], type: GgmlType.F16, data: new Float32Array(8) });
 * const file = parseGguf(await w.toBytes());
 * console.log(file.metadata.get("general.architecture")?.value, file.tensors[0].byteLength);
 * ```
 * @module
 */

export * from "./types.ts";
export * from "./error.ts";
export * from "./ggml_type.ts";
export * from "./reader.ts";
export * from "./validate.ts";
export * from "./writer.ts";
export * from "./synthetic_model.ts";
export * from "./family_model.ts";
export * from "./mtmd_model.ts";
