/**
 * The size limits of one config layer. They are checked before the text is
 * decoded or parsed, so that a guest cannot make the host spend seconds (and
 * block the event loop) on a config: the JSON text at most
 * {@linkcode MAX_CONFIG_BYTES}, at most {@linkcode MAX_CONFIG_KEYS} keys
 * counted over every level of sections, and a "did you mean" search for the
 * first {@linkcode MAX_KEY_SUGGESTIONS} unknown keys only.
 *
 * The limits are far above any real config: the key table has about 300
 * spellings, and grammars, JSON schemas and chat templates (the big strings)
 * are a few KiB to a few hundred KiB. `parseConfig` (config.ts) applies them.
 *
 * @example
 * ```ts
 * import { MAX_CONFIG_BYTES, MAX_CONFIG_KEYS } from "./_limits.ts";
 * console.log(MAX_CONFIG_BYTES / 1048576, MAX_CONFIG_KEYS); // 4 1024
 * ```
 * @module
 */

/** The largest config layer, in UTF-8 bytes of its JSON text (4 MiB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** The most keys in one config layer, top-level and inside sections together. */
export const MAX_CONFIG_KEYS = 1024;

/** Unknown keys that get a warning (and a "did you mean") of their own; the rest are summed up in one. */
export const MAX_KEY_SUGGESTIONS = 16;

/** Keys longer than this are shown truncated in messages. */
export const MAX_KEY_SHOWN = 64;

/**
 * A key as shown in messages: at most {@linkcode MAX_KEY_SHOWN} characters.
 *
 * @example
 * ```ts
 * import { shortKey } from "./_limits.ts";
 * console.log(shortKey("x".repeat(100)).length); // 65
 * ```
 */
export function shortKey(key: string): string {
  return key.length > MAX_KEY_SHOWN ? `${key.slice(0, MAX_KEY_SHOWN)}…` : key;
}

/**
 * The UTF-8 length of a string, without encoding it.
 *
 * @example
 * ```ts
 * import { utf8Length } from "./_limits.ts";
 * console.log(utf8Length("héllo"), utf8Length("😀")); // 6 4
 * ```
 */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4; // a surrogate pair
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
