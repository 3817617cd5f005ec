/**
 * The engine process: a child that loads one model and runs its engine
 * (`LocalEngine`: schedulers, embedding contexts) for the host that spawned
 * it, over the Unix socket named by its first argument ({@link ./_protocol.ts});
 * the second, the model's label, is there for `ps` only. If llama.cpp
 * aborts, only this process ends; the host sees the socket close and the
 * exit status.
 *
 * @example
 * ```ts ignore
 * // Spawned by EngineProcess.start(): deno run -A _child.ts /tmp/…/engine.sock default
 * ```
 * @module
 */

import {
  fitParams,
  LlamaError,
  type LogLevel,
  Model,
  type ModelLoadOptions,
  type PlanOptions,
  setLogLevel,
  Status,
} from "../../../bindings/mod.ts";
import { Errno, WasiNnError } from "../../errno.ts";
import { drainLog } from "../../../bindings/mod.ts";
import type { SlotOwner, TaskHandle, TaskSpec } from "../scheduler.ts";
import type { MediaPrompt, ProjectorOptions } from "../_media_prompt.ts";
import {
  type EmbedContext,
  type EngineScheduler,
  type EngineSchedulerOptions,
  LocalEngine,
} from "../model_engine.ts";
import {
  decodeJson,
  encodeStep,
  FrameKind,
  FrameReader,
  FrameWriter,
  type StepEntry,
  StepKind,
  toWire,
} from "./_protocol.ts";

/** A request from the host. */
// deno-lint-ignore no-explicit-any
type Req = { id: number; op: string } & Record<string, any>;

const enc = new TextEncoder();
const conn = await Deno.connect({ transport: "unix", path: Deno.args[0] });
const out = new FrameWriter(conn.writable);
const input = new FrameReader(conn.readable);

let engine: LocalEngine | undefined;
const scheds = new Map<number, EngineScheduler>();
const owners = new Map<number, { sched: number; owner: SlotOwner }>();
const tasks = new Map<number, TaskHandle>();
const embeds = new Map<number, EmbedContext>();
/** Prompts with media, by the host's id (`media_prompt` ... `media_free`). */
const medias = new Map<number, MediaPrompt>();

/** Tokens of the current step, sent as one frame when the step's turn ends. */
let step: StepEntry[] = [];
function emit(e: StepEntry): void {
  if (step.length === 0) setTimeout(flushStep, 0);
  step.push(e);
}
function flushStep(): void {
  if (step.length === 0) return;
  out.send(FrameKind.Step, encodeStep(step));
  step = [];
  flushLog();
}

function flushLog(): void {
  const records = drainLog();
  if (records.length > 0) out.json(FrameKind.Log, records);
}

function ownerOf(id: number): SlotOwner {
  const o = owners.get(id);
  if (!o) throw new Error(`no owner ${id}`);
  return o.owner;
}

function schedOf(id: number): EngineScheduler {
  const s = scheds.get(id);
  if (!s) throw new Error(`no scheduler ${id}`);
  return s;
}

function loaded(): LocalEngine {
  if (!engine) throw new Error("no model loaded");
  return engine;
}

/** Starts a task; its end is an event, its tokens step entries. */
function submit(r: Req): void {
  const owner = ownerOf(r.owner);
  const id: number = r.task;
  const media = r.media === undefined ? undefined : medias.get(r.media);
  const spec: TaskSpec = {
    ...r.spec,
    owner,
    prompt: Int32Array.from(r.prompt as number[]),
    media: media?.media,
    sampler: r.sampler,
    onText: r.text
      ? (t: string) =>
        emit({ task: id, what: StepKind.Text, token: -1, bytes: enc.encode(t) })
      : undefined,
    onToken: r.token
      ? (token: number, bytes: Uint8Array) =>
        emit({ task: id, what: StepKind.Token, token, bytes })
      : undefined,
  };
  const sched = schedOf(r.sched);
  const ended = (value: Record<string, unknown>) => {
    flushStep();
    tasks.delete(id);
    out.json(FrameKind.Event, {
      event: "done",
      task: id,
      cached: owner.cached,
      stats: sched.stats,
      ...value,
    });
    flushLog();
  };
  let handle: TaskHandle;
  try {
    if (r.media !== undefined && !media) {
      throw new WasiNnError(
        Errno.RuntimeError,
        "the prompt's media are gone from this engine: set the prompt again",
      );
    }
    handle = sched.submit(spec);
  } catch (e) {
    ended({ error: toWire(e) });
    return;
  }
  tasks.set(id, handle);
  handle.result.then(
    (result) => ended({ result }),
    (e) => ended({ error: toWire(e) }),
  );
}

/** An on-demand task's next token (or its end) as a step entry. */
function demand(r: Req): void {
  const h = tasks.get(r.task);
  if (!h) {
    emit({
      task: r.task,
      what: StepKind.End,
      token: -1,
      bytes: new Uint8Array(),
    });
    return;
  }
  h.next().then((ev) =>
    emit(
      ev
        ? {
          task: r.task,
          what: StepKind.Next,
          token: ev.token,
          bytes: ev.bytes,
        }
        : {
          task: r.task,
          what: StepKind.End,
          token: -1,
          bytes: new Uint8Array(),
        },
    )
  );
}

/** What each request does; its value is the reply (undefined: none wanted). */
async function handle(r: Req): Promise<unknown> {
  switch (r.op) {
    case "log_level":
      setLogLevel(r.level as LogLevel);
      return;
    case "fit":
      return await fitParams(r.path, r.opts as PlanOptions);
    case "load": {
      let model: Model;
      try {
        model = await Model.load(r.path, {
          ...(r.options as ModelLoadOptions),
          onProgress: (f) =>
            out.json(FrameKind.Event, { event: "progress", id: r.id, f }),
        });
      } catch (e) {
        // As the host words a failed load: a missing file, or a bad model.
        const missing = e instanceof LlamaError &&
          e.code === Status.FileNotFound;
        throw new WasiNnError(
          missing ? Errno.ModelNotFound : Errno.InvalidArgument,
          (e as Error).message,
        );
      }
      engine = new LocalEngine(model);
      return { nCtxTrain: model.nCtxTrain };
    }
    case "estimate":
      return await loaded().estimate(r.path, r.opts as PlanOptions);
    case "projector":
      return await loaded().projector(r.path, r.opts as ProjectorOptions);
    case "media_prompt": {
      const items = r.items as { source: string; data: string }[];
      const p = await loaded().mediaPrompt(
        r.text,
        items.map((m) => ({
          source: m.source,
          bytes: Uint8Array.fromBase64(m.data),
        })),
      );
      medias.set(r.media, p);
      return {
        tokens: Array.from(p.tokens),
        spans: p.media.spans.map(({ start, end, nPos }) => ({
          start,
          end,
          nPos,
        })),
      };
    }
    case "media_free":
      medias.get(r.media)?.close();
      medias.delete(r.media);
      return;
    case "sched_create": {
      const s = await loaded().scheduler(r.opts as EngineSchedulerOptions);
      scheds.set(r.sched, s);
      return { nCtxPerSeq: s.nCtxPerSeq, kvBytes: s.kvBytes, stats: s.stats };
    }
    case "sched_close":
      scheds.get(r.sched)?.close();
      scheds.delete(r.sched);
      for (const [k, o] of owners) if (o.sched === r.sched) owners.delete(k);
      return;
    case "stats":
      return schedOf(r.sched).stats;
    case "owner_new":
      owners.set(r.owner, {
        sched: r.sched,
        owner: schedOf(r.sched).newOwner(r.name),
      });
      return;
    case "owner_drop": {
      const o = owners.get(r.owner);
      if (o) scheds.get(o.sched)?.dropOwner(o.owner);
      owners.delete(r.owner);
      return;
    }
    case "submit":
      submit(r);
      return;
    case "demand":
      demand(r);
      return;
    case "cancel":
      tasks.get(r.task)?.cancel();
      return;
    case "save":
      return await schedOf(r.sched).saveOwner(ownerOf(r.owner), r.path);
    case "restore": {
      const owner = ownerOf(r.owner);
      const n = await schedOf(r.sched).restoreOwner(owner, r.path);
      return { n, cached: owner.cached };
    }
    case "embed_create": {
      const e = await loaded().embedContext(r.opts);
      embeds.set(r.embed, e);
      return { poolingType: e.poolingType };
    }
    case "embed_run": {
      const e = embeds.get(r.embed);
      if (!e) throw new Error(`no embedding context ${r.embed}`);
      const v = await e.embed(Int32Array.from(r.prompt), r.seq, r.norm);
      return Array.from(v);
    }
    case "embed_close":
      embeds.get(r.embed)?.close();
      embeds.delete(r.embed);
      return;
    case "exit":
      for (const s of scheds.values()) s.close();
      for (const e of embeds.values()) e.close();
      await engine?.close();
      await out.close();
      Deno.exit(0);
      return;
    default:
      throw new Error(`unknown request '${r.op}'`);
  }
}

for (;;) {
  const f = await input.next();
  if (!f) break; // the host is gone: so is the engine
  if (f.kind !== FrameKind.Request) continue;
  const r = decodeJson<Req>(f.payload);
  handle(r).then(
    (value) => {
      if (r.id) out.json(FrameKind.Reply, { id: r.id, value: value ?? null });
      flushLog();
    },
    (e) => {
      if (r.id) out.json(FrameKind.Reply, { id: r.id, error: toWire(e) });
      flushLog();
    },
  );
}
Deno.exit(0);
