/**
 * Parses one config at the size limits and prints how long it took, as one
 * JSON line: `{"ms": 1.2, "bytes": 4194000, "warnings": 17}`. Run in a child
 * process by config_cost_test.ts (killed if it runs away).
 *
 * Shapes (argument): `long-unknown` (1024 unknown keys of ~4000 characters,
 * filling 4 MiB: the worst case of a "did you mean" search over every
 * spelling), `short-unknown` (1024 near-miss typos of known keys),
 * `sections` (1024 keys spread over nested sections).
 * @module
 */

import { parseConfig } from "../../wasi_nn/config/parse.ts";
import {
  MAX_CONFIG_BYTES,
  MAX_CONFIG_KEYS,
} from "../../wasi_nn/config/_limits.ts";
import { KEYS } from "../../wasi_nn/config/parse.ts";

function config(shape: string): string {
  const o: Record<string, unknown> = {};
  if (shape === "long-unknown") {
    // `"k<i>_xxx…":0,` per key: fill the byte limit with MAX_CONFIG_KEYS keys
    const per = Math.floor(MAX_CONFIG_BYTES / MAX_CONFIG_KEYS) - 8;
    for (let i = 0; i < MAX_CONFIG_KEYS; i++) {
      const p = `k${i}_`;
      o[p + "x".repeat(per - p.length)] = 0;
    }
  } else if (shape === "short-unknown") {
    // typos one edit away from real spellings: every one is close to something
    for (let i = 0; i < MAX_CONFIG_KEYS; i++) {
      const k = KEYS[i % KEYS.length].name;
      o[`${k.slice(0, -1)}${String.fromCharCode(97 + (i % 26))}${i}`] = 1;
    }
  } else if (shape === "sections") {
    const per = MAX_CONFIG_KEYS / 4 - 1;
    for (const s of ["sampling", "model", "stopping", "backend"]) {
      const sec: Record<string, unknown> = {};
      for (let i = 0; i < per; i++) sec[`${s}_tmp${i}`] = i;
      o[s] = sec;
    }
  } else throw new Error(`unknown shape ${shape}`);
  return JSON.stringify(o);
}

const text = config(Deno.args[0]);
const t0 = performance.now();
const r = parseConfig(text);
const ms = performance.now() - t0;
console.log(
  JSON.stringify({
    ms,
    bytes: new TextEncoder().encode(text).length,
    warnings: r.warnings.length,
  }),
);
