// The package where things go wrong, in headless Chromium:
// - a worker that fails to start, dies, traps, never answers or is terminated rejects every
//   pending and later call with an Error (none hangs: each page call is raced against a timer),
//   and so does one a Content-Security-Policy blocks;
// - the Cache API copy of a model is revalidated (a replaced model is fetched again), kept as one
//   set of three files or not at all, never stored from an interrupted download, checked against
//   `integrity` before it reaches wasm, served offline, and keyed by `version` when given.
// The models come from a second server on another port (as from a CDN: CORS, exposed ETag)
// whose files, failures and request counts the test controls.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { FIXTURES, launch } from "./common.mjs";
import { serve } from "../../scripts/serve.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../..");
const FILES = ["config.json", "tokenizer.json", "model.safetensors"];

/** The model server: `/<name>/<file>` from `state.folders[name]`, with `state.mode[name]`:
 *  "ok", "drop" (model.safetensors cut off halfway) or "corrupt" (wrong bytes, same length). */
function modelServer(state) {
  const server = createServer((req, res) => {
    const [, name, file] = new URL(req.url, "http://x").pathname.split("/");
    const cors = {
      "Access-Control-Allow-Origin": "*",
      "Access-Control-Expose-Headers": "ETag",
      "Cross-Origin-Resource-Policy": "cross-origin",
    };
    const folder = state.folders[name];
    if (!folder || !FILES.includes(file)) return res.writeHead(404, cors).end();
    state.requests[name] = (state.requests[name] ?? 0) + 1;
    const path = join(FIXTURES, folder, file);
    const { size, mtimeMs } = statSync(path);
    const etag = `"${folder}-${size}-${Math.floor(mtimeMs)}"`;
    if (req.headers["if-none-match"] === etag) return res.writeHead(304, { ...cors, ETag: etag }).end();
    res.writeHead(200, { ...cors, ETag: etag, "Content-Length": size, "Content-Type": "application/octet-stream", "Cache-Control": "no-cache" });
    let bytes = readFileSync(path);
    const mode = state.mode[name] ?? "ok";
    if (mode === "drop" && file === "model.safetensors") {
      res.write(bytes.subarray(0, bytes.length >> 1));
      return setTimeout(() => res.destroy(), 50);
    }
    if (mode === "corrupt" && file === "model.safetensors") {
      bytes = Buffer.from(bytes);
      for (let i = bytes.length >> 1; i < bytes.length; i += 4096) bytes[i] ^= 0xff;
    }
    res.end(bytes);
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok({ server, url: `http://127.0.0.1:${server.address().port}` })));
}

const sri = (folder, file) => "sha256-" + createHash("sha256").update(readFileSync(join(FIXTURES, folder, file))).digest("base64");

test("workers never hang; cached models are revalidated, complete and checked", async () => {
  const { server: site, url } = await serve({ "/": join(here, "page"), "/pkg/": join(root, "pkg") });
  const state = { folders: { m: "classify-en", drop: "classify-en", sri: "classify-en", v: "classify-en" }, mode: {}, requests: {} };
  const { server: models, url: modelsUrl } = await modelServer(state);
  const browser = await launch();
  const logs = [];
  try {
    const page = await browser.newPage();
    page.on("console", (m) => logs.push(m.text()));
    page.on("pageerror", (e) => logs.push(String(e)));
    await page.goto(url + "/robust.html");
    await page.waitForFunction(() => window.ready === true);
    // Every page call must settle well within this; a hang fails here instead of timing out CI.
    const run = (fn, ...args) =>
      Promise.race([page.evaluate(fn, ...args), new Promise((_, fail) => setTimeout(() => fail(new Error(`hung: ${fn} ${JSON.stringify(args)}`)), 120_000))]);
    const model = (name) => `${modelsUrl}/${name}/`;

    // --- workers ---
    const failing = {
      "/workers/throws.js": /worker failed/,
      "/workers/missing.js": /worker failed/,
      "/workers/dies-later.js": /worker failed.*out of memory/,
      "/workers/traps.js": /crashed.*RuntimeError/,
    };
    for (const [script, message] of Object.entries(failing)) {
      const { load, later } = await run(([u, m]) => window.workerCalls(u, m), [script, model("m")]);
      assert.equal(load.ok, false, `${script}: load rejects`);
      assert.ok(load.isError, `${script}: with an Error`);
      assert.match(load.error, message, `${script}: says what happened`);
      assert.equal(later.ok, false, `${script}: a later call rejects too`);
      assert.match(later.error, message, `${script}: with the same reason`);
    }
    const silent = await run(([u, m]) => window.workerCalls(u, m, { timeout: 500 }), ["/workers/silent.js", model("m")]);
    assert.match(silent.load.error, /load timed out after 500 ms/, "a worker that never answers: the load timeout");
    assert.match(silent.later.error, /timed out/, "and later calls reject");
    const terminated = await run((m) => window.terminateWhileLoading(m), model("m"));
    assert.match(terminated.load.error, /terminated/, "terminate() rejects the pending load");
    assert.match(terminated.later.error, /terminated/, "and later calls");
    const real = await run(([u, m]) => window.workerCalls(u, m), [null, model("m")]);
    assert.ok(real.load.ok && real.later.ok, `the package's worker still works: ${JSON.stringify(real)}`);

    const csp = await browser.newPage();
    await csp.goto(url + "/csp.html");
    await csp.waitForFunction(() => window.ready === true);
    const blocked = await Promise.race([
      csp.evaluate((m) => window.blocked(m), model("m")),
      new Promise((_, fail) => setTimeout(() => fail(new Error("hung: a worker blocked by CSP")), 120_000)),
    ]);
    assert.ok(blocked.load.isError && blocked.later.isError, `blocked by CSP: both calls reject: ${JSON.stringify(blocked)}`);
    assert.match(blocked.load.error, /worker (could not be created|failed)/);
    await csp.close();

    // --- cache: revalidation picks up a replaced model ---
    let got = await run((m) => window.loadModel(m), model("m"));
    assert.equal(got.value?.task, "classify", JSON.stringify(got));
    state.folders.m = "relate-en"; // the model at that URL is replaced
    got = await run((m) => window.loadModel(m), model("m"));
    assert.equal(got.value?.task, "relate", "the replaced model is fetched again, not served from the cache");
    let entries = await run(() => window.cached());
    const mEntries = FILES.map((f) => entries[model("m") + f]);
    assert.ok(mEntries.every((id) => id && id === mEntries[0]), `the three files are one cached set: ${mEntries}`);

    // --- offline: the cached set is used when the server cannot be reached ---
    const before = state.requests.m;
    state.folders.m = undefined; // 404 from now on would be an HTTP answer; a dead server is not
    models.closeAllConnections();
    await new Promise((r) => models.close(r));
    got = await run((m) => window.loadModel(m), model("m"));
    assert.equal(got.value?.task, "relate", `offline: the cached model (${got.error ?? ""})`);
    assert.equal(state.requests.m, before);
    await new Promise((ok) => models.listen(Number(new URL(modelsUrl).port), "127.0.0.1", ok));

    // --- an interrupted download leaves nothing behind ---
    state.mode.drop = "drop";
    got = await run((m) => window.loadModel(m), model("drop"));
    assert.equal(got.ok, false, "a dropped connection rejects the load");
    entries = await run(() => window.cached());
    assert.deepEqual(FILES.filter((f) => entries[model("drop") + f]), [], "no partial entry after a dropped download");
    state.mode.drop = "ok";
    got = await run((m) => window.loadModel(m), model("drop"));
    assert.equal(got.value?.task, "classify", "the next load works");

    // --- integrity: wrong bytes never reach wasm and are not cached ---
    const integrity = Object.fromEntries(FILES.map((f) => [f, sri("classify-en", f)]));
    state.mode.sri = "corrupt";
    got = await run(([m, i]) => window.loadModel(m, { integrity: i }), [model("sri"), integrity]);
    assert.equal(got.ok, false);
    assert.match(got.error, /model\.safetensors does not match its integrity hash \(expected sha256-/);
    entries = await run(() => window.cached());
    assert.deepEqual(FILES.filter((f) => entries[model("sri") + f]), [], "wrong bytes are not cached");
    state.mode.sri = "ok";
    got = await run(([m, i]) => window.loadModel(m, { integrity: i }), [model("sri"), integrity]);
    assert.equal(got.value?.task, "classify", `the right bytes pass: ${got.error ?? ""}`);

    // --- version: the same version needs no request, another one fetches anew ---
    got = await run((m) => window.loadModel(m, { version: "1" }), model("v"));
    assert.equal(got.value?.task, "classify");
    const afterFirst = state.requests.v;
    state.folders.v = "relate-en";
    got = await run((m) => window.loadModel(m, { version: "1" }), model("v"));
    assert.equal(got.value?.task, "classify", "same version: the cached copy");
    assert.equal(state.requests.v, afterFirst, "same version: no request");
    got = await run((m) => window.loadModel(m, { version: "2" }), model("v"));
    assert.equal(got.value?.task, "relate", "a new version is fetched");
    assert.equal(state.requests.v, afterFirst + 3);
  } catch (e) {
    throw new Error(`${e.message}\nbrowser console:\n${logs.join("\n")}`);
  } finally {
    await browser.close();
    site.close();
    models.closeAllConnections();
    models.close();
  }
});
