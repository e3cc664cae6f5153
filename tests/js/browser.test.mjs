// The npm package in headless Chromium (Debian's, driven by playwright-core): each model loaded
// from a static server through the worker, with progress events, equal to native outputs, on the
// threaded build (every core) and the single-threaded one.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { arch } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { FIXTURES, assertSameAsNative, calls, launch, native } from "./common.mjs";
import { serve } from "../../scripts/serve.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../..");

test("package in Chromium through the worker equals native, with progress", async () => {
  const fixtures = native();
  const { server, url } = await serve({ "/": join(here, "page"), "/pkg/": join(root, "pkg"), "/models/": FIXTURES });
  const browser = await launch();
  const logs = [];
  try {
    const page = await browser.newPage();
    page.on("console", (m) => logs.push(m.text()));
    page.on("pageerror", (e) => logs.push(String(e)));
    await page.goto(url + "/");
    await page.waitForFunction(() => window.ready === true);
    // Every other model on the single-threaded build, the rest on the threaded one.
    const plan = Object.entries(fixtures).map(([name, f], i) => ({ name, calls: calls(name, f), threads: i % 2 ? 1 : "auto" }));
    const { out, cores, isolated } = await page.evaluate((plan) => window.runFixtures(plan), plan);
    assert.ok(isolated, "the test page is cross-origin isolated");
    for (const [i, [name, fixture]] of Object.entries(fixtures).entries()) {
      const { info, results, progress, error } = out[name];
      assert.equal(info.task, fixture.task, name);
      assert.equal(info.threads, i % 2 ? 1 : cores, `${name}: threads used`);
      // Chromium has relaxed SIMD: the fused multiply-add builds run.
      assert.equal(info.build, i % 2 || cores < 2 ? "relaxed" : "threads-relaxed", `${name}: wasm build`);
      assertSameAsNative(name, fixture, results);
      assert.ok(progress.length > 0, `${name}: progress events`);
      const last = progress.at(-1);
      assert.equal(last.loaded, last.total, `${name}: progress reaches 100%`);
      assert.match(error, /model/, `${name}: a wrong-task call rejects with a message`);
    }
  } catch (e) {
    throw new Error(`${e.message}\nbrowser console:\n${logs.join("\n")}`);
  } finally {
    await browser.close();
    server.close();
  }
});

test("int8 kernels in Chromium: the relaxed dot equals the portable kernel and runs", async () => {
  const { server, url } = await serve({ "/": join(here, "page"), "/pkg/": join(root, "pkg") });
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(url + "/");
    const got = await page.evaluate(async () => {
      const pkg = await import("/pkg/index.js");
      await pkg.ensureInit(undefined, { threads: 1 });
      return { build: pkg.buildName(), ...pkg.int8KernelCheck() };
    });
    assert.equal(got.build, "relaxed");
    // Chromium computes relaxed_dot_i8x16_i7x16_add exactly (the build's probe), so both relaxed
    // kernels are checked bit for bit against the others and one of them runs.
    assert.deepEqual([...got.checked].sort(), ["portable", "relaxed-dot", "relaxed-pairs", "simd128"]);
    assert.equal(got.kernel, got.checked[0]);
    assert.deepEqual(got.checked.slice(2), ["simd128", "portable"]);
    // Without any VNNI on an x86-64 CPU, V8 can only lower the relaxed dot in two steps
    // (pmaddubsw, pmaddwd), which the build's second probe tells, and the 16-bit pair kernel runs.
    const flags = (readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m) ?? ["", ""])[1].split(/\s+/);
    if (arch() === "x64" && !flags.some((f) => f.includes("vnni"))) assert.equal(got.kernel, "relaxed-pairs");
  } finally {
    await browser.close();
    server.close();
  }
});
