/**
 * Rendering a chat with a Jinja template (the model's, an override, or
 * llama.cpp's ChatML fallback), in this process or in the template sandbox,
 * and tracing which spans of the prompt are message text: the template is
 * rendered twice, once with a unique marker in place of each text, and the
 * two renderings are aligned.
 *
 * @example
 * ```ts
 * import { Model } from "../../bindings/mod.ts";
 * import { ensureModel } from "../../gguf/mod.ts";
 * import { renderChat } from "./_chat_render.ts";
 * using model = await Model.load((await ensureModel("tiny")).path);
 * console.log(renderChat(model, [{ role: "user", content: "Hi" }]).text); // [INST] Hi [/INST]
 * ```
 * @module
 */

import { LlamaError, type Model } from "../../bindings/mod.ts";
import { ConfigError } from "../errno.ts";
import {
  renderIsolated,
  type RenderRequest,
  TEMPLATE_LIMITS,
  type TemplateLimits,
} from "./_chat_sandbox.ts";
import { type ChatMessage, parseMessages } from "./_chat_messages.ts";

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
