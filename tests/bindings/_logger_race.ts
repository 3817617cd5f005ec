/**
 * Run by memory_test.ts in a process of its own (a failure here is a crash or
 * a hang): memory estimates on two threads while models load on three more,
 * with every llama.cpp log record produced. llama.cpp's estimate swaps the
 * process-wide logger for one with a pointer into its stack; without the
 * shim's guard (native/CMakeLists.txt, --wrap=llama_log_set), the loads log
 * through it and the process crashes or hangs within a few runs of this.
 * Prints "done <estimates> <loads>".
 * @module
 */

import {
  drainLog,
  estimateMemory,
  Model,
  setLogLevel,
} from "../../bindings/mod.ts";
import { tinyModel } from "../_helpers.ts";

const path = await tinyModel();
const n = Number(Deno.args[0] ?? 60);
setLogLevel("debug");
let estimates = 0, loads = 0;
const estimate = async () => {
  for (let i = 0; i < n; i++) {
    const e = await estimateMemory(path, { nCtx: 512, nSeqMax: 1 });
    if (e.devices.at(-1)!.context > 0) estimates++;
  }
};
const load = async () => {
  for (let i = 0; i < n; i++) {
    const m = await Model.load(path);
    if (m.nVocab === 32000) loads++;
    m.close();
    drainLog();
  }
};
await Promise.all([estimate(), estimate(), load(), load(), load()]);
console.log(`done ${estimates} ${loads}`);
