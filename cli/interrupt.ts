/**
 * Ctrl-C while a guest runs: the first press cancels the generation, a
 * second one exits with {@linkcode EXIT_CODES.interrupted}.
 *
 * @example
 * ```ts ignore
 * import { InterruptHandler } from "./interrupt.ts";
 * import type { WasiNnHostApi } from "../wasi_nn/host/api.ts";
 * declare const host: WasiNnHostApi & { cancelAll(): void };
 * const interrupts = new InterruptHandler({ cancel: () => host.cancelAll() });
 * const covered = interrupts.wrap(host); // give this one to the guest
 * interrupts.dispose();
 * ```
 * @module
 */

import { EXIT_CODES } from "./exit_codes.ts";

/** Options of {@linkcode InterruptHandler}. */
export interface InterruptOptions {
  /** Cancels what the host is running (the first Ctrl-C). */
  cancel: () => void;
  /** Called before a message is printed, e.g. to clear a progress line. */
  beforeMessage?: () => void;
}

/**
 * Calls that go on with the turn a `load`/`setInput` began: a Ctrl-C
 * pressed before them still counts toward the second press that exits.
 * Every other call begins a new turn.
 */
const SAME_TURN: ReadonlySet<PropertyKey> = new Set([
  "compute",
  "computeSingle",
]);

/**
 * Ctrl-C handling. The SIGINT listener is registered only while a host call
 * is in flight (a pending promise: loading, set_input, compute): the first
 * Ctrl-C cancels generation, a second one exits with 130. At all other times
 * (e.g. the guest blocked reading stdin, or a blocking call, when no JS can
 * run) Ctrl-C keeps its default effect and ends the process at once.
 *
 * @example
 * ```ts ignore
 * import { InterruptHandler } from "./interrupt.ts";
 * import type { LlamaHost } from "../wasi_nn/host/host.ts";
 * declare const host: LlamaHost;
 * const interrupts = new InterruptHandler({ cancel: () => host.cancelAll() });
 * await interrupts.wrap(host).compute(0); // Ctrl-C meanwhile cancels it
 * interrupts.dispose();
 * ```
 */
export class InterruptHandler {
  #options: InterruptOptions;
  #inFlight = 0;
  #presses = 0;
  #listening = false;
  #onSignal = () => {
    this.#presses++;
    this.#options.beforeMessage?.();
    if (this.#presses === 1) {
      console.error("\n^C: stopping generation (press Ctrl-C again to exit)");
      this.#options.cancel();
    } else {
      console.error("^C: exiting");
      Deno.exit(EXIT_CODES.interrupted);
    }
  };

  /** Creates the handler; nothing listens until a wrapped call is in flight. */
  constructor(options: InterruptOptions) {
    this.#options = options;
  }

  async #track<T>(newTurn: boolean, pending: Promise<T>): Promise<T> {
    if (newTurn) this.#presses = 0;
    if (this.#inFlight++ === 0 && !this.#listening) {
      Deno.addSignalListener("SIGINT", this.#onSignal);
      this.#listening = true;
    }
    try {
      return await pending;
    } finally {
      if (--this.#inFlight === 0) this.#stopListening();
    }
  }

  #stopListening(): void {
    if (!this.#listening) return;
    this.#listening = false;
    Deno.removeSignalListener("SIGINT", this.#onSignal);
  }

  /**
   * `host` with every method forwarded (whatever methods it has) and every
   * call that returns a promise covered by the handler while it is pending.
   * The one wrapper of a host: nothing else wraps it on the way to a guest.
   * The view `forGuest` returns (one guest instance's) is covered too.
   */
  wrap<T extends object>(host: T): T {
    return new Proxy(host, {
      get: (target, key) => {
        const value = Reflect.get(target, key, target);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          const result = value.apply(target, args);
          if (key === "forGuest" && typeof result === "object" && result) {
            return this.wrap(result);
          }
          return result instanceof Promise
            ? this.#track(!SAME_TURN.has(key), result)
            : result;
        };
      },
    });
  }

  /** Stops listening, whatever is still in flight. */
  dispose(): void {
    this.#inFlight = 0;
    this.#stopListening();
  }
}
