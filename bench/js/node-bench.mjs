// Node side of the wasm benchmark: bert-tasks (pkg/; threads > 1 runs its threaded build) and transformers.js
// (onnxruntime-web wasm) on the same weights and texts; one JSON line per measurement.
//   node bench/js/node-bench.mjs <ours|tjs|tjs-node> <classify|tag> <threads> [repeat] [f32|q8|q4]
// (q8: our `export --dtype q8` against transformers.js's q8 ONNX; q4: transformers.js only.)
import { readFile } from "node:fs/promises";
import { homedir, cpus } from "node:os";
import { join } from "node:path";
import { oursLoader, ortWebLoader, runShapes, tjsFile, tjsLoader } from "./engines.mjs";

const [engine, task, threadArg, repeatArg, dtype = "f32"] = process.argv.slice(2);
const cache = join(process.env.BERT_TASKS_CACHE ?? join(homedir(), ".cache/bert-tasks"), "bench");
const threads = Number(threadArg ?? 1);
const texts = JSON.parse(await readFile(join(cache, "texts.json"), "utf8"));
let run;
let build;
if (engine === "ours") {
  const { fromBytes, init, buildName } = await import("../../pkg/node.js");
  await init({ threads });
  build = buildName();
  run = await oursLoader(fromBytes, async (p) => new Uint8Array(await readFile(join(cache, p))), task, dtype);
} else {
  const tjs = await import("@huggingface/transformers");
  tjs.env.localModelPath = cache + "/";
  if (engine === "tjs") {
    const ort = await import("onnxruntime-web");
    run = await ortWebLoader(tjs, ort, task, threads, await readFile(join(cache, task, tjsFile(dtype))));
  } else {
    run = await tjsLoader(tjs, task, threads, "cpu", dtype);
  }
}
for (const row of await runShapes(run, texts, { repeat: Number(repeatArg ?? 20) })) {
  const name = { ours: "bert-tasks wasm", tjs: "transformers.js wasm (onnxruntime-web)", "tjs-node": "transformers.js onnxruntime-node (native)" }[engine];
  console.log(JSON.stringify({ engine: name, host: `Node ${process.version}`, task, threads, dtype, cpus: cpus().length, build, node_flags: process.execArgv.join(" ") || undefined, ...row }));
}
