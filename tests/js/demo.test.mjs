// End-to-end test of the demo site (www/) in headless Chromium: the page, the npm package and
// its worker, with small models trained by the project's trainer (scripts/demo-models.sh --quick).
// Each task runs on fixed inputs; what the page shows must equal the native CLI's prediction.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { serve } from "../../scripts/serve.mjs";
import { CACHE, launch } from "./common.mjs";
import { classifyOnPage, predict } from "./demo-page.mjs";

const SITE = process.env.DEMO_SITE ?? join(CACHE, "site-test");

test("demo page: every task, shown results equal native predictions", async () => {
  assert.ok(existsSync(join(SITE, "models/manifest.json")), `${SITE} not built: run scripts/demo-models.sh --quick and scripts/build-site.sh`);
  // The site serves q8 exports, with the f16 ones listed beside them at about twice the size.
  const { models } = JSON.parse(readFileSync(join(SITE, "models/manifest.json"), "utf8"));
  for (const m of models) {
    assert.equal(m.dtype, "q8", `${m.id} is served as q8`);
    assert.ok(m.variants?.f16?.bytes > 1.8 * m.bytes, `${m.id}: the f16 export is listed (${m.variants?.f16?.bytes} vs ${m.bytes} bytes)`);
  }
  const { server, url } = await serve({ "/": SITE });
  const browser = await launch();
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url + "/");
    await page.waitForSelector("body[data-ready='1']");

    // Classify: English sentiment.
    const text = "A gorgeous, witty and deeply moving film.";
    assert.equal(await classifyOnPage(page, "en-sentiment", text), predict("en-sentiment", text).label);
    assert.equal(await page.getAttribute("#classify-load", "data-progress"), "100", "progress bar reached 100%");
    assert.match(await page.textContent("#classify-time"), /^\d+ ms$/);
    const trained = models.find((m) => m.id === "en-sentiment").trained;
    assert.match(
      await page.textContent("#classify-load .trained"),
      new RegExp(`Trained from ${trained.base} on ${trained.data}: ${trained.examples} examples, 1 epoch; dev macro-F1 0\\.\\d{3}`),
      "the page says what the model was trained on and its dev score",
    );
    assert.match(await page.textContent("#classify-load"), /MB q8; f16 would be [\d.]+ MB/);

    // Tag: Chinese NER with the CRF, then softmax.
    const ner = "新华社北京电，国家主席在人民大会堂会见了联合国秘书长。";
    await page.fill("#tag-text", ner);
    await page.click("#tag-run");
    await page.waitForSelector("#tag-out[data-spans]");
    const shown = JSON.parse(await page.getAttribute("#tag-out", "data-spans"));
    assert.deepEqual(shown, predict("msra-ner-crf", ner).spans.map((s) => [s.label, s.text]));
    assert.equal(await page.locator("#tag-out mark").count(), shown.length, "each entity highlighted");
    assert.match(await page.textContent("#tag-note"), /crf: .* 0 invalid/);
    await page.check("input[name=decoder][value=softmax]");
    await page.waitForFunction(() => document.querySelector("#tag-note").textContent.startsWith("softmax"));

    // Tag: word segmentation with POS on hover.
    const seg = "我爱北京天安门";
    await page.selectOption("#tag-model", "seg");
    await page.fill("#tag-text", seg);
    await page.evaluate(() => document.querySelector("#tag-out").removeAttribute("data-spans"));
    await page.click("#tag-run");
    await page.waitForSelector("#tag-out[data-spans]");
    const words = JSON.parse(await page.getAttribute("#tag-out", "data-spans"));
    assert.deepEqual(words, predict("pd-seg", seg).spans.map((s) => s.text));
    assert.match(await page.getAttribute("#tag-out .word", "title"), /^POS: /);

    // Relate: the first example, entity markers.
    await page.selectOption("#relate-model", "relations-entity_markers");
    await page.click("#relate-run");
    await page.waitForSelector("#relate-out[data-label]");
    const want = predict("relations-entity_markers", "Barack Obama was born in Honolulu.", "--head", "0:12", "--tail", "25:33");
    assert.equal(await page.getAttribute("#relate-out", "data-label"), want.label);
    assert.equal(await page.locator("#relate-spans mark").count(), 2);

    // A bad request shows a message instead of breaking the page.
    await page.fill("#relate-text", "no spans here");
    await page.click("#relate-run");
    await page.waitForSelector("#relate-out .error");

    mkdirSync(join(CACHE, "screenshots"), { recursive: true });
    await page.screenshot({ path: join(CACHE, "screenshots/demo-test.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 900 });
    await page.screenshot({ path: join(CACHE, "screenshots/demo-test-phone.png") });
    assert.deepEqual(errors, [], "no page errors");
  } finally {
    await browser.close();
    server.close();
  }
});
