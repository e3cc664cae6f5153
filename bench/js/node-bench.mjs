// Node side of the wasm benchmark: bert-tasks (pkg/; threads > 1 runs its threaded build) and transformers.js
// (onnxruntime-web wasm) on the same weights and texts; one JSON line per measurement.
//   node bench/js/node-bench.mjs <ours|tjs|tjs-node> <classify|tag> <threads> [repeat]
import { readFile } from "node:fs/promises";
import { homedir, cpus } from "node:os";
import { join } from "node:path";
import { oursLoader, ortWebLoader, runShapes, tjsLoader } from "./engines.mjs";

const [engine, task, threadArg, repeatArg] = process.argv.slice(2);
const cache = join(process.env.BERT_TASKS_CACHE ?? join(homedir(), ".cache/bert-tasks"), "bench");
const threads = Number(threadArg ?? 1);
const texts = JSON.parse(await readFile(join(cache, "texts.json"), "utf8"));
let run;
let build;
if (engine === "ours") {
  const { fromBytes, init, buildName } = await import("../../pkg/node.js");
  await init({ threads });
  build = buildName();
  run = await oursLoader(fromBytes, async (p) => new Uint8Array(await readFile(join(cache, p))), task);
} else {
  const tjs = await import("@huggingface/transformers");
  tjs.env.localModelPath = cache + "/";
  if (engine === "tjs") {
    const ort = await import("onnxruntime-web");
    run = await ortWebLoader(tjs, ort, task, threads, await readFile(join(cache, task, "onnx/model.onnx")));
  } else {
    run = await tjsLoader(tjs, task, threads, "cpu");
  }
}
for (const row of await runShapes(run, texts, { repeat: Number(repeatArg ?? 20) })) {
  const name = { ours: "bert-tasks wasm", tjs: "transformers.js wasm (onnxruntime-web)", "tjs-node": "transformers.js onnxruntime-node (native)" }[engine];
  console.log(JSON.stringify({ engine: name, host: `Node ${process.version}`, task, threads, cpus: cpus().length, build, node_flags: process.execArgv.join(" ") || undefined, ...row }));
}
