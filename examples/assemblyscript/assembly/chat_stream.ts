// @ts-nocheck: AssemblyScript (i32, u8, process from the WASI shim), compiled by asc, not by tsc.
/**
 * A streamed, multi-turn chat (the AssemblyScript twin of
 * `examples/c/chat_stream.c`).
 *
 *     as_chat_stream.wasm MODEL            # one message per line of stdin
 *     as_chat_stream.wasm MODEL "PROMPT"   # a single turn, then exit
 *
 * Each reply is printed token by token (computeSingle / getOutputSingle).
 * The host keeps no chat state, so every turn sends the whole conversation,
 * formatted with the ChatML template.
 *
 * Environment: WASI_NN_CONFIG (default {"ctx-size":1024}),
 * WASI_NN_MAX_TOKENS (tokens per reply, default 128: n-predict does not
 * apply to streaming), WASI_NN_SYSTEM (the system prompt).
 */
import {
  Context,
  Errno,
  errnoName,
  Graph,
  lastErrno,
  OUTPUT_TEXT,
} from "./wasi_nn.ts";

const DEFAULT_CONFIG = '{"ctx-size":1024}';
const DEFAULT_SYSTEM = "You are a helpful assistant.";
/** The ChatML end-of-turn marker, in case the model writes it as text. */
const STOP = "<|im_end|>";

function env(name: string, fallback: string): string {
  return process.env.has(name) ? process.env.get(name) : fallback;
}

/** A growable byte buffer: token pieces are bytes, not whole characters. */
class Bytes {
  data: Uint8Array = new Uint8Array(256);
  length: i32 = 0;

  append(chunk: ArrayBuffer): void {
    const n = chunk.byteLength;
    if (this.length + n > this.data.length) {
      let cap = this.data.length * 2;
      while (cap < this.length + n) cap *= 2;
      const bigger = new Uint8Array(cap);
      bigger.set(this.data.subarray(0, this.length));
      this.data = bigger;
    }
    this.data.set(Uint8Array.wrap(chunk), this.length);
    this.length += n;
  }

  /** Where the ASCII string `s` starts, or -1. */
  indexOf(s: string): i32 {
    for (let i = 0; i + s.length <= this.length; i++) {
      let j = 0;
      while (j < s.length && this.data[i + j] == <u8> s.charCodeAt(j)) j++;
      if (j == s.length) return i;
    }
    return -1;
  }

  /** How many trailing bytes could be the start of the ASCII string `s`. */
  partialSuffix(s: string): i32 {
    for (let k = s.length - 1; k > 0; k--) {
      if (k > this.length) continue;
      let j = 0;
      while (j < k && this.data[this.length - k + j] == <u8> s.charCodeAt(j)) {
        j++;
      }
      if (j == k) return k;
    }
    return 0;
  }

  /** Writes bytes [from, to) to stdout. */
  print(from: i32, to: i32): void {
    if (to > from) {
      process.stdout.write<ArrayBuffer>(this.data.buffer.slice(from, to));
    }
  }

  toString(): string {
    return String.UTF8.decodeUnsafe(this.data.dataStart, this.length);
  }
}

/** Reads stdin line by line (WASI gives bytes in chunks). */
class LineReader {
  pending: Uint8Array = new Uint8Array(0);
  eof: bool = false;

  /** The next line without its newline, or null at the end of input. */
  next(): string | null {
    let nl = this.pending.indexOf(10);
    while (nl < 0 && !this.eof) {
      const chunk = new ArrayBuffer(4096);
      const n = process.stdin.read(chunk);
      if (n <= 0) {
        this.eof = true;
        break;
      }
      const merged = new Uint8Array(this.pending.length + n);
      merged.set(this.pending);
      merged.set(Uint8Array.wrap(chunk, 0, n), this.pending.length);
      this.pending = merged;
      nl = this.pending.indexOf(10);
    }
    if (nl < 0 && this.pending.length == 0) return null;

    const end = nl >= 0 ? nl : this.pending.length; // last line: no newline
    let lineEnd = end;
    if (lineEnd > 0 && this.pending[lineEnd - 1] == 13) lineEnd--; // \r\n
    const line = String.UTF8.decodeUnsafe(this.pending.dataStart, lineEnd);
    this.pending = this.pending.slice(nl >= 0 ? end + 1 : end);
    return line;
  }
}

/** The conversation so far, in ChatML. */
class Chat {
  history: string = "";

  constructor(public system: string) {
    this.reset();
  }

  reset(): void {
    this.history = "<|im_start|>system\n" + this.system + "<|im_end|>\n";
  }

  /**
   * One turn: sends the conversation plus `message`, streams the reply to
   * stdout and records both. Returns the errno that ended the stream;
   * Success or EndOfSequence mean a complete reply.
   */
  turn(ctx: Context, message: string, maxTokens: i32): i32 {
    const prompt = this.history + "<|im_start|>user\n" + message +
      "<|im_end|>\n<|im_start|>assistant\n";
    let errno = ctx.setPrompt(prompt);
    if (errno != Errno.Success) return errno;

    const reply = new Bytes();
    let printed = 0;
    for (let n = 0; n < maxTokens; n++) {
      // The first call evaluates the prompt; each call samples one token.
      errno = ctx.computeSingle();
      if (errno != Errno.Success) break; // EndOfSequence: the model is done

      const piece = ctx.getOutputSingle(OUTPUT_TEXT);
      if (piece == null) {
        errno = lastErrno;
        break;
      }
      reply.append(piece);

      // Stop at the end marker, and never print half of it.
      const stop = reply.indexOf(STOP);
      if (stop >= 0) {
        reply.length = stop;
        errno = Errno.EndOfSequence;
        break;
      }
      const safe = reply.length - reply.partialSuffix(STOP);
      reply.print(printed, safe); // written at once: no stdout buffering
      printed = max(printed, safe);
    }
    reply.print(printed, reply.length);
    process.stdout.write("\n");

    ctx.finiSingle(); // end the stream: clears outputs, resets the sampler
    if (errno == Errno.Success || errno == Errno.EndOfSequence) {
      this.history = prompt + reply.toString() + "<|im_end|>\n";
    }
    return errno;
  }
}

function isComplete(errno: i32): bool {
  return errno == Errno.Success || errno == Errno.EndOfSequence;
}

function main(): i32 {
  const argv = process.argv;
  if (argv.length < 2) {
    process.stderr.write("usage: as_chat_stream.wasm MODEL [PROMPT]\n");
    return 2;
  }
  const maxTokens = I32.parseInt(env("WASI_NN_MAX_TOKENS", "128"));

  const graph = Graph.load(argv[1], env("WASI_NN_CONFIG", DEFAULT_CONFIG));
  if (graph == null) {
    process.stderr.write(
      "error: cannot load model '" + argv[1] + "': errno " +
        lastErrno.toString() + " (" + errnoName(lastErrno) + ")\n",
    );
    return 1;
  }
  const ctx = Context.create(graph);
  if (ctx == null) {
    process.stderr.write(
      "error: init_execution_context: errno " +
        lastErrno.toString() + "\n",
    );
    return 1;
  }
  const chat = new Chat(env("WASI_NN_SYSTEM", DEFAULT_SYSTEM));

  // Single turn from the command line.
  if (argv.length >= 3) {
    const errno = chat.turn(ctx, argv[2], maxTokens);
    if (!isComplete(errno)) {
      process.stderr.write(
        "error: errno " + errno.toString() + " (" +
          errnoName(errno) + ")\n",
      );
      return 1;
    }
    return 0;
  }

  // Interactive: one message per line until end of input.
  const input = new LineReader();
  for (;;) {
    process.stdout.write("USER: ");
    const line = input.next();
    if (line == null) break;
    if (line.length == 0) continue;
    process.stdout.write("ASSISTANT: ");
    const errno = chat.turn(ctx, line, maxTokens);
    if (errno == Errno.ContextFull || errno == Errno.PromptTooLong) {
      // The conversation outgrew the context: start a fresh one.
      process.stderr.write("[" + errnoName(errno) + ": conversation reset]\n");
      chat.reset();
    } else if (!isComplete(errno)) {
      process.stderr.write(
        "error: errno " + errno.toString() + " (" +
          errnoName(errno) + ")\n",
      );
      return 1;
    }
  }
  process.stdout.write("\n");
  return 0;
}

process.exit(main());
