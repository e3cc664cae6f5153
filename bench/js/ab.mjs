// A/B of two (or more) builds of the package in one Node process, their calls interleaved:
//   node bench/js/ab.mjs <classify|tag> <tokens> <calls> <pkg dir> <pkg dir> [...]
// e.g. node bench/js/ab.mjs tag 128 60 /tmp/pkg-before pkg   (DTYPE=f32 for the f32 models;
// THREADS=2 for the threaded builds; BATCH=8 for a batch of 8 copies of the text per call).
// Prints each build's median and p10 and the median of its per-call ratios to the first
// build's call just before it.
//
// Why one process: on a shared 2-vCPU VM the same build's wall time moved 48 → 75 ms from one
// process to the next (BENCHMARKS.md, eleventh session), so separate runs could not tell a 2 %
// change from the machine. Interleaved in one process, both builds see the same slowdowns and
// the per-call ratios stay within a few tenths of a percent. Run both orders: the first build
// loaded can differ by placement alone.
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { oursLoader, summary } from "./engines.mjs";

const [task, tokens, callsArg, ...dirs] = process.argv.slice(2);
if (!["classify", "tag"].includes(task) || !(Number(callsArg) >= 1) || dirs.length < 2) {
  console.error("usage: node bench/js/ab.mjs <classify|tag> <tokens> <calls> <pkg dir> <pkg dir> [...]");
  process.exit(2);
}
const cache = join(process.env.BERT_TASKS_CACHE ?? join(homedir(), ".cache/bert-tasks"), "bench");
const texts = JSON.parse(await readFile(join(cache, "texts.json"), "utf8"));
const text = texts[tokens];
const batch = Array(Number(process.env.BATCH ?? 1)).fill(text);
if (!text) throw new Error(`bench/texts.json has no ${tokens}-token text (it has ${Object.keys(texts).join(", ")})`);
const fetchBytes = async (p) => new Uint8Array(await readFile(join(cache, p)));
const runs = [];
for (const dir of dirs) {
  const { fromBytes, init } = await import(pathToFileURL(join(resolve(dir), "node.js")).href);
  await init({ threads: Number(process.env.THREADS ?? 1) });
  runs.push(await oursLoader(fromBytes, fetchBytes, task, process.env.DTYPE ?? "q8"));
}
// Warm-up until V8 has tiered every build up (see engines.mjs `timed`).
const start = performance.now();
while (performance.now() - start < 3000) for (const run of runs) await run(batch);
const ms = dirs.map(() => []);
for (let i = 0; i < Number(callsArg); i++) {
  for (const [k, run] of runs.entries()) {
    const t = performance.now();
    await run(batch);
    ms[k].push(performance.now() - t);
  }
}
for (const [k, dir] of dirs.entries()) {
  const s = summary(ms[k]);
  const ratio = summary(ms[k].map((v, i) => v / ms[0][i])).median_ms;
  console.log(`${dir}: median ${s.median_ms.toFixed(2)} ms, p10 ${s.p10_ms.toFixed(2)}, per-call ratio to ${dirs[0]} ${ratio.toFixed(4)}`);
}
