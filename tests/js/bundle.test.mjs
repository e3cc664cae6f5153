// The npm package inside real web apps: tests/js/bundle-app/ (every task on the main thread and
// through the package's worker) installed from the `npm pack` tarball, not from pkg/, and
//   - bundled by Vite 8 and by webpack 5 with the configs the package README gives,
//   - bundled by esbuild with the package kept external (an import map names its folder),
//   - not bundled at all (a plain static host: the app's file and the package's folder),
// each run in Chromium served plain and cross-origin isolated (the worker then runs the threaded
// build). Results equal native; no build falls back (a wasm or worker file lost by a bundler
// would show as a fallback warning, so none is allowed).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { FIXTURES, assertSameAsNative, calls, launch, native } from "./common.mjs";
import { serve } from "../../scripts/serve.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../..");
// Inside tests/js so that the bundlers (tests/js/node_modules) resolve from the app's configs.
const work = join(here, ".work/bundle");
const app = join(work, "app");
const pkgDir = join(app, "node_modules/bert-tasks");

/** The app's index.html that imports the package through an import map, next to its folder. */
function importMapSite(dist, mainJs) {
  mkdirSync(dist, { recursive: true });
  cpSync(join(app, "importmap.html"), join(dist, "index.html"));
  cpSync(mainJs, join(dist, "main.js"));
  cpSync(pkgDir, join(dist, "bert-tasks"), { recursive: true });
}

const BUILDS = {
  vite: async () => {
    const { build } = await import("vite");
    await build({ root: app, configFile: join(app, "vite.config.mjs"), logLevel: "warn", build: { outDir: "dist-vite" } });
    return join(app, "dist-vite");
  },
  webpack: async () => {
    const { default: webpack } = await import("webpack");
    const { default: config } = await import(pathToFileURL(join(app, "webpack.config.mjs")).href);
    const dist = join(app, "dist-webpack");
    const stats = await new Promise((ok, fail) =>
      webpack({ ...config, context: app, output: { ...config.output, path: dist } }, (e, s) => (e ? fail(e) : ok(s))),
    );
    assert.ok(!stats.hasErrors(), stats.toString({ colors: false, modules: false }));
    cpSync(join(app, "index.html"), join(dist, "index.html"));
    return dist;
  },
  esbuild: async () => {
    const { build } = await import("esbuild");
    const dist = join(app, "dist-esbuild");
    await build({ entryPoints: [join(app, "main.js")], bundle: true, format: "esm", external: ["bert-tasks"], outfile: join(app, "esbuild-main.js"), logLevel: "warning" });
    importMapSite(dist, join(app, "esbuild-main.js"));
    return dist;
  },
  "no bundler": async () => {
    const dist = join(app, "dist-plain");
    importMapSite(dist, join(app, "main.js"));
    return dist;
  },
};

let browser;
before(async () => {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(app, { recursive: true });
  cpSync(join(here, "bundle-app"), app, { recursive: true });
  const tgz = execFileSync("npm", ["pack", join(root, "pkg"), "--pack-destination", work, "--silent"], { encoding: "utf8" }).trim().split("\n").at(-1);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "bundled-app", private: true, type: "module" }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent", "--offline", join(work, tgz)], { cwd: app });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  rmSync(work, { recursive: true, force: true });
});

const fixtures = native();
const plan = Object.entries(fixtures).map(([name, f]) => ({ name, calls: calls(name, f) }));

for (const [bundler, buildApp] of Object.entries(BUILDS)) {
  test(`${bundler}: the packed package bundled into an app, plain and cross-origin isolated, equals native`, async () => {
    const dist = await buildApp();
    for (const isolated of [false, true]) {
      const { server, url } = await serve({ "/": dist, "/models/": FIXTURES }, { isolated });
      const page = await browser.newPage();
      const logs = [];
      page.on("console", (m) => logs.push(m.text()));
      page.on("pageerror", (e) => logs.push(String(e)));
      const where = `${bundler}, ${isolated ? "isolated" : "plain"}`;
      try {
        await page.goto(url + "/");
        await page.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
        const got = await page.evaluate((plan) => window.runAll(plan), plan);
        assert.equal(got.isolated, isolated, `${where}: crossOriginIsolated`);
        for (const [name, fixture] of Object.entries(fixtures)) {
          const { main, worker } = got.out[name];
          assert.equal(main.info.task, fixture.task, `${where} ${name}`);
          // Chromium has relaxed SIMD; a page's main thread never runs the threaded build.
          assert.equal(main.info.build, "relaxed", `${where} ${name}: main-thread build`);
          const threaded = isolated && availableParallelism() > 1;
          assert.equal(worker.info.build, threaded ? "threads-relaxed" : "relaxed", `${where} ${name}: worker build`);
          assert.equal(worker.info.threads > 1, threaded, `${where} ${name}: worker threads`);
          assertSameAsNative(`${where} ${name} (main thread)`, fixture, main.results);
          assertSameAsNative(`${where} ${name} (worker)`, fixture, worker.results);
        }
        const fallbacks = logs.filter((l) => /did not start|failed/.test(l));
        assert.deepEqual(fallbacks, [], `${where}: no build fell back and nothing failed`);
      } catch (e) {
        throw new Error(`${e.message}\nbrowser console (${where}):\n${logs.join("\n")}`);
      } finally {
        await page.close();
        server.close();
      }
    }
  });
}
