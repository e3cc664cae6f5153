// The thread pool of the threaded wasm build (pkg/threads/): N workers, each instantiating the
// same module on the same shared memory and then running one rayon thread (src/wasm/threads.rs).
// Browser: Web Workers, only from inside a worker of a cross-origin isolated page (shared memory
// needs isolation, and the thread that calls into the model blocks while the pool works, which a
// page's main thread may not). Node: worker_threads, any thread.

export const isNode = typeof process !== "undefined" && !!process.versions?.node;

/** Node's built-in `name`, imported so that no bundler tries to resolve it for the browser
 *  (a non-literal specifier for esbuild/rollup/Vite, and webpack told to leave it alone). */
export const nodeBuiltin = (name) => import(/* webpackIgnore: true */ /* @vite-ignore */ name);

/** Threads to use when the caller said "auto": all cores where threads can work, else 1. */
export async function autoThreads() {
  if (isNode) return (await nodeBuiltin("node:os")).availableParallelism();
  if (!globalThis.crossOriginIsolated || typeof WorkerGlobalScope === "undefined") return 1;
  return navigator.hardwareConcurrency ?? 1;
}

// Kept referenced: some browsers collect workers that nothing points to.
const workers = [];

async function spawn(init) {
  if (isNode) {
    const { Worker } = await nodeBuiltin("node:worker_threads");
    // Not the literal `new URL("./x.js", import.meta.url)`: bundlers would take this Node-only
    // URL for an asset and emit (and try to minify) a raw copy of the script.
    const here = import.meta.url;
    const worker = new Worker(new URL("./thread-worker.js", here));
    worker.unref(); // pool threads never end; they must not keep the process alive
    const ready = new Promise((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    worker.postMessage(init);
    await ready;
    return worker;
  }
  // Written out literally: the pattern bundlers (Vite, webpack 5, esbuild plugins) recognise
  // and emit the worker script for.
  const worker = new Worker(new URL("./thread-worker.js", import.meta.url), { type: "module" });
  const ready = new Promise((resolve, reject) => {
    worker.onmessage = resolve;
    worker.onerror = (e) => reject(new Error(`bert-tasks: a thread worker failed to start: ${e.message}`));
  });
  worker.postMessage(init);
  await ready;
  return worker;
}

/** Starts `n` pool threads for `glue`, the instantiated glue of the threaded build `variant`. */
export async function startThreads(glue, variant, n) {
  const [module, memory] = glue.threadingParts();
  workers.push(...(await Promise.all(Array.from({ length: n }, () => spawn({ variant, module, memory })))));
  glue.buildThreadPool(n);
}
