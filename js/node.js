// Node >= 20 entry point: the same Model, plus loading from files, on all cores by default
// (the threaded build on worker_threads; no isolation headers needed in Node).
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import * as single from "./bert_tasks.js";
import { Model, threadCount, useGlue } from "./index.js";
import { startThreads } from "./threads.js";

export { Model, threadCount };
export const initSync = single.initSync;

let initialised = false;

/**
 * Instantiates the wasm module once. `threads`: "auto" (default: os.availableParallelism()) or a
 * number; 1 runs the single-threaded build. If the threaded build cannot start, the
 * single-threaded one runs and a warning says why.
 */
export async function init({ threads = "auto" } = {}) {
  if (initialised) return;
  const n = threads === "auto" ? availableParallelism() : Number(threads);
  if (n > 1) {
    try {
      const threaded = await import("./threads/bert_tasks.js");
      threaded.initSync({ module: readFileSync(new URL("./threads/bert_tasks_bg.wasm", import.meta.url)) });
      await startThreads(threaded, n);
      useGlue(threaded);
      initialised = true;
      return;
    } catch (e) {
      console.warn(`bert-tasks: running single-threaded, the threaded build did not start: ${e?.message ?? e}`);
    }
  }
  ensureInitSync();
}

function ensureInitSync() {
  if (!initialised) {
    single.initSync({ module: readFileSync(new URL("./bert_tasks_bg.wasm", import.meta.url)) });
    initialised = true;
  }
}

/** Loads a model folder (config.json, tokenizer.json, model.safetensors) from disk. */
export async function loadModel(dir, { threads = "auto" } = {}) {
  await init({ threads });
  const [c, t, w] = await Promise.all(
    ["config.json", "tokenizer.json", "model.safetensors"].map((f) => readFile(join(dir, f))),
  );
  return Model.fromBytes(new Uint8Array(c), new Uint8Array(t), new Uint8Array(w));
}

/** Builds a model from bytes. Synchronous: uses the module `init()` started, or instantiates the
 *  single-threaded build on first use. */
export function fromBytes(config, tokenizer, weights) {
  ensureInitSync();
  return Model.fromBytes(config, tokenizer, weights);
}
