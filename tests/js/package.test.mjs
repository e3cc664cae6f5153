// `npm pack` the package, install the tarball into a fresh project, import it by name in Node
// and run every task on the single-threaded builds (baseline and relaxed SIMD), equal to native;
// and each build's int8 kernels equal the portable one inside Node's engine.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { FIXTURES, assertSameAsNative, calls, native } from "./common.mjs";
import { hasRelaxedSimd } from "../../pkg/variants.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

test("npm pack → npm install → import 'bert-tasks' runs every task", () => {
  const dir = mkdtempSync(join(tmpdir(), "bert-tasks-pack-"));
  try {
    const tgz = execFileSync("npm", ["pack", join(root, "pkg"), "--pack-destination", dir, "--silent"], { encoding: "utf8" }).trim().split("\n").at(-1);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent", "--offline", join(dir, tgz)], { cwd: dir });
    const fixtures = native();
    const plan = Object.entries(fixtures).map(([name, f]) => ({ name, dir: join(FIXTURES, name), calls: calls(name, f) }));
    writeFileSync(
      join(dir, "run.mjs"),
      `import { int8KernelCheck, loadModel } from "bert-tasks";
       const plan = ${JSON.stringify(plan)};
       const out = {};
       for (const { name, dir, calls } of plan) {
         const m = await loadModel(dir, { threads: 1 });
         out[name] = { task: m.info().task, threads: m.info().threads, build: m.info().build, results: calls.map(({ method, args }) => m[method](...args)) };
       }
       out.int8 = int8KernelCheck();
       console.log(JSON.stringify(out));`,
    );
    // The single-threaded builds this Node can run (node.test.mjs runs a threaded one), on this
    // test's own Node (scripts/test.sh runs it on Node 20 and on the current LTS): Node 20 has
    // relaxed SIMD only behind a flag, so it runs the relaxed build with the flag and the baseline
    // without; from Node 22 relaxed SIMD is on and the relaxed build is the one it picks.
    const runs = hasRelaxedSimd()
      ? [{ flags: [], build: "relaxed" }]
      : [{ flags: ["--experimental-wasm-relaxed-simd"], build: "relaxed" }, { flags: [], build: "baseline" }];
    for (const { flags, build } of runs) {
      const out = JSON.parse(execFileSync(process.execPath, [...flags, "run.mjs"], { cwd: dir, encoding: "utf8" }));
      // Every int8 kernel the build has equals the portable one in this engine. The relaxed dot
      // runs only where the engine computes it exactly (Node 20's flagged V8 doubles it on VNNI
      // CPUs, and the build then falls back to the simd128 kernel).
      assert.ok(out.int8.checked.includes("simd128") && out.int8.checked.at(-1) === "portable", JSON.stringify(out.int8));
      assert.ok(build === "relaxed" ? ["relaxed-pairs", "relaxed-dot", "simd128"].includes(out.int8.kernel) : out.int8.kernel === "simd128", `${build}: ${JSON.stringify(out.int8)}`);
      for (const [name, f] of Object.entries(fixtures)) {
        assert.equal(out[name].task, f.task);
        assert.equal(out[name].threads, 1, "threads: 1 runs a single-threaded build");
        assert.equal(out[name].build, build, name);
        assertSameAsNative(`${name} (${build})`, f, out[name].results);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
