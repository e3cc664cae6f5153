// The wasm package in Node on the real models: same results as the native build.
import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadModel } from "../../pkg/node.js";
import { hasRelaxedSimd } from "../../pkg/variants.js";
import { FIXTURES, assertSameAsNative, calls, native } from "./common.mjs";

const fixtures = native();

for (const [name, fixture] of Object.entries(fixtures)) {
  test(`${name}: wasm in Node equals native`, async () => {
    const model = await loadModel(join(FIXTURES, name));
    assert.equal(model.info().task, fixture.task);
    // loadModel's default: the threaded build on every core (package.test.mjs covers threads: 1).
    assert.equal(model.info().threads, availableParallelism());
    assert.equal(model.info().build, availableParallelism() > 1 ? (hasRelaxedSimd() ? "threads-relaxed" : "threads") : "baseline");
    const results = calls(name, fixture).map(({ method, args }) => model[method](...args));
    assertSameAsNative(name, fixture, results);
    model.free();
  });
}

test("batch calls equal single calls", async () => {
  const model = await loadModel(join(FIXTURES, "tag-crf-zh"));
  const texts = fixtures["tag-crf-zh"].inputs;
  const strip = (r) => ({ ...r, tokens: r.tokens.map(({ score, ...t }) => t) });
  const batch = model.tagBatch(texts);
  const single = texts.map((t) => model.tag(t));
  assert.deepEqual(batch.map(strip), single.map(strip));
  batch.forEach((r, i) => r.tokens.forEach((t, k) => assert.ok(Math.abs(t.score - single[i].tokens[k].score) < 1e-4)));
  const cls = await loadModel(join(FIXTURES, "classify-en"));
  const pairs = cls.classifyBatch(["I love Paris 🗼 and 東京.", ["A man is playing a guitar.", "Someone plays music."]]);
  assert.equal(pairs[1].label, cls.classify("A man is playing a guitar.", "Someone plays music.").label);
});

test("bad input throws an Error and the model stays usable", async () => {
  const model = await loadModel(join(FIXTURES, "relate-en"));
  const text = "🗼 Paris is the capital of France.";
  assert.throws(() => model.relate(text, { start: 1, end: 8 }, { start: 27, end: 33 }), /character boundary/);
  assert.throws(() => model.relate(text, { start: 8, end: 3 }, { start: 27, end: 33 }), /reversed/);
  assert.throws(() => model.relate(text, { start: 3, end: 8 }, { start: 20, end: 99 }), /past the end|outside/);
  assert.throws(() => model.tag(text), /relate model/);
  assert.ok(model.relate(text, { start: 3, end: 8 }, { start: 27, end: 33 }).label);
  const tagger = await loadModel(join(FIXTURES, "tag-softmax-zh"));
  assert.deepEqual(tagger.tag(""), { tokens: [], spans: [] });
  // A lone surrogate from JS becomes U+FFFD, one UTF-16 unit: offsets still line up.
  const lone = "好\uD800北";
  const r = tagger.tag(lone);
  assert.equal(r.tokens.at(-1).start, 2);
});

test("bad model files throw an Error naming the file, and a good model still loads", async () => {
  const { fromBytes } = await import("../../pkg/node.js");
  const { readFile } = await import("node:fs/promises");
  const dir = join(FIXTURES, "classify-en");
  const [c, t, w] = await Promise.all(["config.json", "tokenizer.json", "model.safetensors"].map((f) => readFile(join(dir, f))));
  const u8 = (b) => new Uint8Array(b);
  assert.throws(() => fromBytes(u8(Buffer.from("{ nope")), u8(t), u8(w)), /config\.json/);
  assert.throws(() => fromBytes(u8(c), u8(t.subarray(0, 100)), u8(w)), /tokenizer\.json/);
  assert.throws(() => fromBytes(u8(c), u8(t), u8(w.subarray(0, w.length >> 1))), /model\.safetensors/);
  const lying = Buffer.from(w);
  lying.writeBigUInt64LE(1n << 62n, 0); // a header "2^62 bytes long": refused without allocating
  assert.throws(() => fromBytes(u8(c), u8(t), u8(lying)), /model\.safetensors/);
  const model = fromBytes(u8(c), u8(t), u8(w));
  assert.ok(model.classify("still works").label);
  // Empty and control-only text: a defined result, not an error.
  assert.equal(Object.keys(model.classify("\u0000\u0007 ").scores).length, model.info().labels.length);
});
