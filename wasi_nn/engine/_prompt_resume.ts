/**
 * Where a task admitted to a slot starts decoding its prompt: what it keeps
 * of the session's cached tokens (the server's `cache_prompt`, chunk reuse,
 * and the rollback each kind of memory allows, from `_prompt_cache.ts`),
 * kept whole around images, and where it takes its checkpoint.
 *
 * @example
 * ```ts ignore
 * import { resumePrompt } from "./_prompt_resume.ts";
 * resumePrompt(ctx, traits, task, slot);
 * console.log(task.reused, task.reuse, task.pending.length);
 * ```
 * @module
 */

import type { Context } from "../../bindings/mod.ts";
import { outsideMedia, posShiftAt } from "./_media.ts";
import {
  checkpointPosition,
  type MemoryTraits,
  reusablePrefix,
  reuseChunks,
  rollBack,
} from "./_prompt_cache.ts";
import type { Task } from "./_task.ts";

/**
 * Makes the slot's sequence hold what the task reuses of its owner's cache
 * (`owner.cached` is cut to it), and sets the task's prompt cursor (`pending`,
 * `pos`, `posShift`), its reuse figures and its checkpoint position.
 */
export function resumePrompt(
  ctx: Context,
  traits: MemoryTraits,
  task: Task,
  slot: number,
): void {
  const { owner, prompt, media } = task.spec;
  const cachePrompt = task.spec.cachePrompt !== false;
  let n = reusablePrefix(owner.cached, prompt, cachePrompt);
  // An image's embeddings are all reused or none.
  if (media) n = outsideMedia(n, media.spans);
  let reusedChunks = 0;
  const minChunk = task.spec.cacheReuse ?? 0;
  if (cachePrompt && minChunk > 0 && traits.canShift && !media) {
    const r = reuseChunks(ctx, slot, owner.cached, prompt, n, minChunk);
    n = r.end;
    reusedChunks = r.moved;
  }
  // Drop the rest, as far as the memory allows (recurrent state, SWA window).
  const spans = media?.spans ?? [];
  const back = rollBack(
    ctx,
    slot,
    owner.cached.length,
    n,
    traits,
    owner.checkpoints,
    (k) => k + posShiftAt(k, spans),
  );
  n = back.kept;
  if (back.how === "checkpoint" || back.how === "reset") reusedChunks = 0;
  owner.cached.length = n;
  task.reused = n;
  task.reusedChunks = reusedChunks;
  task.reuse = back.how;
  // A checkpoint near the end of the prompt lets the next turn reuse it.
  task.checkpointAt = checkpointPosition(prompt.length, n, traits);
  if (media && task.checkpointAt > 0) {
    const at = outsideMedia(task.checkpointAt, media.spans);
    task.checkpointAt = at > n ? at : -1;
  }
  task.pending = prompt.subarray(n) as Int32Array;
  task.pendingAt = 0;
  task.pos = n;
  task.posShift = posShiftAt(n, spans);
}
