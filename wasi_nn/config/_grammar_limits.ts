/**
 * Bounds on GBNF grammars and JSON schemas, checked before llama.cpp sees
 * them. llama.cpp's grammar parser and its JSON parser recurse without a
 * limit (a deep enough input overflows the stack and ends the process), and
 * the cost of a sampled token grows with the number of grammar stacks that
 * are live at once. So a grammar is parsed here the way llama.cpp parses it
 * (including the rules that repetitions generate), and measured: size,
 * nesting, rules, symbols, the most stacks live at one position, and the
 * deepest recursion llama.cpp's stack expansion takes.
 *
 * Measured on the project's machine (2 cores, the 32,000-token test model):
 * - parentheses nested 4,640 deep overflow the parser on a worker thread (a
 *   `nonblocking` FFI call) and 18,660 deep on the main thread; a chain of
 *   rules 16,250 deep overflows the stack expansion on a worker thread and
 *   65,000 on the main thread;
 * - a sampled token costs about 0.1-0.15 ms per live stack (300 alternatives
 *   57 ms, 1,000 alternatives 105-150 ms, 4,000 590 ms); nullable rules
 *   multiply stacks: 8 doubling rules (131 bytes) cost 3.5 s a token;
 * - JSON nested 17,500 deep overflows llama.cpp's JSON parser; converting a
 *   schema costs 34 ms for an object of 100 properties, 340 ms for 400, 3 s
 *   for 1,000 (it grows faster than the square).
 *
 * @example
 * ```ts
 * import { checkGrammar } from "./_grammar_limits.ts";
 * console.log(checkGrammar('root ::= "yes" | "no"').stacks); // 2
 * try {
 *   checkGrammar("root ::= " + "(".repeat(100) + '"a"' + ")".repeat(100));
 * } catch (e) {
 *   console.log((e as Error).message); // Field 'grammar': "root ::= ((((((((((((((((((((((((((((((((…" nests 65 levels of parentheses deep, over the limit of 64 (...)
 * }
 * ```
 * @module
 */

import { ConfigError } from "./parse.ts";
import { jsonDepth } from "../engine/_json_depth.ts";

/**
 * The names of the limits of {@linkcode GRAMMAR_LIMITS}.
 *
 * @example
 * ```ts
 * import type { GrammarLimit } from "./_grammar_limits.ts";
 * const k: GrammarLimit = "maxStacks";
 * console.log(k);
 * ```
 */
export type GrammarLimit =
  | "maxBytes"
  | "maxDepth"
  | "maxRules"
  | "maxSymbols"
  | "maxStacks"
  | "maxRecursion"
  | "maxAmbiguity"
  | "maxSchemaBytes"
  | "maxSchemaDepth"
  | "maxSchemaProperties"
  | "maxSchemaAlternatives";

/**
 * The limits, each far below where llama.cpp breaks (see the module doc).
 *
 * @example
 * ```ts
 * import { GRAMMAR_LIMITS } from "./_grammar_limits.ts";
 * console.log(GRAMMAR_LIMITS.maxStacks); // 256
 * ```
 */
export const GRAMMAR_LIMITS: Readonly<Record<GrammarLimit, number>> = Object
  .freeze({
    /** Bytes of GBNF text. */
    maxBytes: 128 * 1024,
    /** Parentheses nested inside each other (the parser crashes at 4,640 on a worker thread). */
    maxDepth: 64,
    /** Rules, counting those llama.cpp generates for groups and repetitions. */
    maxRules: 10_000,
    /** Symbols (characters, classes, references) after repetitions are expanded. */
    maxSymbols: 100_000,
    /** Grammar stacks live at one position: keeps a sampled token near 50 ms or less. */
    maxStacks: 256,
    /** Depth of llama.cpp's stack expansion (crashes at 16,250 on a worker thread). */
    maxRecursion: 2_000,
    /**
     * Ways to read two characters at one place: an enum of n strings has n;
     * 16 identical alternatives in a loop 256 (30 ms a token), 32 of them
     * 1,024 (190 ms), 100 optional items in a row 9,900 (1.7 s).
     */
    maxAmbiguity: 256,
    /** Bytes of a JSON schema's text. */
    maxSchemaBytes: 64 * 1024,
    /** Arrays and objects nested in a JSON schema. */
    maxSchemaDepth: 64,
    /** Properties of one object schema (conversion cost grows faster than the square). */
    maxSchemaProperties: 128,
    /** Entries of one enum / anyOf / oneOf / allOf / prefixItems (each becomes alternatives). */
    maxSchemaAlternatives: 256,
  });

/**
 * What {@linkcode checkGrammar} measured.
 *
 * @example
 * ```ts
 * import { checkGrammar, type GrammarMeasure } from "./_grammar_limits.ts";
 * const m: GrammarMeasure = checkGrammar('root ::= [a-z]+');
 * console.log(m.rules, m.stacks); // 2 1
 * ```
 */
export interface GrammarMeasure {
  /** Bytes of text. */
  bytes: number;
  /** Deepest nesting of parentheses. */
  depth: number;
  /** Rules, generated ones included. */
  rules: number;
  /** Symbols after expansion. */
  symbols: number;
  /** The most stacks live at one position (an upper estimate). */
  stacks: number;
  /** The deepest stack expansion (an upper estimate). */
  recursion: number;
  /** Ways to read two characters at the worst place (see the limit). */
  ambiguity: number;
}

/**
 * One symbol of a rule: a terminal (`t`) accepting the characters of `set`
 * (inclusive ranges, flat: lo0, hi0, lo1, hi1, ...), or a reference to rule `r`.
 */
type Sym = { t: true; set: number[] } | { t: false; r: number };

const MAX_CP = 0x10ffff;
/** Token terminals (`<...>`, `!<...>`) get one code of their own. */
const TOKEN = MAX_CP + 1;

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
type Rule = Sym[][];

class Over extends Error {
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
class Parser {
  rules: Rule[] = [];
  names = new Map<string, number>();
  symbols = 0;
  depth = 0;
  #pos = 0;

  constructor(readonly src: string) {}

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
    if (this.rules.length > GRAMMAR_LIMITS.maxRules) {
      throw new Over("rules", this.rules.length, GRAMMAR_LIMITS.maxRules);
    }
  }

  #count(n: number) {
    this.symbols += n;
    if (this.symbols > GRAMMAR_LIMITS.maxSymbols) {
      throw new Over("symbols", this.symbols, GRAMMAR_LIMITS.maxSymbols);
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
        if (++this.depth > GRAMMAR_LIMITS.maxDepth) {
          throw new Over("depth", this.depth, GRAMMAR_LIMITS.maxDepth);
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

/** Saturating counts: anything above the limit is "over", whatever the size. */
const CAP = 1e9;
const sat = (x: number) => (x > CAP ? CAP : x);

/** Stacks and expansion depth of every rule and continuation, as llama.cpp's stack expansion would take them. */
function measureStacks(
  rules: Rule[],
  root: number,
): { stacks: number; recursion: number; ambiguity: number } {
  const n = rules.length;
  // nullable rules (fixpoint)
  const nullable = new Uint8Array(n);
  for (let changed = true; changed;) {
    changed = false;
    for (let r = 0; r < n; r++) {
      if (nullable[r]) continue;
      if (rules[r].some((alt) => alt.every((x) => !x.t && nullable[x.r]))) {
        nullable[r] = 1;
        changed = true;
      }
    }
  }
  const symNullable = (x: Sym) => !x.t && nullable[x.r] === 1;
  // stacks at the start of each rule and the expansion depth there; a cycle
  // through first positions is left recursion, which llama.cpp refuses
  const start = new Float64Array(n).fill(-1);
  const deep = new Float64Array(n);
  const onPath = new Uint8Array(n);
  const order: number[] = []; // rules, each after the rules it starts with
  const visit = (first: number) => {
    // iterative DFS: a chain of rules can be as long as the rule limit
    const firsts = (r: number) => {
      const deps: number[] = [];
      for (const alt of rules[r]) {
        for (const x of alt) {
          if (x.t) break;
          deps.push(x.r);
          if (!nullable[x.r]) break;
        }
      }
      return deps;
    };
    const stack: { r: number; deps: number[]; next: number }[] = [
      { r: first, deps: firsts(first), next: 0 },
    ];
    onPath[first] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const { r, deps } = top;
      if (top.next < deps.length) {
        const d = deps[top.next++];
        if (start[d] < 0 && !onPath[d]) {
          onPath[d] = 1;
          stack.push({ r: d, deps: firsts(d), next: 0 });
        }
        continue;
      }
      let count = 0, depth = 0;
      for (const alt of rules[r]) {
        for (let i = 0; i < alt.length; i++) {
          const x = alt[i];
          const c = x.t ? 1 : Math.max(start[x.r], 0);
          const d = x.t ? 0 : deep[x.r];
          count = sat(count + c);
          depth = Math.max(depth, i + d);
          if (!symNullable(x)) break;
        }
      }
      start[r] = count;
      deep[r] = 1 + depth;
      onPath[r] = 0;
      order.push(r);
      stack.pop();
    }
  };
  for (let r = 0; r < n; r++) if (start[r] < 0) visit(r);
  // from each position of each alternative: stacks and depth of the rest,
  // and whether the rest can be empty (then the parent's continuation follows)
  // (each alternative's suffixes are computed once, from its end: a long
  // run of nullable symbols would otherwise be walked once per symbol)
  type Rest = { count: number; depth: number; open: boolean };
  type Suffixes = {
    count: Float64Array;
    depth: Float64Array;
    open: Uint8Array;
  };
  const suffixes = new Map<Sym[], Suffixes>();
  const rest = (alt: Sym[], k: number): Rest => {
    let sfx = suffixes.get(alt);
    if (!sfx) {
      const len = alt.length;
      sfx = {
        count: new Float64Array(len + 1),
        depth: new Float64Array(len + 1),
        open: new Uint8Array(len + 1),
      };
      sfx.open[len] = 1;
      for (let i = len - 1; i >= 0; i--) {
        const x = alt[i];
        const c = x.t ? 1 : start[x.r], d = x.t ? 0 : deep[x.r];
        if (symNullable(x)) {
          sfx.count[i] = sat(c + sfx.count[i + 1]);
          sfx.depth[i] = Math.min(CAP, Math.max(d, 1 + sfx.depth[i + 1]));
          sfx.open[i] = sfx.open[i + 1];
        } else {
          sfx.count[i] = c;
          sfx.depth[i] = d;
        }
      }
      suffixes.set(alt, sfx);
    }
    return {
      count: sfx.count[k],
      depth: sfx.depth[k],
      open: sfx.open[k] === 1,
    };
  };
  // Popping to the parent's continuation is one more expansion step, except
  // from the last symbol: llama.cpp keeps no frame for it (a tail call), so
  // right recursion does not deepen the expansion.
  const tail = (alt: Sym[], i: number) => (i + 1 < alt.length ? 1 : 0);
  // what follows a rule once it is done: the most stacks (and depth) that its
  // parents' continuations add, over all places it is used (fixpoint of max)
  const follow = new Float64Array(n);
  const followDeep = new Float64Array(n);
  const users: [number, Sym[], number][][] = Array.from(
    { length: n },
    () => [],
  );
  for (let r = 0; r < n; r++) {
    for (const alt of rules[r]) {
      alt.forEach((x, i) => {
        if (!x.t) users[x.r].push([r, alt, i]);
      });
    }
  }
  const queue: number[] = [];
  const queued = new Uint8Array(n);
  for (let r = 0; r < n; r++) {
    queue.push(r);
    queued[r] = 1;
  }
  const children = new Map<number, Set<number>>();
  for (let r = 0; r < n; r++) {
    for (const [p] of users[r]) {
      let c = children.get(p);
      if (!c) children.set(p, c = new Set());
      c.add(r);
    }
  }
  const best: ([number, Sym[], number] | undefined)[] = new Array(n);
  let steps = 0;
  while (queue.length > 0) {
    const r = queue.pop()!;
    queued[r] = 0;
    let f = 0, fd = 0;
    let arg: [number, Sym[], number] | undefined;
    for (const u of users[r]) {
      const [p, alt, i] = u;
      const after = rest(alt, i + 1);
      const fu = sat(after.count + (after.open ? follow[p] : 0));
      if (fu > f || arg === undefined) [f, arg] = [Math.max(f, fu), u];
      fd = Math.max(
        fd,
        after.depth + (after.open ? tail(alt, i) + followDeep[p] : 0),
      );
    }
    fd = Math.min(fd, CAP);
    if (f > follow[r] || fd > followDeep[r]) {
      if (f > follow[r] || best[r] === undefined) best[r] = arg;
      follow[r] = Math.max(f, follow[r]);
      followDeep[r] = Math.max(fd, followDeep[r]);
      // a value past the limit is enough to refuse: stop the fixpoint there
      if (
        follow[r] > GRAMMAR_LIMITS.maxStacks ||
        followDeep[r] > GRAMMAR_LIMITS.maxRecursion
      ) break;
      for (const c of children.get(r) ?? []) {
        if (!queued[c]) {
          queued[c] = 1;
          queue.push(c);
        }
      }
    }
    if (++steps > 50 * n + 1000) break; // values only grow; this bounds the work
  }
  // the worst continuation: after any terminal, or at the start of root
  let stacks = start[root], recursion = deep[root];
  for (let r = 0; r < n; r++) {
    stacks = Math.max(stacks, follow[r]);
    recursion = Math.max(recursion, followDeep[r]);
    for (const alt of rules[r]) {
      for (let i = 0; i < alt.length; i++) {
        if (!alt[i].t) continue;
        const after = rest(alt, i + 1);
        stacks = Math.max(
          stacks,
          sat(after.count + (after.open ? follow[r] : 0)),
        );
        recursion = Math.max(
          recursion,
          after.depth + (after.open ? tail(alt, i) + followDeep[r] : 0),
        );
      }
    }
  }
  if (
    stacks > GRAMMAR_LIMITS.maxStacks ||
    recursion > GRAMMAR_LIMITS.maxRecursion
  ) return { stacks, recursion, ambiguity: 0 };
  return {
    stacks,
    recursion,
    ambiguity: measureAmbiguity(rules, root, nullable, order, best),
  };
}

/** How many characters the ambiguity measure reads ahead. */
const AMBIGUITY_CHARS = 2;

/** A terminal's place: rule, alternative and index, and what it accepts. */
type Place = { rule: number; alt: number; i: number; set: number[] };

/**
 * The most ways to read two characters at one place: the stacks that
 * accept one same character, each weighted by how many of the stacks after
 * it accept one same character. llama.cpp follows every way separately
 * through each candidate token's characters, so where ways multiply from
 * one character to the next, a token costs exponentially in its length
 * (64 identical alternatives in a loop: 5 s a token), while alternatives
 * that differ after their first character cost only linearly.
 */
function measureAmbiguity(
  rules: Rule[],
  root: number,
  nullable: Uint8Array,
  order: number[],
  best: ([number, Sym[], number] | undefined)[],
): number {
  const cap = GRAMMAR_LIMITS.maxStacks * 4;
  const altIndex = new Map<Sym[], number>();
  rules.forEach((rule) => rule.forEach((alt, k) => altIndex.set(alt, k)));
  const restFrom = (rule: number, alt: Sym[], k: number, out: Place[]) => {
    for (let i = k; i < alt.length && out.length < cap; i++) {
      const x = alt[i];
      if (x.t) {
        out.push({ rule, alt: altIndex.get(alt)!, i, set: x.set });
        return false;
      }
      for (const p of first[x.r] ?? []) {
        if (out.length >= cap) break;
        out.push(p);
      }
      if (!nullable[x.r]) return false;
    }
    return true; // the rest can be empty
  };
  const first: Place[][] = new Array(rules.length);
  for (const r of order) {
    const out: Place[] = [];
    for (const alt of rules[r]) restFrom(r, alt, 0, out);
    first[r] = out;
  }
  // what follows a rule: along its heaviest user, as the stack counts chose
  const follows: (Place[] | undefined)[] = new Array(rules.length);
  const followOf = (r: number): Place[] => {
    const chain: { r: number; rest: Place[]; open: boolean }[] = [];
    const seen = new Set<number>();
    let cur: number | undefined = r;
    while (cur !== undefined && follows[cur] === undefined && !seen.has(cur)) {
      seen.add(cur);
      const u: [number, Sym[], number] | undefined = best[cur];
      const rest: Place[] = [];
      const open: boolean = u ? restFrom(u[0], u[1], u[2] + 1, rest) : false;
      chain.push({ r: cur, rest, open });
      cur = open && u ? u[0] : undefined;
    }
    let tail: Place[] = cur !== undefined ? follows[cur] ?? [] : [];
    for (let k = chain.length - 1; k >= 0; k--) {
      const c = chain[k];
      tail = c.open ? c.rest.concat(tail).slice(0, cap) : c.rest;
      follows[c.r] = tail;
    }
    return follows[r]!;
  };
  const next = (rule: number, alt: Sym[], i: number): Place[] => {
    const out: Place[] = [];
    const open = restFrom(rule, alt, i + 1, out);
    if (open && out.length === 0) return followOf(rule); // shared: measured once
    if (open) {
      for (const p of followOf(rule)) {
        if (out.length >= cap) break;
        out.push(p);
      }
    }
    return out;
  };
  // every terminal place, and the places that can come right after it
  const ids = new Map<Sym[], Int32Array>();
  const sets: number[][] = [];
  const idOf = (p: Place) => {
    const alt = rules[p.rule][p.alt];
    let row = ids.get(alt);
    if (!row) ids.set(alt, row = new Int32Array(alt.length).fill(-1));
    if (row[p.i] < 0) {
      row[p.i] = sets.length;
      sets.push(p.set);
    }
    return row[p.i];
  };
  const succ: number[][] = [];
  const shared = new Map<Place[], number[]>();
  const start = (first[root] ?? []).map(idOf);
  let work = 0;
  for (let r = 0; r < rules.length; r++) {
    rules[r].forEach((alt, k) => {
      for (let i = 0; i < alt.length; i++) {
        const x = alt[i];
        if (!x.t) continue;
        const id = idOf({ rule: r, alt: k, i, set: x.set });
        const list = next(r, alt, i);
        let ids = shared.get(list);
        if (!ids) {
          ids = list.map(idOf);
          if (list.length > 1) shared.set(list, ids);
          work += ids.length;
        }
        succ[id] = ids;
        if (work > GRAMMAR_LIMITS.maxSymbols * 16) {
          throw new Over("ambiguity", CAP, GRAMMAR_LIMITS.maxAmbiguity);
        }
      }
    });
  }
  // sorted range events of each successor list, once
  const events = (list: number[]) => {
    const ev: [number, number, number][] = []; // [code, +1/-1, index in list]
    list.forEach((q, k) => {
      const set = sets[q];
      for (let i = 0; i < set.length; i += 2) {
        const lo = Math.min(set[i], set[i + 1]),
          hi = Math.max(set[i], set[i + 1]);
        ev.push([lo, 1, k], [hi + 1, -1, k]);
      }
    });
    ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return ev;
  };
  const evCache = new Map<number[], [number, number, number][]>();
  const evs = succ.map((l) => {
    let ev = evCache.get(l);
    if (!ev) evCache.set(l, ev = l ? events(l) : []);
    return ev;
  });
  const startEv = events(start);
  const sweep = (
    list: number[],
    ev: [number, number, number][],
    w: Float64Array,
  ) => {
    let cur = 0, max = 0;
    for (const [, sign, k] of ev) {
      cur += sign * w[list[k]];
      if (cur > max) max = cur;
    }
    return sat(max);
  };
  // levels[k][p]: the most ways to read k more characters after place p
  const levels = [new Float64Array(sets.length).fill(1)];
  for (let k = 1; k < AMBIGUITY_CHARS; k++) {
    const prev = levels[k - 1];
    const cur = new Float64Array(sets.length);
    for (let p = 0; p < sets.length; p++) {
      // the end of the text is one way
      cur[p] = Math.max(1, succ[p] ? sweep(succ[p], evs[p], prev) : 0);
    }
    levels.push(cur);
  }
  const ways = (list: number[], ev: [number, number, number][]) =>
    sweep(list, ev, levels[AMBIGUITY_CHARS - 1]);
  let worst = ways(start, startEv);
  for (let p = 0; p < sets.length; p++) {
    if (succ[p]) worst = Math.max(worst, ways(succ[p], evs[p]));
  }
  return worst;
}

const NAMES: Record<string, [string, string]> = {
  bytes: ["is", "bytes long"],
  depth: ["nests", "levels of parentheses deep"],
  rules: ["expands to", "rules (repetitions and groups generate rules)"],
  symbols: ["expands to", "symbols (repetitions copy what they repeat)"],
  stacks: [
    "keeps",
    "grammar stacks live at once (each costs sampling time on every token)",
  ],
  recursion: [
    "needs",
    "levels of recursion to expand (nullable rules in a row add up)",
  ],
  ambiguity: [
    "has",
    "ways to read two characters at one place (sampling follows each way through every token)",
  ],
};

const HINTS: Record<string, string> = {
  bytes: "send a smaller grammar",
  depth: "flatten the grammar into named rules",
  rules: "use smaller repetition counts",
  symbols: "use smaller repetition counts or shorter repeated items",
  stacks:
    "use fewer alternatives that can start at the same place, and fewer optional items in a row",
  recursion: "use fewer optional items in a row and shallower rule chains",
  ambiguity:
    "make alternatives differ early, and avoid optional items that can match the same text",
};

function overError(
  field: string,
  value: unknown,
  o: Over,
  converted: boolean,
): ConfigError {
  const [verb, noun] = NAMES[o.what];
  return new ConfigError(
    field,
    value,
    `${preview(value)} ${
      converted ? "converts to a grammar that " : ""
    }${verb} ${
      o.value >= CAP ? "more than " + CAP : o.value
    } ${noun}, over the limit of ${o.limit}`,
    HINTS[o.what],
    "range",
  );
}

/**
 * Measures a GBNF grammar and throws ConfigError (InvalidArgument, field
 * `field`) when it is over a limit of {@linkcode GRAMMAR_LIMITS}; `converted`
 * says the grammar came from a JSON schema (the message says so). A grammar
 * that does not parse is left to llama.cpp, whose message is better.
 *
 * @example
 * ```ts
 * import { checkGrammar } from "./_grammar_limits.ts";
 * try {
 *   checkGrammar("root ::= " + Array.from({ length: 1000 }, (_, i) => `"w${i}"`).join(" | "));
 * } catch (e) {
 *   console.log((e as Error).message); // Field 'grammar': "root ::= \"w0\" | \"w1\" | \"w2\" | \"w3\" | \"…" keeps 1000 grammar stacks live at once (...), over the limit of 256 (...)
 * }
 * ```
 */
export function checkGrammar(
  grammar: string,
  field = "grammar",
  converted = false,
): GrammarMeasure {
  // the same grammar comes with every compute of a session: measure it once
  const known = measured.get(grammar);
  if (known instanceof Over) throw overError(field, grammar, known, converted);
  if (known) return known;
  try {
    const m = measureGrammar(grammar);
    remember(grammar, m);
    return m;
  } catch (e) {
    if (e instanceof Over) {
      remember(grammar, e);
      throw overError(field, grammar, e, converted);
    }
    throw e;
  }
}

const measured = new Map<string, GrammarMeasure | Over>();
function remember(grammar: string, m: GrammarMeasure | Over) {
  if (measured.size >= 64) measured.delete(measured.keys().next().value!);
  measured.set(grammar, m);
}

/** The measures of a grammar; throws Over at the first limit it passes. */
function measureGrammar(grammar: string): GrammarMeasure {
  const bytes = new TextEncoder().encode(grammar).length;
  const none = { depth: 0, rules: 0, symbols: 0, stacks: 0, recursion: 0 };
  if (bytes > GRAMMAR_LIMITS.maxBytes) {
    throw new Over("bytes", bytes, GRAMMAR_LIMITS.maxBytes);
  }
  const p = new Parser(grammar);
  let rules: Rule[];
  try {
    rules = p.parse();
  } catch (e) {
    if (e instanceof SyntaxError) return { bytes, ...none, ambiguity: 0 };
    throw e;
  }
  const root = p.names.get("root");
  if (root === undefined) return { bytes, ...none, ambiguity: 0 };
  const { stacks, recursion, ambiguity } = measureStacks(rules, root);
  if (stacks > GRAMMAR_LIMITS.maxStacks) {
    throw new Over("stacks", stacks, GRAMMAR_LIMITS.maxStacks);
  }
  if (recursion > GRAMMAR_LIMITS.maxRecursion) {
    throw new Over("recursion", recursion, GRAMMAR_LIMITS.maxRecursion);
  }
  if (ambiguity > GRAMMAR_LIMITS.maxAmbiguity) {
    throw new Over("ambiguity", ambiguity, GRAMMAR_LIMITS.maxAmbiguity);
  }
  return {
    bytes,
    depth: maxDepth(grammar),
    rules: rules.length,
    symbols: p.symbols,
    stacks,
    recursion,
    ambiguity,
  };
}

/** Deepest parenthesis nesting outside literals, classes and comments (for the report). */
function maxDepth(g: string): number {
  let d = 0, max = 0;
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === '"' || c === "[") {
      const close = c === '"' ? '"' : "]";
      for (i++; i < g.length && g[i] !== close; i++) if (g[i] === "\\") i++;
    } else if (c === "#") {
      while (i < g.length && g[i] !== "\n") i++;
    } else if (c === "(") max = Math.max(max, ++d);
    else if (c === ")") d--;
  }
  return max;
}

/** The start of a value for a message: at most 40 characters, quoted. */
function preview(value: unknown): string {
  const t = typeof value === "string" ? value : JSON.stringify(value) ?? "";
  return JSON.stringify(t.length > 40 ? t.slice(0, 40) + "…" : t);
}

/** The keywords whose arrays become alternatives (or sequences) in the grammar. */
const LIST_KEYS = ["enum", "anyOf", "oneOf", "allOf", "prefixItems"];

/**
 * Checks a JSON schema (an object, or JSON text) before llama.cpp converts it:
 * size, nesting, properties per object and entries per enum/anyOf/oneOf/
 * allOf/prefixItems. Throws ConfigError (field `field`) naming the measure.
 * The grammar it converts to is checked again with {@linkcode checkGrammar}.
 *
 * @example
 * ```ts
 * import { checkJsonSchema } from "./_grammar_limits.ts";
 * checkJsonSchema({ type: "object", properties: { a: { type: "string" } } }); // fine
 * try {
 *   checkJsonSchema({ enum: Array.from({ length: 1000 }, (_, i) => i) });
 * } catch (e) {
 *   console.log((e as Error).message); // Field 'json_schema': "{\"enum\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13…": 'enum' has 1000 entries, over the limit of 256 (...)
 * }
 * ```
 */
export function checkJsonSchema(schema: unknown, field = "json_schema"): void {
  const text = typeof schema === "string" ? schema : JSON.stringify(schema);
  const L = GRAMMAR_LIMITS;
  const bytes = new TextEncoder().encode(text ?? "").length;
  if (bytes > L.maxSchemaBytes) {
    throw new ConfigError(
      field,
      schema,
      `${
        preview(text)
      } is ${bytes} bytes of JSON, over the limit of ${L.maxSchemaBytes}`,
      "send a smaller schema",
      "range",
    );
  }
  let value = schema;
  if (typeof schema === "string") {
    try {
      value = JSON.parse(schema);
    } catch {
      return; // not JSON: the config check or llama.cpp says so
    }
  }
  const depth = jsonDepth(value, L.maxSchemaDepth);
  if (depth > L.maxSchemaDepth) {
    throw new ConfigError(
      field,
      schema,
      `${
        preview(text)
      } nests more than ${L.maxSchemaDepth} levels of arrays and objects, the limit`,
      "flatten the schema (use $defs and $ref for shared parts)",
      "range",
    );
  }
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== "object") continue;
    if (Array.isArray(v)) {
      stack.push(...v);
      continue;
    }
    const o = v as Record<string, unknown>;
    const props = o.properties;
    if (props !== null && typeof props === "object" && !Array.isArray(props)) {
      const n = Object.keys(props).length;
      if (n > L.maxSchemaProperties) {
        throw new ConfigError(
          field,
          schema,
          `${
            preview(text)
          }: an object has ${n} properties, over the limit of ${L.maxSchemaProperties}`,
          "split the object into nested objects",
          "range",
        );
      }
    }
    for (const k of LIST_KEYS) {
      const list = o[k];
      if (Array.isArray(list) && list.length > L.maxSchemaAlternatives) {
        throw new ConfigError(
          field,
          schema,
          `${
            preview(text)
          }: '${k}' has ${list.length} entries, over the limit of ${L.maxSchemaAlternatives}`,
          "use fewer entries, or a pattern or a plain type instead of a long list",
          "range",
        );
      }
    }
    stack.push(...Object.values(o));
  }
}
