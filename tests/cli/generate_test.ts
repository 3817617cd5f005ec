/**
 * `deno run -A cli.ts generate --config ...` surfaces the validation
 * messages on stderr, exits 2 on hard errors and 0 with warnings.
 */
import assert from "node:assert/strict";
import { run, tinyModel } from "../_helpers.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function generate(...args: string[]) {
  const model = await tinyModel();
  const r = await run(Deno.execPath(), [
    "run",
    "-A",
    CLI,
    "generate",
    "--model",
    model,
    ...args,
  ]);
  // deno-lint-ignore no-control-regex
  return { ...r, stderr: r.stderr.replace(/\x1b\[[0-9;]*m/g, "") };
}

Deno.test("hard config errors: the server's message on stderr, exit code 2, nothing on stdout", async () => {
  const cases: [string[], string][] = [
    [
      ["--prompt", "Hi", "--config", '{"n_predict":-5}'],
      "error: Field 'n_predict': Value must be between -1 <= value <= 2147483647, but got -5",
    ],
    [
      ["--prompt", "Hi", "--config", '{"sampling":{"top_k":"40"}}'],
      "error: Field 'sampling.top_k': type must be an integer, but is string \"40\" (write 40 without quotes)",
    ],
    [
      ["--prompt", "Hi", "--config", '{"temprature":0.5}', "--strict"],
      "error: Field 'temprature': unknown key (did you mean 'temperature'?)",
    ],
    [
      ["--prompt", "Hi", "--config", '{"temp": }'],
      "error: config is not valid JSON",
    ],
    [
      [
        "--prompt",
        "Hi",
        "--config",
        '{"grammar":"root ::= \\"a\\"","grammar_lazy":true}',
      ],
      "error: Field 'grammar_lazy': no triggers set for lazy grammar (add grammar_triggers, or set grammar_lazy to false)",
    ],
    [
      ["--prompt", "Hi", "--n-predict", "many"],
      "error: Field '--n-predict': type must be an integer, but is string \"many\"",
    ],
    [["--messages", '[{"role":"user"}]'], "error: Field 'messages[0].content'"],
  ];
  for (const [args, message] of cases) {
    const r = await generate(...args);
    assert.equal(r.code, 2, `${args.join(" ")}\n${r.stderr}`);
    assert.ok(r.stderr.includes(message), `${args.join(" ")}:\n${r.stderr}`);
    assert.equal(r.stdout, "");
  }
});

Deno.test("warnings (unknown keys with suggestions, clamps, cross checks) do not stop generation", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/config.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        temprature: 0.5,
        llama3: false,
        sampling: { top_p: 1.5 },
        threads: 4096 / 4,
        seed: 1,
      }),
    );
    const r = await generate(
      "--prompt",
      "Once upon a time",
      "--n-predict",
      "8",
      "--config",
      file,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.stderr.includes(
        "warning: unknown config key 'temprature'; did you mean 'temperature'?",
      ),
      r.stderr,
    );
    assert.ok(
      r.stderr.includes("warning: unknown config key 'llama3'"),
      r.stderr,
    );
    assert.ok(
      r.stderr.includes(
        "warning: Field 'sampling.top_p': 1.5 is outside 0 <= value <= 1; clamped to 1",
      ),
    );
    assert.ok(r.stderr.includes("warning: threads 1024 exceeds the"), r.stderr);
    assert.ok(r.stdout.length > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--explain-config shows each value's layer; --json returns n_probs", async () => {
  const explained = await generate(
    "--explain-config",
    "--config",
    '{"temperature":0.2}',
    "--n-predict",
    "3",
  );
  assert.equal(explained.code, 0, explained.stderr);
  assert.match(
    explained.stderr,
    /^temp = 0\.2 +\(config; overrides default 0\.8\)$/m,
  );
  assert.match(
    explained.stderr,
    /^n_predict = 3 +\(--n-predict; overrides cli-defaults 128, default -1\)$/m,
  );
  assert.match(explained.stderr, /^top_k = 40 +\(default\)$/m);

  const r = await generate(
    "--chat",
    "--prompt",
    "Say </s>",
    "--json",
    "--config",
    '{"n_probs":3,"seed":5,"n-predict":6,"ignore_eos":true}',
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.tokens.length, 6);
  assert.equal(out.seed, 5);
  assert.equal(out.probs.length, 6);
  for (const p of out.probs) {
    assert.equal(p.top.length, 3);
    assert.ok(
      p.top.reduce((s: number, c: { prob: number }) => s + c.prob, 0) <=
        1 + 1e-5,
    );
  }
});

Deno.test("generate reads the run keys as the host does: stop strings are cut, stop_token_ids end it", async () => {
  const json = async (config: object) => {
    const r = await generate(
      "--prompt",
      "Once upon a time",
      "--json",
      "--config",
      JSON.stringify({ temp: 0, n_predict: 12, ...config }),
    );
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const b = await json({});
  const word = ` ${b.text.trim().split(" ")[2]}`;
  const cut = await json({ stop: [word] });
  assert.equal(cut.stop_reason, "stop");
  assert.equal(cut.text, b.text.slice(0, b.text.indexOf(word)));
  const k = b.tokens.findIndex((t: number, i: number) =>
    i >= 2 && b.tokens.indexOf(t) === i
  );
  const byToken = await json({ stop_token_ids: [b.tokens[k]] });
  assert.equal(byToken.stop_reason, "stop_token");
  assert.deepEqual(byToken.tokens, b.tokens.slice(0, k + 1));
  // Streaming to stdout prints the same text as --json reports.
  const streamed = await generate(
    "--prompt",
    "Once upon a time",
    "--config",
    JSON.stringify({ temp: 0, n_predict: 12, stop: [word] }),
  );
  assert.equal(streamed.stdout.replace(/\n$/, ""), cut.text);
});
