// Shared by the demo-site tests (demo.test.mjs, demo-training.test.mjs): the quick demo models,
// the native CLI's prediction to compare the page against, and driving the page's panels.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { CACHE } from "./common.mjs";

export const DEMO_MODELS = process.env.DEMO_MODELS ?? join(CACHE, "demo-models-quick");
const BIN = process.env.BERT_TASKS_BIN ?? join(CACHE, "target/release/bert-tasks");

/** `bert-tasks predict --json` with demo model `id` (a folder of DEMO_MODELS). */
export function predict(id, ...args) {
  return JSON.parse(execFileSync(BIN, ["predict", "--json", "--model", join(DEMO_MODELS, id), ...args], { encoding: "utf8" }));
}

/** The classify panel: model `id`, text `text`, run; resolves to the label the page shows. */
export async function classifyOnPage(page, id, text) {
  await page.selectOption("#classify-model", id);
  await page.fill("#classify-text", text);
  await page.evaluate(() => document.querySelector("#classify-out").removeAttribute("data-label"));
  await page.click("#classify-run");
  await page.waitForSelector("#classify-out[data-label]");
  return page.getAttribute("#classify-out", "data-label");
}
