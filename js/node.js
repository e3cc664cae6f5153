// Node >= 20 entry point: the same Model, plus loading from files, on all cores by default
// (a threaded build on worker_threads; no isolation headers needed in Node).
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Model, buildName, initSync, int8KernelCheck, memoryBytes, threadCount, useGlue } from "./index.js";
import { autoThreads } from "./threads.js";
import { startBestVariant } from "./variants.js";

export { Model, buildName, initSync, int8KernelCheck, memoryBytes, threadCount };

let initialised = false;

/**
 * Instantiates the wasm module once. `threads`: "auto" (default: os.availableParallelism()) or a
 * number; 1 runs a single-threaded build. Where Node has relaxed SIMD (Node ≥ 22) the build with
 * the fused multiply-add kernel runs. A build that cannot start falls back to the next, as in
 * the browser (a warning says why).
 */
export async function init({ threads = "auto" } = {}) {
  if (initialised) return;
  const n = threads === "auto" ? await autoThreads() : Number(threads);
  const started = await startBestVariant(n, (glue, wasm) => glue.initSync({ module: readFileSync(wasm) }));
  if (started) {
    useGlue(started.glue, started.name, started.exports);
    initialised = true;
    return;
  }
  ensureInitSync();
}

function ensureInitSync() {
  if (!initialised) {
    initSync({ module: readFileSync(new URL("./bert_tasks_bg.wasm", import.meta.url)) });
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
 *  baseline build on first use. */
export function fromBytes(config, tokenizer, weights) {
  ensureInitSync();
  return Model.fromBytes(config, tokenizer, weights);
}
