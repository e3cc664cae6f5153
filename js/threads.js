// The thread pool of the threaded wasm build (pkg/threads/): N workers, each instantiating the
// same module on the same shared memory and then running one rayon thread (src/wasm/threads.rs).
// Browser: Web Workers, only from inside a worker of a cross-origin isolated page (shared memory
// needs isolation, and the thread that calls into the model blocks while the pool works, which a
// page's main thread may not). Node: worker_threads, any thread.

export const isNode = typeof process !== "undefined" && !!process.versions?.node;

/** Threads to use when the caller said "auto": all cores where threads can work, else 1. */
export async function autoThreads() {
  if (isNode) return (await import("node:os")).availableParallelism();
  if (!globalThis.crossOriginIsolated || typeof WorkerGlobalScope === "undefined") return 1;
  return navigator.hardwareConcurrency ?? 1;
}

const workerUrl = new URL("./thread-worker.js", import.meta.url);

// Kept referenced: some browsers collect workers that nothing points to.
const workers = [];

async function spawn(init) {
  if (isNode) {
    const { Worker } = await import("node:worker_threads");
    const worker = new Worker(workerUrl);
    worker.unref(); // pool threads never end; they must not keep the process alive
    const ready = new Promise((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    worker.postMessage(init);
    await ready;
    return worker;
  }
  const worker = new Worker(workerUrl, { type: "module" });
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
