/**
 * Child process of interrupt_test.ts: a host whose `compute` stays pending
 * until cancelled, wrapped by the CLI's InterruptHandler. Prints `ready`
 * when the call is in flight, `cancel` when the handler cancels, `idle`
 * once nothing is in flight, then waits (so that the parent can check what
 * a Ctrl-C does then). Mode `ignore` never ends the call on cancel; mode
 * `view` makes the call on the host's `forGuest` view, as a guest does.
 * @module
 */
import { InterruptHandler } from "../../cli/interrupt.ts";

const mode = Deno.args[0] ?? "once";
const say = (line: string) =>
  Deno.stdout.writeSync(new TextEncoder().encode(`${line}\n`));

class PendingHost {
  #release?: () => void;
  compute(_ctx: number): Promise<void> {
    return new Promise((resolve) => this.#release = resolve);
  }
  release(): void {
    this.#release?.();
  }
  forGuest(_label: string): { compute(ctx: number): Promise<void> } {
    return { compute: (ctx) => this.compute(ctx) };
  }
}

const host = new PendingHost();
const interrupts = new InterruptHandler({
  cancel: () => {
    say("cancel");
    if (mode !== "ignore") host.release();
  },
});
const wrapped = interrupts.wrap(host);
const pending = mode === "view"
  ? wrapped.forGuest("guest").compute(0)
  : wrapped.compute(0);
say("ready");
await pending;
say("idle");
setTimeout(() => {}, 120_000); // the parent ends this with a signal
