/**
 * The process exit codes of `cli.ts` and its commands: one table for the
 * guest runner, `generate` and `demo`.
 *
 * @example
 * ```ts
 * import { EXIT_CODES } from "./exit_codes.ts";
 * console.log(EXIT_CODES.trap); // 134
 * ```
 * @module
 */

/**
 * The process exit codes of `cli.ts` other than success (0) and the guest's
 * own. A guest's exit code is passed through unchanged, so these can collide
 * with it; the runner's follow sysexits.h and the shell's conventions to make
 * that unlikely. `generate` and `demo` use {@linkcode EXIT_CODES.usage} too,
 * and the small {@linkcode EXIT_CODES.failure} and
 * {@linkcode EXIT_CODES.modelLoad} that the README documents for them.
 *
 * @example
 * ```ts
 * import { EXIT_CODES } from "./exit_codes.ts";
 * console.log(EXIT_CODES.usage, EXIT_CODES.modelLoad); // 2 3
 * ```
 */
export const EXIT_CODES = {
  /** `generate`, `demo`: a failure at run time (a decode error, a build that failed). */
  failure: 1,
  /**
   * Bad command line: unknown option, malformed value, missing guest; a
   * `--config` that is not valid JSON, breaks a key's rule or names a
   * `log_file` that cannot be opened; a `--dir` folder that does not exist.
   */
  usage: 2,
  /** `generate`: the model could not be loaded (missing, malformed, too big). */
  modelLoad: 3,
  /** The .wasm file cannot be read or is not WebAssembly (EX_NOINPUT). */
  noInput: 66,
  /** The llama.cpp host could not start, e.g. the library is not built (EX_UNAVAILABLE). */
  unavailable: 69,
  /** The guest cannot be linked (missing imports, no memory or _start), or an internal error (EX_SOFTWARE). */
  software: 70,
  /** Interrupted by a second Ctrl-C (128 + SIGINT). */
  interrupted: 130,
  /** The guest trapped, e.g. a Rust panic (128 + SIGABRT). */
  trap: 134,
} as const;
