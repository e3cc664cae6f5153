#!/usr/bin/env bash
# Build the npm package into pkg/: wasm-pack (wasm32, +simd128 from .cargo/config.toml) plus the
# JS glue in js/ (Model.load with progress and Cache API, worker, Node entry, types).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
bash scripts/install-tools.sh wasm
rm -rf pkg
wasm-pack build --release --target web --mode no-install --out-dir pkg --out-name bert_tasks --no-pack
bash scripts/wasm-opt.sh pkg/bert_tasks_bg.wasm
# The threaded variant (pkg/threads/), used inside workers of cross-origin isolated pages and in
# Node; BERT_TASKS_WASM_THREADS=0 skips it (the package then runs single-threaded everywhere).
if [ "${BERT_TASKS_WASM_THREADS:-1}" = 1 ]; then
  bash scripts/build-wasm-threads.sh
fi
cp js/index.js js/worker.js js/node.js js/threads.js js/thread-worker.js js/index.d.ts js/README.md pkg/
version=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
cat > pkg/package.json <<JSON
{
  "name": "bert-tasks",
  "version": "$version",
  "description": "Fine-tuned BERT (classify, tag, relate) in WebAssembly, in the browser and Node",
  "license": "Apache-2.0",
  "type": "module",
  "main": "./index.js",
  "types": "./index.d.ts",
  "exports": {
    ".": { "types": "./index.d.ts", "node": "./node.js", "default": "./index.js" },
    "./worker.js": "./worker.js",
    "./bert_tasks_bg.wasm": "./bert_tasks_bg.wasm"
  },
  "files": ["index.js", "worker.js", "node.js", "threads.js", "thread-worker.js", "threads/", "index.d.ts", "bert_tasks.js", "bert_tasks.d.ts", "bert_tasks_bg.wasm", "bert_tasks_bg.wasm.d.ts", "README.md"],
  "engines": { "node": ">=20" },
  "sideEffects": false
}
JSON
ls -l pkg/bert_tasks_bg.wasm
