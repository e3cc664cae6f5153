#!/usr/bin/env bash
# The threaded wasm variant into pkg/threads/ (called by build-pkg.sh): the same crate built with
# +atomics on a pinned nightly that rebuilds std for it (-Z build-std), linked with a shared,
# imported memory, then wasm-bindgen (which emits the thread-aware glue) and wasm-opt.
# Its own target dir: different RUSTFLAGS would otherwise rebuild the single-threaded build's cache.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
bash scripts/install-tools.sh wasm-threads
target="$BERT_TASKS_CACHE/target-wasm-threads"
# 4 GiB: the most a wasm32 memory can address; shared memories must declare a maximum.
link="--shared-memory --import-memory --max-memory=4294967296 --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base"
flags="-C target-feature=+atomics,+bulk-memory,+simd128"
for arg in $link; do flags="$flags -C link-arg=$arg"; done
RUSTFLAGS="$flags" CARGO_TARGET_DIR="$target" cargo "+$WASM_THREADS_TOOLCHAIN" build --lib --release \
  --target wasm32-unknown-unknown -Z build-std=std,panic_abort
rm -rf pkg/threads
wasm-bindgen --target web --out-dir pkg/threads --out-name bert_tasks \
  "$target/wasm32-unknown-unknown/release/bert_tasks.wasm"
bash scripts/wasm-opt.sh pkg/threads/bert_tasks_bg.wasm --enable-threads
