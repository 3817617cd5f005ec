/**
 * Images and audio in the prompt, through llama.cpp's tools/mtmd: a
 * projector (`Mtmd`, an "mmproj" GGUF loaded for a model), media decoded
 * from file bytes (`MediaBitmap`), a prompt tokenized into text and media
 * chunks (`MediaChunks`), and the chunks evaluated into one sequence of a
 * `Context`. Media chunks can use more positions than tokens or fewer
 * (M-RoPE models): keep `nPast` from what `Mtmd.eval` returns, never from
 * token counts.
 *
 * @example
 * ```ts ignore
 * import { Context, Model, Mtmd, Sampler } from "./mod.ts";
 * using model = await Model.load("model.gguf");
 * using mtmd = await Mtmd.load(model, "mmproj.gguf");
 * using ctx = await Context.create(model, { nCtx: 2048 });
 * using image = await mtmd.bitmap(await Deno.readFile("cat.jpg"));
 * const prompt = model.applyChatTemplate([
 *   { role: "user", content: `${Mtmd.defaultMarker}What is this?` },
 * ]);
 * using chunks = mtmd.tokenize(prompt, [image]);
 * let pos = await mtmd.eval(ctx, chunks);
 * using sampler = Sampler.create(model, { temp: 0 });
 * for (let i = 0; i < 16; i++) {
 *   const { token } = await ctx.step(sampler, { pos: pos++ });
 *   if (model.isEog(token)) break;
 *   console.log(model.tokenToPiece(token));
 * }
 * ```
 * @module
 */

import { symbols } from "./_library.ts";
import {
  check,
  cstr,
  errorBuffer,
  errorMessage,
  readSized,
  utf8,
} from "./_buffers.ts";
import {
  MTMD_CHUNK_INFO,
  MTMD_PARAMS,
  readStruct,
  writeStruct,
} from "./_struct.ts";
import { LlamaError, Status } from "./errors.ts";
import { Lifetime } from "./_lifetime.ts";
import type { Context } from "./context.ts";
import type { Model } from "./model.ts";

/**
 * Options of `Mtmd.load`.
 *
 * @example
 * ```ts
 * import type { MtmdOptions } from "./mtmd.ts";
 * const options: MtmdOptions = { useGpu: false, nThreads: 2, maxImagePixels: 4096 * 4096 };
 * ```
 */
export interface MtmdOptions {
  /** Run the projector on the GPU when there is one (default true). */
  useGpu?: boolean;
  /** Run one encode at load to size the buffers (default false). */
  warmup?: boolean;
  /** Encoder threads (default 4). */
  nThreads?: number;
  /** Flash attention in the encoder (default "auto"). */
  flashAttn?: "auto" | "on" | "off";
  /** Dynamic-resolution projectors: fewest tokens per image (default: the projector's). */
  imageMinTokens?: number;
  /** Dynamic-resolution projectors: most tokens per image (default: the projector's). */
  imageMaxTokens?: number;
  /** Images with more pixels than this are refused before they are decoded; 0 = no limit (default 64 Mi). */
  maxImagePixels?: number;
  /** The text that stands for one image or clip (default `Mtmd.defaultMarker`; WasmEdge's GGML plugin uses "<image>"). */
  mediaMarker?: string;
}

/**
 * One chunk of a tokenized prompt.
 *
 * @example
 * ```ts ignore
 * for (let i = 0; i < chunks.count; i++) {
 *   const c: MediaChunk = chunks.chunk(i);
 *   console.log(c.type, c.nTokens, c.nPos, c.id ?? c.tokens?.length);
 * }
 * ```
 */
export interface MediaChunk {
  /** What it holds. */
  type: "text" | "image" | "audio";
  /** Tokens (KV cells) it takes. */
  nTokens: number;
  /** Positions it takes. */
  nPos: number;
  /** A text chunk's token ids. */
  tokens?: Int32Array;
  /** A media chunk's id: the SHA-256 (hex) of the file bytes it came from. */
  id?: string;
}

/**
 * Options of `Mtmd.eval`.
 *
 * @example
 * ```ts
 * import type { MtmdEvalOptions } from "./mtmd.ts";
 * const options: MtmdEvalOptions = { nPast: 0, seqId: 1, logitsLast: true };
 * ```
 */
export interface MtmdEvalOptions {
  /** Position of the first chunk in the sequence (default 0). */
  nPast?: number;
  /** The sequence (default 0). */
  seqId?: number;
  /** Tokens per decode (default: the context's nBatch). */
  nBatch?: number;
  /** Keep the logits of the range's last token, to sample next (default true). */
  logitsLast?: boolean;
  /** First chunk to evaluate (default 0). */
  first?: number;
  /** How many chunks (default: to the end). */
  count?: number;
}

/**
 * A failed `Mtmd.eval`: `nPast` is the position after the chunks that were
 * fully evaluated. Remove positions from `nPast` on from the sequence
 * before reusing it (part of the failed chunk may be in the cache).
 *
 * @example
 * ```ts ignore
 * try {
 *   await mtmd.eval(ctx, chunks);
 * } catch (e) {
 *   if (e instanceof MtmdEvalError) ctx.memorySeqRm(0, e.nPast, -1);
 *   throw e;
 * }
 * ```
 */
export class MtmdEvalError extends LlamaError {
  /** The position after what was fully evaluated. */
  readonly nPast: number;

  /** Creates the error. */
  constructor(code: Status, message: string, nPast: number) {
    super(code, message);
    this.name = "MtmdEvalError";
    this.nPast = nPast;
  }
}

const CHUNK_TYPES = ["text", "image", "audio"] as const;
const FLASH = { auto: -1, off: 0, on: 1 } as const;

/**
 * The params struct, and the marker string it points to (keep it alive
 * until the load returns).
 */
function mtmdParams(
  options: MtmdOptions,
): { params: Uint8Array<ArrayBuffer>; keep: Uint8Array | null } {
  const b = new Uint8Array(MTMD_PARAMS.size);
  const marker = options.mediaMarker === undefined
    ? null
    : cstr(options.mediaMarker);
  symbols().wnb_mtmd_default_params(b);
  const flag = (x?: boolean) => x === undefined ? undefined : Number(x);
  writeStruct(MTMD_PARAMS, b, {
    use_gpu: flag(options.useGpu),
    warmup: flag(options.warmup),
    n_threads: options.nThreads,
    flash_attn: options.flashAttn && FLASH[options.flashAttn],
    image_min_tokens: options.imageMinTokens,
    image_max_tokens: options.imageMaxTokens,
    max_image_pixels: options.maxImagePixels,
    media_marker: marker === null
      ? undefined
      : BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(marker))),
  });
  return { params: b, keep: marker };
}

function usage(what: string): LlamaError {
  return new LlamaError(Status.Usage, `${what} was closed`);
}

/**
 * A decoded image or audio clip. Free with `close()` (or `using`); chunks
 * made from it keep what they need, so it may be freed right after
 * `Mtmd.tokenize`.
 *
 * @example
 * ```ts ignore
 * using image = await mtmd.bitmap(await Deno.readFile("cat.png"));
 * console.log(image.width, image.height, image.id);
 * ```
 */
export class MediaBitmap {
  #ptr: Deno.PointerValue;

  /** @internal Made by `Mtmd.bitmap`. */
  constructor(ptr: Deno.PointerValue) {
    this.#ptr = ptr;
  }

  /** The native handle; throws if closed. */
  get pointer(): Deno.PointerObject {
    if (this.#ptr === null) throw usage("MediaBitmap");
    return this.#ptr;
  }

  /** Width in pixels (audio: samples). */
  get width(): number {
    return symbols().wnb_mtmd_bitmap_nx(this.pointer);
  }

  /** Height in pixels (audio: 1). */
  get height(): number {
    return symbols().wnb_mtmd_bitmap_ny(this.pointer);
  }

  /** Whether it is audio. */
  get isAudio(): boolean {
    return symbols().wnb_mtmd_bitmap_is_audio(this.pointer) !== 0;
  }

  /** The SHA-256 (hex) of the file bytes. */
  get id(): string {
    const p = this.pointer;
    return utf8(readSized((b, c) => symbols().wnb_mtmd_bitmap_id(p, b, c), 80));
  }

  /** Frees it. Safe to call twice. */
  close(): void {
    if (this.#ptr === null) return;
    symbols().wnb_mtmd_bitmap_free(this.#ptr);
    this.#ptr = null;
  }

  /** Frees it at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A prompt tokenized with its media: text runs and media runs, in order.
 * Independent of the projector once made. Free with `close()` (or `using`).
 *
 * @example
 * ```ts ignore
 * using chunks = mtmd.tokenize(`${Mtmd.defaultMarker}Describe it.`, [image]);
 * console.log(chunks.count, chunks.nTokens, chunks.nPos);
 * ```
 */
export class MediaChunks {
  #ptr: Deno.PointerValue;
  #life = new Lifetime(() => {
    symbols().wnb_mtmd_chunks_free(this.#ptr);
    this.#ptr = null;
  });

  /** @internal Made by `Mtmd.tokenize`. */
  constructor(ptr: Deno.PointerValue) {
    this.#ptr = ptr;
  }

  /** The native handle; throws if closed. */
  get pointer(): Deno.PointerObject {
    if (this.#ptr === null || this.#life.closing) throw usage("MediaChunks");
    return this.#ptr;
  }

  /** @internal Keeps it allocated during a non-blocking call. */
  pin(): () => void {
    void this.pointer;
    return this.#life.pin();
  }

  /** Number of chunks. */
  get count(): number {
    return symbols().wnb_mtmd_chunks_count(this.pointer);
  }

  /** Tokens (KV cells) of all chunks. */
  get nTokens(): number {
    return symbols().wnb_mtmd_chunks_n_tokens(this.pointer);
  }

  /** Positions of all chunks: what `Mtmd.eval` advances nPast by. */
  get nPos(): number {
    return symbols().wnb_mtmd_chunks_n_pos(this.pointer);
  }

  /** Chunk i: its type, sizes, and its tokens (text) or id (media). */
  chunk(i: number): MediaChunk {
    const p = this.pointer;
    const s = symbols();
    const info = new Uint8Array(MTMD_CHUNK_INFO.size);
    const err = errorBuffer();
    check(s.wnb_mtmd_chunk_info_get(p, i, info, err), err, "chunk info");
    const r = readStruct(MTMD_CHUNK_INFO, info);
    const type = CHUNK_TYPES[Number(r.type)] ?? "image";
    const out: MediaChunk = {
      type,
      nTokens: Number(r.n_tokens),
      nPos: Number(r.n_pos),
    };
    if (type === "text") {
      const tokens = new Int32Array(out.nTokens);
      s.wnb_mtmd_chunk_tokens(p, i, tokens, tokens.length);
      out.tokens = tokens;
    } else {
      out.id = utf8(readSized((b, c) => s.wnb_mtmd_chunk_id(p, i, b, c), 80));
    }
    return out;
  }

  /** Every chunk, in order. */
  chunks(): MediaChunk[] {
    return Array.from({ length: this.count }, (_, i) => this.chunk(i));
  }

  /** Frees it (after a running `Mtmd.eval` of it returns). Safe to call twice. */
  close(): void {
    this.#life.close();
  }

  /** Frees it at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A projector loaded for a model. Owned by the model (closing the model
 * closes it); free it with `close()` (or `using`).
 *
 * @example
 * ```ts ignore
 * using mtmd = await Mtmd.load(model, "mmproj.gguf", { useGpu: false });
 * console.log(mtmd.supportsVision, mtmd.supportsAudio, mtmd.usesMrope);
 * ```
 */
export class Mtmd {
  #ptr: Deno.PointerValue;
  #model: Model;
  #life = new Lifetime(() => this.#free());
  #evaluating = false;
  /** The projector file. */
  readonly path: string;

  private constructor(ptr: Deno.PointerValue, model: Model, path: string) {
    this.#ptr = ptr;
    this.#model = model;
    this.path = path;
    model.adopt(this);
  }

  /** The marker that stands for one image or clip in the prompt text ("<__media__>"). */
  static get defaultMarker(): string {
    return utf8(
      readSized((b, c) => symbols().wnb_mtmd_default_marker(b, c), 64),
    );
  }

  /**
   * Loads a projector for a model without blocking the event loop. Throws
   * LlamaError: FileNotFound, FileUnreadable, or InvalidModel with
   * llama.cpp's reason (unknown projector, missing tensor, truncated file,
   * an embedding width unlike the model's).
   */
  static async load(
    model: Model,
    path: string,
    options: MtmdOptions = {},
  ): Promise<Mtmd> {
    const s = symbols();
    const { params, keep } = mtmdParams(options);
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    const m = await model.use(async (mp) => {
      const st = await s.wnb_mtmd_load(cstr(path), mp, params, out, err);
      void keep; // the marker string lives until the load has returned
      check(st, err, `loading the projector ${path}`);
      return new Mtmd(Deno.UnsafePointer.create(out[0]), model, path);
    });
    if (model.closed) {
      m.close();
      void m.pointer;
    }
    return m;
  }

  /** Blocking `load`. */
  static loadSync(model: Model, path: string, options: MtmdOptions = {}): Mtmd {
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    const { params, keep } = mtmdParams(options);
    const st = symbols().wnb_mtmd_load_sync(
      cstr(path),
      model.pointer,
      params,
      out,
      err,
    );
    void keep;
    check(st, err, `loading the projector ${path}`);
    return new Mtmd(Deno.UnsafePointer.create(out[0]), model, path);
  }

  /** The native handle; throws if closed. */
  get pointer(): Deno.PointerObject {
    if (this.#ptr === null || this.#life.closing) {
      throw new LlamaError(
        Status.Usage,
        `Mtmd ${this.path} was closed (or its model was)`,
      );
    }
    return this.#ptr;
  }

  /** The model it was loaded for. */
  get model(): Model {
    return this.#model;
  }

  /** Whether it takes images. */
  get supportsVision(): boolean {
    return symbols().wnb_mtmd_support_vision(this.pointer) !== 0;
  }

  /** Whether it takes audio. */
  get supportsAudio(): boolean {
    return symbols().wnb_mtmd_support_audio(this.pointer) !== 0;
  }

  /** The sample rate audio is resampled to, or -1 without audio. */
  get audioSampleRate(): number {
    return symbols().wnb_mtmd_audio_sample_rate(this.pointer);
  }

  /** This projector's media marker (the `mediaMarker` option, or `Mtmd.defaultMarker`). */
  get marker(): string {
    const p = this.pointer;
    return utf8(readSized((b, c) => symbols().wnb_mtmd_marker(p, b, c), 64));
  }

  /** Whether the model uses M-RoPE (media positions differ from media tokens). */
  get usesMrope(): boolean {
    return symbols().wnb_mtmd_uses_mrope(this.pointer) !== 0;
  }

  async #use<T>(f: (p: Deno.PointerObject) => Promise<T>): Promise<T> {
    const p = this.pointer;
    const done = this.#life.pin();
    try {
      return await f(p);
    } finally {
      done();
    }
  }

  /**
   * Decodes an image (JPEG, PNG, BMP, GIF, ...) or, for audio projectors, a
   * WAV/MP3/FLAC file, without blocking the event loop. Undecodable bytes,
   * audio for a vision-only projector, or an image over `maxImagePixels`
   * throw LlamaError(InvalidArgument).
   */
  bitmap(bytes: Uint8Array): Promise<MediaBitmap> {
    const data = bytes.slice(); // the worker thread reads it: a private copy
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    return this.#use(async (p) => {
      const st = await symbols().wnb_mtmd_bitmap_from_buf(
        p,
        data,
        BigInt(data.length),
        out,
        err,
      );
      check(st, err, "decoding the media");
      return new MediaBitmap(Deno.UnsafePointer.create(out[0]));
    });
  }

  /** Blocking `bitmap`. */
  bitmapSync(bytes: Uint8Array<ArrayBuffer>): MediaBitmap {
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    const st = symbols().wnb_mtmd_bitmap_from_buf_sync(
      this.pointer,
      bytes,
      BigInt(bytes.length),
      out,
      err,
    );
    check(st, err, "decoding the media");
    return new MediaBitmap(Deno.UnsafePointer.create(out[0]));
  }

  /**
   * Tokenizes a prompt in which each `marker` stands for the
   * next bitmap (the counts must match, else LlamaError(InvalidArgument)).
   * The projector's own image begin/end tokens are added around each image.
   * `addSpecial` (default true) adds BOS as at a conversation's start;
   * `parseSpecial` (default true) parses special-token text.
   */
  tokenize(
    text: string,
    bitmaps: readonly MediaBitmap[] = [],
    options: { addSpecial?: boolean; parseSpecial?: boolean } = {},
  ): MediaChunks {
    const bytes = new TextEncoder().encode(text);
    const src = new Uint8Array(bytes.length + 1);
    src.set(bytes);
    const ptrs = new BigUint64Array(Math.max(1, bitmaps.length));
    bitmaps.forEach((b, i) => {
      ptrs[i] = BigInt(Deno.UnsafePointer.value(b.pointer));
    });
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    const st = symbols().wnb_mtmd_tokenize_sync(
      this.pointer,
      src,
      bytes.length,
      ptrs,
      bitmaps.length,
      options.addSpecial ?? true ? 1 : 0,
      options.parseSpecial ?? true ? 1 : 0,
      out,
      err,
    );
    check(st, err, "tokenizing the prompt with its media");
    return new MediaChunks(Deno.UnsafePointer.create(out[0]));
  }

  /**
   * Evaluates chunks into one sequence of `ctx` (a context of this
   * projector's model) without blocking the event loop: text is decoded,
   * each media chunk encoded by the projector and its embeddings decoded.
   * Returns the position after the last chunk (the next token's position).
   * Throws MtmdEvalError (NoKvSpace, Cancelled, Decode, Internal) with the
   * position reached. One eval at a time per projector and per context
   * (else LlamaError(Usage)). To sample next, the range must end with text
   * (chat templates always put text after the media).
   */
  eval(
    ctx: Context,
    chunks: MediaChunks,
    options: MtmdEvalOptions = {},
  ): Promise<number> {
    if (this.#evaluating) {
      return Promise.reject(
        new LlamaError(
          Status.Usage,
          "Mtmd is busy with another eval (one at a time per projector); await it first",
        ),
      );
    }
    const nPast = options.nPast ?? 0;
    const newPast = new Int32Array([nPast]);
    const err = errorBuffer();
    const cp = chunks.pointer;
    this.#evaluating = true;
    return this.#use((mp) => {
      const doneChunks = chunks.pin();
      return ctx.use(async (xp) => {
        const st = await symbols().wnb_mtmd_eval(
          mp,
          xp,
          cp,
          options.first ?? 0,
          options.count ?? -1,
          nPast,
          options.seqId ?? 0,
          options.nBatch ?? 0,
          options.logitsLast ?? true ? 1 : 0,
          newPast,
          err,
        );
        if (st !== 0) {
          throw new MtmdEvalError(
            st as Status,
            errorMessage(err) || `evaluating the chunks failed (${st})`,
            newPast[0],
          );
        }
        return newPast[0];
      }).finally(doneChunks);
    }).finally(() => {
      this.#evaluating = false;
    });
  }

  /** Frees the projector (after a running call returns). Safe to call twice. */
  close(): void {
    this.#life.close();
  }

  #free(): void {
    if (this.#ptr === null) return;
    symbols().wnb_mtmd_free(this.#ptr);
    this.#ptr = null;
    this.#model.release(this);
  }

  /** Frees it at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }
}
