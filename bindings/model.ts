/**
 * `Model`: a loaded GGUF model (weights and tokenizer). It owns the native
 * model and every context and sampler made from it: `close()` frees them all.
 *
 * @example
 * ```ts ignore
 * import { Model } from "./model.ts";
 * using model = await Model.load(".cache/models/tiny.gguf");
 * const tokens = model.tokenize("Hello world", { addSpecial: true });
 * console.log(tokens.length, model.detokenize(tokens));
 * ```
 * @module
 */

import { symbols } from "./_library.ts";
import {
  check,
  cstr,
  errorBuffer,
  readSized,
  readSizedChecked,
  utf8,
} from "./_buffers.ts";
import { MODEL_PARAMS, readStruct, writeStruct } from "./_struct.ts";
import { type PlacementOptions, writePlacement } from "./_model_params.ts";
import { LlamaError, Status } from "./errors.ts";
import { Lifetime } from "./_lifetime.ts";
import type { ModelInfo } from "./types.ts";

/**
 * Options of `Model.load`. `nGpuLayers` (default: llama.cpp's, all),
 * `mainGpu`, `splitMode`, `tensorSplit`, `rpcServers` and `rpcTimeoutMs`
 * place the weights on devices ({@linkcode PlacementOptions}).
 */
export interface ModelLoadOptions extends PlacementOptions {
  /** Memory-map the file (default true). */
  useMmap?: boolean;
  /** Lock the weights in RAM. */
  useMlock?: boolean;
  /** Load only the tokenizer. */
  vocabOnly?: boolean;
  /** Validate tensor data while loading. */
  checkTensors?: boolean;
  /** Called with 0..1 while loading (polled, about every 50 ms). */
  onProgress?: (fraction: number) => void;
  /** Aborts the load. */
  signal?: AbortSignal;
}

/** Anything a model owns and frees before itself. */
export interface Child {
  /** Frees the native object. */
  close(): void;
}

/** A loaded model. Use `Model.load`; free with `close()` (or `using`). */
export class Model {
  #ptr: Deno.PointerValue;
  #children = new Set<Child>();
  /** Freed once closed, no call is in flight and every child is freed. */
  #life = new Lifetime(() => this.#free(), () => this.#children.size === 0);
  #info?: ModelInfo;
  #eog?: Set<number>;
  #pieces = new Map<number, Uint8Array>();
  #piecesPlain = new Map<number, Uint8Array>();
  /** The file it was loaded from. */
  readonly path: string;

  private constructor(ptr: Deno.PointerValue, path: string) {
    this.#ptr = ptr;
    this.path = path;
  }

  /** Loads a GGUF file without blocking the event loop. Throws LlamaError with the cause. */
  static async load(
    path: string,
    options: ModelLoadOptions = {},
  ): Promise<Model> {
    const s = symbols();
    const params = modelParams(options);
    const progress = new Uint8Array(8);
    const pview = new DataView(progress.buffer);
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    const abort = () => pview.setInt32(4, 1, true);
    if (options.signal?.aborted) {
      throw new LlamaError(Status.Cancelled, `model load cancelled: ${path}`);
    }
    options.signal?.addEventListener("abort", abort, { once: true });
    let last = -1;
    const timer = options.onProgress
      ? setInterval(() => {
        const p = pview.getFloat32(0, true);
        if (p !== last) {
          last = p;
          options.onProgress!(p);
        }
      }, 50)
      : undefined;
    try {
      const status = await s.wnb_model_load(
        cstr(path),
        params,
        Deno.UnsafePointer.of(progress),
        out,
        err,
      );
      check(status, err, `loading ${path}`);
    } finally {
      if (timer !== undefined) clearInterval(timer);
      options.signal?.removeEventListener("abort", abort);
    }
    options.onProgress?.(1);
    return new Model(Deno.UnsafePointer.create(out[0]), path);
  }

  /**
   * Loads a GGUF file with a blocking call (for scripts and tools that do
   * not need the event loop meanwhile). No progress or cancel.
   */
  static loadSync(path: string, options: ModelLoadOptions = {}): Model {
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    const status = symbols().wnb_model_load_sync(
      cstr(path),
      modelParams(options),
      null,
      out,
      err,
    );
    check(status, err, `loading ${path}`);
    return new Model(Deno.UnsafePointer.create(out[0]), path);
  }

  /** The native handle; throws if closed. For the other binding classes. */
  get pointer(): Deno.PointerObject {
    if (this.#ptr === null || this.#life.closing) {
      throw new LlamaError(
        Status.Usage,
        `Model ${this.path} was closed; load it again`,
      );
    }
    return this.#ptr;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#life.closing;
  }

  /**
   * Runs a non-blocking native call that uses this model's pointer: the
   * model is not freed before the call returns, even if closed meanwhile.
   */
  async use<T>(f: (ptr: Deno.PointerObject) => Promise<T>): Promise<T> {
    const p = this.pointer;
    const done = this.#life.pin();
    try {
      return await f(p);
    } finally {
      done();
    }
  }

  /** Registers a context or sampler to be closed with this model. */
  adopt(child: Child): void {
    this.#children.add(child);
  }

  /** Forgets a child that closed itself. */
  release(child: Child): void {
    this.#children.delete(child);
    this.#life.settle();
  }

  /** Architecture, sizes, special tokens, chat template and all metadata. */
  get info(): ModelInfo {
    if (!this.#info) {
      const p = this.pointer;
      const bytes = readSized(
        (b, c) => symbols().wnb_model_info_json(p, b, c),
        1 << 16,
      );
      this.#info = JSON.parse(utf8(bytes)) as ModelInfo;
    }
    return this.#info;
  }

  /** Vocabulary size. */
  get nVocab(): number {
    return symbols().wnb_model_n_vocab(this.pointer);
  }

  /** Embedding width. */
  get nEmbd(): number {
    return symbols().wnb_model_n_embd(this.pointer);
  }

  /** The context length the model was trained with. */
  get nCtxTrain(): number {
    return symbols().wnb_model_n_ctx_train(this.pointer);
  }

  /** Whether a token ends generation (EOS, EOT, ...). */
  isEog(token: number): boolean {
    if (this.#ptr === null) void this.pointer; // the use-after-close error
    this.#eog ??= new Set(this.info.eog);
    return this.#eog.has(token);
  }

  /**
   * Whether special-token parsing drops the whitespace around a token
   * (llama.cpp's LSTRIP / RSTRIP attributes; Phi-3's control tokens strip
   * what follows them).
   */
  tokenStrip(token: number): { before: boolean; after: boolean } {
    const attr = symbols().wnb_token_attr(this.pointer, token);
    return { before: (attr & (1 << 7)) !== 0, after: (attr & (1 << 8)) !== 0 };
  }

  /**
   * Text to tokens. `addSpecial` adds BOS/EOS as the model wants;
   * `parseSpecial` turns control-token text (e.g. "<|im_start|>") into tokens.
   */
  tokenize(
    text: string | Uint8Array,
    options: { addSpecial?: boolean; parseSpecial?: boolean } = {},
  ): Int32Array<ArrayBuffer> {
    const p = this.pointer;
    const bytes = typeof text === "string"
      ? new TextEncoder().encode(text)
      : text;
    const src = new Uint8Array(bytes.length + 1);
    src.set(bytes);
    const add = options.addSpecial ?? true ? 1 : 0;
    const special = options.parseSpecial ?? false ? 1 : 0;
    let out: Int32Array<ArrayBuffer> = new Int32Array(bytes.length + 8);
    let n = symbols().wnb_tokenize(
      p,
      src,
      bytes.length,
      out,
      out.length,
      add,
      special,
    );
    if (n < 0) {
      out = new Int32Array(-n);
      n = symbols().wnb_tokenize(
        p,
        src,
        bytes.length,
        out,
        out.length,
        add,
        special,
      );
    }
    return out.slice(0, Math.max(0, n));
  }

  /** The bytes of one token's piece (a piece may be part of a UTF-8 character). */
  tokenBytes(token: number, special = true): Uint8Array {
    const p = this.pointer;
    // Pieces never change: cache them (the generation loop asks once per token).
    const cache = special ? this.#pieces : this.#piecesPlain;
    const hit = cache.get(token);
    if (hit) return hit.slice();
    const bytes = readSized(
      (b, c) => symbols().wnb_token_to_piece(p, token, b, c, special ? 1 : 0),
      64,
    ).slice();
    cache.set(token, bytes);
    return bytes.slice();
  }

  /** One token's piece as text. */
  tokenToPiece(token: number, special = true): string {
    return utf8(this.tokenBytes(token, special));
  }

  /** Tokens back to text. */
  detokenize(
    tokens: ArrayLike<number>,
    options: { removeSpecial?: boolean; unparseSpecial?: boolean } = {},
  ): string {
    const p = this.pointer;
    const arr = Int32Array.from(tokens);
    const rs = options.removeSpecial ?? false ? 1 : 0;
    const us = options.unparseSpecial ?? true ? 1 : 0;
    return utf8(readSized(
      (b, c) => symbols().wnb_detokenize(p, arr, arr.length, b, c, rs, us),
      arr.length * 8 + 16,
    ));
  }

  /**
   * Renders chat messages with the model's Jinja chat template (or `template`).
   * Throws LlamaError(Template) when there is no usable template. The template
   * runs in this process without limits: for templates you trust (the
   * WASI-NN host renders guests' in a sandbox, `renderChatIsolated`).
   */
  applyChatTemplate(
    messages: readonly { role: string; content: string }[],
    options: { addGenerationPrompt?: boolean; template?: string } = {},
  ): string {
    const p = this.pointer;
    const err = errorBuffer();
    const msgs = cstr(JSON.stringify(messages));
    const tmpl = cstr(options.template ?? "");
    const add = options.addGenerationPrompt ?? true ? 1 : 0;
    const out = readSizedChecked(
      (b, c) => symbols().wnb_chat_apply(p, tmpl, msgs, add, b, c, err),
      err,
      "applying the chat template",
    );
    return utf8(out);
  }

  /**
   * Frees the model and everything made from it. Contexts with a call in
   * flight abort it, and the model is freed only once they have returned.
   * Safe to call twice.
   */
  close(): void {
    if (this.#life.closing) return;
    for (const child of [...this.#children]) child.close();
    this.#life.close();
  }

  #free(): void {
    if (this.#ptr === null) return;
    symbols().wnb_model_free(this.#ptr);
    this.#ptr = null;
  }

  /** `using model = await Model.load(...)` frees it at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function modelParams(options: ModelLoadOptions): Uint8Array<ArrayBuffer> {
  const params = new Uint8Array(MODEL_PARAMS.size);
  symbols().wnb_model_default_params(params);
  writePlacement(params, options);
  const flag = (x?: boolean) => x === undefined ? undefined : Number(x);
  writeStruct(MODEL_PARAMS, params, {
    use_mmap: flag(options.useMmap),
    use_mlock: flag(options.useMlock),
    vocab_only: flag(options.vocabOnly),
    check_tensors: flag(options.checkTensors),
  });
  return params;
}

/** Converts a JSON schema to a GBNF grammar with llama.cpp's converter. */
export function jsonSchemaToGrammar(schema: unknown): string {
  const err = errorBuffer();
  const src = cstr(
    typeof schema === "string" ? schema : JSON.stringify(schema),
  );
  return utf8(readSizedChecked(
    (b, c) => symbols().wnb_json_schema_to_grammar(src, b, c, err),
    err,
    "converting the JSON schema",
  ));
}

/** Reads llama.cpp's default model parameters (for docs and config defaults). */
export function defaultModelParams(): Record<string, number | bigint> {
  const b = new Uint8Array(MODEL_PARAMS.size);
  symbols().wnb_model_default_params(b);
  return readStruct(MODEL_PARAMS, b);
}
