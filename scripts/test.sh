#!/usr/bin/env bash
# The project's whole test suite, from a fresh machine: installs what it needs (rustup target,
# wasm-bindgen-cli at the Cargo.lock version, wasm-pack, Debian chromium + chromedriver, npm
# packages), fetches the real weights, then runs
#   1. every Rust test on the real weights (parity with PyTorch, heads, training, CLI);
#   2. the wasm API's own tests in headless Chromium and in Node (wasm-pack test);
#   3. the npm package (pkg/) against native outputs in Node (the system's and the current LTS,
#      fetched as an npm package), from an `npm pack` tarball, and in Chromium through its worker
#      (Playwright);
#   4. the demo site end to end in Chromium, with small models trained in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
need rustup "install Rust with rustup"
need node "install Node.js >= 20"

bash scripts/install-tools.sh wasm browser node-lts
bash scripts/setup.sh

echo "[test] 1/4 Rust tests (native, real weights)"
python3 bench/machine.py --check # the CPU line each benchmark run records
cargo test --release

echo "[test] 2/4 wasm API tests: headless Chromium and Node"
wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)" --release --mode no-install -- --test wasm_browser
wasm-pack test --node --release --mode no-install -- --test wasm_node

echo "[test] 3/4 npm package: Node, npm pack, Chromium + worker"
bash scripts/build-pkg.sh
(cd tests/js && node --test --test-concurrency=1 serve.test.mjs node.test.mjs package.test.mjs browser.test.mjs robust.test.mjs bundle.test.mjs memory.test.mjs)
# The same package on the current LTS Node, where relaxed SIMD is on: its relaxed and
# threads-relaxed builds against native as users of Node >= 22 get them (Node 20 runs the relaxed
# build only behind a flag, in package.test.mjs, and the threaded relaxed one not at all).
echo "[test] 3/4 npm package on Node $("$NODE_LTS" --version)"
(cd tests/js && "$NODE_LTS" --test --test-concurrency=1 node.test.mjs package.test.mjs)

echo "[test] 4/4 demo site end to end"
bash scripts/demo-models.sh --quick "$BERT_TASKS_CACHE/demo-models-quick"
bash scripts/build-site.sh "$BERT_TASKS_CACHE/demo-models-quick" "$BERT_TASKS_CACHE/site-test"
(cd tests/js && node --test --test-concurrency=1 demo.test.mjs demo-training.test.mjs)
echo "[test] all tests passed"
