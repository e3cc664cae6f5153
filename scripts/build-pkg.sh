#!/usr/bin/env bash
# Build the npm package into pkg/: wasm-pack (wasm32, +simd128 from .cargo/config.toml) plus the
# JS glue in js/ (Model.load with progress and Cache API, worker, Node entry, types).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
bash scripts/install-tools.sh wasm
rm -rf pkg
wasm-pack build --release --target web --mode no-install --out-dir pkg --out-name bert_tasks --no-pack
# The variants JS picks from at run time (scripts/build-wasm-variant.sh): relaxed SIMD, threads,
# both. BERT_TASKS_WASM_VARIANTS=0 skips them (the package then runs the baseline everywhere).
if [ "${BERT_TASKS_WASM_VARIANTS:-1}" = 1 ]; then
  for v in relaxed threads threads-relaxed; do bash scripts/build-wasm-variant.sh "$v"; done
fi
# wasm-opt -O3 on every build at once (each run is single-threaded), with the features it uses.
pids=()
for wasm in pkg/bert_tasks_bg.wasm pkg/*/bert_tasks_bg.wasm; do
  [ -f "$wasm" ] || continue # no variants built (BERT_TASKS_WASM_VARIANTS=0)
  flags=()
  case "$wasm" in *threads*) flags+=(--enable-threads) ;; esac
  case "$wasm" in *relaxed*) flags+=(--enable-relaxed-simd) ;; esac
  bash scripts/wasm-opt.sh "$wasm" "${flags[@]}" & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
cp js/index.js js/worker.js js/node.js js/threads.js js/thread-worker.js js/variants.js js/index.d.ts js/README.md pkg/
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
  "files": ["index.js", "worker.js", "node.js", "threads.js", "thread-worker.js", "variants.js", "relaxed/", "threads/", "threads-relaxed/", "index.d.ts", "bert_tasks.js", "bert_tasks.d.ts", "bert_tasks_bg.wasm", "bert_tasks_bg.wasm.d.ts", "README.md"],
  "engines": { "node": ">=20" },
  "sideEffects": false
}
JSON
ls -l pkg/bert_tasks_bg.wasm
