/**
 * Grammars and JSON schemas are bounded before llama.cpp sees them: size,
 * nesting, rules, live stacks, expansion depth and ambiguity for GBNF;
 * size, nesting, properties and list entries for JSON schemas (and the
 * grammar a schema converts to). Over a limit: InvalidArgument naming the
 * field, the measured value and the limit. The host-level probes run in a
 * child process: without the limits the first one overflows the stack in
 * llama.cpp's parser and ends the process, the others cost seconds to
 * minutes per token.
 */
import assert from "node:assert/strict";
import { jsonSchemaToGrammar, Model } from "../../bindings/mod.ts";
import {
  grammarTriggers,
  TRIGGER_LIMITS,
} from "../../wasi_nn/config/_sampler_options.ts";
import {
  checkGrammar,
  checkJsonSchema,
  GRAMMAR_LIMITS,
} from "../../wasi_nn/config/_grammar_limits.ts";
import { ConfigError } from "../../wasi_nn/config/parse.ts";
import { run, tinyModel } from "../_helpers.ts";
import { runProbe } from "./_probe.ts";

const PROBE = new URL("./_grammar_probe.ts", import.meta.url).pathname;
const CLI = new URL("../../cli.ts", import.meta.url).pathname;

function refused(
  f: () => unknown,
  field: string,
  what: RegExp,
): void {
  assert.throws(f, (e: Error) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.errno, 1);
    assert.equal(e.field, field);
    assert.match(e.message, what);
    return true;
  });
}

Deno.test({
  name:
    "hostile grammars and schemas from a guest are refused on both paths, and the host lives on",
  sanitizeResources: false,
  fn: async () => {
    const { by, stdout } = await runProbe(PROBE, 180_000);
    const expect: [string, RegExp][] = [
      [
        "deep_grammar",
        /^Field 'grammar': .* nests 65 levels of parentheses deep, over the limit of 64/,
      ],
      [
        "wide_grammar",
        /^Field 'grammar': .* is 428896 bytes long, over the limit of 131072/,
      ],
      [
        "many_alternatives",
        /^Field 'grammar': .* keeps 10000 grammar stacks live at once .* over the limit of 256/,
      ],
      [
        "ambiguous_grammar",
        /^Field 'grammar': .* has 4096 ways to read two characters .* over the limit of 256/,
      ],
      [
        "wide_schema",
        /^Field 'json_schema': .* bytes of JSON, over the limit of 65536/,
      ],
      ["deep_schema", /^Field 'json_schema': .* nests more than 64 levels/],
      [
        "deep_schema_text",
        /^Field 'json_schema': .* nests more than 64 levels/,
      ],
      [
        "response_format",
        /^Field 'response_format': .* 'enum' has 5000 entries, over the limit of 256/,
      ],
    ];
    for (const [name, re] of expect) {
      for (const n of [name, `${name}:set_input`]) {
        const l = by.get(n);
        assert.ok(l, `no answer for ${n}: ${stdout.slice(-1500)}`);
        assert.equal(l.errno, 1, `${n}: ${l.message}`);
        assert.match(l.message, re, n);
        assert.ok(l.ms < 10_000, `${n} took ${l.ms} ms`);
      }
    }
    assert.match(by.get("after")?.text ?? "", /^(yes|no)$/);
  },
});

Deno.test("cli generate refuses an over-limit grammar with exit code 2", async () => {
  const r = await run(Deno.execPath(), [
    "run",
    "-A",
    CLI,
    "generate",
    "--model",
    await tinyModel(),
    "--prompt",
    "Hi",
    "--n-predict",
    "2",
    "--config",
    JSON.stringify({
      grammar: "root ::= " + "(".repeat(20000) + '"a"' + ")".repeat(20000),
    }),
  ], { timeoutMs: 120_000 });
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /Field 'grammar': .* nests 65 levels of parentheses deep, over the limit of 64/,
  );
});

let seed = 1;
const rnd = () =>
  (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const word = () =>
  Array.from(
    { length: 6 },
    () => "abcdefghijklmnopqrstuvwxyz"[Math.floor(rnd() * 26)],
  ).join("");

Deno.test("each measure refuses the shape that was measured to break llama.cpp", () => {
  refused(
    () => checkGrammar("root ::= " + "(".repeat(65) + '"a"' + ")".repeat(65)),
    "grammar",
    /nests 65 levels/,
  );
  // a chain of 3,000 rules expands 3,001 deep (16,250 overflows a worker thread)
  refused(
    () =>
      checkGrammar(
        [
          "root ::= r0",
          ...Array.from(
            { length: 3000 },
            (_, i) => `r${i} ::= ${i + 1 < 3000 ? `r${i + 1}` : '"a"'}`,
          ),
        ].join("\n"),
      ),
    "grammar",
    /needs 3001 levels of recursion/,
  );
  // 5,000 empty rules in a row
  refused(
    () => checkGrammar(`root ::= ${"e ".repeat(5000)} "z"\ne ::= ""`),
    "grammar",
    /needs 5001 levels of recursion/,
  );
  // 8 nullable rules that each double: 3.5 s a token
  refused(
    () =>
      checkGrammar(
        [
          'root ::= a0 "z"',
          ...Array.from(
            { length: 8 },
            (_, i) => `a${i} ::= a${i + 1} a${i + 1}`,
          ),
          'a8 ::= "x"?',
        ].join("\n"),
      ),
    "grammar",
    /keeps 257 grammar stacks/,
  );
  // 100 optional items in a row: 1.7 s a token
  refused(
    () => checkGrammar(`root ::= ${"x ".repeat(100)} "z"\nx ::= "a"?`),
    "grammar",
    /has 9900 ways to read two characters/,
  );
  // 1,000 alternatives: 105-150 ms a token
  refused(
    () =>
      checkGrammar(
        `root ::= item+\nitem ::= ${
          Array.from({ length: 1000 }, (_, i) => `"${word()}${i}"`).join(" | ")
        }`,
      ),
    "grammar",
    /keeps 1000 grammar stacks/,
  );
  // repetitions generate rules and copies
  refused(
    () => checkGrammar('root ::= ("a"? ){0,1999} "b"'),
    "grammar",
    /keeps 2000 grammar stacks/,
  );
  refused(
    () => checkGrammar('root ::= "' + "x".repeat(100) + '"{1999}'),
    "grammar",
    /expands to \d+ symbols/,
  );
  refused(
    () => checkGrammar("x".repeat(GRAMMAR_LIMITS.maxBytes + 1)),
    "grammar",
    /bytes long, over the limit of 131072/,
  );
});

Deno.test("realistic grammars and schemas pass, far from the limits", () => {
  // 256 alternatives: 25 ms a token; 16 identical ones in a loop: 30 ms
  checkGrammar(
    `root ::= item+\nitem ::= ${
      Array.from({ length: 256 }, (_, i) => `"${word()}${i}"`).join(" | ")
    }`,
  );
  checkGrammar(`root ::= (${Array(16).fill('"a"').join(" | ")})*`);
  checkGrammar('root ::= "yes" | "no"');
  checkGrammar('root ::= [a-z]+ ("," [a-z]+)* # a comment\n');
  const schemas: unknown[] = [
    {},
    {
      type: "object",
      properties: {
        name: { type: "string", maxLength: 100 },
        age: { type: "integer", minimum: 0 },
        tags: { type: "array", items: { type: "string" }, maxItems: 10 },
        kind: { enum: ["a", "b", "c"] },
        address: {
          type: "object",
          properties: {
            street: { type: "string" },
            zip: { type: "string", pattern: "^[0-9]{5}$" },
          },
        },
      },
      required: ["name", "age"],
    },
    { enum: Array.from({ length: 200 }, (_, i) => `value${i}`) },
    {
      type: "array",
      items: { enum: Array.from({ length: 100 }, (_, i) => `value${i}`) },
    },
    {
      type: "object",
      properties: Object.fromEntries(
        Array.from({ length: 128 }, (_, i) => [`k${i}`, { type: "string" }]),
      ),
    },
    { type: "string", minLength: 1, maxLength: 1000 },
    JSON.parse(
      '{"type":"array","items":'.repeat(40) + '{"type":"string"}' +
        "}".repeat(40),
    ),
  ];
  for (const s of schemas) {
    checkJsonSchema(s);
    const m = checkGrammar(jsonSchemaToGrammar(s), "json_schema", true);
    assert.ok(
      m.stacks <= GRAMMAR_LIMITS.maxStacks && m.recursion < 300,
      JSON.stringify(m),
    );
  }
});

Deno.test("JSON schemas: properties, list entries, depth and size are bounded before conversion", () => {
  const props = (n: number) => ({
    type: "object",
    properties: Object.fromEntries(
      Array.from({ length: n }, (_, i) => [`k${i}`, { type: "string" }]),
    ),
  });
  // 1,000 properties took 3 s to convert
  refused(
    () => checkJsonSchema(props(1000)),
    "json_schema",
    /an object has 1000 properties, over the limit of 128/,
  );
  refused(
    () =>
      checkJsonSchema({
        anyOf: Array.from({ length: 300 }, (_, i) => ({ const: i })),
      }),
    "json_schema",
    /'anyOf' has 300 entries/,
  );
  refused(
    () =>
      checkJsonSchema({
        oneOf: Array.from({ length: 300 }, () => ({ type: "string" })),
      }),
    "json_schema",
    /'oneOf' has 300 entries/,
  );
  refused(
    () => checkJsonSchema("[".repeat(70) + "]".repeat(70)),
    "json_schema",
    /nests more than 64 levels/,
  );
  refused(
    () => checkJsonSchema({ description: "x".repeat(70000) }),
    "json_schema",
    /bytes of JSON, over the limit of 65536/,
  );
  // what the schema converts to is checked as a grammar, named as the schema
  refused(
    () =>
      checkGrammar(
        `root ::= ${
          Array.from({ length: 300 }, (_, i) => `"v${i}"`).join(" | ")
        }`,
        "json_schema",
        true,
      ),
    "json_schema",
    /converts to a grammar that keeps 300 grammar stacks/,
  );
});

Deno.test("lazy-grammar trigger patterns are bounded before std::regex sees them", async () => {
  using model = await Model.load(await tinyModel());
  const pattern = (value: string) => [{ type: "pattern", value }];
  // What real tool-call templates use passes.
  assert.equal(
    grammarTriggers(
      model,
      pattern('[\\s\\S]*?(<tool_call>|\\{"name")[\\s\\S]*'),
    )
      .length,
    1,
  );
  refused(
    () => grammarTriggers(model, pattern("(a+)+$")),
    "grammar_triggers",
    /nested quantifiers/,
  );
  refused(
    () =>
      grammarTriggers(
        model,
        pattern("x".repeat(TRIGGER_LIMITS.patternLength + 1)),
      ),
    "grammar_triggers",
    /at most 1024 characters/,
  );
  refused(
    () => grammarTriggers(model, pattern("(".repeat(9) + "a" + ")".repeat(9))),
    "grammar_triggers",
    /nest at most 8/,
  );
  refused(
    () => grammarTriggers(model, Array(TRIGGER_LIMITS.count + 1).fill("</s>")),
    "grammar_triggers",
    /at most 64 triggers/,
  );
});
