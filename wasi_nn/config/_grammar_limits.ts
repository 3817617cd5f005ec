/**
 * Bounds on GBNF grammars and JSON schemas, checked before llama.cpp sees
 * them. llama.cpp's grammar parser and its JSON parser recurse without a
 * limit (a deep enough input overflows the stack and ends the process), and
 * the cost of a sampled token grows with the number of grammar stacks that
 * are live at once. So a grammar is parsed the way llama.cpp parses it
 * (`_gbnf_parser.ts`, including the rules that repetitions generate), and
 * measured: size, nesting, rules, symbols, and (`_grammar_stacks.ts`) the
 * most stacks live at one position and the deepest recursion llama.cpp's
 * stack expansion takes.
 *
 * Measured on the project's machine (2 cores, the 32,000-token test model):
 * - parentheses nested 4,640 deep overflow the parser on a worker thread (a
 *   `nonblocking` FFI call) and 18,660 deep on the main thread; a chain of
 *   rules 16,250 deep overflows the stack expansion on a worker thread and
 *   65,000 on the main thread;
 * - a sampled token costs about 0.1-0.15 ms per live stack (300 alternatives
 *   57 ms, 1,000 alternatives 105-150 ms, 4,000 590 ms); nullable rules
 *   multiply stacks: 8 doubling rules (131 bytes) cost 3.5 s a token;
 * - JSON nested 17,500 deep overflows llama.cpp's JSON parser; converting a
 *   schema costs 34 ms for an object of 100 properties, 340 ms for 400, 3 s
 *   for 1,000 (it grows faster than the square).
 *
 * @example
 * ```ts
 * import { checkGrammar } from "./_grammar_limits.ts";
 * console.log(checkGrammar('root ::= "yes" | "no"').stacks); // 2
 * try {
 *   checkGrammar("root ::= " + "(".repeat(100) + '"a"' + ")".repeat(100));
 * } catch (e) {
 *   console.log((e as Error).message); // Field 'grammar': "root ::= ((((((((((((((((((((((((((((((((…" nests 65 levels of parentheses deep, over the limit of 64 (...)
 * }
 * ```
 * @module
 */

import { ConfigError } from "./parse.ts";
import { jsonDepth } from "../engine/_json_depth.ts";
import { OverLimit, Parser, type Rule } from "./_gbnf_parser.ts";
import { CAP, measureStacks } from "./_grammar_stacks.ts";

/**
 * The names of the limits of {@linkcode GRAMMAR_LIMITS}.
 *
 * @example
 * ```ts
 * import type { GrammarLimit } from "./_grammar_limits.ts";
 * const k: GrammarLimit = "maxStacks";
 * console.log(k);
 * ```
 */
export type GrammarLimit =
  | "maxBytes"
  | "maxDepth"
  | "maxRules"
  | "maxSymbols"
  | "maxStacks"
  | "maxRecursion"
  | "maxAmbiguity"
  | "maxSchemaBytes"
  | "maxSchemaDepth"
  | "maxSchemaProperties"
  | "maxSchemaAlternatives";

/**
 * The limits, each far below where llama.cpp breaks (see the module doc).
 *
 * @example
 * ```ts
 * import { GRAMMAR_LIMITS } from "./_grammar_limits.ts";
 * console.log(GRAMMAR_LIMITS.maxStacks); // 256
 * ```
 */
export const GRAMMAR_LIMITS: Readonly<Record<GrammarLimit, number>> = Object
  .freeze({
    /** Bytes of GBNF text. */
    maxBytes: 128 * 1024,
    /** Parentheses nested inside each other (the parser crashes at 4,640 on a worker thread). */
    maxDepth: 64,
    /** Rules, counting those llama.cpp generates for groups and repetitions. */
    maxRules: 10_000,
    /** Symbols (characters, classes, references) after repetitions are expanded. */
    maxSymbols: 100_000,
    /** Grammar stacks live at one position: keeps a sampled token near 50 ms or less. */
    maxStacks: 256,
    /** Depth of llama.cpp's stack expansion (crashes at 16,250 on a worker thread). */
    maxRecursion: 2_000,
    /**
     * Ways to read two characters at one place: an enum of n strings has n;
     * 16 identical alternatives in a loop 256 (30 ms a token), 32 of them
     * 1,024 (190 ms), 100 optional items in a row 9,900 (1.7 s).
     */
    maxAmbiguity: 256,
    /** Bytes of a JSON schema's text. */
    maxSchemaBytes: 64 * 1024,
    /** Arrays and objects nested in a JSON schema. */
    maxSchemaDepth: 64,
    /** Properties of one object schema (conversion cost grows faster than the square). */
    maxSchemaProperties: 128,
    /** Entries of one enum / anyOf / oneOf / allOf / prefixItems (each becomes alternatives). */
    maxSchemaAlternatives: 256,
  });

/**
 * What {@linkcode checkGrammar} measured.
 *
 * @example
 * ```ts
 * import { checkGrammar, type GrammarMeasure } from "./_grammar_limits.ts";
 * const m: GrammarMeasure = checkGrammar('root ::= [a-z]+');
 * console.log(m.rules, m.stacks); // 2 1
 * ```
 */
export interface GrammarMeasure {
  /** Bytes of text. */
  bytes: number;
  /** Deepest nesting of parentheses. */
  depth: number;
  /** Rules, generated ones included. */
  rules: number;
  /** Symbols after expansion. */
  symbols: number;
  /** The most stacks live at one position (an upper estimate). */
  stacks: number;
  /** The deepest stack expansion (an upper estimate). */
  recursion: number;
  /** Ways to read two characters at the worst place (see the limit). */
  ambiguity: number;
}

const NAMES: Record<string, [string, string]> = {
  bytes: ["is", "bytes long"],
  depth: ["nests", "levels of parentheses deep"],
  rules: ["expands to", "rules (repetitions and groups generate rules)"],
  symbols: ["expands to", "symbols (repetitions copy what they repeat)"],
  stacks: [
    "keeps",
    "grammar stacks live at once (each costs sampling time on every token)",
  ],
  recursion: [
    "needs",
    "levels of recursion to expand (nullable rules in a row add up)",
  ],
  ambiguity: [
    "has",
    "ways to read two characters at one place (sampling follows each way through every token)",
  ],
};

const HINTS: Record<string, string> = {
  bytes: "send a smaller grammar",
  depth: "flatten the grammar into named rules",
  rules: "use smaller repetition counts",
  symbols: "use smaller repetition counts or shorter repeated items",
  stacks:
    "use fewer alternatives that can start at the same place, and fewer optional items in a row",
  recursion: "use fewer optional items in a row and shallower rule chains",
  ambiguity:
    "make alternatives differ early, and avoid optional items that can match the same text",
};

function overError(
  field: string,
  value: unknown,
  o: OverLimit,
  converted: boolean,
): ConfigError {
  const [verb, noun] = NAMES[o.what];
  return new ConfigError(
    field,
    value,
    `${preview(value)} ${
      converted ? "converts to a grammar that " : ""
    }${verb} ${
      o.value >= CAP ? "more than " + CAP : o.value
    } ${noun}, over the limit of ${o.limit}`,
    HINTS[o.what],
    "range",
  );
}

/**
 * Measures a GBNF grammar and throws ConfigError (InvalidArgument, field
 * `field`) when it is over a limit of {@linkcode GRAMMAR_LIMITS}; `converted`
 * says the grammar came from a JSON schema (the message says so). A grammar
 * that does not parse is left to llama.cpp, whose message is better.
 *
 * @example
 * ```ts
 * import { checkGrammar } from "./_grammar_limits.ts";
 * try {
 *   checkGrammar("root ::= " + Array.from({ length: 1000 }, (_, i) => `"w${i}"`).join(" | "));
 * } catch (e) {
 *   console.log((e as Error).message); // Field 'grammar': "root ::= \"w0\" | \"w1\" | \"w2\" | \"w3\" | \"…" keeps 1000 grammar stacks live at once (...), over the limit of 256 (...)
 * }
 * ```
 */
export function checkGrammar(
  grammar: string,
  field = "grammar",
  converted = false,
): GrammarMeasure {
  // the same grammar comes with every compute of a session: measure it once
  const known = measured.get(grammar);
  if (known instanceof OverLimit) {
    throw overError(field, grammar, known, converted);
  }
  if (known) return known;
  try {
    const m = measureGrammar(grammar);
    remember(grammar, m);
    return m;
  } catch (e) {
    if (e instanceof OverLimit) {
      remember(grammar, e);
      throw overError(field, grammar, e, converted);
    }
    throw e;
  }
}

const measured = new Map<string, GrammarMeasure | OverLimit>();
function remember(grammar: string, m: GrammarMeasure | OverLimit) {
  if (measured.size >= 64) measured.delete(measured.keys().next().value!);
  measured.set(grammar, m);
}

/** The measures of a grammar; throws OverLimit at the first limit it passes. */
function measureGrammar(grammar: string): GrammarMeasure {
  const bytes = new TextEncoder().encode(grammar).length;
  const none = { depth: 0, rules: 0, symbols: 0, stacks: 0, recursion: 0 };
  if (bytes > GRAMMAR_LIMITS.maxBytes) {
    throw new OverLimit("bytes", bytes, GRAMMAR_LIMITS.maxBytes);
  }
  const p = new Parser(grammar, GRAMMAR_LIMITS);
  let rules: Rule[];
  try {
    rules = p.parse();
  } catch (e) {
    if (e instanceof SyntaxError) return { bytes, ...none, ambiguity: 0 };
    throw e;
  }
  const root = p.names.get("root");
  if (root === undefined) return { bytes, ...none, ambiguity: 0 };
  const { stacks, recursion, ambiguity } = measureStacks(
    rules,
    root,
    GRAMMAR_LIMITS,
  );
  if (stacks > GRAMMAR_LIMITS.maxStacks) {
    throw new OverLimit("stacks", stacks, GRAMMAR_LIMITS.maxStacks);
  }
  if (recursion > GRAMMAR_LIMITS.maxRecursion) {
    throw new OverLimit("recursion", recursion, GRAMMAR_LIMITS.maxRecursion);
  }
  if (ambiguity > GRAMMAR_LIMITS.maxAmbiguity) {
    throw new OverLimit("ambiguity", ambiguity, GRAMMAR_LIMITS.maxAmbiguity);
  }
  return {
    bytes,
    depth: maxDepth(grammar),
    rules: rules.length,
    symbols: p.symbols,
    stacks,
    recursion,
    ambiguity,
  };
}

/** Deepest parenthesis nesting outside literals, classes and comments (for the report). */
function maxDepth(g: string): number {
  let d = 0, max = 0;
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === '"' || c === "[") {
      const close = c === '"' ? '"' : "]";
      for (i++; i < g.length && g[i] !== close; i++) if (g[i] === "\\") i++;
    } else if (c === "#") {
      while (i < g.length && g[i] !== "\n") i++;
    } else if (c === "(") max = Math.max(max, ++d);
    else if (c === ")") d--;
  }
  return max;
}

/** The start of a value for a message: at most 40 characters, quoted. */
function preview(value: unknown): string {
  const t = typeof value === "string" ? value : JSON.stringify(value) ?? "";
  return JSON.stringify(t.length > 40 ? t.slice(0, 40) + "…" : t);
}

/** The keywords whose arrays become alternatives (or sequences) in the grammar. */
const LIST_KEYS = ["enum", "anyOf", "oneOf", "allOf", "prefixItems"];

/**
 * Checks a JSON schema (an object, or JSON text) before llama.cpp converts it:
 * size, nesting, properties per object and entries per enum/anyOf/oneOf/
 * allOf/prefixItems. Throws ConfigError (field `field`) naming the measure.
 * The grammar it converts to is checked again with {@linkcode checkGrammar}.
 *
 * @example
 * ```ts
 * import { checkJsonSchema } from "./_grammar_limits.ts";
 * checkJsonSchema({ type: "object", properties: { a: { type: "string" } } }); // fine
 * try {
 *   checkJsonSchema({ enum: Array.from({ length: 1000 }, (_, i) => i) });
 * } catch (e) {
 *   console.log((e as Error).message); // Field 'json_schema': "{\"enum\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13…": 'enum' has 1000 entries, over the limit of 256 (...)
 * }
 * ```
 */
export function checkJsonSchema(schema: unknown, field = "json_schema"): void {
  const text = typeof schema === "string" ? schema : JSON.stringify(schema);
  const L = GRAMMAR_LIMITS;
  const bytes = new TextEncoder().encode(text ?? "").length;
  if (bytes > L.maxSchemaBytes) {
    throw new ConfigError(
      field,
      schema,
      `${
        preview(text)
      } is ${bytes} bytes of JSON, over the limit of ${L.maxSchemaBytes}`,
      "send a smaller schema",
      "range",
    );
  }
  let value = schema;
  if (typeof schema === "string") {
    try {
      value = JSON.parse(schema);
    } catch {
      return; // not JSON: the config check or llama.cpp says so
    }
  }
  const depth = jsonDepth(value, L.maxSchemaDepth);
  if (depth > L.maxSchemaDepth) {
    throw new ConfigError(
      field,
      schema,
      `${
        preview(text)
      } nests more than ${L.maxSchemaDepth} levels of arrays and objects, the limit`,
      "flatten the schema (use $defs and $ref for shared parts)",
      "range",
    );
  }
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== "object") continue;
    if (Array.isArray(v)) {
      stack.push(...v);
      continue;
    }
    const o = v as Record<string, unknown>;
    const props = o.properties;
    if (props !== null && typeof props === "object" && !Array.isArray(props)) {
      const n = Object.keys(props).length;
      if (n > L.maxSchemaProperties) {
        throw new ConfigError(
          field,
          schema,
          `${
            preview(text)
          }: an object has ${n} properties, over the limit of ${L.maxSchemaProperties}`,
          "split the object into nested objects",
          "range",
        );
      }
    }
    for (const k of LIST_KEYS) {
      const list = o[k];
      if (Array.isArray(list) && list.length > L.maxSchemaAlternatives) {
        throw new ConfigError(
          field,
          schema,
          `${
            preview(text)
          }: '${k}' has ${list.length} entries, over the limit of ${L.maxSchemaAlternatives}`,
          "use fewer entries, or a pattern or a plain type instead of a long list",
          "range",
        );
      }
    }
    stack.push(...Object.values(o));
  }
}
