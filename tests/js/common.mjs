// Shared by the Node, package and browser tests: the native outputs to compare against and the
// comparison itself (probabilities within 1e-4, labels, tags and offsets exactly).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CACHE = process.env.BERT_TASKS_CACHE ?? join(homedir(), ".cache/bert-tasks");
export const FIXTURES = join(CACHE, "js-fixtures");
export const TOLERANCE = 1e-4;
/** q8 and q4 models run int8 kernels that quantise each layer's input rows on the fly: where wasm's f32
 * kernels and the native ones differ by an ulp right at a rounding boundary, one value moves by a
 * quantum (1/127 of its row's range), and the outputs by ~1e-3 (measured with 8-bit activations:
 * 1.1e-3 on tag-crf-zh-q8, Node 20 vs AVX-512 VNNI). Labels, tags and offsets must still be equal. */
export const Q8_TOLERANCE = 5e-3;

export function native() {
  try {
    return JSON.parse(readFileSync(join(FIXTURES, "native.json"), "utf8"));
  } catch (e) {
    throw new Error(`${FIXTURES}/native.json is missing: run \`cargo test --release --test js_fixtures\` first (${e.message})`);
  }
}

/** Character (code point) offset → UTF-16 offset in `text`. */
export function utf16(text, chars) {
  return Array.from(text).slice(0, chars).join("").length;
}

/** The calls to make for a fixture model, with spans in UTF-16 as JS callers give them. */
export function calls(name, fixture) {
  return fixture.inputs.map((input) => {
    if (fixture.task === "classify") return { method: "classify", args: [input[0], input[1] ?? undefined] };
    if (fixture.task === "tag") return { method: "tag", args: [input] };
    const span = (s) => ({ start: utf16(input.text, s.start), end: utf16(input.text, s.end) });
    return { method: "relate", args: [input.text, span(input.head), span(input.tail)] };
  });
}

export function assertSameAsNative(name, fixture, results) {
  assert.equal(results.length, fixture.outputs.length, name);
  const tolerance = /-q[48](\s|$)/.test(name) ? Q8_TOLERANCE : TOLERANCE;
  results.forEach((got, i) => {
    const want = fixture.outputs[i];
    const where = `${name} #${i}`;
    if (fixture.task === "tag") {
      const text = fixture.inputs[i];
      assert.deepEqual(got.tokens.map((t) => t.tag), want.tokens.map((t) => t.tag), where);
      got.tokens.forEach((t, k) => {
        const w = want.tokens[k];
        assert.equal(t.start, utf16(text, w.start), `${where} token ${k} start`);
        assert.equal(t.end, utf16(text, w.end), `${where} token ${k} end`);
        assert.equal(text.slice(t.start, t.end), t.text, `${where}: slice(start, end) is the token text`);
        assert.ok(Math.abs(t.score - w.score) <= tolerance, `${where} score ${t.score} vs ${w.score}`);
      });
      assert.deepEqual(got.spans.map((s) => [s.label, s.text]), want.spans.map((s) => [s.label, s.text]), where);
      got.spans.forEach((s) => assert.equal(text.slice(s.start, s.end), s.text));
    } else {
      assert.equal(got.label, want.label, where);
      for (const [label, p] of Object.entries(want.scores)) {
        assert.ok(Math.abs(got.scores[label] - p) <= tolerance, `${where} ${label}: ${got.scores[label]} vs ${p}`);
      }
    }
  });
}

/** Debian's Chromium, headless, as root, with no background network traffic. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}
