// Where the time goes inside our wasm in headless Chromium: the V8 sampling profiler (over CDP)
// while one model runs on the page's main thread, single-threaded (the relaxed-SIMD build where
// the engine has it, as the package picks). Self time per function, the top ones.
//   node bench/js/profile.mjs [model folder under $CACHE/bench, default classify-q8] [tokens, default 128] [runs, default 30]
// Function names come from the wasm name section, which wasm-opt strips: build without it
// (BERT_TASKS_WASM_OPT=0 bash scripts/build-pkg.sh), or point PKG_DIR at a copy of pkg/ whose
// relaxed/ is wasm-bindgen's output of the cargo build (`--keep-debug`), to see Rust names.
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/serve.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const cache = join(process.env.BERT_TASKS_CACHE ?? join(homedir(), ".cache/bert-tasks"), "bench");
const [model = "classify-q8", tokens = "128", runs = "30"] = process.argv.slice(2);
const { server, url } = await serve({ "/": here, "/pkg/": process.env.PKG_DIR ?? join(here, "../../pkg"), "/models/": cache });
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(`${url}/page.html`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 60000 });
  const build = await page.evaluate(async ([m, t]) => {
    const pkg = await import("/pkg/index.js");
    await pkg.ensureInit(undefined, { threads: 1 });
    const texts = await (await fetch("/models/texts.json")).json();
    const model = await pkg.Model.load(`/models/${m}/`, { cache: false });
    const run = model.info().task === "tag" ? (s) => model.tag(s) : (s) => model.classify(s);
    window.profiled = () => run(texts[t]);
    for (let i = 0; i < 3; i++) window.profiled();
    return pkg.buildName();
  }, [model, tokens]);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  await cdp.send("Profiler.start");
  const ms = await page.evaluate((n) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) window.profiled();
    return (performance.now() - t0) / n;
  }, Number(runs));
  const { profile } = await cdp.send("Profiler.stop");
  const self = new Map();
  const dt = new Map(profile.samples.map((id, i) => [i, profile.timeDeltas[i] ?? 0]));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let total = 0;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    const name = f.functionName || `(anonymous ${f.url.split("/").pop()})`;
    self.set(name, (self.get(name) ?? 0) + dt.get(i));
    total += dt.get(i);
  });
  console.log(`${model}, 1 x ${tokens}, build ${build}: ${ms.toFixed(1)} ms per run`);
  for (const [name, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`${((100 * t) / total).toFixed(1).padStart(5)} %  ${(t / 1000 / Number(runs)).toFixed(2).padStart(7)} ms  ${name.slice(0, 140)}`);
  }
} finally {
  await browser.close();
  server.close();
}
