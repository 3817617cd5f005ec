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

import { LlamaError, type Model } from "../../bindings/mod.ts";
import { ConfigError } from "../errno.ts";
import { jsonDepth } from "./_json_depth.ts";
import {
  renderIsolated,
  type RenderRequest,
  TEMPLATE_LIMITS,
  type TemplateLimits,
} from "./_chat_sandbox.ts";

/**
 * One part of a multi-part message content (`{"type": "text", "text": ...}`).
 *
 * @example
 * ```ts
 * import type { ChatContentPart } from "./chat.ts";
 * const part: ChatContentPart = { type: "text", text: "Hello" };
 * console.log(part.type);
 * ```
 */
export interface ChatContentPart {
  /** "text" (other types are passed to the template as they are). */
  type: string;
  /** The text of a "text" part. */
  text?: string;
  /** Other fields. */
  [key: string]: unknown;
}

/**
 * One OpenAI-style chat message.
 *
 * @example
 * ```ts
 * import type { ChatMessage } from "./chat.ts";
 * const m: ChatMessage = { role: "user", content: "Hello" };
 * console.log(m.role);
 * ```
 */
export interface ChatMessage {
  /** "system", "user", "assistant", "tool", ... */
  role: string;
  /** The text, or parts; null/absent for e.g. an assistant message with tool calls. */
  content?: string | ChatContentPart[] | null;
  /** Other fields (name, tool_calls, reasoning_content, ...) go to the template unchanged. */
  [key: string]: unknown;
}

/**
 * llama.cpp's fallback template (ChatML), used when a model has none.
 *
 * @example
 * ```ts
 * import { CHATML_TEMPLATE } from "./chat.ts";
 * console.log(CHATML_TEMPLATE.includes("<|im_start|>")); // true
 * ```
 */
export const CHATML_TEMPLATE: string = "{%- for message in messages -%}" +
  "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}" +
  "{%- endfor -%}" +
  "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

/**
 * Options of {@linkcode renderChat} and {@linkcode tokenizeChat}.
 *
 * @example
 * ```ts
 * import type { ChatOptions } from "./chat.ts";
 * const o: ChatOptions = { addGenerationPrompt: true, parseSpecial: false };
 * console.log(o.parseSpecial);
 * ```
 */
export interface ChatOptions {
  /** A Jinja template used instead of the model's (`chat_template`). */
  template?: string;
  /** End with the assistant's turn opener (default true). */
  addGenerationPrompt?: boolean;
  /** Let message text produce control tokens, as llama.cpp's server does (default false). */
  parseSpecial?: boolean;
  /** Use ChatML when the model has no template (default true); false throws instead. */
  fallback?: boolean;
}

/**
 * A rendered chat: the prompt text and which spans of it are message text.
 *
 * @example
 * ```ts
 * import type { RenderedChat } from "./chat.ts";
 * const r: RenderedChat = { text: "[INST] hi [/INST]", template: "model", warnings: [], segments: [], traced: true };
 * console.log(r.template);
 * ```
 */
export interface RenderedChat {
  /** The prompt text (as llama.cpp's server renders it). */
  text: string;
  /** Which template rendered it. */
  template: "model" | "override" | "fallback";
  /** E.g. "the model has no chat template; using ChatML". */
  warnings: string[];
  /** The prompt cut into template text (`content: false`) and message text (`content: true`). */
  segments: { text: string; content: boolean }[];
  /**
   * Whether `segments` join to `text`. False when the template changes
   * message text in a way that could not be traced (e.g. upper-cases it):
   * `segments` then hold the template around the texts as given.
   */
  traced: boolean;
}

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

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * How deep arrays and objects may nest in a messages array. llama.cpp's JSON
 * parser recurses once per level and overflows the stack near 17,500 levels
 * on the main thread (less on a worker thread); chat messages need a handful.
 *
 * @example
 * ```ts
 * import { MAX_MESSAGES_DEPTH } from "./chat.ts";
 * console.log(MAX_MESSAGES_DEPTH); // 64
 * ```
 */
export const MAX_MESSAGES_DEPTH = 64;

/**
 * Validates a messages array (a value or JSON text). Throws ConfigError
 * (field `messages[i]...`, errno InvalidArgument) saying what is wrong.
 *
 * @example
 * ```ts
 * import { parseMessages } from "./chat.ts";
 * console.log(parseMessages('[{"role":"user","content":"Hi"}]').length); // 1
 * try {
 *   parseMessages([{ role: "user", content: 5 }]);
 * } catch (e) {
 *   console.log((e as Error).message); // Field 'messages[0].content': must be a string, an array of parts or null, ...
 * }
 * ```
 */
export function parseMessages(input: unknown): ChatMessage[] {
  let v = input;
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch (e) {
      throw new ConfigError(
        "messages",
        input,
        `not valid JSON: ${(e as Error).message}`,
        undefined,
        "format",
      );
    }
  }
  const depth = jsonDepth(v, MAX_MESSAGES_DEPTH);
  if (depth > MAX_MESSAGES_DEPTH) {
    throw new ConfigError(
      "messages",
      v,
      `nest more than ${MAX_MESSAGES_DEPTH} levels deep (llama.cpp's JSON parser recurses per level)`,
      `keep messages and their fields within ${MAX_MESSAGES_DEPTH} levels of arrays and objects`,
      "range",
    );
  }
  if (!Array.isArray(v) || v.length === 0) {
    throw new ConfigError(
      "messages",
      v,
      'must be a non-empty array of {"role": string, "content": string}',
      undefined,
      "type",
    );
  }
  v.forEach((m, i) => {
    if (!isObject(m)) {
      throw new ConfigError(
        `messages[${i}]`,
        m,
        'must be an object {"role": string, "content": string}',
        undefined,
        "type",
      );
    }
    if (typeof m.role !== "string" || m.role === "") {
      throw new ConfigError(
        `messages[${i}].role`,
        m.role,
        "must be a non-empty string",
        'e.g. "user"',
        "type",
      );
    }
    const c = m.content;
    if (c === undefined && m.tool_calls === undefined) {
      throw new ConfigError(
        `messages[${i}].content`,
        undefined,
        "is missing",
        'a message needs "content" (or "tool_calls")',
        "requires",
      );
    }
    const ok = c === undefined || c === null || typeof c === "string" ||
      (Array.isArray(c) &&
        c.every((p) =>
          isObject(p) && typeof p.type === "string" &&
          (p.type !== "text" || typeof p.text === "string")
        ));
    if (!ok) {
      throw new ConfigError(
        `messages[${i}].content`,
        c,
        'must be a string, an array of parts ({"type": "text", "text": string}) or null',
        undefined,
        "type",
      );
    }
  });
  return v as ChatMessage[];
}

/**
 * A `set_input` text as the host should take it: a JSON array of messages
 * (objects with a string `role`) is a chat, anything else is a raw prompt.
 * Use with {@linkcode tokenizeInput}.
 *
 * @example
 * ```ts
 * import { promptInput } from "./chat.ts";
 * console.log(promptInput('[{"role":"user","content":"Hi"}]')); // [{ role: "user", content: "Hi" }]
 * console.log(promptInput("[INST] Hi [/INST]")); // [INST] Hi [/INST]
 * ```
 */
export function promptInput(text: string): string | ChatMessage[] {
  const t = text.trimStart();
  if (!t.startsWith("[")) return text;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return text;
  }
  if (
    !Array.isArray(v) || v.length === 0 ||
    !v.every((m) => isObject(m) && typeof m.role === "string")
  ) return text;
  return parseMessages(v);
}

const MARK = (i: number) => `\uE000${i}\uE001`;
const MARK_RE = /\uE000(\d+)\uE001/g;

function apply(
  model: Model,
  messages: readonly ChatMessage[],
  template: string | undefined,
  add: boolean,
): string {
  try {
    return model.applyChatTemplate(
      messages as { role: string; content: string }[],
      {
        addGenerationPrompt: add,
        template,
      },
    );
  } catch (e) {
    if (e instanceof LlamaError) {
      throw new ConfigError(
        template === undefined ? "messages" : "chat_template",
        template,
        e.message,
        template === undefined
          ? undefined
          : "check the Jinja syntax of chat_template",
        "format",
      );
    }
    throw e;
  }
}

/** Splits `full` into template text and message text by aligning it with the marked rendering. */
function align(
  full: string,
  marked: string,
  texts: string[],
): { text: string; content: boolean }[] | undefined {
  const pieces: string[] = [];
  const ids: number[] = [];
  let last = 0;
  for (const m of marked.matchAll(MARK_RE)) {
    pieces.push(marked.slice(last, m.index));
    ids.push(Number(m[1]));
    last = m.index! + m[0].length;
  }
  pieces.push(marked.slice(last));
  if (!full.startsWith(pieces[0])) return undefined;
  let budget = 20000;
  const spans: [number, number][] = [];
  const go = (j: number, pos: number): boolean => {
    if (--budget < 0) return false;
    const next = pieces[j + 1];
    if (j === ids.length) return pos === full.length;
    const c = texts[ids[j]];
    const tried = new Set<number>();
    // the text as given, or trimmed (templates often trim)
    for (const cand of [c, c.trim(), c.trimStart(), c.trimEnd()]) {
      if (tried.has(cand.length)) continue;
      tried.add(cand.length);
      if (
        full.startsWith(cand, pos) && full.startsWith(next, pos + cand.length)
      ) {
        spans[j] = [pos, pos + cand.length];
        if (go(j + 1, pos + cand.length + next.length)) return true;
      }
    }
    // a template that cuts the text (e.g. drops a reasoning block): the longest
    // span that is part of the original text and is followed by the template
    const ends: number[] = [];
    if (next === "") {
      if (j + 1 === ids.length) ends.push(full.length);
    } else {
      for (
        let at = full.lastIndexOf(next);
        at >= pos;
        at = at > 0 ? full.lastIndexOf(next, at - 1) : -1
      ) {
        ends.push(at);
      }
    }
    for (const at of ends) {
      const len = at - pos;
      if (
        len > c.length || tried.has(len) || !c.includes(full.slice(pos, at))
      ) continue;
      tried.add(len);
      spans[j] = [pos, at];
      if (go(j + 1, at + next.length)) return true;
    }
    return false;
  };
  if (!go(0, pieces[0].length)) return undefined;
  const out: { text: string; content: boolean }[] = [];
  let pos = 0;
  for (const [a, b] of spans) {
    if (a > pos) out.push({ text: full.slice(pos, a), content: false });
    if (b > a) out.push({ text: full.slice(a, b), content: true });
    pos = b;
  }
  if (pos < full.length) out.push({ text: full.slice(pos), content: false });
  return out;
}

/** What one chat needs rendered: decided once, rendered in process or in the sandbox. */
interface ChatPlan {
  msgs: ChatMessage[];
  add: boolean;
  /** The template's source; undefined = the model's own (rendered by the shim's cached copy). */
  template: string | undefined;
  source: RenderedChat["template"];
  warnings: string[];
  /** The message texts, in marker order. */
  texts: string[];
  /** The messages with a marker in place of each text (undefined when there is no text). */
  marked: ChatMessage[] | undefined;
}

function planChat(
  model: Model,
  messages: readonly ChatMessage[],
  options: ChatOptions,
): ChatPlan {
  const msgs = parseMessages(messages);
  const add = options.addGenerationPrompt ?? true;
  const warnings: string[] = [];
  let template = options.template;
  let source: RenderedChat["template"] = template ? "override" : "model";
  if (!template && !model.info.chat_template) {
    if (options.fallback === false) {
      throw new ConfigError(
        "chat_template",
        null,
        `the model ${model.info.name || model.path} has no chat template`,
        "set chat_template to a Jinja template, or send a raw prompt",
        "requires",
      );
    }
    warnings.push(
      `the model ${
        model.info.name || model.path
      } has no chat template; using ChatML (llama.cpp's fallback). Set chat_template to use another`,
    );
    template = CHATML_TEMPLATE;
    source = "fallback";
  }
  // the same messages with a marker in place of each text
  const texts: string[] = [];
  const marked = msgs.map((m) => {
    if (typeof m.content === "string") {
      texts.push(m.content);
      return { ...m, content: MARK(texts.length - 1) };
    }
    if (Array.isArray(m.content)) {
      return {
        ...m,
        content: m.content.map((p) => {
          if (p.type !== "text") return p;
          texts.push(p.text!);
          return { ...p, text: MARK(texts.length - 1) };
        }),
      };
    }
    return m;
  });
  return {
    msgs,
    add,
    template,
    source,
    warnings,
    texts,
    marked: texts.length === 0 ? undefined : marked,
  };
}

/** The rendered chat from the plan's renders: the text, and the marked text when there are texts. */
function finishChat(
  plan: ChatPlan,
  text: string,
  markedText: string | undefined,
): RenderedChat {
  const { texts, source, warnings } = plan;
  let segments: RenderedChat["segments"] | undefined;
  if (markedText === undefined) segments = [{ text, content: false }];
  else {
    segments = align(text, markedText, texts);
    if (!segments) {
      // Could not trace the template's changes to the message text: keep the
      // marked rendering with the texts as given for tokenizeChat to fall
      // back on when the real rendering would inject control tokens.
      segments = [];
      let last = 0;
      for (const m of markedText.matchAll(MARK_RE)) {
        if (m.index! > last) {
          segments.push({
            text: markedText.slice(last, m.index),
            content: false,
          });
        }
        segments.push({ text: texts[Number(m[1])], content: true });
        last = m.index! + m[0].length;
      }
      if (last < markedText.length) {
        segments.push({ text: markedText.slice(last), content: false });
      }
      return { text, template: source, warnings, segments, traced: false };
    }
  }
  return { text, template: source, warnings, segments, traced: true };
}

/**
 * Renders messages with the model's chat template (or `options.template`),
 * in this process: for templates the operator trusts (a guest's go through
 * {@linkcode renderChatIsolated}).
 * A model without a template gets ChatML with a warning (or a ConfigError
 * with `fallback: false`); a template that fails to render is a ConfigError
 * (field `chat_template`, or `messages` for the model's own).
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { renderChat } from "./chat.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * const r = renderChat(model, [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }]);
 * console.log(JSON.stringify(r.text)); // "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]"
 * console.log(r.segments.filter((s) => s.content).map((s) => s.text)); // ["Be brief.", "Hi"]
 * ```
 */
export function renderChat(
  model: Model,
  messages: readonly ChatMessage[],
  options: ChatOptions = {},
): RenderedChat {
  const plan = planChat(model, messages, options);
  const text = apply(model, plan.msgs, plan.template, plan.add);
  const marked = plan.marked &&
    apply(model, plan.marked, plan.template, plan.add);
  return finishChat(plan, text, marked);
}

/** How messages name the plan's template. */
const templateName = (plan: ChatPlan) =>
  plan.source === "model" ? "the model's chat template" : "the chat template";

/** The sandbox request for a plan: the template's source and the model's BOS/EOS. */
function isolatedRequest(model: Model, plan: ChatPlan): RenderRequest {
  const info = model.info;
  const piece = (t: number) => t >= 0 ? model.tokenToPiece(t, true) : "";
  return {
    template: plan.template ?? info.chat_template ?? CHATML_TEMPLATE,
    bos_token: piece(info.bos),
    eos_token: piece(info.eos),
    add_bos: info.add_bos,
    add_eos: info.add_eos,
    renders: [plan.msgs, ...(plan.marked ? [plan.marked] : [])].map((m) => ({
      messages: m,
      add_generation_prompt: plan.add,
    })),
  };
}

/**
 * {@linkcode renderChat} in a process of its own, under `limits` (default
 * {@linkcode TEMPLATE_LIMITS}): for every template a guest can choose or
 * bring inside a model. The result is the one `renderChat` gives; a template
 * that runs past a limit, or crashes, is a ConfigError (InvalidArgument)
 * naming the limit.
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { renderChatIsolated } from "./chat.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * const r = await renderChatIsolated(model, [{ role: "user", content: "Hi" }]);
 * console.log(r.text); // [INST] Hi [/INST]
 * ```
 */
export async function renderChatIsolated(
  model: Model,
  messages: readonly ChatMessage[],
  options: ChatOptions = {},
  limits: TemplateLimits = TEMPLATE_LIMITS,
): Promise<RenderedChat> {
  const plan = planChat(model, messages, options);
  const [text, marked] = await renderIsolated(
    isolatedRequest(model, plan),
    limits,
    templateName(plan),
  );
  return finishChat(plan, text, marked);
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
