#!/usr/bin/env bash
# One extra build of the wasm module into pkg/NAME/ (called by build-pkg.sh), next to the
# baseline that wasm-pack writes to pkg/:
#   build-wasm-variant.sh relaxed           + relaxed SIMD (one fused multiply-add per step of
#                                             the matmul kernel: src/model/wasm_gemm.rs)
#   build-wasm-variant.sh threads           + atomics and a shared memory: a rayon pool on workers
#   build-wasm-variant.sh threads-relaxed   both
# JS picks one at run time (js/index.js, js/node.js). wasm-opt runs afterwards, from build-pkg.sh
# (all builds at once: npm's wasm-opt is single-threaded). The threaded ones need a pinned nightly that
# rebuilds std with atomics (-Z build-std). Each variant has its own target dir: different
# RUSTFLAGS would otherwise rebuild each other's cache.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
name=$1
features="+simd128"
toolchain=()
build_std=()
link=""
case "$name" in
  relaxed) features="$features,+relaxed-simd" ;;
  threads | threads-relaxed)
    [ "$name" = threads-relaxed ] && features="$features,+relaxed-simd"
    features="$features,+atomics,+bulk-memory"
    bash scripts/install-tools.sh wasm-threads
    toolchain=("+$WASM_THREADS_TOOLCHAIN")
    build_std=(-Z build-std=std,panic_abort)
    # 4 GiB: the most a wasm32 memory can address; a shared memory must declare its maximum.
    link="--shared-memory --import-memory --max-memory=4294967296 --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base"
    ;;
  *) echo "unknown wasm variant $name" >&2; exit 1 ;;
esac
flags="-C target-feature=$features"
for arg in $link; do flags="$flags -C link-arg=$arg"; done
target="$BERT_TASKS_CACHE/target-wasm-$name"
RUSTFLAGS="$flags" CARGO_TARGET_DIR="$target" cargo "${toolchain[@]}" build --lib --release \
  --target wasm32-unknown-unknown "${build_std[@]}"
rm -rf "pkg/$name"
wasm-bindgen --target web --out-dir "pkg/$name" --out-name bert_tasks \
  "$target/wasm32-unknown-unknown/release/bert_tasks.wasm"
