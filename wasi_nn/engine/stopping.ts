/**
 * Stopping criteria for one generation, applied token by token: max tokens,
 * end-of-generation tokens, stop token ids, stop strings (with partial
 * matches held back while streaming, and never half a UTF-8 character),
 * a time limit, and a repetition-loop detector.
 *
 * @example
 * ```ts
 * import { StopChecker } from "./stopping.ts";
 * const enc = new TextEncoder();
 * const s = new StopChecker({ stop: ["</end>"] });
 * console.log(s.push(1, enc.encode("Hello </")).emit); // "Hello " ("</" is held back)
 * const r = s.push(2, enc.encode("end> more"));
 * console.log(r.stop?.reason, r.stop?.matched, s.text); // stop </end> Hello
 * ```
 * @module
 */

/** Why generation stopped. */
export type StopReason =
  | "eos"
  | "length"
  | "stop"
  | "stop_token"
  | "loop"
  | "time_limit"
  | "indent"
  | "context_full"
  | "cancelled";

/** Options of `StopChecker`. */
export interface StopOptions {
  /** Stop strings. */
  stop?: string[];
  /** Keep the matched stop string in the output (WasmEdge's reverse-prompt does; the server's `stop` does not). */
  includeStop?: boolean;
  /** Token ids that end generation. */
  stopTokens?: number[];
  /** Max generated tokens; negative = no limit. */
  nPredict?: number;
  /** Stop after this many ms of generation (`t_max_predict_ms`); 0 or unset = no limit. */
  tMaxPredictMs?: number;
  /**
   * The server's `n_indent`: every line after the first must start with at
   * least this many spaces or tabs; the first line that does not ends the
   * output there (reason "indent"). 0 or unset = off.
   */
  nIndent?: number;
  /** Repetition-loop detector: stop when the tail repeats a cycle of up to `maxCycle` tokens `repeats` times. Off when unset. */
  loop?: { maxCycle: number; repeats: number };
  /** Clock (ms), injectable for tests. */
  now?: () => number;
}

/** The outcome of pushing one token. */
export interface StopStep {
  /** Text that is safe to release now (complete characters, no possible stop-string prefix). */
  emit: string;
  /** Set when generation must stop. */
  stop?: { reason: StopReason; matched?: string | number };
}

/** Checks the stopping criteria token by token. */
export class StopChecker {
  #opts: StopOptions;
  #decoder = new TextDecoder("utf-8");
  #text = "";
  #emitted = 0;
  #tokens: number[] = [];
  #start: number;
  #maxStop: number;
  #now: () => number;
  #final?: number;
  /** n_indent: the start of a line not checked yet (-1: none), and where to look for the next newline. */
  #line = -1;
  #searchFrom = 0;

  /** Creates a checker; the time limit starts now. */
  constructor(options: StopOptions = {}) {
    this.#opts = {
      ...options,
      stop: (options.stop ?? []).filter((s) => s.length > 0),
    };
    this.#maxStop = this.#opts.stop!.reduce((m, s) => Math.max(m, s.length), 0);
    this.#now = options.now ?? (() => performance.now());
    this.#start = this.#now();
  }

  /** The output text so far (cut at a matched stop string). */
  get text(): string {
    return this.#final === undefined
      ? this.#text
      : this.#text.slice(0, this.#final);
  }

  /** Tokens pushed so far. */
  get tokens(): readonly number[] {
    return this.#tokens;
  }

  /** Checks before generating: true when the token budget is already used up. */
  exhausted(): boolean {
    const n = this.#opts.nPredict ?? -1;
    return n >= 0 && this.#tokens.length >= n;
  }

  /** Records an end-of-generation token (no text). */
  pushEog(token: number): StopStep {
    this.#tokens.push(token);
    return { emit: this.flush(), stop: { reason: "eos", matched: token } };
  }

  /** Adds one token's bytes; says what to release and whether to stop. */
  push(token: number, bytes: Uint8Array): StopStep {
    this.#tokens.push(token);
    const before = this.#text.length;
    this.#text += this.#decoder.decode(bytes, { stream: true });
    const stops = this.#opts.stop!;
    if (stops.length > 0) {
      const from = Math.max(0, before - this.#maxStop + 1);
      let best: { at: number; s: string } | undefined;
      for (const s of stops) {
        const at = this.#text.indexOf(s, from);
        if (at >= 0 && (!best || at < best.at)) best = { at, s };
      }
      if (best) {
        this.#final = this.#opts.includeStop
          ? best.at + best.s.length
          : best.at;
        return {
          emit: this.#release(this.#final),
          stop: { reason: "stop", matched: best.s },
        };
      }
    }
    const cut = this.#indentCut();
    if (cut !== undefined) {
      this.#final = cut;
      return { emit: this.#release(cut), stop: { reason: "indent" } };
    }
    if (this.#opts.stopTokens?.includes(token)) {
      return {
        emit: this.flush(),
        stop: { reason: "stop_token", matched: token },
      };
    }
    const stop = this.#limits();
    if (stop) return { emit: this.flush(), stop };
    return { emit: this.#release(this.#text.length - this.#heldBack()) };
  }

  #limits(): StopStep["stop"] {
    const n = this.#opts.nPredict ?? -1;
    if (n >= 0 && this.#tokens.length >= n) return { reason: "length" };
    const t = this.#opts.tMaxPredictMs ?? 0;
    if (t > 0 && this.#now() - this.#start >= t) {
      return { reason: "time_limit" };
    }
    if (this.#opts.loop && detectLoop(this.#tokens, this.#opts.loop)) {
      return { reason: "loop" };
    }
    return undefined;
  }

  /**
   * n_indent: where to cut the text when a line (after the first) starts with
   * less indentation than asked, as the server does (after the indentation
   * the line has). Lines are checked once their first character after the
   * indentation is there.
   */
  #indentCut(): number | undefined {
    const need = this.#opts.nIndent ?? 0;
    if (need <= 0) return undefined;
    const text = this.#text;
    for (;;) {
      if (this.#line < 0) {
        const nl = text.indexOf("\n", this.#searchFrom);
        if (nl < 0) {
          this.#searchFrom = text.length;
          return undefined;
        }
        this.#line = this.#searchFrom = nl + 1;
      }
      let pos = this.#line;
      while (pos < text.length && (text[pos] === " " || text[pos] === "\t")) {
        pos++;
      }
      if (pos >= text.length) return undefined; // the line is not there yet
      if (pos - this.#line < need) return pos;
      this.#line = -1;
    }
  }

  /** Length of the longest suffix of the text that could still become a stop string. */
  #heldBack(): number {
    let hold = 0;
    for (const s of this.#opts.stop!) {
      for (let k = Math.min(s.length - 1, this.#text.length); k > hold; k--) {
        if (this.#text.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return hold;
  }

  #release(upTo: number): string {
    if (upTo <= this.#emitted) return "";
    const out = this.#text.slice(this.#emitted, upTo);
    this.#emitted = upTo;
    return out;
  }

  /** Releases everything still held back (call when generation ends without a match). */
  flush(): string {
    this.#text += this.#decoder.decode();
    return this.#release(this.#final ?? this.#text.length);
  }
}

/**
 * True when the tail of `tokens` is one block of 1..maxCycle tokens repeated
 * `repeats` times (e.g. "a b a b a b" with maxCycle >= 2, repeats 3).
 */
export function detectLoop(
  tokens: readonly number[],
  opts: { maxCycle: number; repeats: number },
): boolean {
  const n = tokens.length;
  if (opts.repeats < 2) return false;
  for (let len = 1; len <= opts.maxCycle; len++) {
    const need = len * opts.repeats;
    if (need > n) break;
    let ok = true;
    for (let i = n - need + len; i < n && ok; i++) {
      if (tokens[i] !== tokens[i - len]) ok = false;
    }
    if (ok) return true;
  }
  return false;
}
