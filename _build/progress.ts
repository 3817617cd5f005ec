/**
 * Build progress: parsing CMake/Make (`[ 54%] Building ...`) and Ninja
 * (`[12/345] Building ...`) output lines, and showing progress as one
 * updating line on a terminal or occasional plain lines elsewhere.
 * @module
 */

/** One recognised line of build-tool output. */
export interface ProgressLine {
  /** Percent done of the current make goal (0-100). */
  percent: number;
  /** What the line says is happening: "compile", "link", "built" or "other". */
  action: "compile" | "link" | "built" | "other";
  /** A short description: the source file, the library, or the target. */
  detail: string;
  /** For "built" lines, the target name. */
  target?: string;
}

const MAKE_PREFIX = /^\[\s*(\d{1,3})%\]\s+(.*)$/;
const NINJA_PREFIX = /^\[(\d+)\/(\d+)\]\s+(.*)$/;

/**
 * Parses a `[ NN%] ...` (Make) or `[N/M] ...` (Ninja) line; undefined for any
 * other line.
 */
export function parseProgressLine(line: string): ProgressLine | undefined {
  let percent: number;
  let rest: string;
  const make = MAKE_PREFIX.exec(line.trimEnd());
  if (make) {
    percent = Math.min(100, Number(make[1]));
    rest = make[2];
  } else {
    const ninja = NINJA_PREFIX.exec(line.trimEnd());
    if (!ninja || Number(ninja[2]) === 0) return undefined;
    percent = Math.min(
      100,
      Math.floor(Number(ninja[1]) * 100 / Number(ninja[2])),
    );
    rest = ninja[3];
  }
  const built = /^Built target (\S+)/.exec(rest);
  if (built) {
    return { percent, action: "built", detail: built[1], target: built[1] };
  }
  const compile = /^Building (?:C|CXX|CUDA|ASM)? ?object (\S+)/.exec(rest);
  if (compile) {
    // llama.cpp/src/CMakeFiles/llama.dir/models/llama4.cpp.o -> llama.cpp/src/models/llama4.cpp
    const source = compile[1]
      .replace(/CMakeFiles\/[^/]+\.dir\//, "")
      .replace(/\.(o|obj)$/, "");
    return { percent, action: "compile", detail: source };
  }
  const link =
    /^Linking \S+ (?:static library|shared library|shared module|executable) (\S+)/
      .exec(rest);
  if (link) {
    return {
      percent,
      action: "link",
      detail: link[1].replace(/^.*\//, ""),
    };
  }
  return { percent, action: "other", detail: rest };
}

/** A progress event of {@linkcode build}. */
export interface BuildProgress {
  /** The phase: fetching llama.cpp, configuring CMake, building, or copying outputs. */
  phase: "fetch" | "configure" | "build" | "copy";
  /** Overall percent of the phase (0-100); undefined where unknown. */
  percent?: number;
  /** For "build": which target (1-based) of `steps` is being built. */
  step?: number;
  /** For "build": how many targets are built. */
  steps?: number;
  /** For "build": the target being built. */
  target?: string;
  /** What is happening now (a source file, a library, a message). */
  detail: string;
}

/**
 * Turns the lines of one `cmake --build --target a b c` run into
 * {@linkcode BuildProgress} events. Make builds several goals one after the
 * other, each counting from 0% to 100%, so the step is the goal being built
 * and the overall percent combines both.
 */
export class BuildProgressTracker {
  #targets: string[];
  #done = new Set<string>();
  #lastPercent = 0;

  /** Tracks progress over the given goals, in the order they are built. */
  constructor(targets: string[]) {
    this.#targets = targets;
  }

  /** The event for an output line, or undefined when the line carries no progress. */
  update(line: string): BuildProgress | undefined {
    const parsed = parseProgressLine(line);
    if (!parsed) return undefined;
    const steps = this.#targets.length;
    const index = Math.min(this.#done.size, steps - 1);
    const target = this.#targets[index];
    let percentInStep = parsed.percent;
    if (parsed.action === "built" && parsed.target === target) {
      this.#done.add(target);
      percentInStep = 100;
    } else if (
      parsed.action === "built" && this.#targets.includes(parsed.target!)
    ) {
      this.#done.add(parsed.target!); // a goal built as part of another
    }
    const overall = Math.floor(((index + percentInStep / 100) / steps) * 100);
    this.#lastPercent = Math.max(this.#lastPercent, Math.min(100, overall));
    const detail = parsed.action === "compile"
      ? parsed.detail
      : parsed.action === "link"
      ? `linking ${parsed.detail}`
      : parsed.action === "built"
      ? `built ${parsed.detail}`
      : parsed.detail;
    return {
      phase: "build",
      percent: this.#lastPercent,
      step: index + 1,
      steps,
      target,
      detail,
    };
  }
}

/** How progress is shown: an updating bar, plain lines, or nothing. */
export type ProgressMode = "bar" | "lines" | "none";

/** A one-line text for a progress event (used in plain-line mode and the fallback bar). */
export function formatProgress(event: BuildProgress): string {
  const head = event.phase === "build" && event.steps
    ? `build ${event.step}/${event.steps} ${event.target}`
    : event.phase;
  const percent = event.percent === undefined
    ? ""
    : ` ${String(event.percent).padStart(3)}%`;
  return `[${head}]${percent} ${event.detail}`.trimEnd();
}

function truncate(text: string, width: number): string {
  return text.length <= width
    ? text
    : `...${text.slice(text.length - width + 3)}`;
}

interface BarLike {
  start(total: number, value: number, payload: Record<string, unknown>): void;
  update(value: number, payload: Record<string, unknown>): void;
  stop(): void;
}

/**
 * Shows progress events on stderr. "bar": one updating line (npm:cli-progress,
 * or a plain `\r` line if it cannot load); "lines": a line per phase and per
 * 10% step; "none": silent. Warnings and notes go to stderr in every mode but
 * "none" (warnings: always).
 */
export class ProgressReporter {
  #mode: ProgressMode;
  #bar?: BarLike;
  #barActive = false;
  #fallbackLine = false;
  #lastKey = "";
  #encoder = new TextEncoder();

  private constructor(mode: ProgressMode) {
    this.#mode = mode;
  }

  /** Creates a reporter; "bar" tries to load npm:cli-progress. */
  static async create(mode: ProgressMode): Promise<ProgressReporter> {
    const reporter = new ProgressReporter(mode);
    if (mode === "bar") {
      try {
        const { default: cliProgress } = await import(
          "cli-progress"
        );
        reporter.#bar = new cliProgress.SingleBar({
          format: "{head} [{bar}] {percentage}% {detail}",
          barsize: 24,
          hideCursor: true,
          clearOnComplete: true,
          stopOnComplete: false,
          etaBuffer: 50,
          fps: 8,
        }, cliProgress.Presets.shades_classic) as BarLike;
      } catch {
        reporter.#bar = undefined; // fall back to a plain \r line
      }
    }
    return reporter;
  }

  /** Shows a progress event. */
  update(event: BuildProgress): void {
    if (this.#mode === "none") return;
    if (this.#mode === "lines") {
      const bucket = event.percent === undefined
        ? ""
        : Math.floor(event.percent / 10);
      const key = `${event.phase}/${event.step ?? ""}/${bucket}`;
      if (key === this.#lastKey) return;
      this.#lastKey = key;
      console.error(formatProgress(event));
      return;
    }
    const columns = terminalColumns();
    const head = event.phase === "build" && event.steps
      ? `build ${event.step}/${event.steps} ${event.target}`
      : event.phase;
    if (this.#bar) {
      const detail = truncate(
        event.detail,
        Math.max(10, columns - head.length - 36),
      );
      const payload = { head, detail };
      if (!this.#barActive) {
        this.#bar.start(100, event.percent ?? 0, payload);
        this.#barActive = true;
      } else {
        this.#bar.update(event.percent ?? 0, payload);
      }
      return;
    }
    const line = truncate(formatProgress(event), columns - 1);
    Deno.stderr.writeSync(this.#encoder.encode(`\r\x1b[2K${line}`));
    this.#fallbackLine = true;
  }

  /** Clears the progress line (before printing anything else). */
  clear(): void {
    if (this.#barActive) {
      this.#bar!.stop();
      this.#barActive = false;
    }
    if (this.#fallbackLine) {
      Deno.stderr.writeSync(this.#encoder.encode("\r\x1b[2K"));
      this.#fallbackLine = false;
    }
  }

  /** Prints an informational line (not in "none" mode). */
  note(message: string): void {
    if (this.#mode === "none") return;
    this.clear();
    console.error(message);
  }

  /** Prints a warning (in every mode). */
  warn(message: string): void {
    this.clear();
    console.error(`warning: ${message}`);
  }
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}
