/**
 * Table-driven test over every configuration key: a valid value, each
 * boundary, values just outside (the exact clamped value, or the exact
 * message of llama.cpp's server shape), a wrong type. The table is literal:
 * a change of a rule must change this file too. Every key of `KEYS` must be
 * here, and every spelling of a key must reach it.
 */
import assert from "node:assert/strict";
import {
  ConfigError,
  type ConfigValue,
  type ConfigValues,
  type KeyName,
  KEYS,
  parseConfig,
} from "../../../wasi_nn/config/parse.ts";

type Outcome = { ok: true } | { to: unknown } | { err: string } | {
  dropped: true;
};
const ok: Outcome = { ok: true };
const dropped: Outcome = { dropped: true };
const to = (v: unknown): Outcome => ({ to: v });
const err = (m: string): Outcome => ({ err: m });

const TABLE: Record<string, [unknown, Outcome][]> = {
  n_gpu_layers: [
    ["auto", ok],
    ["all", err('type must be an integer or "auto", but is string "all"')],
    [-1, ok],
    [-2, err("Value must be between -1 <= value <= 2147483647, but got -2")],
    [2147483647, ok],
    [
      2147483648,
      err(
        "Value must be between -1 <= value <= 2147483647, but got 2147483648",
      ),
    ],
    [-1, ok],
    [
      "3",
      err(
        'type must be an integer or "auto", but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        'type must be an integer or "auto", but is number 2.5 (write a whole number such as 3)',
      ),
    ],
    [true, err('type must be an integer or "auto", but is boolean true')],
  ],
  main_gpu: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 2147483647, but got -1")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 0 <= value <= 2147483647, but got 2147483648"),
    ],
    [0, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  split_mode: [
    ["none", ok],
    ["layer", ok],
    ["row", ok],
    [
      "nope",
      err(
        "must be one of none, layer, row, but got \"nope\" (did you mean 'none'?)",
      ),
    ],
    [5, err("type must be string, but is number 5")],
  ],
  tensor_split: [
    ["3,2", to([3, 2])],
    ["3/2", to([3, 2])],
    [[0.6, 0.4], ok],
    [
      "3,x",
      err(
        'value 2 ("x") must be a finite number >= 0 (e.g. "3,2": three fifths on the first device, two on the second)',
      ),
    ],
    [
      [1, -1],
      err(
        'value 2 (-1) must be a finite number >= 0 (e.g. "3,2": three fifths on the first device, two on the second)',
      ),
    ],
    [
      new Array(17).fill(1),
      err("has 17 values; at most 16 (one per device)"),
    ],
    [
      5,
      err(
        'type must be a string such as "3,2" or an array of numbers, but is number 5',
      ),
    ],
  ],
  use_mmap: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  use_mlock: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  check_tensors: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  numa: [
    ["distribute", ok],
    [true, ok],
    [
      "everywhere",
      err(
        'type must be a boolean or one of disabled, distribute, isolate, numactl, mirror, but is string "everywhere"',
      ),
    ],
  ],
  mmproj: [
    ["text", ok],
    [5, err("type must be string, but is number 5")],
  ],
  image: [
    ["text", ok],
    [5, err("type must be string, but is number 5")],
  ],
  cpu_moe: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  n_cpu_moe: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 2147483647, but got -1")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 0 <= value <= 2147483647, but got 2147483648"),
    ],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  ctx_size: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 2147483647, but got -1")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 0 <= value <= 2147483647, but got 2147483648"),
    ],
    [0, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  batch_size: [
    [1, ok],
    [0, err("Value must be between 1 <= value <= 2147483647, but got 0")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 1 <= value <= 2147483647, but got 2147483648"),
    ],
    [2048, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  ubatch_size: [
    [1, ok],
    [0, err("Value must be between 1 <= value <= 2147483647, but got 0")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 1 <= value <= 2147483647, but got 2147483648"),
    ],
    [512, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  threads: [
    [-1, ok],
    [-2, err("Value must be between -1 <= value <= 1024, but got -2")],
    [1024, ok],
    [1025, err("Value must be between -1 <= value <= 1024, but got 1025")],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  threads_batch: [
    [-1, ok],
    [-2, err("Value must be between -1 <= value <= 1024, but got -2")],
    [1024, ok],
    [1025, err("Value must be between -1 <= value <= 1024, but got 1025")],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  poll: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 100, but got -1")],
    [100, ok],
    [101, err("Value must be between 0 <= value <= 100, but got 101")],
    [50, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  flash_attn: [
    [true, ok],
    ["on", ok],
    ["enabled", ok],
    [
      "yes",
      err('must be true, false, "on", "off" or "auto", but got string "yes"'),
    ],
  ],
  embedding: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  pooling_type: [
    ["mean", to(1)],
    [4, ok],
    [
      5,
      err(
        "must be -1 (model default), 0 none, 1 mean, 2 cls, 3 last, 4 rank (or the name), but got number 5",
      ),
    ],
    [
      "avg",
      err(
        'must be -1 (model default), 0 none, 1 mean, 2 cls, 3 last, 4 rank (or the name), but got string "avg"',
      ),
    ],
  ],
  cache_type_k: [
    ["f32", ok],
    ["f16", ok],
    ["bf16", ok],
    ["q8_0", ok],
    ["q4_0", ok],
    ["q4_1", ok],
    ["iq4_nl", ok],
    ["q5_0", ok],
    ["q5_1", ok],
    [
      "nope",
      err(
        'must be one of f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1, but got "nope"',
      ),
    ],
    [5, err("type must be string, but is number 5")],
  ],
  cache_type_v: [
    ["f32", ok],
    ["f16", ok],
    ["bf16", ok],
    ["q8_0", ok],
    ["q4_0", ok],
    ["q4_1", ok],
    ["iq4_nl", ok],
    ["q5_0", ok],
    ["q5_1", ok],
    [
      "nope",
      err(
        'must be one of f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1, but got "nope"',
      ),
    ],
    [5, err("type must be string, but is number 5")],
  ],
  rope_freq_base: [
    [0, ok],
    [
      -0.5,
      err("Value must be between 0.000000 <= value <= inf, but got -0.500000"),
    ],
    [0, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  rope_freq_scale: [
    [0, ok],
    [
      -0.5,
      err("Value must be between 0.000000 <= value <= inf, but got -0.500000"),
    ],
    [0, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  no_kv_offload: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  swa_full: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
  ],
  kv_unified: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  parallel: [
    [1, ok],
    [0, err("Value must be between 1 <= value <= 256, but got 0")],
    [256, ok],
    [257, err("Value must be between 1 <= value <= 256, but got 257")],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  temp: [
    [1000000000, ok],
    [0, ok],
    [-0.5, to(0)],
    [0.8, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  dynatemp_range: [
    [-1000000, ok],
    [1000000, ok],
    [0, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  dynatemp_exponent: [
    [-1000000, ok],
    [1000000, ok],
    [1, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  top_k: [
    [0, ok],
    [-1, to(0)],
    [2147483647, ok],
    [2147483648, to(2147483647)],
    [40, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  top_p: [
    [0, ok],
    [-0.5, to(0)],
    [1, ok],
    [1.5, to(1)],
    [0.95, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  min_p: [
    [0, ok],
    [-0.5, to(0)],
    [1, ok],
    [1.5, to(1)],
    [0.05, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  typical_p: [
    [-1000000, ok],
    [1000000, ok],
    [1, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  top_n_sigma: [
    [-1000000, ok],
    [1000000, ok],
    [-1, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  xtc_probability: [
    [0, ok],
    [-0.5, to(0)],
    [1, ok],
    [1.5, to(1)],
    [0, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  xtc_threshold: [
    [0, ok],
    [-0.5, to(0)],
    [1, ok],
    [1.5, to(1)],
    [0.1, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  repeat_penalty: [
    [
      0,
      err(
        "Value must be finite and greater than 0, but got 0.000000 (1.0 disables the penalty)",
      ),
    ],
    [
      -1,
      err(
        "Value must be finite and greater than 0, but got -1.000000 (1.0 disables the penalty)",
      ),
    ],
    [0.01, ok],
    [1.1, ok],
    [
      -1000000,
      err(
        "Value must be finite and greater than 0, but got -1000000.000000 (1.0 disables the penalty)",
      ),
    ],
    [1000000, ok],
    [1, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  presence_penalty: [
    [-1000000, ok],
    [1000000, ok],
    [0, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  frequency_penalty: [
    [-1000000, ok],
    [1000000, ok],
    [0, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  repeat_last_n: [
    [-1, ok],
    [-2, err("Value must be between -1 <= value <= 2147483647, but got -2")],
    [2147483647, ok],
    [
      2147483648,
      err(
        "Value must be between -1 <= value <= 2147483647, but got 2147483648",
      ),
    ],
    [64, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  dry_multiplier: [
    [-1000000, ok],
    [1000000, ok],
    [0, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  dry_base: [
    [0.5, dropped],
    [0.999, dropped],
    [1, ok],
    [2.5, ok],
    [-1000000, dropped],
    [1000000, ok],
    [1.75, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  dry_allowed_length: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 2147483647, but got -1")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 0 <= value <= 2147483647, but got 2147483648"),
    ],
    [2, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  dry_penalty_last_n: [
    [-1, ok],
    [-2, err("Value must be between -1 <= value <= 2147483647, but got -2")],
    [2147483647, ok],
    [
      2147483648,
      err(
        "Value must be between -1 <= value <= 2147483647, but got 2147483648",
      ),
    ],
    [64, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  dry_sequence_breakers: [
    [["\n"], ok],
    [[], err("must be a non-empty array of strings")],
    ["a", err('must be a non-empty array of strings, but got string "a"')],
    [
      [1],
      err(
        "Field 'dry_sequence_breakers[0]': must be a string, but is number 1",
      ),
    ],
  ],
  mirostat: [
    [0, ok],
    [-1, to(0)],
    [2, ok],
    [3, to(2)],
    [0, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  mirostat_tau: [
    [-1000000, ok],
    [1000000, ok],
    [5, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  mirostat_eta: [
    [-1000000, ok],
    [1000000, ok],
    [0.1, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  adaptive_target: [
    [1, ok],
    [1.5, to(1)],
    [-1, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  adaptive_decay: [
    [0, ok],
    [
      -0.5,
      err(
        "Value must be between 0.000000 <= value <= 0.990000, but got -0.500000",
      ),
    ],
    [0.99, ok],
    [
      1.49,
      err(
        "Value must be between 0.000000 <= value <= 0.990000, but got 1.490000",
      ),
    ],
    [0.9, ok],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  seed: [
    [42, ok],
    [-1, ok],
    [-2, err("Value must be between -1 <= value <= 4294967295, but got -2")],
    [4294967295, ok],
    [
      4294967296,
      err(
        "Value must be between -1 <= value <= 4294967295, but got 4294967296",
      ),
    ],
    [-1, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  n_probs: [
    [0, ok],
    [-1, to(0)],
    [2147483647, ok],
    [2147483648, to(2147483647)],
    [0, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  min_keep: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 2147483647, but got -1")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 0 <= value <= 2147483647, but got 2147483648"),
    ],
    [0, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  ignore_eos: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  grammar: [
    ["text", ok],
    [5, err("type must be string, but is number 5")],
  ],
  json_schema: [
    [{ "type": "object" }, ok],
    ['{"type":"string"}', ok],
    [
      "{bad",
      err(
        "not valid JSON: Expected property name or '}' in JSON at position 1 (line 1 column 2) (send the schema as a JSON object or as a string holding valid JSON)",
      ),
    ],
    [
      5,
      err(
        "must be a JSON schema (an object, or a string holding one), but got number 5",
      ),
    ],
  ],
  response_format: [
    [{ type: "json_object" }, ok],
    [{
      type: "json_schema",
      json_schema: { name: "x", schema: { type: "string" } },
    }, ok],
    [{ type: "text" }, ok],
    [
      { type: "xml" },
      err(
        'Field \'response_format.type\': must be "text", "json_object" or "json_schema", but got string "xml"',
      ),
    ],
    [
      "json",
      err(
        'must be {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema": {...}}}, but got string "json"',
      ),
    ],
  ],
  grammar_lazy: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  grammar_triggers: [
    [["{"], to([{ "type": "word", "value": "{" }])],
    [
      [{ "type": 2, "value": "x+" }],
      to([{ "type": "pattern", "value": "x+" }]),
    ],
    [[{ "type": "token", "token": 2 }], ok],
    [
      [{ "type": "token" }],
      err(
        'Field \'grammar_triggers[0]\': a "token" trigger needs "token": <id>',
      ),
    ],
    [
      5,
      err(
        'must be an array of triggers: a word (string) or {"type": "word"|"pattern"|"pattern_full"|"token" (or 1, 2, 3, 0), "value": string, "token": id}, but got number 5',
      ),
    ],
  ],
  samplers: [
    ["kmt", to(["top_k", "min_p", "temperature"])],
    [["top_k", "Top-P", "temp"], to(["top_k", "top_p", "temperature"])],
    [
      "kq",
      err(
        "unknown sampler letter 'q' (letters: d dry, k top_k, y typ_p, p top_p, s top_n_sigma, m min_p, t temperature, x xtc, i infill, e penalties, a adaptive_p)",
      ),
    ],
    [["topk", "minpp"], err("unknown sampler 'minpp' (did you mean 'min_p'?)")],
    [
      5,
      err(
        'must be an array of sampler names (e.g. ["top_k", "min_p", "temperature"]) or a string of sampler letters (e.g. "kmt"), but got number 5',
      ),
    ],
  ],
  logit_bias: [
    [[[2, false], ["hi", -1]], ok],
    [{ "2": -100, "hi": false }, ok],
    [[[-1, 1]], err("token ids are >= 0, but got -1")],
    [
      [[1, true]],
      err(
        'must be an array of [token id or string, bias] pairs or an object {"token id or string": bias}; a bias is a number or false (ban), but got array [[1,true]]',
      ),
    ],
    [
      5,
      err(
        'must be an array of [token id or string, bias] pairs or an object {"token id or string": bias}; a bias is a number or false (ban), but got number 5',
      ),
    ],
  ],
  backend_sampling: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  n_predict: [
    [-1, ok],
    [-2, err("Value must be between -1 <= value <= 2147483647, but got -2")],
    [2147483647, ok],
    [
      2147483648,
      err(
        "Value must be between -1 <= value <= 2147483647, but got 2147483648",
      ),
    ],
    [-1, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  stop: [
    ["a", to(["a"])],
    [["a", "", "b"], to(["a", "b"])],
    [
      [1],
      err("type must be a string or an array of strings, but is array [1]"),
    ],
  ],
  reverse_prompt: [
    ["text", ok],
    [5, err("type must be string, but is number 5")],
  ],
  stop_token_ids: [
    [[2], ok],
    [
      [-1],
      err(
        "Field 'stop_token_ids[0]': must be a token id (>= 0), but is number -1",
      ),
    ],
    [5, err("must be an array of token ids (integers >= 0), but got number 5")],
  ],
  loop_max_cycle: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 4096, but got -1")],
    [4096, ok],
    [4097, err("Value must be between 0 <= value <= 4096, but got 4097")],
    [0, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  loop_repeats: [
    [2, ok],
    [1, err("Value must be between 2 <= value <= 1024, but got 1")],
    [1024, ok],
    [1025, err("Value must be between 2 <= value <= 1024, but got 1025")],
    [4, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  priority: [
    [-2147483648, ok],
    [
      -2147483649,
      err(
        "Value must be between -2147483648 <= value <= 2147483647, but got -2147483649",
      ),
    ],
    [2147483647, ok],
    [
      2147483648,
      err(
        "Value must be between -2147483648 <= value <= 2147483647, but got 2147483648",
      ),
    ],
    [0, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  queue_timeout_ms: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 2147483647, but got -1")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 0 <= value <= 2147483647, but got 2147483648"),
    ],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  n_keep: [
    [-1, ok],
    [-2, err("Value must be between -1 <= value <= 2147483647, but got -2")],
    [2147483647, ok],
    [
      2147483648,
      err(
        "Value must be between -1 <= value <= 2147483647, but got 2147483648",
      ),
    ],
    [0, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  n_discard: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 2147483647, but got -1")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 0 <= value <= 2147483647, but got 2147483648"),
    ],
    [0, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  ctx_shift: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  t_max_predict_ms: [
    [-1, ok],
    [
      -2,
      err("Value must be between -1 <= value <= 9007199254740991, but got -2"),
    ],
    [9007199254740991, ok],
    [
      9007199254740992,
      err(
        "Value must be between -1 <= value <= 9007199254740991, but got 9007199254740992",
      ),
    ],
    [-1, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  cache_prompt: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  n_cache_reuse: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 2147483647, but got -1")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 0 <= value <= 2147483647, but got 2147483648"),
    ],
    [0, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  n_indent: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 2147483647, but got -1")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 0 <= value <= 2147483647, but got 2147483648"),
    ],
    [0, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  stream: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  post_sampling_probs: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  stream_stdout: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  enable_log: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  enable_debug_log: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  log_level: [
    ["debug", ok],
    ["info", ok],
    ["warn", ok],
    ["error", ok],
    ["fatal", ok],
    [
      "nope",
      err('must be one of debug, info, warn, error, fatal, but got "nope"'),
    ],
    [5, err("type must be string, but is number 5")],
  ],
  log_file: [
    ["text", ok],
    [5, err("type must be string, but is number 5")],
  ],
  log_format: [
    ["text", ok],
    ["json", ok],
    ["xml", err('must be one of text, json, but got "xml"')],
    [5, err("type must be string, but is number 5")],
  ],
  log_timestamps: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  log_colors: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  embd_normalize: [
    [-1, ok],
    [-2, err("Value must be between -1 <= value <= 2147483647, but got -2")],
    [2147483647, ok],
    [
      2147483648,
      err(
        "Value must be between -1 <= value <= 2147483647, but got 2147483648",
      ),
    ],
    [2, ok],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  chat_template: [
    ["text", ok],
    [5, err("type must be string, but is number 5")],
  ],
  chat_parse_special: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  chat_template_timeout_ms: [
    [100, ok],
    [99, err("Value must be between 100 <= value <= 600000, but got 99")],
    [
      600001,
      err("Value must be between 100 <= value <= 600000, but got 600001"),
    ],
  ],
  chat_template_max_memory_mb: [
    [32, ok],
    [31, err("Value must be between 32 <= value <= 65536, but got 31")],
  ],
  chat_template_max_output_bytes: [
    [1024, ok],
    [
      1023,
      err("Value must be between 1024 <= value <= 1073741824, but got 1023"),
    ],
  ],
  max_sessions: [
    [1, ok],
    [0, err("Value must be between 1 <= value <= 10000, but got 0")],
    [10000, ok],
    [10001, err("Value must be between 1 <= value <= 10000, but got 10001")],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  idle_timeout_ms: [
    [1000, ok],
    [999, err("Value must be between 1000 <= value <= 86400000, but got 999")],
    [86400000, ok],
    [
      86400001,
      err("Value must be between 1000 <= value <= 86400000, but got 86400001"),
    ],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  auto_cleanup: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  max_queue: [
    [1, ok],
    [0, err("Value must be between 1 <= value <= 2147483647, but got 0")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 1 <= value <= 2147483647, but got 2147483648"),
    ],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  default_task_timeout_ms: [
    [1000, ok],
    [999, err("Value must be between 1000 <= value <= 600000, but got 999")],
    [600000, ok],
    [
      600001,
      err("Value must be between 1000 <= value <= 600000, but got 600001"),
    ],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  priority_scheduling_enabled: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  fair_scheduling_enabled: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  auto_queue_cleanup: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  queue_warning_threshold: [
    [1, ok],
    [0, err("Value must be between 1 <= value <= 10000, but got 0")],
    [10000, ok],
    [10001, err("Value must be between 1 <= value <= 10000, but got 10001")],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  queue_reject_threshold: [
    [1, ok],
    [0, err("Value must be between 1 <= value <= 10000, but got 0")],
    [10000, ok],
    [10001, err("Value must be between 1 <= value <= 10000, but got 10001")],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  cache_strategy: [
    ["lru", ok],
    ["fifo", ok],
    ["smart", ok],
    ["nope", err('must be one of lru, fifo, smart, but got "nope"')],
    [5, err("type must be string, but is number 5")],
  ],
  cache_deletion_strategy: [
    ["lru", ok],
    ["fifo", ok],
    ["smart", ok],
    ["nope", err('must be one of lru, fifo, smart, but got "nope"')],
    [5, err("type must be string, but is number 5")],
  ],
  max_cache_tokens: [
    [1024, ok],
    [1023, err("Value must be between 1024 <= value <= 1000000, but got 1023")],
    [1000000, ok],
    [
      1000001,
      err("Value must be between 1024 <= value <= 1000000, but got 1000001"),
    ],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  enable_partial_cache_deletion: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  enable_token_cache_reuse: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  max_memory_mb: [
    [0, ok],
    [-1, err("Value must be between 0 <= value <= 2147483647, but got -1")],
    [2147483647, ok],
    [
      2147483648,
      err("Value must be between 0 <= value <= 2147483647, but got 2147483648"),
    ],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
  max_image_mb: [
    [1, ok],
    [4096, ok],
    [0, err("Value must be between 1 <= value <= 4096, but got 0")],
    [4097, err("Value must be between 1 <= value <= 4096, but got 4097")],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
  ],
  max_load_mb: [
    [1, ok],
    [4096, ok],
    [0, err("Value must be between 1 <= value <= 2147483647, but got 0")],
    [
      2147483648,
      err("Value must be between 1 <= value <= 2147483647, but got 2147483648"),
    ],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
  ],
  rpc: [
    ["127.0.0.1:50052", to(["127.0.0.1:50052"])],
    ["127.0.0.1:50052, node2:50052", to(["127.0.0.1:50052", "node2:50052"])],
    [["10.0.0.2:1", "10.0.0.3:65535"], ok],
    [
      "127.0.0.1:50052,nohost",
      err(
        'RPC endpoint list "127.0.0.1:50052,nohost": entry 2 "nohost" is not host:port (an IPv4 address or host name, then :port; IPv6 is not supported) (e.g. "127.0.0.1:50052,127.0.0.1:50053")',
      ),
    ],
    [
      "127.0.0.1:0",
      err(
        'RPC endpoint list "127.0.0.1:0": entry 1 "127.0.0.1:0" has no port 1..65535 (expected host:port) (e.g. "127.0.0.1:50052,127.0.0.1:50053")',
      ),
    ],
    [
      "a:1,,b:2",
      err(
        'RPC endpoint list "a:1,,b:2": entry 2 "" is empty (expected host:port) (e.g. "127.0.0.1:50052,127.0.0.1:50053")',
      ),
    ],
    [
      "a:1,a:1",
      err(
        'RPC endpoint list "a:1,a:1": entry 2 "a:1" is listed twice (e.g. "127.0.0.1:50052,127.0.0.1:50053")',
      ),
    ],
    [5, err("type must be a string or an array of strings, but is number 5")],
  ],
  guest_max_tokens: [
    [1, ok],
    [256, ok],
    [0, err("Value must be between 1 <= value <= 2147483647, but got 0")],
    [
      2147483648,
      err("Value must be between 1 <= value <= 2147483647, but got 2147483648"),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
  ],
  guest_max_compute_ms: [
    [1, ok],
    [60000, ok],
    [0, err("Value must be between 1 <= value <= 2147483647, but got 0")],
    [
      2147483648,
      err("Value must be between 1 <= value <= 2147483647, but got 2147483648"),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
  ],
  guest_max_contexts: [
    [1, ok],
    [4, ok],
    [0, err("Value must be between 1 <= value <= 2147483647, but got 0")],
    [
      2147483648,
      err("Value must be between 1 <= value <= 2147483647, but got 2147483648"),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
  ],
  guest_max_kv_tokens: [
    [1, ok],
    [4096, ok],
    [0, err("Value must be between 1 <= value <= 2147483647, but got 0")],
    [
      2147483648,
      err("Value must be between 1 <= value <= 2147483647, but got 2147483648"),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
  ],
  guest_max_load_mb: [
    [1, ok],
    [512, ok],
    [0, err("Value must be between 1 <= value <= 2147483647, but got 0")],
    [
      2147483648,
      err("Value must be between 1 <= value <= 2147483647, but got 2147483648"),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
  ],
  engine: [
    ["in_process", ok],
    ["process", ok],
    [
      "processes",
      err(
        "must be one of in_process, process, but got \"processes\" (did you mean 'process'?)",
      ),
    ],
    [1, err("type must be string, but is number 1")],
  ],
  memory_pressure_threshold: [
    [0.5, ok],
    [
      0,
      err(
        "Value must be between 0.500000 <= value <= 0.950000, but got 0.000000",
      ),
    ],
    [0.95, ok],
    [
      1.45,
      err(
        "Value must be between 0.500000 <= value <= 0.950000, but got 1.450000",
      ),
    ],
    [
      "0.5",
      err(
        'type must be a number, but is string "0.5" (write 0.5 without quotes)',
      ),
    ],
    [true, err("type must be a number, but is boolean true")],
  ],
  batch_processing: [
    [true, ok],
    [false, ok],
    [
      1,
      err(
        "type must be boolean (true or false), but is number 1 (write true instead of 1)",
      ),
    ],
    [
      "true",
      err(
        'type must be boolean (true or false), but is string "true" (write true without quotes)',
      ),
    ],
  ],
  batch_timeout_ms: [
    [10, ok],
    [9, err("Value must be between 10 <= value <= 1000, but got 9")],
    [1000, ok],
    [1001, err("Value must be between 10 <= value <= 1000, but got 1001")],
    [
      "3",
      err(
        'type must be an integer, but is string "3" (write 3 without quotes)',
      ),
    ],
    [
      2.5,
      err(
        "type must be an integer, but is number 2.5 (write a whole number such as 3)",
      ),
    ],
    [true, err("type must be an integer, but is boolean true")],
  ],
};

Deno.test("the table covers every key, and only keys", () => {
  assert.deepEqual(Object.keys(TABLE).sort(), KEYS.map((k) => k.name).sort());
});

for (const [key, cases] of Object.entries(TABLE)) {
  Deno.test(`config key ${key}`, () => {
    for (const [input, outcome] of cases) {
      const what = `${key} = ${JSON.stringify(input)}`;
      if ("err" in outcome) {
        assert.throws(() => parseConfig({ [key]: input }), (e: unknown) => {
          assert.ok(e instanceof ConfigError, `${what}: ${e}`);
          const msg = outcome.err.startsWith("Field '")
            ? outcome.err
            : `Field '${key}': ${outcome.err}`;
          assert.equal(e.message, msg, what);
          assert.equal(e.errno, 1, what);
          const rule = outcome.err.includes("Value must be") ||
              outcome.err.includes("(>= 0), but") ||
              outcome.err.includes("ids are >= 0")
            ? "range"
            : outcome.err.startsWith("must be one of") ||
                outcome.err.startsWith("unknown sampler")
            ? "enum"
            : undefined;
          if (rule) assert.equal(e.rule, rule, what);
          if (outcome.err.startsWith("type must be")) {
            assert.equal(e.rule, "type", what);
          }
          return true;
        }, what);
        continue;
      }
      const { values, warnings } = parseConfig({ [key]: input });
      if ("ok" in outcome) {
        assert.deepEqual(values, { [key]: input }, what);
        assert.deepEqual(warnings, [], what);
      } else if ("to" in outcome) {
        assert.deepEqual(values, { [key]: outcome.to }, what);
        if (typeof input === "number") {
          assert.equal(warnings.length, 1, `${what}: a clamp warns`);
        }
      } else {
        assert.deepEqual(values, {}, what);
        assert.equal(warnings.length, 1, `${what}: an ignored value warns`);
      }
    }
  });
}

Deno.test("every spelling of every key (alias, kebab-case) reaches the key", () => {
  for (const k of KEYS) {
    const [valid, outcome] = TABLE[k.name].find(([, o]) =>
      "ok" in o || "to" in o
    ) ?? [];
    assert.ok(outcome, `${k.name} has a valid value in the table`);
    const expected = "to" in outcome ? outcome.to : valid;
    for (const s of [k.name, ...(k.aliases ?? [])]) {
      for (const spelling of new Set([s, s.replaceAll("_", "-")])) {
        const input = spelling.includes(".")
          ? { [spelling.split(".")[0]]: { [spelling.split(".")[1]]: valid } }
          : { [spelling]: valid };
        const { values } = parseConfig(
          input as Record<string, unknown>,
          { strict: true },
        );
        assert.deepEqual(values, { [k.name]: expected }, spelling);
      }
    }
  }
});

Deno.test("null means 'not set here' for every key", () => {
  const all = Object.fromEntries(KEYS.map((k) => [k.name, null]));
  assert.deepEqual(parseConfig(all, { strict: true }), {
    values: {},
    warnings: [],
    notes: [],
  });
});

// ---- value types come from the table (checked when this file is type-checked) ----

/** Whether two types are the same (not merely assignable). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends
  (<T>() => T extends B ? 1 : 2) ? true : false;
/** Compiles only when `T` is `true`: a compile-time assertion. */
function holds<T extends true>(_proof: T): void {}

Deno.test("config values are typed from the key table, hooks included", () => {
  holds<Same<ConfigValues["n_predict"], number | undefined>>(true);
  holds<Same<ConfigValues["temp"], number | undefined>>(true);
  holds<Same<ConfigValues["use_mmap"], boolean | undefined>>(true);
  holds<Same<ConfigValue<"n_gpu_layers">, number | "auto">>(true);
  holds<Same<ConfigValue<"split_mode">, "none" | "layer" | "row">>(true);
  holds<Same<ConfigValue<"log_format">, "text" | "json">>(true);
  // what a key's hook returns, not what its schema accepts
  holds<Same<ConfigValue<"samplers">, string[]>>(true);
  holds<Same<ConfigValue<"stop">, string[]>>(true);
  holds<Same<ConfigValue<"pooling_type">, number>>(true);
  holds<Same<ConfigValue<"tensor_split">, number[]>>(true);
  holds<Same<ConfigValue<"rpc">, string[]>>(true);
  holds<Same<ConfigValue<"max_image_mb">, number>>(true);
  holds<Same<keyof ConfigValues, KeyName>>(true);
  // @ts-expect-error: n_predict is a number
  const _wrongType: ConfigValues = { n_predict: "8" };
  // @ts-expect-error: not a key
  const _typo: ConfigValues = { n_predcit: 8 };
  assert.deepEqual(
    [...KEYS.map((k) => k.name)].sort(),
    Object.keys(TABLE).sort(),
  );

  // and parsing stores values of those types: the hooks still run
  const { values, warnings } = parseConfig({
    n_predict: 8,
    samplers: "kt",
    stop: "\n",
    pooling: "cls",
    dry_base: 0.5,
    repeat_penalty: 1.1,
  });
  const n: number | undefined = values.n_predict;
  const samplers: string[] | undefined = values.samplers;
  assert.equal(n, 8);
  assert.deepEqual(samplers, ["top_k", "temperature"]);
  assert.deepEqual(values.stop, ["\n"]);
  assert.equal(values.pooling_type, 2);
  assert.equal(values.repeat_penalty, 1.1);
  assert.equal("dry_base" in values, false);
  assert.deepEqual(warnings, [
    "Field 'dry_base': 0.5 is below 1.0 and is ignored (the default 1.75 or a lower layer's value applies)",
  ]);
  assert.throws(() => parseConfig({ repeat_penalty: 0 }), {
    message:
      "Field 'repeat_penalty': Value must be finite and greater than 0, but got 0.000000 (1.0 disables the penalty)",
  });
});

Deno.test("the operator's keys: limits, quotas, RPC endpoints, the engine and the log file; a request's config drops them with a warning", async () => {
  assert.deepEqual(
    KEYS.filter((k) => k.operatorOnly).map((k) => k.name).sort(),
    [
      "chat_template_max_memory_mb",
      "chat_template_max_output_bytes",
      "chat_template_timeout_ms",
      "engine",
      "guest_max_compute_ms",
      "guest_max_contexts",
      "guest_max_kv_tokens",
      "guest_max_load_mb",
      "guest_max_tokens",
      "log_file",
      "max_image_mb",
      "max_load_mb",
      "max_memory_mb",
      "rpc",
    ],
  );
  for (const k of KEYS) {
    if (k.operatorOnly) assert.equal(k.scope, "host", k.name);
  }
  const { HostLog } = await import("../../../wasi_nn/host/_host_log.ts");
  const warned: string[] = [];
  const log = new HostLog((_level, msg) => warned.push(msg));
  const values = log.parse(
    '{"temp":0.5,"rpc":"10.0.0.1:50052","max-image-mb":4096,"max_queue":3}',
    "load config",
  );
  assert.deepEqual(values, { temp: 0.5, max_queue: 3 });
  assert.deepEqual(warned.map((w) => w.match(/'(\w+)'/)![1]), [
    "rpc",
    "max_image_mb",
  ]);
});
