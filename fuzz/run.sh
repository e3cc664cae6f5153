#!/usr/bin/env bash
# Fuzz every target for FUZZ_SECONDS (default 600) each, starting from the small seeds in
# fuzz/seeds/; crashes land in fuzz/artifacts/<target>/. Needs the nightly toolchain.
#   bash fuzz/run.sh [target ...]
set -euo pipefail
cd "$(dirname "$0")"
. ../scripts/env.sh
export CARGO_TARGET_DIR="$BERT_TASKS_CACHE/target-fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config classify_data conll relate_data model_folder)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  echo "[fuzz] $t for ${FUZZ_SECONDS:-600} s"
  cargo +nightly fuzz run --release "$t" "corpus/$t" -- -max_total_time="${FUZZ_SECONDS:-600}" -rss_limit_mb=4096 -max_len=65536 2>&1 \
    | grep -E "^(#[0-9]+ +(DONE|pulse))|Done|ERROR|SUMMARY|panicked|crash-" || true
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then echo "[fuzz] $t: CRASH, see fuzz/artifacts/$t" >&2; exit 1; fi
done
echo "[fuzz] no crashes"
