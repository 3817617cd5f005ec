/**
 * Chat templates are programs: a guest's (`chat_template`), or one inside a
 * model the guest sent, renders in a sandbox process (`wnb-chat-render`)
 * with memory, time and output limits. Beyond them: InvalidArgument naming
 * the limit, and the host lives on. The hostile probes run in a child
 * process with a memory limit (on a host that renders in process they
 * allocate 20+ GB, hang, or overflow the stack and end the process).
 */
import assert from "node:assert/strict";
import { Model } from "../../bindings/mod.ts";
import { renderChat, renderChatIsolated } from "../../wasi_nn/engine/chat.ts";
import { ConfigError } from "../../wasi_nn/config/parse.ts";
import { TEMPLATE_LIMITS } from "../../wasi_nn/engine/_chat_sandbox.ts";
import { paths } from "../../paths.ts";
import { tinyModel } from "../_helpers.ts";
import { runProbe } from "./_probe.ts";

const PROBE = new URL("./_template_probe.ts", import.meta.url).pathname;

Deno.test("the sandbox executable is built with the library", () => {
  const info = Deno.statSync(paths().chatRender);
  assert.ok(info.isFile && (info.mode! & 0o111) !== 0, paths().chatRender);
});

Deno.test({
  name:
    "hostile chat templates from a guest are refused with the limit named, on both paths, and the host lives on",
  sanitizeResources: false,
  fn: async () => {
    // 4 minutes at most.
    const { by, stdout } = await runProbe(PROBE, 240_000);
    const expect: [string, RegExp][] = [
      [
        "huge_string",
        /ran past the time limit of 1500 ms|memory limit of 256 MiB/,
      ],
      ["huge_range", /memory limit of 256 MiB|time limit/],
      ["nested_loops", /ran past the time limit of 1500 ms/],
      ["recursive_macro", /overflowed the stack/],
      ["deep_parens", /overflowed the stack/],
      ["syntax_error", /Parser Error/],
    ];
    for (const [name, re] of expect) {
      for (const n of [name, `${name}:run_inference`]) {
        const l = by.get(n);
        assert.ok(l, `no answer for ${n}: ${stdout.slice(-2000)}`);
        assert.equal(l.errno, 1, `${n}: ${l.message}`);
        assert.match(l.message, /^Field 'chat_template': /, n);
        assert.match(l.message, re, n);
        // bounded: the time limit (1.5 s) plus the process, generously
        assert.ok(l.ms < 20_000, `${n} took ${l.ms} ms`);
      }
    }
    const own = by.get("model_template");
    assert.equal(own?.errno, 1, own?.message);
    assert.match(
      own.message,
      /the model's chat template .*(memory|time) limit/,
    );
    for (const n of ["deep_messages", "deep_messages:in_process"]) {
      assert.equal(by.get(n)?.errno, 1, n);
      assert.match(
        by.get(n).message,
        /^Field 'messages': nest more than 64 levels/,
      );
    }
    assert.equal(
      by.get("after")?.tokens,
      2,
      "the host answers after the probes",
    );
  },
});

const CHAT = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi </s> there" },
  { role: "assistant", content: "Hello!" },
  { role: "user", content: "Again" },
];

Deno.test("the sandbox renders llama.cpp's reference templates exactly as the library does", async () => {
  using model = await Model.load(await tinyModel(), { vocabOnly: true });
  const dir = `${paths().llamaCpp}/models/templates`;
  const names = [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => n.endsWith(".jinja")).sort();
  assert.ok(names.length >= 40, `${names.length} templates in ${dir}`);
  let compared = 0;
  for (const name of names) {
    const template = Deno.readTextFileSync(`${dir}/${name}`);
    for (const addGenerationPrompt of [true, false]) {
      const opts = { template, addGenerationPrompt };
      let local;
      try {
        local = renderChat(model, CHAT, opts);
      } catch (e) {
        // a template that fails in process fails the same way in the sandbox
        await assert.rejects(
          renderChatIsolated(model, CHAT, opts),
          (x: Error) => x instanceof ConfigError && x.errno === 1,
          name,
        );
        void e;
        continue;
      }
      assert.deepEqual(
        await renderChatIsolated(model, CHAT, opts),
        local,
        name,
      );
      compared++;
    }
  }
  // the model's own template (add_bos: the leading <s> is dropped, as llama.cpp does)
  assert.deepEqual(
    await renderChatIsolated(model, CHAT),
    renderChat(model, CHAT),
  );
  assert.ok(compared >= 80, `${compared} renders compared`);
});

Deno.test("real templates render far inside the limits", async () => {
  using model = await Model.load(await tinyModel(), { vocabOnly: true });
  const dir = `${paths().llamaCpp}/models/templates`;
  const tight = { ...TEMPLATE_LIMITS, timeoutMs: 500, maxMemoryMb: 64 };
  for (
    const name of [
      "Qwen3-Coder.jinja",
      "Kimi-K3.jinja",
      "openai-gpt-oss-120b.jinja",
    ]
  ) {
    const template = Deno.readTextFileSync(`${dir}/${name}`);
    await renderChatIsolated(model, CHAT, { template }, tight);
  }
});

Deno.test("a rendering over the output limit is refused, naming it", async () => {
  using model = await Model.load(await tinyModel(), { vocabOnly: true });
  const big = [{ role: "user", content: "y".repeat(300_000) }];
  await assert.rejects(
    renderChatIsolated(model, big, {}, {
      ...TEMPLATE_LIMITS,
      maxOutputBytes: 100_000,
    }),
    (e: Error) =>
      e instanceof ConfigError && e.errno === 1 &&
      /reached \d+ bytes, over the limit of 100000 bytes/.test(e.message) &&
      /chat_template_max_output_bytes/.test(e.message),
  );
});

Deno.test("the time limit is the host's chat_template_timeout_ms", async () => {
  using model = await Model.load(await tinyModel(), { vocabOnly: true });
  const t0 = performance.now();
  await assert.rejects(
    renderChatIsolated(
      model,
      CHAT,
      { template: "{% for i in range(1000000000) %}{% endfor %}" },
      { ...TEMPLATE_LIMITS, timeoutMs: 300 },
    ),
    /ran past the time limit of 300 ms/,
  );
  assert.ok(performance.now() - t0 < 10_000, "bounded by the limit");
});
