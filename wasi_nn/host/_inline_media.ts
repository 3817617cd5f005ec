/**
 * Media inline in a prompt, as WasmEdge's llava-base64 guests send them:
 * `<img src="data:image/...;base64,...">` tags, each replaced by the
 * `<image>` marker where it stood.
 *
 * @example
 * ```ts
 * import { extractInlineMedia } from "./_inline_media.ts";
 * const r = extractInlineMedia('Look: <img src="data:image/png;base64,AAEC"> ok', 1 << 20);
 * console.log(r.text, r.media[0].bytes); // "Look: <image> ok" Uint8Array(3) [0, 1, 2]
 * ```
 * @module
 */

import { MEDIA_MARKER, type MediaInput } from "../engine/_media_prompt.ts";
import { Errno, WasiNnError } from "../errno.ts";
import { mediaTooBig } from "./_guest_files.ts";

/** `<img src="data:image/TYPE;base64,PAYLOAD">` (audio too). */
const INLINE = /<img src="data:(?:image|audio)\/[^";]*;base64,([^"]*)">/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Replaces every inline base64 media tag of `text` by the marker and
 * returns the decoded bytes, in order. Malformed base64 or a payload over
 * `maxBytes` is InvalidArgument.
 */
export function extractInlineMedia(
  text: string,
  maxBytes: number,
): { text: string; media: MediaInput[] } {
  const media: MediaInput[] = [];
  const out = text.replace(INLINE, (_tag, payload: string) => {
    const n = media.length + 1;
    const source = `inline image ${n}`;
    const clean = payload.replace(/\s+/g, "");
    if (!BASE64.test(clean) || clean.length % 4 === 1) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `${source}: its data is not valid base64 (A-Z a-z 0-9 + / and = padding)`,
      );
    }
    const size = Math.floor(clean.length * 3 / 4) -
      (clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0);
    if (size > maxBytes) throw mediaTooBig(source, size, maxBytes);
    const bytes = Uint8Array.fromBase64(
      clean.padEnd(Math.ceil(clean.length / 4) * 4, "="),
    );
    media.push({ bytes, source });
    return MEDIA_MARKER;
  });
  return { text: out, media };
}
