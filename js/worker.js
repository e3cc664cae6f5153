// The worker side of createWorker(): one model per worker, messages {id, method, args}.
// A wasm trap (a Rust panic aborts) or running out of memory leaves the module unusable, so
// those answer `fatal`: the page side then rejects everything pending and later.
import { Model } from "./index.js";

let model = null;

const isFatal = (e) => e instanceof WebAssembly.RuntimeError || (e instanceof RangeError && /memory|allocat/i.test(e.message));

self.onmessage = async ({ data: { id, method, args } }) => {
  try {
    let result;
    if (method === "load") {
      const [baseUrl, options] = args;
      model?.free();
      model = null;
      model = await Model.load(baseUrl, { ...options, onProgress: (progress) => self.postMessage({ id, progress }) });
      result = model.info();
    } else {
      if (!model) throw new Error("bert-tasks: no model loaded in this worker (call load first)");
      result = model[method](...args);
    }
    self.postMessage({ id, result });
  } catch (e) {
    self.postMessage({ id, error: String(e?.message ?? e), fatal: isFatal(e) });
  }
};
