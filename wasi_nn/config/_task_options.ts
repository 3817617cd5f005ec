/**
 * Config values (canonical names) to the options of one generation: its
 * stopping criteria (`n_predict`, `stop`, `reverse_prompt`, `stop_token_ids`,
 * `t_max_predict_ms`, the loop detector), context shift and scheduling. The
 * host's guest calls and `cli.ts generate` read a config the same way.
 *
 * @example
 * ```ts
 * import { taskOptions } from "./_task_options.ts";
 * const o = taskOptions({ n_predict: 8, stop: ["\n"], ctx_shift: true });
 * console.log(o.stop.nPredict, o.stop.includeStop, o.contextShift); // 8 false true
 * ```
 * @module
 */

import type { ConfigValues } from "./parse.ts";
import type { TaskSpec } from "../engine/scheduler.ts";
import type { StopOptions } from "../engine/stopping.ts";

/** What `taskOptions` reads from a config: the config-given part of a scheduler task. */
export type TaskOptions =
  & Pick<
    TaskSpec,
    | "priority"
    | "maxQueue"
    | "queueTimeoutMs"
    | "cachePrompt"
    | "cacheReuse"
    | "contextShift"
    | "nKeep"
    | "nDiscard"
  >
  & {
    /** Stopping criteria. */
    stop: StopOptions;
    /** Generate past end-of-generation tokens. */
    ignoreEos: boolean;
  };

/**
 * The stopping criteria of `compute_single`: as in WasmEdge, n-predict and
 * stop strings (reverse-prompt) are the guest's to apply, since each piece is
 * handed out as it comes; stop tokens, the time limit and the loop detector
 * still apply.
 *
 * @example
 * ```ts
 * import { singleStop } from "./_task_options.ts";
 * console.log(singleStop({ n_predict: 8, stop: ["x"], stop_token_ids: [2] }));
 * // { nPredict: -1, stopTokens: [ 2 ], tMaxPredictMs: undefined, loop: undefined }
 * ```
 */
export function singleStop(cfg: ConfigValues): StopOptions {
  const { stopTokens, tMaxPredictMs, loop } = taskOptions(cfg).stop;
  return { nPredict: -1, stopTokens, tMaxPredictMs, loop };
}

/**
 * The generation options a config asks for. `reverse_prompt` (WasmEdge) stays
 * in the output; the server's `stop` strings do not.
 */
export function taskOptions(cfg: ConfigValues): TaskOptions {
  const stop = (cfg.stop as string[] | undefined) ?? [];
  const reverse =
    typeof cfg.reverse_prompt === "string" && cfg.reverse_prompt !== ""
      ? [cfg.reverse_prompt]
      : [];
  return {
    stop: {
      nPredict: (cfg.n_predict as number | undefined) ?? -1,
      // WasmEdge keeps reverse-prompt in the output; the server removes `stop` strings.
      stop: [...reverse, ...stop],
      includeStop: reverse.length > 0 && stop.length === 0,
      stopTokens: cfg.stop_token_ids as number[] | undefined,
      nIndent: cfg.n_indent as number | undefined,
      tMaxPredictMs: (cfg.t_max_predict_ms ?? cfg.default_task_timeout_ms) as
        | number
        | undefined,
      loop: (cfg.loop_max_cycle as number | undefined)
        ? {
          maxCycle: cfg.loop_max_cycle as number,
          repeats: (cfg.loop_repeats as number | undefined) ?? 4,
        }
        : undefined,
    },
    ignoreEos: Boolean(cfg.ignore_eos),
    priority: cfg.priority_scheduling_enabled === false
      ? 0
      : cfg.priority as number | undefined,
    maxQueue: cfg.max_queue === undefined &&
        cfg.queue_reject_threshold === undefined
      ? undefined
      : Math.min(
        (cfg.max_queue as number | undefined) ?? Infinity,
        (cfg.queue_reject_threshold as number | undefined) ?? Infinity,
      ),
    queueTimeoutMs: (cfg.queue_timeout_ms ?? cfg.default_task_timeout_ms) as
      | number
      | undefined,
    cachePrompt: (cfg.cache_prompt ?? cfg.enable_token_cache_reuse) as
      | boolean
      | undefined,
    cacheReuse: cfg.n_cache_reuse as number | undefined,
    contextShift: cfg.ctx_shift as boolean | undefined,
    nKeep: cfg.n_keep as number | undefined,
    nDiscard: cfg.n_discard as number | undefined,
  };
}
