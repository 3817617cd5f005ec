/**
 * A prompt with images (or audio), as WasmEdge's GGML plugin takes them:
 * inline `<img src="data:image/...;base64,...">` tags in the text, and the
 * `image` key's file, each standing at a `<image>` marker (in front of the
 * prompt when it has none, as llama-mtmd-cli does). Several per prompt. The
 * prompt is tokenized by the model's projector (llama.cpp's mtmd) into text
 * and media chunks, flattened into one token array for the scheduler in
 * which each media chunk's tokens are placeholders: negative ids derived
 * from the media's SHA-256, so the same image in the next turn matches in
 * the prompt cache and is not encoded again.
 *
 * @example
 * ```ts
 * import { extractInlineMedia } from "./_media_prompt.ts";
 * const r = extractInlineMedia('Look: <img src="data:image/png;base64,AAEC"> ok', 1 << 20);
 * console.log(r.text, r.media[0].bytes); // "Look: <image> ok" Uint8Array(3) [0, 1, 2]
 * ```
 * @module
 */

import {
  LlamaError,
  type MediaBitmap,
  type MediaChunks,
  type Mtmd,
  Status,
} from "../../bindings/mod.ts";
import type { MediaSpan, PromptMedia } from "../engine/_task.ts";
import { Errno, WasiNnError } from "../errno.ts";

/** The media marker of WasmEdge's GGML plugin (and of the projectors the host loads). */
export const MEDIA_MARKER = "<image>";

/** One image or clip of a prompt: its bytes, and where it came from (for messages). */
export interface MediaInput {
  bytes: Uint8Array;
  source: string;
}

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
    if (size > maxBytes) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `${source} is ${
          (size / (1 << 20)).toFixed(1)
        } MiB; the host takes at most ${
          (maxBytes / (1 << 20)).toFixed(1)
        } MiB (host key max_image_mb)`,
      );
    }
    const bin = atob(clean.padEnd(Math.ceil(clean.length / 4) * 4, "="));
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    media.push({ bytes, source });
    return MEDIA_MARKER;
  });
  return { text: out, media };
}

/** A media span and the chunk it is. */
interface ChunkSpan extends MediaSpan {
  chunk: number;
}

/** A prompt's media for the scheduler, and its tokens; `close()` frees the chunks. */
export interface MediaPrompt {
  tokens: Int32Array;
  media: PromptMedia;
  close(): void;
}

/** Placeholder ids of a media chunk: negative, from its id and the index in it. */
function placeholders(id: string, n: number): Int32Array {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  }
  const out = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    let x = (h ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    x = (x ^ (x >>> 16)) >>> 0;
    out[k] = -1 - (x & 0x3fffffff);
  }
  return out;
}

/**
 * Tokenizes `text` with `media` through the projector: decodes each (a
 * corrupt or unsupported file is InvalidArgument naming it), matches them
 * to the markers, and flattens the chunks. Projectors whose media take
 * other position counts than tokens (M-RoPE: qwen2vl, ...) are
 * UnsupportedOperation here.
 */
export async function mediaPrompt(
  mtmd: Mtmd,
  text: string,
  media: MediaInput[],
  options: { addSpecial?: boolean; parseSpecial?: boolean } = {},
): Promise<MediaPrompt> {
  if (mtmd.usesMrope) {
    throw new WasiNnError(
      Errno.UnsupportedOperation,
      `the projector ${mtmd.path} uses M-RoPE (qwen2vl-style positions): images with it are not supported by this host yet; a llava- or gemma3-style projector works`,
    );
  }
  const markers = text.split(MEDIA_MARKER).length - 1;
  if (markers === 0) text = MEDIA_MARKER.repeat(media.length) + text;
  else if (markers !== media.length) {
    throw new WasiNnError(
      Errno.InvalidArgument,
      `the prompt has ${markers} ${MEDIA_MARKER} marker(s) for ${media.length} image(s): put one marker where each image goes (or none, for all in front)`,
    );
  }
  const bitmaps: MediaBitmap[] = [];
  let chunks: MediaChunks;
  try {
    for (const m of media) {
      try {
        bitmaps.push(await mtmd.bitmap(m.bytes));
      } catch (e) {
        throw new WasiNnError(
          Errno.InvalidArgument,
          `${m.source}: ${
            (e as Error).message
          } (an image llama.cpp decodes: JPEG, PNG, BMP, GIF, ...${
            mtmd.supportsAudio ? "; audio: WAV, MP3, FLAC" : ""
          })`,
          { cause: e },
        );
      }
    }
    try {
      chunks = mtmd.tokenize(text, bitmaps, options);
    } catch (e) {
      throw new WasiNnError(
        Errno.InvalidArgument,
        `the prompt with its media: ${(e as Error).message}`,
        { cause: e },
      );
    }
  } finally {
    for (const b of bitmaps) b.close();
  }
  try {
    const parts: Int32Array[] = [];
    const spans: ChunkSpan[] = [];
    let at = 0;
    for (let i = 0; i < chunks.count; i++) {
      const c = chunks.chunk(i);
      if (c.type === "text") parts.push(c.tokens!);
      else {
        if (c.nPos !== c.nTokens) {
          throw new WasiNnError(
            Errno.UnsupportedOperation,
            `a ${c.type} chunk takes ${c.nPos} positions for ${c.nTokens} tokens: not supported by this host yet`,
          );
        }
        parts.push(placeholders(c.id ?? `${i}`, c.nTokens));
        spans.push({ start: at, end: at + c.nTokens, chunk: i });
      }
      at += c.nTokens;
    }
    const tokens = new Int32Array(at);
    let o = 0;
    for (const p of parts) {
      tokens.set(p, o);
      o += p.length;
    }
    const held = chunks;
    return {
      tokens,
      media: {
        spans,
        eval: async (ctx, span, seq, logitsLast) => {
          const { chunk } = span as ChunkSpan;
          try {
            await mtmd.eval(ctx, held, {
              first: chunk,
              count: 1,
              nPast: span.start,
              seqId: seq,
              logitsLast,
            });
          } catch (e) {
            if (e instanceof LlamaError && e.code === Status.NoKvSpace) throw e;
            throw new WasiNnError(
              Errno.RuntimeError,
              `encoding the image failed: ${(e as Error).message}`,
              { cause: e },
            );
          }
        },
      },
      close: () => held.close(),
    };
  } catch (e) {
    chunks.close();
    throw e;
  }
}
