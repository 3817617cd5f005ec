/**
 * The JSON Schema (draft 2020-12) of the configuration, generated with zod's
 * `z.toJSONSchema` from the same key table that validates configs, for
 * editors (`"$schema"` in a config file) and for the docs. Every spelling is
 * a property (`temperature`, `temp`, `ctx-size`, ...) referring to one
 * definition per key (all spellings are in `$defs.keys`); the original
 * project's sections (`sampling`, `model`, `memory`, ...) are objects of the
 * same properties plus section-relative names (`dynatemp.range`). Soft ranges (clamped by
 * the host) are marked `"x-clamped": true`.
 *
 * @example
 * ```ts
 * import { configJsonSchema } from "./schema.ts";
 * const schema = configJsonSchema();
 * console.log(schema.$defs.temp.default, schema.$defs.keys.properties.temperature.$ref); // 0.8 #/$defs/temp
 * await Deno.writeTextFile(await Deno.makeTempFile({ suffix: ".json" }), JSON.stringify(schema, null, 2));
 * ```
 * @module
 */

import { z } from "zod";
import { SECTIONS, SPECS } from "./_keys.ts";

/**
 * A JSON Schema document (plain JSON).
 *
 * @example
 * ```ts
 * import type { JsonSchema } from "./schema.ts";
 * const s: JsonSchema = { type: "object" };
 * console.log(s.type);
 * ```
 */
// deno-lint-ignore no-explicit-any
export type JsonSchema = { [key: string]: any };

/**
 * Options of {@linkcode configJsonSchema}.
 *
 * @example
 * ```ts
 * import { configJsonSchema, type SchemaOptions } from "./schema.ts";
 * const o: SchemaOptions = { strict: true };
 * console.log(configJsonSchema(o).unevaluatedProperties); // false
 * ```
 */
export interface SchemaOptions {
  /** Reject unknown keys (as `parseConfig(..., { strict: true })`); default false (they are warnings). */
  strict?: boolean;
}

/**
 * The configuration's JSON Schema.
 *
 * @example
 * ```ts
 * import { configJsonSchema } from "./schema.ts";
 * const s = configJsonSchema();
 * console.log(JSON.stringify(s.$defs.n_predict.anyOf[0])); // {"type":"integer","minimum":-1,"maximum":2147483647}
 * console.log("ctx-size" in s.$defs.keys.properties); // true
 * ```
 */
export function configJsonSchema(options: SchemaOptions = {}): JsonSchema {
  const shape: Record<string, z.ZodType> = {};
  for (const k of SPECS) {
    const meta: Record<string, unknown> = {
      description: k.doc,
      "x-scope": k.scope,
    };
    if (k.default !== undefined) meta.default = k.default;
    if (k.server) meta["x-llama-server"] = true;
    if (k.noEffect) meta["x-no-effect"] = k.noEffect;
    shape[k.name] = k.schema.nullable().optional().meta(meta);
  }
  const generated = z.toJSONSchema(z.object(shape), {
    io: "input",
    unrepresentable: "any",
  }) as JsonSchema;
  const defs: JsonSchema = {};
  for (const [name, s] of Object.entries(generated.properties as JsonSchema)) {
    defs[name] = s;
  }

  const refs: JsonSchema = {};
  const add = (spelling: string, name: string) => {
    if (spelling in refs) return;
    refs[spelling] = spelling === name ? { $ref: `#/$defs/${name}` } : {
      $ref: `#/$defs/${name}`,
      description: `alias of ${name}`,
    };
  };
  for (const k of SPECS) {
    for (const s of [k.name, ...(k.aliases ?? [])]) {
      if (s.includes(".")) continue;
      add(s, k.name);
      add(s.replaceAll("_", "-"), k.name);
    }
  }
  const closed = options.strict ? { unevaluatedProperties: false } : {};
  for (const [section, canonical] of Object.entries(SECTIONS)) {
    const defName = `section_${canonical}`;
    if (!defs[defName]) {
      const props: JsonSchema = {};
      for (const k of SPECS) {
        for (const a of k.aliases ?? []) {
          if (a.startsWith(`${canonical}.`)) {
            props[a.slice(canonical.length + 1)] = {
              $ref: `#/$defs/${k.name}`,
            };
          }
        }
        if (k.name.startsWith(`${canonical}_`)) {
          props[k.name.slice(canonical.length + 1)] = {
            $ref: `#/$defs/${k.name}`,
          };
        }
      }
      defs[defName] = {
        type: "object",
        description:
          `the original project's '${canonical}' section: any key, plus section-relative names`,
        $ref: "#/$defs/keys",
        properties: props,
        ...closed,
      };
    }
    const ref = { $ref: `#/$defs/${defName}` };
    refs[section] = section in refs ? { anyOf: [refs[section], ref] } : ref;
  }
  defs.keys = { type: "object", properties: refs };
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "wasi_nn_backend for Deno: configuration",
    description:
      "Load, session and per-call configuration. Keys may be written in WasmEdge's kebab-case, snake_case, or as llama.cpp server names; null means 'not set here'.",
    type: "object",
    $ref: "#/$defs/keys",
    ...closed,
    $defs: defs,
  };
}
