/**
 * A prompt with images (or audio) through a model's projector (llama.cpp's
 * mtmd): the projector loaded for a model with WasmEdge's `<image>` marker,
 * and a prompt tokenized into text and media chunks, flattened into one
 * token array for the scheduler in which each media chunk's tokens are
 * placeholders: negative ids derived from the media's SHA-256, so the same
 * image in the next turn matches in the prompt cache and is not encoded
 * again. Each media span says how many positions it takes (fewer than its
 * tokens with M-RoPE, qwen2vl).
 *
 * @example
 * ```ts ignore
 * import { loadProjector, mediaPrompt } from "./_media_prompt.ts";
 * const mtmd = await loadProjector(model, "mmproj.gguf", { nThreads: 2, useGpu: false });
 * using p = await mediaPrompt(mtmd, "<image>What is it?", [{ bytes, source: "cat.jpg" }]);
 * console.log(p.tokens.length, p.media.spans);
 * ```
 * @module
 */

import {
  LlamaError,
  type MediaBitmap,
  type MediaChunks,
  type Model,
  Mtmd,
  Status,
} from "../../bindings/mod.ts";
import type { MediaSpan, PromptMedia } from "./_task.ts";
import { Errno, WasiNnError } from "../errno.ts";

/** The media marker of WasmEdge's GGML plugin (and of the projectors the host loads). */
export const MEDIA_MARKER = "<image>";

/** One image or clip of a prompt: its bytes, and where it came from (for messages). */
export interface MediaInput {
  bytes: Uint8Array;
  source: string;
}

/** How a projector is loaded. */
export interface ProjectorOptions {
  /** Encoder threads. */
  nThreads: number;
  /** On the GPU when there is one. */
  useGpu: boolean;
}

/**
 * Loads the projector `path` for `model` (marker `<image>`). A file mtmd
 * refuses is NotFound (missing) or InvalidArgument, naming it.
 */
export async function loadProjector(
  model: Model,
  path: string,
  o: ProjectorOptions,
): Promise<Mtmd> {
  try {
    return await Mtmd.load(model, path, {
      mediaMarker: MEDIA_MARKER,
      nThreads: o.nThreads,
      useGpu: o.useGpu,
      warmup: false,
    });
  } catch (e) {
    throw new WasiNnError(
      e instanceof LlamaError && e.code === Status.FileNotFound
        ? Errno.NotFound
        : Errno.InvalidArgument,
      `mmproj ${path}: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** A media span and the chunk it is. */
interface ChunkSpan extends MediaSpan {
  chunk: number;
}

/** A prompt's media for the scheduler, and its tokens; `close()` frees the chunks. */
export interface MediaPrompt {
  /** The prompt's tokens, media placeholders included. */
  tokens: Int32Array;
  /** Where the media are, and how each is evaluated. */
  media: PromptMedia;
  /** Frees the chunks. */
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
 * to the markers, and flattens the chunks (each media span says how many
 * positions it takes: fewer than its tokens with M-RoPE, qwen2vl).
 */
export async function mediaPrompt(
  mtmd: Mtmd,
  text: string,
  media: MediaInput[],
  options: { addSpecial?: boolean; parseSpecial?: boolean } = {},
): Promise<MediaPrompt> {
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
        parts.push(placeholders(c.id ?? `${i}`, c.nTokens));
        spans.push({ start: at, end: at + c.nTokens, nPos: c.nPos, chunk: i });
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
        eval: async (ctx, span, seq, pos, logitsLast) => {
          const { chunk } = span as ChunkSpan;
          try {
            await mtmd.eval(ctx, held, {
              first: chunk,
              count: 1,
              nPast: pos,
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
