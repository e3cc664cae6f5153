// The demo page while the main command is still training (scripts/demo.sh serves the site at
// once and refreshes its manifest with scripts/site-models.py as models finish): the page is
// usable with the models that are there, says which are still training and at what step, and a
// model appears on the page when its training ends. The "training" here is staged with the quick
// demo models (a model folder moved in, its .train-<id> folder removed), which is exactly what
// scripts/demo-models.sh leaves behind when a model is done.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { serve } from "../../scripts/serve.mjs";
import { launch } from "./common.mjs";
import { DEMO_MODELS, classifyOnPage, predict } from "./demo-page.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const refresh = (models, site) => execFileSync("python3", [join(root, "scripts/site-models.py"), models, site, "--quiet"]);

test("demo page while models train: usable at once, says what is coming, shows each model as it finishes", async () => {
  const work = mkdtempSync(join(tmpdir(), "bert-tasks-training-"));
  const models = join(work, "models");
  const site = join(work, "site");
  mkdirSync(models);
  cpSync(join(DEMO_MODELS, "en-sentiment"), join(models, "en-sentiment"), { recursive: true });
  // A relate model whose training file has a held-out test split beside it: the panel's
  // examples come from there, with their gold labels (spans in UTF-16 on the page: the emoji).
  const data = join(work, "relations");
  mkdirSync(data);
  const held = [
    { text: "🗼 Paris is the capital of France.", head: { start: 26, end: 32 }, tail: { start: 2, end: 7 }, label: "capital" },
    { text: "Angela Merkel was born in Hamburg.", head: { start: 0, end: 13 }, tail: { start: 26, end: 33 }, label: "birthPlace" },
  ];
  writeFileSync(join(data, "train.jsonl"), "");
  writeFileSync(join(data, "test.jsonl"), held.map((r) => JSON.stringify(r)).join("\n") + "\n");
  cpSync(join(DEMO_MODELS, "relations-entity_markers"), join(models, "relations-entity_markers"), { recursive: true });
  const metricsPath = join(models, "relations-entity_markers", "metrics.json");
  const metrics = JSON.parse(readFileSync(metricsPath, "utf8"));
  metrics.config.train = join(data, "train.jsonl");
  writeFileSync(metricsPath, JSON.stringify(metrics));
  writeFileSync(join(models, ".plan"), "en-sentiment\nrelations-entity_markers\nzh-sentiment\nmsra-ner-crf\n");
  mkdirSync(join(models, ".train-zh-sentiment"));
  writeFileSync(join(models, "zh-sentiment.log"), "[train] epoch 1/1 step 3/10 loss 0.6 (1.0 steps/s, 400 tokens/s)\n");
  execFileSync("bash", [join(root, "scripts/build-site.sh"), models, site], { stdio: "ignore" });

  const { server, url } = await serve({ "/": site });
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(url + "/");
    await page.waitForSelector("body[data-ready='1']");
    assert.equal(await page.getAttribute("body", "data-training"), "2");
    assert.match(await page.textContent("#status"), /2 models available.*Still training: zh-sentiment \(step 3\/10\), msra-ner-crf/);

    // Usable now: the model that is there classifies.
    const en = "A gorgeous, witty and deeply moving film.";
    assert.equal(await classifyOnPage(page, "en-sentiment", en), predict("en-sentiment", en).label);
    // Relate: held-out examples with gold labels; the top three labels are shown.
    const options = await page.$$eval("#relate-example option", (os) => os.map((o) => o.textContent));
    assert.deepEqual(options, held.map((r) => `${r.text} (gold: ${r.label})`));
    await page.click("#relate-run");
    await page.waitForSelector("#relate-out[data-gold='capital']");
    const shownRel = await page.getAttribute("#relate-out", "data-label");
    const nativeRel = predict("relations-entity_markers", "--head", "26:32", "--tail", "2:7", held[0].text);
    assert.equal(shownRel, nativeRel.label, "the page's relation equals native on the held-out example");
    assert.ok((await page.locator("#relate-out .bar").count()) <= 3, "top three labels");
    assert.match(await page.textContent("#relate-out .gold"), /^gold: capital — /);

    // A model still training says so instead of failing obscurely.
    await page.click("#tag-run");
    await page.waitForFunction(() => /still training/.test(document.querySelector("#tag-out")?.textContent ?? ""));

    // zh-sentiment finishes: it appears in the list, and the status follows.
    cpSync(join(DEMO_MODELS, "zh-sentiment"), join(models, "zh-sentiment"), { recursive: true });
    rmSync(join(models, ".train-zh-sentiment"), { recursive: true });
    refresh(models, site);
    await page.waitForSelector("#classify-model option[value='zh-sentiment']", { state: "attached", timeout: 15_000 });
    await page.waitForSelector("body[data-training='1']");
    assert.match(await page.textContent("#status"), /3 models available.*Still training: msra-ner-crf;/);
    assert.equal(await page.inputValue("#classify-model"), "en-sentiment", "the user's choice is kept");
    const zh = "这家酒店的服务太好了，下次还会再来！";
    assert.equal(await classifyOnPage(page, "zh-sentiment", zh), predict("zh-sentiment", zh).label);
  } finally {
    await browser.close();
    server.close();
    rmSync(work, { recursive: true, force: true });
  }
});
