/**
 * Chat input: an OpenAI-style messages array rendered with the model's own
 * Jinja chat template (as llama.cpp's server does, through
 * `Model.applyChatTemplate`), with a `chat_template` override and a clear
 * fallback when the model has none; and the tokenization policy for prompts:
 *
 * - a raw prompt parses special tokens (`<s>`, `<|im_start|>`, ...): guests
 *   that build their own prompts rely on it;
 * - in a chat, only the template's own text may produce control tokens. Text
 *   inside messages is tokenized as plain text, so a user who writes `</s>`
 *   or `<|im_end|>` gets those characters, not the control token (llama.cpp's
 *   server tokenizes the whole rendered prompt with special parsing on, which
 *   lets message text inject control tokens). `chat_parse_special: true`
 *   restores the server's behaviour.
 *
 * How: the template is rendered twice, once with the messages and once with
 * a unique marker in place of each message text; aligning the two tells
 * which spans of the prompt are message text (also when the template trims
 * or cuts it). Control tokens are then looked for only outside those spans,
 * and the prompt is tokenized exactly as llama.cpp would (same fragments, so
 * the same space prefixes and merges) except that message text never
 * becomes a control token.
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { tokenizeChat } from "./chat.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * const chat = tokenizeChat(model, [
 *   { role: "user", content: "Hi" },
 *   { role: "assistant", content: "Hello" },
 *   { role: "user", content: "Say </s> please" },
 * ]);
 * console.log(chat.text); // [INST] Hi [/INST]Hello</s><s>[INST] Say </s> please [/INST]
 * console.log(chat.tokens.filter((t) => t === 2).length); // 1: only the template's </s>
 * ```
 * @module
 */

import type { Model } from "../../bindings/mod.ts";
import type { ChatMessage } from "./_chat_messages.ts";
import {
  type ChatOptions,
  renderChat,
  type RenderedChat,
} from "./_chat_render.ts";

export {
  type ChatContentPart,
  type ChatMessage,
  MAX_MESSAGES_DEPTH,
  parseMessages,
  promptInput,
} from "./_chat_messages.ts";
export {
  CHATML_TEMPLATE,
  type ChatOptions,
  renderChat,
  renderChatIsolated,
  type RenderedChat,
} from "./_chat_render.ts";

/**
 * A tokenized chat.
 *
 * @example
 * ```ts
 * import type { ChatTokens } from "./chat.ts";
 * const t: ChatTokens = { text: "", template: "model", warnings: [], segments: [], traced: true, tokens: new Int32Array(0) };
 * console.log(t.tokens.length);
 * ```
 */
export interface ChatTokens extends RenderedChat {
  /** The prompt tokens (BOS added as the model wants). */
  tokens: Int32Array<ArrayBuffer>;
}

const controlCache = new WeakMap<Model, Map<number, boolean>>();

/** A control (or unknown) token: printed only when special tokens are rendered. */
function isControl(model: Model, token: number): boolean {
  let m = controlCache.get(model);
  if (!m) controlCache.set(model, m = new Map());
  let r = m.get(token);
  if (r === undefined) {
    r = model.tokenBytes(token, false).length === 0 &&
      model.tokenBytes(token, true).length > 0;
    m.set(token, r);
  }
  return r;
}

/**
 * Tokenizes text the way llama.cpp does with special parsing on, except that
 * control tokens are recognised only in the segments with `content: false`.
 * BOS (and EOS) are added as the model wants.
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { tokenizeSegments } from "./chat.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * const t = tokenizeSegments(model, [{ text: "</s>", content: false }, { text: " </s>", content: true }]);
 * console.log([...t].filter((x) => x === 2).length); // 1
 * ```
 */
export function tokenizeSegments(
  model: Model,
  segments: readonly { text: string; content: boolean }[],
  options: { addSpecial?: boolean } = {},
): Int32Array<ArrayBuffer> {
  const frags: (string | number)[] = [];
  const pushText = (s: string) => {
    if (s === "") return;
    if (typeof frags[frags.length - 1] === "string") {
      frags[frags.length - 1] += s;
    } else frags.push(s);
  };
  for (const seg of segments) {
    if (seg.content) {
      pushText(seg.text);
      continue;
    }
    const toks = model.tokenize(seg.text, {
      addSpecial: false,
      parseSpecial: true,
    });
    let pos = 0;
    for (const t of toks) {
      if (!isControl(model, t)) continue;
      const piece = model.tokenToPiece(t, true);
      const at = seg.text.indexOf(piece, pos);
      if (at < 0) continue;
      pushText(seg.text.slice(pos, at));
      frags.push(t);
      pos = at + piece.length;
    }
    pushText(seg.text.slice(pos));
  }
  // llama.cpp drops the ASCII whitespace next to control tokens marked
  // LSTRIP / RSTRIP (Phi-3's), whatever text it is.
  for (let i = 0; i < frags.length; i++) {
    const f = frags[i];
    if (typeof f !== "number") continue;
    const strip = model.tokenStrip(f);
    if (strip.before && typeof frags[i - 1] === "string") {
      frags[i - 1] = (frags[i - 1] as string).replace(/[ \t\n\v\f\r]+$/, "");
    }
    if (strip.after && typeof frags[i + 1] === "string") {
      frags[i + 1] = (frags[i + 1] as string).replace(/^[ \t\n\v\f\r]+/, "");
    }
  }
  const info = model.info;
  const out: number[] = [];
  if ((options.addSpecial ?? true) && info.add_bos && info.bos >= 0) {
    out.push(info.bos);
  }
  for (const f of frags) {
    if (typeof f === "number") out.push(f);
    else {for (
        const t of model.tokenize(f, { addSpecial: false, parseSpecial: false })
      ) out.push(t);}
  }
  if ((options.addSpecial ?? true) && info.add_eos && info.eos >= 0) {
    out.push(info.eos);
  }
  return Int32Array.from(out);
}

/**
 * Renders and tokenizes a chat. Message text cannot produce control tokens
 * unless `parseSpecial` is set (then the whole prompt is tokenized with
 * special parsing, as llama.cpp's server does).
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { tokenizeChat } from "./chat.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * const msgs = [{ role: "user", content: "a </s> b" }];
 * console.log(tokenizeChat(model, msgs).tokens.includes(2)); // false
 * console.log(tokenizeChat(model, msgs, { parseSpecial: true }).tokens.includes(2)); // true
 * ```
 */
export function tokenizeChat(
  model: Model,
  messages: readonly ChatMessage[],
  options: ChatOptions = {},
): ChatTokens {
  return tokenizeRendered(
    model,
    renderChat(model, messages, options),
    options.parseSpecial,
  );
}

/**
 * Tokenizes a rendered chat (from {@linkcode renderChat} or
 * {@linkcode renderChatIsolated}) as {@linkcode tokenizeChat} does.
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { renderChatIsolated, tokenizeRendered } from "./chat.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * const r = await renderChatIsolated(model, [{ role: "user", content: "a </s> b" }]);
 * console.log(tokenizeRendered(model, r).tokens.includes(2)); // false
 * ```
 */
export function tokenizeRendered(
  model: Model,
  r: RenderedChat,
  parseSpecial = false,
): ChatTokens {
  if (parseSpecial) {
    return {
      ...r,
      tokens: model.tokenize(r.text, { addSpecial: true, parseSpecial: true }),
    };
  }
  if (r.traced) return { ...r, tokens: tokenizeSegments(model, r.segments) };
  // Untraced: the real rendering is fine when its control tokens are exactly
  // the template's own; otherwise use the template around the texts as given.
  const full = model.tokenize(r.text, { addSpecial: true, parseSpecial: true });
  const safe = tokenizeSegments(model, r.segments);
  const controls = (t: Int32Array) =>
    [...t].filter((x) => isControl(model, x)).join(",");
  if (controls(full) === controls(safe)) return { ...r, tokens: full };
  const text = r.segments.map((x) => x.text).join("");
  return {
    ...r,
    text,
    tokens: safe,
    warnings: [
      ...r.warnings,
      "the chat template changes message text in a way that could not be traced, and the result would contain control tokens from message text; the message text is used as given",
    ],
  };
}

/**
 * The tokenization policy in one call: a raw prompt (string) is tokenized
 * with special parsing (guests rely on it); a messages array is rendered with
 * the chat template and tokenized by {@linkcode tokenizeChat}.
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { tokenizeInput } from "./chat.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * console.log(tokenizeInput(model, "a </s>").tokens.includes(2)); // true: raw prompt
 * console.log(tokenizeInput(model, [{ role: "user", content: "a </s>" }]).tokens.includes(2)); // false
 * ```
 */
export function tokenizeInput(
  model: Model,
  input: string | readonly ChatMessage[],
  options: ChatOptions = {},
): { tokens: Int32Array<ArrayBuffer>; text: string; warnings: string[] } {
  if (typeof input === "string") {
    return {
      tokens: model.tokenize(input, { addSpecial: true, parseSpecial: true }),
      text: input,
      warnings: [],
    };
  }
  const r = tokenizeChat(model, input, options);
  return { tokens: r.tokens, text: r.text, warnings: r.warnings };
}
