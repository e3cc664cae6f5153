// A small web app that uses the package the way the README tells users to: every task on the
// page's main thread (Model) and through the package's worker (createWorker). Built by each
// bundler in tests/js/bundle.test.mjs from the packed tarball; the test calls window.runAll.
import { Model, createWorker } from "bert-tasks";

async function onMainThread(url, calls) {
  const model = await Model.load(url, { cache: false });
  try {
    return { info: model.info(), results: calls.map(({ method, args }) => model[method](...args)) };
  } finally {
    model.free();
  }
}

async function inWorker(url, calls) {
  const worker = createWorker();
  try {
    const info = await worker.load(url, { cache: false, timeout: 120_000 });
    const results = [];
    for (const { method, args } of calls) results.push(await worker[method](...args));
    return { info, results };
  } finally {
    worker.terminate();
  }
}

/** plan: [{ name, calls: [{ method, args }] }]; models are served under /models/<name>/. */
window.runAll = async (plan) => {
  const out = {};
  for (const { name, calls } of plan) {
    const url = new URL(`/models/${name}/`, location.href).href;
    out[name] = { main: await onMainThread(url, calls), worker: await inWorker(url, calls) };
  }
  return { isolated: globalThis.crossOriginIsolated === true, out };
};
window.ready = true;
