#!/usr/bin/env bash
# Build the npm package into pkg/: wasm-pack (wasm32, +simd128 from .cargo/config.toml) plus the
# JS glue in js/ (Model.load with progress and Cache API, worker, Node entry, types).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
bash scripts/install-tools.sh wasm
rm -rf pkg
wasm-pack build --release --target web --mode no-install --out-dir pkg --out-name bert_tasks --no-pack
# wasm-opt from npm's binaryen (pinned in scripts/tools; Debian's older one breaks the module).
opt=scripts/tools/node_modules/.bin/wasm-opt
if [ "${BERT_TASKS_WASM_OPT:-1}" = 1 ] && [ -x "$opt" ]; then
  # npm's wasm-opt is itself wasm (~2 min here): keep its output per input hash.
  before=$(stat -c %s pkg/bert_tasks_bg.wasm)
  cached="$BERT_TASKS_CACHE/wasm-opt/$(sha256sum pkg/bert_tasks_bg.wasm | cut -c1-32).wasm"
  if [ ! -f "$cached" ]; then
    mkdir -p "$(dirname "$cached")"
    "$opt" -O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      pkg/bert_tasks_bg.wasm -o "$cached.tmp"
    mv "$cached.tmp" "$cached"
  fi
  cp "$cached" pkg/bert_tasks_bg.wasm
  echo "[build-pkg] wasm-opt -O3: $before -> $(stat -c %s pkg/bert_tasks_bg.wasm) bytes"
fi
cp js/index.js js/worker.js js/node.js js/index.d.ts js/README.md pkg/
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
  "files": ["index.js", "worker.js", "node.js", "index.d.ts", "bert_tasks.js", "bert_tasks.d.ts", "bert_tasks_bg.wasm", "bert_tasks_bg.wasm.d.ts", "README.md"],
  "engines": { "node": ">=20" },
  "sideEffects": false
}
JSON
ls -l pkg/bert_tasks_bg.wasm
