// Headless Chromium side of the wasm benchmark (Playwright, Debian's /usr/bin/chromium): each
// measurement in a fresh page, cross-origin isolated (COOP/COEP) so onnxruntime-web may use threads.
//   node bench/js/browser-bench.mjs [repeat] [dtypes]   -> JSON lines on stdout
// dtypes: comma-separated, default "f32"; "q8" runs ours (q8 export) and transformers.js (its q8
// ONNX), "q4" transformers.js's q4 only (ours q4 runs the same int8 kernels as our q8).
import { cpus, homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/serve.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const cache = join(process.env.BERT_TASKS_CACHE ?? join(homedir(), ".cache/bert-tasks"), "bench");
const repeat = Number(process.argv[2] ?? 20);
const dtypes = (process.argv[3] ?? "f32").split(",");
const { server, url } = await serve({ "/": here, "/pkg/": join(here, "../../pkg"), "/models/": cache, "/node_modules/": join(here, "node_modules") });
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const version = browser.version();
const all = cpus().length;

async function inPage(fn, ...args) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(`${url}/page.html`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 60000 });
  try {
    return await page.evaluate(fn, args);
  } finally {
    await page.close();
  }
}

const print = (o) => console.log(JSON.stringify({ host: `Chromium ${version}`, cpus: all, ...o }));
try {
  for (const dtype of dtypes) {
    for (const task of ["classify", "tag"]) {
      // BENCH_ENGINES=ours (or tjs) measures one side only, for a quick look at a kernel change;
      // the reported ratios always come from a full run.
      const engines = (process.env.BENCH_ENGINES ?? "ours,tjs").split(",");
      for (const [engine, threads] of [["ours", 1], ["ours", all], ["tjs", 1], ["tjs", all]].filter(([e]) => engines.includes(e))) {
        if (engine === "ours" && dtype === "q4") continue;
        const rows = await inPage(([e, t, th, r, d]) => window.bench(e, t, th, r, d), engine, task, threads, repeat, dtype);
        const name = engine === "ours" ? "bert-tasks wasm" : "transformers.js wasm (onnxruntime-web)";
        for (const row of rows) print({ engine: name, task, threads, dtype, ...row });
      }
    }
  }
  for (const engine of dtypes.includes("f32") ? ["ours", "tjs"] : []) {
    const loads = [];
    for (let i = 0; i < 3; i++) loads.push(await inPage(([e]) => window.loadToReady(e), engine));
    loads.sort((a, b) => a.load_ms / a.raw_fetch_ms - b.load_ms / b.raw_fetch_ms);
    const mid = loads[1];
    print({ engine: engine === "ours" ? "bert-tasks wasm" : "transformers.js wasm (onnxruntime-web)", task: "load", ...mid, ratio: mid.load_ms / mid.raw_fetch_ms });
  }
} finally {
  await browser.close();
  server.close();
}
