/**
 * Command-line flags of `deno task bench`.
 * @module
 */

import { parseArgs } from "node:util";
import {
  isModelFamily,
  MODEL_FAMILY_TRAITS,
  type ModelFamily,
} from "../gguf/mod.ts";
import { GENERATING_FAMILIES } from "./_families.ts";

/** Resolved benchmark options. */
export interface BenchOptions {
  /** A B pairs to run. */
  pairs: number;
  /** Threads on both sides. */
  threads: number;
  /** Model file; undefined = the generated `bench` preset. */
  model?: string;
  /** Smoke-test sizes. */
  quick: boolean;
  /** One JSON object on stdout instead of the table. */
  json: boolean;
  /** Print usage and exit. */
  help: boolean;
  /** Prompt tokens of the pp test. */
  nPrompt: number;
  /** Tokens of the tg test and of end-to-end generation. */
  nGen: number;
  /** Logical/physical batch on both sides. */
  batch: number;
  /** Thread-pool polling on both sides. */
  poll: number;
  /** A pair during which other processes used more CPUs than this is run again. */
  maxForeignLoad: number;
  /** Most attempts at pairs in all (clean or not). */
  maxAttempts: number;
  /** `--families`: run only the second-turn leg, on these families (undefined: every leg). */
  families?: ModelFamily[];
  /** `--startup`: run only the start-up leg (whole processes, one token). */
  startup: boolean;
  /** `--engine-process`: run only the engine-process legs. */
  engineProcess: boolean;
  /** `--rpc`: run only the RPC leg (two loopback rpc-servers). */
  rpc: boolean;
  /** `--mtmd`: run only the image leg (time to first token against llama-mtmd-cli). */
  mtmd: boolean;
}

/** Usage text. */
export const USAGE = `deno task bench [flags]

Benchmarks our bindings and generation loop against llama.cpp's own tools,
alternating ours and theirs (A B A B) in one run.

  --pairs N       A B pairs (default 5; 2 with --quick)
  --threads N     threads on both sides (default 2)
  --model PATH    GGUF model (default: the generated bench model)
  --quick         smoke test: pp128, tg32, 32 generated tokens
  --json          print one JSON object on stdout (progress stays on stderr)
  --families [LIST]
                  run only the second-turn leg (time to first token of a
                  chat's second turn with the prompt cache or a checkpoint,
                  and without) on the synthetic model of each family in
                  LIST (comma-separated; default all, also in the full
                  bench, with at most 3 pairs there):
                  ${GENERATING_FAMILIES.join(", ")}
  --startup       run only the start-up leg (also in the full bench): whole
                  processes, wall time and peak RSS (GNU time), of one token
                  from build/guests/oneshot.wasm through cli.ts against
                  llama-completion -n 1, and cli.ts --version alone
  --engine-process
                  run only the engine-process legs (also in the full bench):
                  the guest and 1/4/8/16 sessions through a model engine in
                  a child process (engine: "process") against in-process
                  and llama-batched-bench, alternating
  --rpc           run only the RPC leg: the model split across two
                  loopback rpc-servers (build/bin/ggml-rpc-server) against
                  the same model locally, ours and llama-bench --rpc with
                  the same split, alternating
  --mtmd          run only the image leg (also in the full bench): time to
                  the first token of a prompt with one image through the
                  host against llama-mtmd-cli -n 1, alternating
  --max-foreign-load X
                  run a pair again when other processes used more than X
                  CPUs on average during it (default 0.15; spin-waiting thread
                  pools on 2 cores collapse when anything else runs)
  -h, --help      this text
`;

/** Thrown for bad flags (bench.ts prints it with the usage). */
export class UsageError extends Error {
  /** @param message What was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

function positiveInt(
  name: string,
  v: string | undefined,
  dflt: number,
): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new UsageError(`--${name} must be a positive integer, got '${v}'`);
  }
  return n;
}

function families(list: string): ModelFamily[] {
  if (list === "all") return [...GENERATING_FAMILIES];
  const out: ModelFamily[] = [];
  for (const name of list.split(",").map((x) => x.trim())) {
    if (!isModelFamily(name) || !MODEL_FAMILY_TRAITS[name].generates) {
      throw new UsageError(
        `--families: '${name.slice(0, 40)}' is not a generating model family ` +
          `(use 'all' or a comma-separated list of: ${
            GENERATING_FAMILIES.join(", ")
          })`,
      );
    }
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** Parses the flags. Throws UsageError on bad input. */
export function parseBenchArgs(argv: string[]): BenchOptions {
  let v;
  try {
    v = parseArgs({
      // A bare `--families` means all of them.
      args: argv.map((a, i) =>
        a === "--families" &&
          (i + 1 === argv.length || argv[i + 1].startsWith("-"))
          ? "--families=all"
          : a
      ),
      strict: true,
      allowPositionals: false,
      options: {
        pairs: { type: "string" },
        threads: { type: "string" },
        model: { type: "string" },
        "max-foreign-load": { type: "string" },
        families: { type: "string" },
        quick: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        startup: { type: "boolean", default: false },
        "engine-process": { type: "boolean", default: false },
        rpc: { type: "boolean", default: false },
        mtmd: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const quick = v.quick ?? false;
  const pairs = positiveInt("pairs", v.pairs, quick ? 2 : 5);
  const mfl = v["max-foreign-load"] === undefined
    ? 0.15
    : Number(v["max-foreign-load"]);
  if (!(mfl >= 0)) {
    throw new UsageError(
      `--max-foreign-load must be a number >= 0, got '${
        v["max-foreign-load"]
      }'`,
    );
  }
  const only = [
    v.startup && "--startup",
    v.families !== undefined && "--families",
    v["engine-process"] && "--engine-process",
    v.rpc && "--rpc",
    v.mtmd && "--mtmd",
  ].filter(Boolean);
  if (only.length > 1) {
    throw new UsageError(`${only.join(" and ")} each run one leg: pick one`);
  }
  return {
    pairs,
    threads: positiveInt("threads", v.threads, 2),
    model: v.model,
    quick,
    json: v.json ?? false,
    help: v.help ?? false,
    nPrompt: quick ? 128 : 512,
    nGen: quick ? 32 : 128,
    batch: 512,
    poll: 50,
    maxForeignLoad: mfl,
    maxAttempts: pairs * 3,
    families: v.families === undefined ? undefined : families(v.families),
    startup: v.startup ?? false,
    engineProcess: v["engine-process"] ?? false,
    rpc: v.rpc ?? false,
    mtmd: v.mtmd ?? false,
  };
}
