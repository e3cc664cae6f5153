// Browser side of the wasm benchmark. Exposes window.bench(engine, task, threads, repeat, dtype) and
// window.loadToReady(engine) for bench/js/browser-bench.mjs. Everything is served locally:
// /pkg/ (bert-tasks), /node_modules/ (transformers.js, onnxruntime-web), /models/ ($CACHE/bench).
import { runShapes, tjsLoader } from "./engines.mjs";

const texts = await (await fetch("/models/texts.json")).json();
const bytes = async (p) => new Uint8Array(await (await fetch(`/models/${p}`, { cache: "no-store" })).arrayBuffer());

async function transformersJs(threads) {
  const tjs = await import("/node_modules/@huggingface/transformers/dist/transformers.web.js");
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.useBrowserCache = false;
  tjs.env.localModelPath = "/models/";
  tjs.env.backends.onnx.wasm.wasmPaths = "/node_modules/onnxruntime-web/dist/";
  tjs.env.backends.onnx.wasm.numThreads = threads;
  return tjs;
}

window.bench = async (engine, task, threads, repeat, dtype = "f32") => {
  let run;
  if (engine === "ours") {
    const worker = new Worker("./ours-worker.mjs", { type: "module" });
    const out = await new Promise((resolve) => {
      worker.onmessage = ({ data }) => resolve(data);
      worker.onerror = (e) => resolve({ error: e.message });
      worker.postMessage({ task, threads, repeat, dtype });
    });
    worker.terminate();
    if (out.error) throw new Error(out.error);
    if (out.threads !== threads) throw new Error(`asked for ${threads} threads, the package runs ${out.threads}`);
    return out.rows;
  } else {
    run = await tjsLoader(await transformersJs(threads), task, threads, "wasm", dtype);
  }
  return runShapes(run, texts, { repeat });
};

/** Load to ready: the raw fetch of the model's files vs the engine's own load of them. */
window.loadToReady = async (engine) => {
  const t0 = performance.now();
  const files = engine === "ours"
    ? ["config.json", "tokenizer.json", "model.safetensors"]
    : ["config.json", "tokenizer.json", "tokenizer_config.json", "onnx/model.onnx"];
  let total = 0;
  for (const b of await Promise.all(files.map((f) => bytes(`classify/${f}`)))) total += b.length;
  const raw = performance.now() - t0;
  const t1 = performance.now();
  let memory = null;
  if (engine === "ours") {
    const pkg = await import("/pkg/index.js");
    const wasm = await pkg.ensureInit();
    const model = await pkg.Model.load("/models/classify/", { cache: false });
    const load = performance.now() - t1;
    const afterLoad = wasm.memory.buffer.byteLength;
    model.classify(texts["512"]);
    memory = { after_load_bytes: afterLoad, peak_bytes: wasm.memory.buffer.byteLength };
    return { raw_fetch_ms: raw, load_ms: load, bytes: total, memory };
  }
  const tjs = await transformersJs(1);
  await tjs.AutoTokenizer.from_pretrained("classify");
  await tjs.AutoModelForSequenceClassification.from_pretrained("classify", { device: "wasm", dtype: "fp32" });
  return { raw_fetch_ms: raw, load_ms: performance.now() - t1, bytes: total, memory };
};

window.benchReady = true;
