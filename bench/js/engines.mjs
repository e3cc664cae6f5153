// The two wasm engines behind one interface, used by the Node runner and the browser page alike:
//   engine.load(task) -> run(batchOfTexts) (text in -> probabilities out, like the native bench).
// `ours` wraps the bert-tasks package (Model.fromBytes); `tjs` wraps transformers.js with its
// onnxruntime-web wasm backend on the ONNX export of the same weights, local files only.

export const SHAPES = [[1, 16], [1, 128], [1, 512], [8, 128]];

export function summary(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (f) => s[Math.round((s.length - 1) * f)];
  return { median_ms: q(0.5), p10_ms: q(0.1), p90_ms: q(0.9), runs: s.length };
}

/**
 * Times `run` (async) `repeat` times after untimed warm-up calls: at least `warmup` of them and
 * at least `warmMs` milliseconds of them. The time matters: V8 first runs wasm through its
 * baseline compiler and recompiles hot functions in the background; for our module that takes
 * ~20 calls of 1×16 (63 → 21 ms), so a fixed 3 calls measured the compiler, not the engine.
 * The first call is reported separately as `first_ms`.
 */
export async function timed(run, warmup, repeat, warmMs = 1500) {
  const start = performance.now();
  await run();
  const first_ms = performance.now() - start;
  for (let i = 1; i < warmup || performance.now() - start < warmMs; i++) await run();
  const ms = [];
  for (let i = 0; i < repeat; i++) {
    const t = performance.now();
    await run();
    ms.push(performance.now() - t);
  }
  return { ...summary(ms), first_ms };
}

/** The model folder of `task` in `dtype` ("f32"; "q8": our `export --dtype q8` of the same weights). */
export const oursFolder = (task, dtype = "f32") => (dtype === "f32" ? task : `${task}-${dtype}`);

/** The ONNX file transformers.js loads for `dtype` (its names: fp32, q8, q4). */
export const tjsFile = (dtype = "f32") => ({ f32: "onnx/model.onnx", q8: "onnx/model_quantized.onnx", q4: "onnx/model_q4.onnx" })[dtype];
export const tjsDtype = (dtype = "f32") => (dtype === "f32" ? "fp32" : dtype);

/** bert-tasks: `fromBytes(config, tokenizer, weights)` builds a Model; `fetchBytes(path)` gives a file of the task folder. */
export async function oursLoader(fromBytes, fetchBytes, task, dtype = "f32") {
  const folder = oursFolder(task, dtype);
  const [c, t, w] = await Promise.all(["config.json", "tokenizer.json", "model.safetensors"].map((f) => fetchBytes(`${folder}/${f}`)));
  const model = fromBytes(c, t, w);
  return task === "classify"
    ? (texts) => (texts.length === 1 ? model.classify(texts[0]) : model.classifyBatch(texts.map((text) => ({ text }))))
    : (texts) => (texts.length === 1 ? model.tag(texts[0]) : model.tagBatch(texts));
}

function softmaxRows(data, width) {
  const out = new Float32Array(data.length);
  for (let r = 0; r < data.length; r += width) {
    let m = -Infinity;
    for (let i = 0; i < width; i++) m = Math.max(m, data[r + i]);
    let z = 0;
    for (let i = 0; i < width; i++) z += out[r + i] = Math.exp(data[r + i] - m);
    for (let i = 0; i < width; i++) out[r + i] /= z;
  }
  return out;
}

/** transformers.js's tokenizer and an onnxruntime-web wasm session on the f32 ONNX export: what
 * transformers.js runs in a browser (its Node build only offers onnxruntime-node, so Node uses
 * this form). `ort` is onnxruntime-web, `onnxBytes` the model. */
export async function ortWebLoader(tjs, ort, task, threads, onnxBytes) {
  ort.env.wasm.numThreads = threads;
  const tok = await tjs.AutoTokenizer.from_pretrained(task);
  const session = await ort.InferenceSession.create(onnxBytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  return async (texts) => {
    const enc = tok(texts, { padding: true });
    const feeds = {};
    for (const name of session.inputNames) {
      const t = enc[name];
      feeds[name] = new ort.Tensor("int64", t.data, t.dims);
    }
    const { logits } = await session.run(feeds);
    return softmaxRows(logits.data, logits.dims.at(-1));
  };
}

/** transformers.js with a given device ("wasm" in browsers, "cpu" = onnxruntime-node in Node). */
export async function tjsLoader(tjs, task, threads, device = "wasm", dtype = "f32") {
  tjs.env.allowRemoteModels = false;
  tjs.env.backends.onnx.wasm.numThreads = threads;
  const Cls = task === "classify" ? tjs.AutoModelForSequenceClassification : tjs.AutoModelForTokenClassification;
  const tok = await tjs.AutoTokenizer.from_pretrained(task);
  const model = await Cls.from_pretrained(task, { device, dtype: tjsDtype(dtype), session_options: device === "cpu" ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : undefined });
  return async (texts) => {
    const enc = tok(texts, { padding: true });
    const { logits } = await model(enc);
    return softmaxRows(logits.data, logits.dims.at(-1));
  };
}

/** Runs every shape for one engine/task; `texts` maps token count -> text. */
export async function runShapes(run, texts, { warmup = 3, repeat = 20, shapes = SHAPES } = {}) {
  const rows = [];
  for (const [b, t] of shapes) {
    const batch = Array(b).fill(texts[String(t)]);
    rows.push({ batch: b, tokens: t, ...(await timed(() => run(batch), warmup, repeat)) });
  }
  return rows;
}
