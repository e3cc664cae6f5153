// Takes the README's screenshot of the demo site: node scripts/screenshot.mjs SITE_DIR OUT.png
// (runs each task once so the picture shows results). Needs tests/js's playwright-core.
import { join, resolve } from "node:path";
import { serve } from "./serve.mjs";
import { launch } from "../tests/js/common.mjs";

const [site, out = "docs/demo.png"] = process.argv.slice(2);
const { server, url } = await serve({ "/": resolve(site) });
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1200 }, deviceScaleFactor: 1 });
  await page.goto(url + "/");
  await page.waitForSelector("body[data-ready='1']");
  await page.selectOption("#classify-model", "zh-sentiment");
  await page.click("#classify-run");
  await page.waitForSelector("#classify-out[data-label]");
  await page.click("#tag-run");
  await page.waitForSelector("#tag-out[data-spans]");
  await page.click("#relate-run");
  await page.waitForSelector("#relate-out[data-label]");
  await page.screenshot({ path: resolve(out), fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  server.close();
}
