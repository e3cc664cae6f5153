// Which build of the wasm module to run. All four come from the same Rust code
// (scripts/build-wasm-variant.sh); they differ in the wasm features they need:
//   ./bert_tasks.js                    baseline: SIMD (every engine the package supports)
//   ./relaxed/bert_tasks.js            + relaxed SIMD (fused multiply-add matmul kernel)
//   ./threads/bert_tasks.js            + threads (shared memory, a pool of workers)
//   ./threads-relaxed/bert_tasks.js    both
// Imports are spelled out (not computed) so that bundlers can see them.
import { startThreads } from "./threads.js";

export const VARIANTS = {
  relaxed: { glue: () => import("./relaxed/bert_tasks.js"), wasm: new URL("./relaxed/bert_tasks_bg.wasm", import.meta.url) },
  threads: { glue: () => import("./threads/bert_tasks.js"), wasm: new URL("./threads/bert_tasks_bg.wasm", import.meta.url) },
  "threads-relaxed": {
    glue: () => import("./threads-relaxed/bert_tasks.js"),
    wasm: new URL("./threads-relaxed/bert_tasks_bg.wasm", import.meta.url),
  },
};

// (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd)
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0,
  10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2, 11,
]);

/** Whether this engine has relaxed SIMD (Chrome ≥ 114, Node ≥ 22; not yet everywhere). */
export function hasRelaxedSimd() {
  try {
    return WebAssembly.validate(RELAXED_PROBE);
  } catch {
    return false;
  }
}

/** The variant to run for `threads` (> 1: a threaded one), or null for the baseline. */
export function pickVariant(threads) {
  const relaxed = hasRelaxedSimd();
  if (threads > 1) return relaxed ? "threads-relaxed" : "threads";
  return relaxed ? "relaxed" : null;
}

// If a build fails to start, these are tried next (the baseline always comes last).
const FALLBACK = { "threads-relaxed": ["threads-relaxed", "relaxed"], threads: ["threads"], relaxed: ["relaxed"] };

/**
 * Starts the best build for `threads` that this engine runs (a warning names each one that
 * fails), with `instantiate(glue, wasmUrl)` instantiating a build's glue (browser: fetch; Node:
 * from the file) and, for a threaded build, its pool. Resolves to `{ glue, name, exports }`, or
 * null when the baseline should run.
 */
export async function startBestVariant(threads, instantiate) {
  for (const name of FALLBACK[pickVariant(threads)] ?? []) {
    try {
      const glue = await VARIANTS[name].glue();
      const exports = await instantiate(glue, VARIANTS[name].wasm);
      if (name.startsWith("threads")) await startThreads(glue, name, threads);
      return { glue, name, exports };
    } catch (e) {
      console.warn(`bert-tasks: the ${name} build did not start (${e?.message ?? e}); trying the next`);
    }
  }
  return null;
}
