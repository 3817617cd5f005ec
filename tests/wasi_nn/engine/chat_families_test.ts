/**
 * Chat template rendering equals llama.cpp's own, for every family with a
 * chat template (`MODEL_FAMILY_TRAITS[family].chatTemplate`): a system
 * message (where the template takes one), two user turns and one assistant
 * turn, with the generation prompt.
 *
 * References, both llama.cpp's:
 * - `test-chat-template` (llama.cpp's tests/test-chat-template.cpp, built as
 *   a reference tool) renders the whole conversation with llama.cpp's chat
 *   code, given the template and the BOS/EOS text, both read here from the
 *   GGUF file. It runs without a model, so it keeps a leading BOS text that
 *   llama.cpp strips when rendering for a model whose tokenizer adds BOS
 *   (common/chat.cpp): the test strips it the same way.
 * - `llama-completion --jinja -cnv -sys S -p U --verbose-prompt` renders the
 *   first turn from the model itself (template, BOS/EOS, that strip) and
 *   prints the prompt's tokens: ours must be the same tokens.
 */
import assert from "node:assert/strict";
import { Model } from "../../../bindings/mod.ts";
import {
  ensureFamilyModel,
  MODEL_FAMILIES,
  MODEL_FAMILY_TRAITS,
  type ModelFamily,
  readGguf,
} from "../../../gguf/mod.ts";
import {
  type ChatMessage,
  renderChat,
  renderChatIsolated,
  tokenizeChat,
} from "../../../wasi_nn/engine/chat.ts";
import { CHILD_TIMEOUT_MS, referenceTool, run } from "../../_helpers.ts";

const render = referenceTool("test-chat-template");
const completion = referenceTool("llama-completion");
if (!render || !completion) {
  console.error(
    `chat_families_test: ${
      [!render && "test-chat-template", !completion && "llama-completion"]
        .filter(Boolean).join(" and ")
    } missing from build/bin (build with \`deno run -A build.ts --reference\`); the parity tests are skipped`,
  );
}

const SYSTEM: ChatMessage = { role: "system", content: "You are terse." };
const CONVERSATION: ChatMessage[] = [
  { role: "user", content: "Hello, how are you?" },
  { role: "assistant", content: "I am fine, thank you!" },
  { role: "user", content: "Tell me a story." },
];
const FAMILIES = MODEL_FAMILIES.filter((f) =>
  MODEL_FAMILY_TRAITS[f].chatTemplate !== null
);

/** The template and the BOS/EOS token text, as the GGUF file has them. */
async function fromFile(path: string) {
  const file = await readGguf(path);
  const get = (k: string) => file.metadata.get(k)?.value;
  const tokens = get("tokenizer.ggml.tokens") as string[];
  const text = (key: string) => {
    const id = get(key);
    return id === undefined ? "" : tokens[Number(id)];
  };
  const template = get("tokenizer.chat_template");
  assert.equal(typeof template, "string", `${path}: no chat template`);
  return {
    template: template as string,
    bos: text("tokenizer.ggml.bos_token_id"),
    eos: text("tokenizer.ggml.eos_token_id"),
  };
}

/** test-chat-template's rendering, or undefined when the template refuses the messages. */
async function reference(
  path: string,
  messages: ChatMessage[],
  addBos: boolean,
): Promise<string | undefined> {
  const { template, bos, eos } = await fromFile(path);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/template.jinja`, template);
    await Deno.writeTextFile(
      `${dir}/input.json`,
      JSON.stringify({
        messages,
        bos_token: bos,
        eos_token: eos,
        add_generation_prompt: true,
      }),
    );
    const r = await run(render!, [
      "--json",
      `${dir}/input.json`,
      "--output",
      `${dir}/out.txt`,
      `${dir}/template.jinja`,
    ], { timeoutMs: 60_000 });
    if (r.code !== 0) return undefined;
    const text = await Deno.readTextFile(`${dir}/out.txt`);
    // llama.cpp, rendering for the model, leaves BOS to the tokenizer.
    return addBos && bos !== "" && text.startsWith(bos)
      ? text.slice(bos.length)
      : text;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * llama-completion's prompt tokens for a system message and one user turn
 * (stdin closed: it generates one token and ends). Its log goes through an
 * asynchronous thread that can lose lines at exit: retried until whole.
 */
async function completionTokens(
  path: string,
  system: string,
  user: string,
): Promise<number[]> {
  for (let i = 0; i < 5; i++) {
    const out = await new Deno.Command(completion!, {
      args: [
        "-m",
        path,
        "--jinja",
        "-cnv",
        "-sys",
        system,
        "-p",
        user,
        "--verbose-prompt",
        "-n",
        "1",
        "-c",
        "512",
        "-t",
        "2",
        "--temp",
        "0",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(CHILD_TIMEOUT_MS),
    }).output();
    const log = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, log.slice(-2000));
    const n = log.match(/number of tokens in prompt = (\d+)/);
    if (!n) continue;
    const after = log.slice(n.index!);
    const ids = [...after.matchAll(/^\S+ I +(\d+) -> '/gm)].map((m) =>
      Number(m[1])
    );
    if (ids.length >= Number(n[1])) return ids.slice(0, Number(n[1]));
  }
  throw new Error("llama-completion printed no whole prompt");
}

/** The family's model and the messages llama.cpp renders (with a system message unless the template refuses it). */
async function conversation(family: ModelFamily) {
  const { path } = await ensureFamilyModel(family);
  const model = await Model.load(path);
  const addBos = model.info.add_bos;
  let messages = [SYSTEM, ...CONVERSATION];
  let want = await reference(path, messages, addBos);
  if (want === undefined) {
    assert.throws(
      () => renderChat(model, messages),
      `${family}: llama.cpp refuses the system message, we must too`,
    );
    messages = CONVERSATION;
    want = await reference(path, messages, addBos);
  }
  assert.ok(want !== undefined, `${family}: test-chat-template failed`);
  return { path, model, messages, want };
}

for (const family of FAMILIES) {
  const source = MODEL_FAMILY_TRAITS[family].chatTemplate;
  Deno.test({
    name:
      `chat template (${family}: ${source}): renderChat and the sandbox render as llama.cpp does`,
    ignore: !render || !completion,
    async fn() {
      const { model, messages, want } = await conversation(family);
      using _ = model;
      const ours = renderChat(model, messages);
      assert.equal(ours.template, "model", family);
      assert.equal(ours.text, want, `${family}: renderChat`);
      assert.equal(
        (await renderChatIsolated(model, messages)).text,
        want,
        `${family}: renderChatIsolated (the sandbox)`,
      );
    },
  });

  Deno.test({
    name:
      `chat template (${family}: ${source}): tokenizeChat gives llama.cpp's tokens (whole conversation; first turn against llama-completion)`,
    ignore: !render || !completion,
    async fn() {
      const { path, model, messages, want } = await conversation(family);
      using _ = model;
      // The tokens llama.cpp's tokenizer gives the reference text (special
      // parsing on, as llama.cpp's server tokenizes a rendered prompt).
      assert.deepEqual(
        [...tokenizeChat(model, messages).tokens],
        [...model.tokenize(want, { addSpecial: true, parseSpecial: true })],
        `${family}: tokenizeChat`,
      );
      // The first turn, rendered and tokenized by llama.cpp from the model.
      if (messages[0].role === "system") {
        assert.deepEqual(
          [...tokenizeChat(model, messages.slice(0, 2)).tokens],
          await completionTokens(
            path,
            messages[0].content as string,
            messages[1].content as string,
          ),
          `${family}: tokens of the first turn against llama-completion's`,
        );
      }
    },
  });
}
