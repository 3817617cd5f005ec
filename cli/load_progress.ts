/**
 * The guest runner's one-line model load progress on stderr, shown only on
 * a terminal.
 *
 * @example
 * ```ts
 * import { LoadProgress } from "./load_progress.ts";
 * const progress = new LoadProgress();
 * progress.update("default", 0.5); // "loading model 'default': 50%" on a terminal
 * progress.clear();
 * ```
 * @module
 */

/**
 * A one-line model load progress display on stderr, only on a terminal.
 *
 * @example
 * ```ts
 * import { LoadProgress } from "./load_progress.ts";
 * const progress = new LoadProgress();
 * progress.update("default", 1); // done: the line is cleared
 * ```
 */
export class LoadProgress {
  #enabled = Deno.stderr.isTerminal();
  #shown = "";
  #encoder = new TextEncoder();

  /** Shows `fraction` (0..1) of model `name` loaded; 1 clears the line. */
  update(name: string, fraction: number): void {
    if (!this.#enabled) return;
    if (fraction >= 1) return this.clear();
    const line = `loading model '${name}': ${Math.floor(fraction * 100)}%`;
    if (line === this.#shown) return;
    this.#shown = line;
    Deno.stderr.writeSync(this.#encoder.encode(`\r\x1b[2K${line}`));
  }

  /** Clears the progress line, if one is shown. */
  clear(): void {
    if (this.#shown === "") return;
    this.#shown = "";
    Deno.stderr.writeSync(this.#encoder.encode("\r\x1b[2K"));
  }
}
