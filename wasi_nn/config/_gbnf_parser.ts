/**
 * A GBNF parser that reads a grammar the way llama.cpp's
 * (`src/llama-grammar.cpp`) does, rules generated for groups and
 * repetitions included, but builds only what the grammar measures need:
 * each rule's alternatives as sequences of terminals (character sets) and
 * rule references. It stops with OverLimit as soon as the grammar passes a
 * size limit, before building more.
 *
 * @example
 * ```ts
 * import { Parser } from "./_gbnf_parser.ts";
 * const p = new Parser('root ::= "a" [b-c]*', { maxRules: 100, maxSymbols: 1000, maxDepth: 8 });
 * console.log(p.parse().length, p.names.get("root")); // 2 0
 * ```
 * @module
 */

/** The limits the parser itself checks as it goes. */
export interface ParserLimits {
  /** Rules, generated ones included. */
  maxRules: number;
  /** Symbols after repetitions are expanded. */
  maxSymbols: number;
  /** Parentheses nested inside each other. */
  maxDepth: number;
}

/**
 * One symbol of a rule: a terminal (`t`) accepting the characters of `set`
 * (inclusive ranges, flat: lo0, hi0, lo1, hi1, ...), or a reference to rule `r`.
 */
export type Sym = { t: true; set: number[] } | { t: false; r: number };

const MAX_CP = 0x10ffff;
/** Token terminals (`<...>`, `!<...>`) get one code of their own. */
export const TOKEN = MAX_CP + 1;

/** The characters not in `set`. */
function complement(set: number[]): number[] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < set.length; i += 2) {
    pairs.push([Math.min(set[i], set[i + 1]), Math.max(set[i], set[i + 1])]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  let next = 0;
  for (const [lo, hi] of pairs) {
    if (lo > next) out.push(next, lo - 1);
    next = Math.max(next, hi + 1);
  }
  if (next <= MAX_CP) out.push(next, MAX_CP);
  return out;
}
/** A rule: its alternatives, each a sequence of symbols. */
export type Rule = Sym[][];

/** A measure over its limit: what, how much, and the limit. */
export class OverLimit extends Error {
  constructor(
    readonly what: string,
    readonly value: number,
    readonly limit: number,
  ) {
    super(what);
  }
}

const isWord = (c: string) => /[A-Za-z0-9_-]/.test(c);

/** Parses GBNF the way llama.cpp's parser does, building only what the measures need. */
export class Parser {
  rules: Rule[] = [];
  names = new Map<string, number>();
  symbols = 0;
  depth = 0;
  #pos = 0;

  /** Parses `src`, throwing OverLimit as soon as it passes one of `limits`. */
  constructor(
    readonly src: string,
    readonly limits: ParserLimits,
  ) {}

  #id(name: string): number {
    let id = this.names.get(name);
    if (id === undefined) {
      id = this.rules.length;
      this.names.set(name, id);
      this.rules.push([]);
      this.#checkRules();
    }
    return id;
  }

  #generate(): number {
    this.rules.push([]);
    this.#checkRules();
    return this.rules.length - 1;
  }

  #checkRules() {
    if (this.rules.length > this.limits.maxRules) {
      throw new OverLimit("rules", this.rules.length, this.limits.maxRules);
    }
  }

  #count(n: number) {
    this.symbols += n;
    if (this.symbols > this.limits.maxSymbols) {
      throw new OverLimit("symbols", this.symbols, this.limits.maxSymbols);
    }
  }

  #space(newlineOk: boolean) {
    const s = this.src;
    while (this.#pos < s.length) {
      const c = s[this.#pos];
      if (c === " " || c === "\t") this.#pos++;
      else if (c === "#") {
        while (this.#pos < s.length && s[this.#pos] !== "\n") this.#pos++;
      } else if (newlineOk && (c === "\n" || c === "\r")) this.#pos++;
      else break;
    }
  }

  #fail(why: string): never {
    throw new SyntaxError(`${why} at offset ${this.#pos}`);
  }

  /** Reads one (possibly escaped) character of a literal or class: its code point. */
  #char(): number {
    const s = this.src;
    let cp: number;
    if (s[this.#pos] === "\\") {
      const e = s[this.#pos + 1];
      const hex = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
      const simple: Record<string, number> = { n: 10, r: 13, t: 9 };
      cp = hex
        ? parseInt(s.slice(this.#pos + 2, this.#pos + 2 + hex), 16)
        : simple[e] ?? (e ?? "").codePointAt(0) ?? 0;
      this.#pos += 2 + hex;
    } else {
      cp = s.codePointAt(this.#pos)!;
      this.#pos += cp > 0xffff ? 2 : 1; // a surrogate pair is one character
    }
    if (this.#pos > s.length) this.#fail("unexpected end of input");
    return Number.isFinite(cp) ? cp : 0;
  }

  parse(): Rule[] {
    this.#space(true);
    while (this.#pos < this.src.length) {
      const start = this.#pos;
      while (this.#pos < this.src.length && isWord(this.src[this.#pos])) {
        this.#pos++;
      }
      if (this.#pos === start) this.#fail("expecting a rule name");
      const id = this.#id(this.src.slice(start, this.#pos));
      this.#space(false);
      if (!this.src.startsWith("::=", this.#pos)) this.#fail("expecting ::=");
      this.#pos += 3;
      this.#space(true);
      this.rules[id] = this.#alternates(false);
      const c = this.src[this.#pos];
      if (c === "\r" || c === "\n") this.#pos++;
      else if (this.#pos < this.src.length) {
        this.#fail("expecting newline or end");
      }
      this.#space(true);
    }
    return this.rules;
  }

  #alternates(nested: boolean): Rule {
    const alts: Sym[][] = [this.#sequence(nested)];
    while (this.src[this.#pos] === "|") {
      this.#pos++;
      this.#space(true);
      alts.push(this.#sequence(nested));
    }
    return alts;
  }

  #sequence(nested: boolean): Sym[] {
    const s = this.src;
    const seq: Sym[] = [];
    let last = seq.length; // where the previous item starts
    while (this.#pos < s.length) {
      const c = s[this.#pos];
      if (c === '"') {
        last = seq.length;
        this.#pos++;
        let n = 0;
        while (s[this.#pos] !== '"') {
          if (this.#pos >= s.length) this.#fail("unexpected end of input");
          const cp = this.#char();
          seq.push({ t: true, set: [cp, cp] }); // one terminal per character
          n++;
        }
        this.#pos++;
        this.#count(n);
        this.#space(nested);
      } else if (c === "[") {
        last = seq.length;
        this.#pos++;
        const negated = s[this.#pos] === "^";
        if (negated) this.#pos++;
        const set: number[] = [];
        while (s[this.#pos] !== "]") {
          if (this.#pos >= s.length) this.#fail("unexpected end of input");
          const lo = this.#char();
          let hi = lo;
          if (s[this.#pos] === "-" && s[this.#pos + 1] !== "]") {
            this.#pos++;
            hi = this.#char();
          }
          set.push(lo, hi);
        }
        this.#pos++;
        if (set.length > 0) { // "[]" adds nothing, as in llama.cpp
          seq.push({ t: true, set: negated ? complement(set) : set });
          this.#count(1);
        }
        this.#space(nested);
      } else if (c === "<" || c === "!") {
        last = seq.length;
        const end = s.indexOf(">", this.#pos);
        if (end < 0) this.#fail("expecting '>'");
        this.#pos = end + 1;
        seq.push({ t: true, set: [TOKEN, TOKEN] }); // tokens, not characters
        this.#count(1);
        this.#space(nested);
      } else if (c === ".") {
        last = seq.length;
        this.#pos++;
        seq.push({ t: true, set: [0, MAX_CP] });
        this.#count(1);
        this.#space(nested);
      } else if (isWord(c)) {
        last = seq.length;
        const start = this.#pos;
        while (this.#pos < s.length && isWord(s[this.#pos])) this.#pos++;
        seq.push({ t: false, r: this.#id(s.slice(start, this.#pos)) });
        this.#count(1);
        this.#space(nested);
      } else if (c === "(") {
        last = seq.length;
        if (++this.depth > this.limits.maxDepth) {
          throw new OverLimit("depth", this.depth, this.limits.maxDepth);
        }
        this.#pos++;
        this.#space(true);
        const id = this.#generate();
        this.rules[id] = this.#alternates(true);
        this.depth--;
        if (s[this.#pos] !== ")") this.#fail("expecting ')'");
        this.#pos++;
        seq.push({ t: false, r: id });
        this.#count(1);
        this.#space(nested);
      } else if (c === "*" || c === "+" || c === "?" || c === "{") {
        let min = 0, max = Infinity;
        this.#pos++;
        this.#space(nested);
        if (c === "+") min = 1;
        else if (c === "?") max = 1;
        else if (c === "{") {
          const num = () => {
            const m = /^\d+/.exec(s.slice(this.#pos, this.#pos + 12));
            if (!m) this.#fail("expecting an int");
            this.#pos += m[0].length;
            this.#space(nested);
            return Number(m[0]);
          };
          min = num();
          max = min;
          if (s[this.#pos] === ",") {
            this.#pos++;
            this.#space(nested);
            max = /\d/.test(s[this.#pos] ?? "") ? num() : Infinity;
          }
          if (s[this.#pos] !== "}") this.#fail("expecting '}'");
          this.#pos++;
          this.#space(nested);
          if (max > 2000) max = Infinity; // as llama.cpp does
        }
        if (last === seq.length) this.#fail("expecting an item before " + c);
        this.#repeat(seq, last, min, max);
      } else break;
    }
    return seq;
  }

  /** S{m,n} -> S (m times) S'(n-m), as llama.cpp rewrites it (the limits there apply too). */
  #repeat(seq: Sym[], last: number, min: number, max: number) {
    const item = seq.slice(last);
    seq.length = last;
    for (let i = 0; i < min; i++) {
      this.#count(item.length);
      for (const x of item) seq.push(x);
    }
    const optional = max === Infinity ? 1 : max - min;
    let prev = -1;
    for (let i = 0; i < optional; i++) {
      const id = this.#generate();
      const again: Sym[] = max === Infinity
        ? [{ t: false, r: id }]
        : prev >= 0
        ? [{ t: false, r: prev }]
        : [];
      this.#count(item.length + again.length);
      this.rules[id] = [item.concat(again), []];
      prev = id;
    }
    if (optional > 0) {
      seq.push({ t: false, r: prev });
      this.#count(1);
    }
  }
}
