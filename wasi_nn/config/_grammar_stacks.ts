/**
 * How costly a parsed GBNF grammar is for llama.cpp's sampler: the most
 * grammar stacks live at one position, the deepest recursion its stack
 * expansion takes, and how many ways there are to read two characters at one
 * place (sampling follows each way through every candidate token). All are
 * upper estimates, saturating at {@linkcode CAP}, and the walk stops early
 * once a measure is over its limit.
 *
 * @example
 * ```ts
 * import { Parser } from "./_gbnf_parser.ts";
 * import { measureStacks } from "./_grammar_stacks.ts";
 * const p = new Parser('root ::= "a" | "b" | "c"', { maxRules: 100, maxSymbols: 1000, maxDepth: 8 });
 * const rules = p.parse();
 * const limits = { maxStacks: 256, maxRecursion: 2000, maxSymbols: 1000, maxAmbiguity: 256 };
 * console.log(measureStacks(rules, p.names.get("root")!, limits).stacks); // 3
 * ```
 * @module
 */

import { OverLimit, type Rule, type Sym } from "./_gbnf_parser.ts";

/** The limits that end the walk early (see `GRAMMAR_LIMITS`). */
export interface StackLimits {
  /** Grammar stacks live at one position. */
  maxStacks: number;
  /** Depth of the stack expansion. */
  maxRecursion: number;
  /** Symbols (bounds the ambiguity walk's work). */
  maxSymbols: number;
  /** Ways to read two characters at one place. */
  maxAmbiguity: number;
}

/** Saturating counts: anything above the limit is "over", whatever the size. */
export const CAP = 1e9;
const sat = (x: number) => (x > CAP ? CAP : x);

/** Stacks and expansion depth of every rule and continuation, as llama.cpp's stack expansion would take them. */
export function measureStacks(
  rules: Rule[],
  root: number,
  limits: StackLimits,
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
        follow[r] > limits.maxStacks ||
        followDeep[r] > limits.maxRecursion
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
    stacks > limits.maxStacks ||
    recursion > limits.maxRecursion
  ) return { stacks, recursion, ambiguity: 0 };
  return {
    stacks,
    recursion,
    ambiguity: measureAmbiguity(rules, root, nullable, order, best, limits),
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
  limits: StackLimits,
): number {
  const cap = limits.maxStacks * 4;
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
        if (work > limits.maxSymbols * 16) {
          throw new OverLimit("ambiguity", CAP, limits.maxAmbiguity);
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
