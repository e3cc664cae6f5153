#!/usr/bin/env bash
# wasm-opt -O3 in place, with npm's binaryen (pinned in scripts/tools; Debian's older one breaks
# the module). npm's wasm-opt is itself wasm (~2 min here): its output is kept per input hash.
#   wasm-opt.sh FILE.wasm [extra wasm-opt flags]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
file=$1; shift
opt=scripts/tools/node_modules/.bin/wasm-opt
if [ "${BERT_TASKS_WASM_OPT:-1}" != 1 ] || [ ! -x "$opt" ]; then exit 0; fi
before=$(stat -c %s "$file")
cached="$BERT_TASKS_CACHE/wasm-opt/$( (cat "$file"; echo "$*") | sha256sum | cut -c1-32).wasm"
if [ ! -f "$cached" ]; then
  mkdir -p "$(dirname "$cached")"
  "$opt" -O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue "$@" \
    "$file" -o "$cached.tmp"
  mv "$cached.tmp" "$cached"
fi
cp "$cached" "$file"
echo "[wasm-opt] $file: $before -> $(stat -c %s "$file") bytes"
