/**
 * Internal: a small deterministic PRNG (mulberry32), normal deviates by
 * Box-Muller, and a string hash to derive per-tensor seeds.
 * @module
 */

/** FNV-1a 32-bit hash of a string's UTF-16 code units. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: returns a generator of uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed for one named stream, derived from a base seed. */
export function streamSeed(seed: number, name: string): number {
  return (fnv1a(name) ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
}

/** Fills `out` with N(0, std^2) deviates (Box-Muller) from `seed`. */
export function fillNormal(
  out: Float32Array,
  std: number,
  seed: number,
): Float32Array {
  const rand = mulberry32(seed);
  const n = out.length;
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - rand(); // (0, 1]
    const u2 = rand();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    const th = 2 * Math.PI * u2;
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}
