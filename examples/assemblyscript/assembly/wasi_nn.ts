// @ts-nocheck: AssemblyScript (u32, usize, load<T>), compiled by asc, not by tsc.
/**
 * Friendly wrappers over the raw `wasi_ephemeral_nn` imports.
 *
 * Conventions, as in the C header (`examples/c/wasi_nn.h`):
 *   - Calls that produce an object (`Graph.load`, `Context.create`,
 *     `getOutput`) return it, or `null` on failure; the errno is then in
 *     `lastErrno`.
 *   - Calls that only succeed or fail return the errno (0 = success), so a
 *     guest can tell EndOfSequence (100) from a real error.
 *
 * AssemblyScript cannot catch exceptions (a `throw` aborts the module), so
 * errors are values here, never exceptions.
 *
 *     const graph = Graph.load("default", '{"n-predict":32}');
 *     const ctx = Context.create(graph!);
 *     ctx!.setPrompt("Once upon a time");
 *     ctx!.compute();
 *     process.stdout.write(ctx!.getText(OUTPUT_TEXT)!);
 */
import {
  compute,
  compute_single,
  finalize_execution_context,
  fini_single,
  get_output,
  get_output_single,
  init_execution_context,
  load_by_name,
  load_by_name_with_config,
  set_input,
  unload,
} from "./wasi_ephemeral_nn.ts";

/** The errnos of the ABI (0-8 from the spec, 100-103 GGML extensions). */
export enum Errno {
  Success = 0,
  InvalidArgument = 1,
  InvalidEncoding = 2,
  MissingMemory = 3,
  Busy = 4,
  RuntimeError = 5,
  UnsupportedOperation = 6,
  TooLarge = 7,
  NotFound = 8,
  EndOfSequence = 100,
  ContextFull = 101,
  PromptTooLong = 102,
  ModelNotFound = 103,
}

/** The name of an errno, for messages. */
export function errnoName(errno: i32): string {
  switch (errno) {
    case Errno.Success:
      return "Success";
    case Errno.InvalidArgument:
      return "InvalidArgument";
    case Errno.InvalidEncoding:
      return "InvalidEncoding";
    case Errno.MissingMemory:
      return "MissingMemory";
    case Errno.Busy:
      return "Busy";
    case Errno.RuntimeError:
      return "RuntimeError";
    case Errno.UnsupportedOperation:
      return "UnsupportedOperation";
    case Errno.TooLarge:
      return "TooLarge";
    case Errno.NotFound:
      return "NotFound";
    case Errno.EndOfSequence:
      return "EndOfSequence";
    case Errno.ContextFull:
      return "ContextFull";
    case Errno.PromptTooLong:
      return "PromptTooLong";
    case Errno.ModelNotFound:
      return "ModelNotFound";
    default:
      return "Unknown";
  }
}

/** Input index of the prompt (UTF-8 text). */
export const INPUT_PROMPT: u32 = 0;
/** Input index of a config JSON object. */
export const INPUT_CONFIG: u32 = 1;
/** Output index of the generated text (or embedding JSON). */
export const OUTPUT_TEXT: u32 = 0;
/** Output index of the metadata JSON (token counts, llama.cpp build). */
export const OUTPUT_METADATA: u32 = 1;
/** Tensor type of text. */
export const TENSOR_TYPE_U8: u32 = 3;

/** The errno of the last call that returned null. */
export let lastErrno: i32 = Errno.Success;

// Static scratch memory for the out-pointers and the tensor record. The
// host writes handles and byte counts here as little-endian u32.
const outU32: usize = memory.data(4, 4);
const dims: usize = memory.data(4, 4);
const tensor: usize = memory.data(20, 4);

/** A loaded model. */
export class Graph {
  /** The host's handle for it. */
  handle: u32;

  constructor(handle: u32) {
    this.handle = handle;
  }

  /**
   * Loads the model the host preloaded as `name` (usually argv[1], e.g.
   * "default"). `config` is a JSON object such as '{"n-predict":32}'; empty
   * means no config. Returns null on failure: NotFound (8) for an unknown
   * name, ModelNotFound (103) for a missing file, InvalidEncoding (2) for
   * malformed JSON, InvalidArgument (1) for a key of the wrong type.
   */
  static load(name: string, config: string = ""): Graph | null {
    const nameBytes = String.UTF8.encode(name);
    let errno: i32;
    if (config.length == 0) {
      errno = load_by_name(
        changetype<usize>(nameBytes),
        nameBytes.byteLength,
        outU32,
      );
    } else {
      const configBytes = String.UTF8.encode(config);
      errno = load_by_name_with_config(
        changetype<usize>(nameBytes),
        nameBytes.byteLength,
        changetype<usize>(configBytes),
        configBytes.byteLength,
        outU32,
      );
    }
    lastErrno = errno;
    if (errno != Errno.Success) return null;
    return new Graph(load<u32>(outU32));
  }

  /** Forgets the graph on the host. Returns the errno. */
  unload(): i32 {
    return unload(this.handle);
  }
}

/** An execution context: one prompt, one sampler, one output at a time. */
export class Context {
  /** The host's handle for it. */
  handle: u32;

  constructor(handle: u32) {
    this.handle = handle;
  }

  /** A new context on `graph`, or null (see `lastErrno`). */
  static create(graph: Graph): Context | null {
    const errno = init_execution_context(graph.handle, outU32);
    lastErrno = errno;
    if (errno != Errno.Success) return null;
    return new Context(load<u32>(outU32));
  }

  /** Sets input `index` to raw bytes (a U8 tensor). Returns the errno. */
  setInput(index: u32, data: ArrayBuffer): i32 {
    // The 20-byte tensor record: dims_ptr, dims_len, type, data_ptr, data_len.
    store<u32>(dims, 1); // hosts ignore dims for text; [1] is the convention
    store<u32>(tensor, <u32> dims, 0);
    store<u32>(tensor, 1, 4);
    store<u32>(tensor, TENSOR_TYPE_U8, 8);
    store<u32>(tensor, <u32> changetype<usize>(data), 12);
    store<u32>(tensor, <u32> data.byteLength, 16);
    return set_input(this.handle, index, tensor);
  }

  /** Sets the prompt (input 0). The whole conversation, every turn. */
  setPrompt(text: string): i32 {
    return this.setInput(INPUT_PROMPT, String.UTF8.encode(text));
  }

  /** Changes settings for this context (input 1), e.g. '{"temp":0.2}'. */
  setConfig(json: string): i32 {
    return this.setInput(INPUT_CONFIG, String.UTF8.encode(json));
  }

  /** Generates the whole answer. ContextFull (101) keeps the partial text. */
  compute(): i32 {
    return compute(this.handle);
  }

  /** Generates one token; EndOfSequence (100) when the model is done. */
  computeSingle(): i32 {
    return compute_single(this.handle);
  }

  /** Ends a stream started with computeSingle. */
  finiSingle(): i32 {
    return fini_single(this.handle);
  }

  /** Drops the context on the host. */
  finalize(): i32 {
    return finalize_execution_context(this.handle);
  }

  /** Output `index` as bytes, or null (see `lastErrno`). */
  getOutput(index: u32): ArrayBuffer | null {
    return readOutput(this.handle, index, false);
  }

  /** The latest token's bytes (index 0) after computeSingle, or null. */
  getOutputSingle(index: u32): ArrayBuffer | null {
    return readOutput(this.handle, index, true);
  }

  /**
   * Output `index` decoded as UTF-8, or null. Use it for whole outputs;
   * a single token may end in the middle of a character, so write pieces
   * from getOutputSingle as bytes.
   */
  getText(index: u32): string | null {
    const bytes = this.getOutput(index);
    return bytes == null ? null : String.UTF8.decode(bytes);
  }
}

/**
 * get_output / get_output_single into a buffer that starts at 4 KiB and, if
 * the host answers TooLarge, is reallocated to the size the host wrote.
 */
function readOutput(ctx: u32, index: u32, single: bool): ArrayBuffer | null {
  let cap: u32 = 4096;
  for (;;) {
    const buf = new ArrayBuffer(<i32> cap);
    store<u32>(outU32, 0);
    const ptr = changetype<usize>(buf);
    const errno = single
      ? get_output_single(ctx, index, ptr, cap, outU32)
      : get_output(ctx, index, ptr, cap, outU32);
    const written = load<u32>(outU32);
    if (errno == Errno.TooLarge && written > cap) {
      cap = written; // the host told us how much it needs
      continue;
    }
    lastErrno = errno;
    if (errno != Errno.Success) return null;
    return buf.slice(0, <i32> min(written, cap));
  }
}
