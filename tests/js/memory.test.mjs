// Long-running pages: wasm linear memory never shrinks, so a leak shows as growth that does not
// stop. Two loops on the real models, in Node (the same wasm as the browser's single-threaded
// build; Node runs it without a page around it):
//   - load → use → free a model 100 times;
//   - 10,000 calls on one model, inputs of varying length.
// After a short warm-up (the allocator's first growth), each loop may add at most SLACK bytes.
// The numbers are reported as test diagnostics (and in README.md).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { FIXTURES } from "./common.mjs";
import { Model, init, memoryBytes } from "../../pkg/node.js";

const MiB = 2 ** 20;
const SLACK = 16 * MiB;
const files = (name) => ["config.json", "tokenizer.json", "model.safetensors"].map((f) => new Uint8Array(readFileSync(join(FIXTURES, name, f))));
const mib = (n) => `${(n / MiB).toFixed(1)} MiB`;

const WORDS = "北京 上海 天气 很好 我们 喜欢 今天 公司 银行 大学 研究 发展".split(" ");
const EN = "the film was a great and quiet story about two friends who never met".split(" ");
const input = (task, i) => {
  const n = 1 + (i % 12);
  return task === "tag" ? WORDS.slice(0, n).join("") + i : EN.slice(0, n).join(" ") + ` ${i}`;
};
const use = (model, task, i) => (task === "tag" ? model.tag(input(task, i)) : model.classify(input(task, i)));

test("load → use → free 100 times, and 10,000 calls on one model: wasm memory stays bounded", async (t) => {
  await init({ threads: 1 });
  for (const [name, task] of [["classify-en", "classify"], ["tag-crf-zh", "tag"]]) {
    const bytes = files(name);
    const weights = bytes[2].byteLength;
    let warm = 0;
    for (let i = 0; i < 100; i++) {
      const model = Model.fromBytes(...bytes);
      use(model, task, i);
      model.free();
      if (i === 4) warm = memoryBytes();
    }
    const afterCycles = memoryBytes();
    t.diagnostic(`${name}: weights ${mib(weights)}; 100 load/use/free cycles: ${mib(warm)} after 5, ${mib(afterCycles)} after 100`);
    assert.ok(afterCycles - warm <= SLACK, `${name}: load/free cycles grew memory by ${mib(afterCycles - warm)}`);

    if (task !== "tag") continue; // 10,000 calls once (~4 minutes on 2 cores), on the tagger: CRF, offsets, spans
    const model = Model.fromBytes(...bytes);
    for (let i = 0; i < 100; i++) use(model, task, i);
    const before = memoryBytes();
    for (let i = 100; i < 10_000; i++) use(model, task, i);
    const afterCalls = memoryBytes();
    model.free();
    t.diagnostic(`${name}: 10,000 calls: ${mib(before)} after 100, ${mib(afterCalls)} after 10,000`);
    assert.ok(afterCalls - before <= SLACK, `${name}: 10,000 calls grew memory by ${mib(afterCalls - before)}`);
  }
});
