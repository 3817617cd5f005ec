/**
 * The parser for abi_probe's output.
 * @module
 */
import assert from "node:assert/strict";
import {
  findLine,
  findLines,
  hexBytes,
  NOT_WRITTEN,
  parseProbeLine,
  parseProbeOutput,
} from "./probe_output.ts";

const SAMPLE = [
  "op=load_by_name_with_config errno=0 graph=0",
  "host log line that is not from the probe",
  'op=get_output case=before ctx=0 index=1 cap=24576 errno=0 written=40 text="{\\"input_tokens\\": 3, \\"a b\\": \\"x=y\\"}"',
  'op=get_output_single ctx=0 index=0 cap=24576 errno=0 written=3 hex=313233 text="1\\ufffd3"',
  "op=get_output case=text_cap ctx=0 index=0 cap=4 errno=7 written=52 changed=0 canary=intact",
  'op=get_output case=text ctx=0 index=0 cap=24576 errno=0 written=0 hex= text=""',
  "op=load_by_name errno=8 graph=4294967295",
  "op=end",
  "",
].join("\n");

Deno.test("parseProbeOutput reads every op= line", () => {
  const lines = parseProbeOutput(SAMPLE);
  assert.deepStrictEqual(lines.length, 7);
  assert.deepStrictEqual(lines[0], {
    op: "load_by_name_with_config",
    errno: 0,
    graph: 0,
  });
  assert.deepStrictEqual(
    JSON.parse(findLine(lines, "get_output", "before").text as string),
    { input_tokens: 3, "a b": "x=y" },
  );
  const piece = findLine(lines, "get_output_single");
  assert.deepStrictEqual(piece.hex, "313233"); // stays a string
  assert.deepStrictEqual(
    hexBytes(piece.hex),
    new Uint8Array([0x31, 0x32, 0x33]),
  );
  assert.deepStrictEqual(piece.text, "1\ufffd3");
  assert.deepStrictEqual(
    findLine(lines, "get_output", "text_cap").canary,
    "intact",
  );
  assert.deepStrictEqual(findLine(lines, "get_output", "text").hex, "");
  assert.deepStrictEqual(findLine(lines, "load_by_name").graph, NOT_WRITTEN);
  assert.deepStrictEqual(findLines(lines, "get_output").length, 3);
  assert.deepStrictEqual(lines.at(-1), { op: "end" });
});

Deno.test("parseProbeLine rejects malformed lines", () => {
  assert.throws(() => parseProbeLine('op=x text="unterminated'), SyntaxError);
  assert.throws(() => parseProbeLine("errno=0"), SyntaxError);
  assert.throws(() => parseProbeLine("op=x junk"), SyntaxError);
  assert.throws(() => findLine(parseProbeOutput(SAMPLE), "get_output"));
});
