/**
 * The error type of build.ts: every failure names its cause and a fix.
 * @module
 */

/**
 * A build failure with a cause, a suggested fix and, where a tool ran, the
 * tail of its output and the path of the full log.
 *
 * @example
 * ```ts
 * import { BuildError } from "./errors.ts";
 * const e = new BuildError("cmake not found", { fix: "apt-get install cmake" });
 * console.log(e.message, e.fix);
 * ```
 */
export class BuildError extends Error {
  /** What to do about it. */
  readonly fix: string;
  /** The full log of the failing step, when there is one. */
  readonly logPath?: string;
  /** The last lines of the failing tool's output. */
  readonly logTail?: string[];

  /** Creates a build error; `message` names the cause. */
  constructor(
    message: string,
    details: { fix: string; logPath?: string; logTail?: string[] },
  ) {
    super(message);
    this.name = "BuildError";
    this.fix = details.fix;
    this.logPath = details.logPath;
    this.logTail = details.logTail;
  }
}
