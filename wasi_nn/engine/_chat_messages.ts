/**
 * Chat messages as guests send them: OpenAI-style `{role, content}` objects,
 * validated with errors that name the field (`messages[i].content`), and
 * told apart from a raw prompt in a `set_input` text.
 *
 * @example
 * ```ts
 * import { parseMessages } from "./_chat_messages.ts";
 * console.log(parseMessages('[{"role":"user","content":"Hi"}]')[0].role); // user
 * ```
 * @module
 */

import { ConfigError } from "../errno.ts";
import { jsonDepth } from "./_json_depth.ts";

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
