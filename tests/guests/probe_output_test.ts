/**
 * The parser for abi_probe's output.
 * @module
 */
import { assertEquals, assertThrows } from "node:assert/strict";
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
  "op=get_output_single ctx=0 index=0 cap=24576 errno=0 written=3 hex=313233 text=\"1\\ufffd3\"",
  "op=get_output case=text_cap ctx=0 index=0 cap=4 errno=7 written=52 changed=0 canary=intact",
  "op=get_output case=text ctx=0 index=0 cap=24576 errno=0 written=0 hex= text=\"\"",
  "op=load_by_name errno=8 graph=4294967295",
  "op=end",
  "",
].join("\n");

Deno.test("parseProbeOutput reads every op= line", () => {
  const lines = parseProbeOutput(SAMPLE);
  assertEquals(lines.length, 7);
  assertEquals(lines[0], { op: "load_by_name_with_config", errno: 0, graph: 0 });
  assertEquals(
    JSON.parse(findLine(lines, "get_output", "before").text as string),
    { input_tokens: 3, "a b": "x=y" },
  );
  const piece = findLine(lines, "get_output_single");
  assertEquals(piece.hex, "313233"); // stays a string
  assertEquals(hexBytes(piece.hex), new Uint8Array([0x31, 0x32, 0x33]));
  assertEquals(piece.text, "1\ufffd3");
  assertEquals(findLine(lines, "get_output", "text_cap").canary, "intact");
  assertEquals(findLine(lines, "get_output", "text").hex, "");
  assertEquals(findLine(lines, "load_by_name").graph, NOT_WRITTEN);
  assertEquals(findLines(lines, "get_output").length, 3);
  assertEquals(lines.at(-1), { op: "end" });
});

Deno.test("parseProbeLine rejects malformed lines", () => {
  assertThrows(() => parseProbeLine('op=x text="unterminated'), SyntaxError);
  assertThrows(() => parseProbeLine("errno=0"), SyntaxError);
  assertThrows(() => parseProbeLine("op=x junk"), SyntaxError);
  assertThrows(() => findLine(parseProbeOutput(SAMPLE), "get_output"));
});
