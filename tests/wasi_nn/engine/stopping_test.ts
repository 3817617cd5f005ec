import assert from "node:assert/strict";
import { detectLoop, StopChecker } from "../../../wasi_nn/engine/stopping.ts";

const enc = new TextEncoder();

Deno.test("a stop string split across tokens is held back, then cut", () => {
  const s = new StopChecker({ stop: ["STOP"] });
  const out: string[] = [];
  out.push(s.push(1, enc.encode("Hello S")).emit);
  out.push(s.push(2, enc.encode("T")).emit);
  const last = s.push(3, enc.encode("OP and more"));
  out.push(last.emit);
  assert.deepEqual(out, ["Hello ", "", ""]);
  assert.deepEqual(last.stop, { reason: "stop", matched: "STOP" });
  assert.equal(s.text, "Hello ");
});

Deno.test("a held-back prefix that turns out not to match is released", () => {
  const s = new StopChecker({ stop: ["STOP"] });
  assert.equal(s.push(1, enc.encode("a ST")).emit, "a ");
  assert.equal(s.push(2, enc.encode("ART")).emit, "START");
  assert.equal(s.flush(), "");
});

Deno.test("includeStop keeps the stop string (WasmEdge reverse-prompt)", () => {
  const s = new StopChecker({ stop: ["User:"], includeStop: true });
  s.push(1, enc.encode("Answer. Us"));
  const r = s.push(2, enc.encode("er: next"));
  assert.equal(r.stop?.reason, "stop");
  assert.equal(s.text, "Answer. User:");
});

Deno.test("multi-byte characters split across tokens are never half emitted", () => {
  const s = new StopChecker();
  const bytes = enc.encode("é🎉");
  const emitted = [];
  for (let i = 0; i < bytes.length; i++) {
    emitted.push(s.push(i, bytes.subarray(i, i + 1)).emit);
  }
  assert.deepEqual(emitted.filter((x) => x !== ""), ["é", "🎉"]);
  assert.ok(emitted.every((x) => !x.includes("\uFFFD")));
});

Deno.test("max tokens, stop tokens, EOG and the time limit", () => {
  const a = new StopChecker({ nPredict: 2 });
  assert.equal(a.push(1, enc.encode("a")).stop, undefined);
  assert.equal(a.push(2, enc.encode("b")).stop?.reason, "length");
  const b = new StopChecker({ stopTokens: [42] });
  assert.deepEqual(b.push(42, enc.encode("x")).stop, {
    reason: "stop_token",
    matched: 42,
  });
  const c = new StopChecker();
  assert.equal(c.pushEog(2).stop?.reason, "eos");
  let t = 0;
  const d = new StopChecker({ tMaxPredictMs: 100, now: () => t });
  assert.equal(d.push(1, enc.encode("a")).stop, undefined);
  t = 150;
  assert.equal(d.push(2, enc.encode("b")).stop?.reason, "time_limit");
});

Deno.test("the loop detector finds repeated cycles and nothing else", () => {
  const opts = { maxCycle: 4, repeats: 3 };
  assert.ok(detectLoop([9, 1, 2, 1, 2, 1, 2], opts));
  assert.ok(detectLoop([5, 5, 5], opts));
  assert.ok(!detectLoop([1, 2, 1, 2, 1, 3], opts));
  assert.ok(
    !detectLoop([1, 2, 3, 4, 5, 1, 2, 3, 4, 5], opts),
    "cycle 5 > maxCycle",
  );
  const s = new StopChecker({ loop: opts });
  let stop;
  for (const t of [7, 8, 7, 8, 7, 8]) {
    stop = s.push(t, enc.encode(String(t))).stop;
  }
  assert.equal(stop?.reason, "loop");
});

Deno.test("n_indent: a later line with less indentation ends the output there, as the server cuts it", () => {
  const run = (pieces: string[], nIndent: number) => {
    const s = new StopChecker({ nIndent });
    let emitted = "";
    let stop;
    for (const [i, p] of pieces.entries()) {
      const step = s.push(i, enc.encode(p));
      emitted += step.emit;
      if (step.stop) {
        stop = step.stop;
        break;
      }
    }
    emitted += s.flush();
    return { text: s.text, emitted, stop, tokens: s.tokens.length };
  };
  // The first line is not checked; "x" starts a line with no indentation.
  const code = ["def f():", "\n  ", "return 1", "\n", "x", " = 2"];
  const r = run(code, 2);
  assert.equal(r.stop?.reason, "indent");
  assert.equal(r.text, "def f():\n  return 1\n");
  assert.equal(r.emitted, r.text);
  assert.equal(r.tokens, 5);
  // Enough indentation on every line: no stop; 0 is off.
  assert.equal(run(["a\n  b\n   c\n\tx"], 1).stop, undefined);
  assert.equal(run(code, 0).stop, undefined);
  // The server keeps the indentation of the cut line: a line of one space when 2 are needed.
  const one = run(["f():\n", "  a\n", " b"], 2);
  assert.equal(one.text, "f():\n  a\n ");
  // Several lines in one token are each checked.
  assert.equal(run(["x\n  a\nb\n  c"], 2).text, "x\n  a\n");
});
