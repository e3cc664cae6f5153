// bert-tasks measured inside a Web Worker, the way the package runs models on a page (and the
// only place its threaded build can run: the calling thread blocks while the pool works).
// Message in: {task, threads, repeat, dtype}; out: {rows, threads} or {error}.
import { oursLoader, runShapes } from "./engines.mjs";

const bytes = async (p) => new Uint8Array(await (await fetch(`/models/${p}`, { cache: "no-store" })).arrayBuffer());

self.onmessage = async ({ data: { task, threads, repeat, dtype } }) => {
  try {
    const texts = await (await fetch("/models/texts.json")).json();
    const pkg = await import("/pkg/index.js");
    await pkg.ensureInit(undefined, { threads });
    const run = await oursLoader(pkg.Model.fromBytes, bytes, task, dtype);
    self.postMessage({ rows: await runShapes(run, texts, { repeat }), threads: pkg.threadCount() });
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
};
