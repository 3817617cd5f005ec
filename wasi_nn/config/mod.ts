/**
 * The configuration that hosts and guests send (the `./config` entry): one
 * key table for every key style (WasmEdge's kebab-case, the original
 * project's snake_case and sections, llama.cpp server names), parsed and
 * range-checked with the server's rules, merged in layers, checked across
 * keys against the model and the machine, explained, and described as a
 * JSON Schema.
 *
 * - {@linkcode parseConfig}: JSON text or an object to canonical values and
 *   warnings; throws {@linkcode ConfigError} naming the field.
 * - {@linkcode ConfigValues}: those values, each of its key's type
 *   ({@linkcode ConfigValueTypes}, checked against the key table).
 * - {@linkcode KEYS}: every key, its spellings, type, range, default and
 *   scope (for documentation and tooling).
 * - {@linkcode mergeConfig}, {@linkcode resolveConfig},
 *   {@linkcode standardLayers} and {@linkcode explainConfig}: the layer stack
 *   ({@linkcode LAYER_ORDER}) and where each value came from.
 * - {@linkcode checkConfig}: the cross-parameter checks.
 * - {@linkcode configJsonSchema}: the JSON Schema for editors.
 *
 * @example
 * ```ts
 * import {
 *   checkConfig,
 *   configJsonSchema,
 *   explainConfig,
 *   formatExplain,
 *   parseConfig,
 *   resolveConfig,
 * } from "./mod.ts";
 *
 * const load = parseConfig('{"ctx-size":4096,"sampling":{"temperature":0.2}}');
 * const session = parseConfig({ temp: 0.7, n_predict: 64 });
 * const layers = [
 *   { name: "load", values: load.values },
 *   { name: "session", values: session.values },
 * ];
 * const { values, warnings } = checkConfig(resolveConfig(layers), { nCtxTrain: 2048 });
 * console.log(values.temp, values.n_predict, warnings.length > 0); // 0.7 64 true
 * console.log(formatExplain(explainConfig(layers)));
 * console.log("ctx-size" in configJsonSchema().$defs.keys.properties); // true
 * ```
 * @module
 */

export {
  ConfigError,
  type ConfigRule,
  type ConfigValue,
  type ConfigValues,
  type ConfigValueTypes,
  type KeyDef,
  type KeyName,
  KEYS,
  type KeyScope,
  type KeyType,
  type KvCacheType,
  mergeConfig,
  parseConfig,
  type ParsedConfig,
  type ParseOptions,
} from "./parse.ts";
export {
  type ConfigLayer,
  defaultConfig,
  explainConfig,
  type ExplainedValue,
  formatExplain,
  LAYER_ORDER,
  type LayerName,
  modelConfig,
  resolveConfig,
  standardLayers,
} from "./layers.ts";
export { checkConfig, type CheckFacts } from "./check.ts";
export {
  configJsonSchema,
  type JsonSchema,
  type SchemaOptions,
} from "./schema.ts";
