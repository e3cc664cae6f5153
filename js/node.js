// Node >= 20 entry point: the same Model, plus loading from files.
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { initSync } from "./bert_tasks.js";
import { Model } from "./index.js";

export { Model, initSync };

let initialised = false;
function ensureInitSync() {
  if (!initialised) {
    initSync({ module: readFileSync(new URL("./bert_tasks_bg.wasm", import.meta.url)) });
    initialised = true;
  }
}

/** Loads a model folder (config.json, tokenizer.json, model.safetensors) from disk. */
export async function loadModel(dir) {
  ensureInitSync();
  const [c, t, w] = await Promise.all(
    ["config.json", "tokenizer.json", "model.safetensors"].map((f) => readFile(join(dir, f))),
  );
  return Model.fromBytes(new Uint8Array(c), new Uint8Array(t), new Uint8Array(w));
}

/** Builds a model from bytes (the wasm module is instantiated on first use). */
export function fromBytes(config, tokenizer, weights) {
  ensureInitSync();
  return Model.fromBytes(config, tokenizer, weights);
}
