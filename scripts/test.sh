#!/usr/bin/env bash
# The project's whole test suite, from a fresh machine: installs what it needs, fetches the real
# weights, runs every Rust test (parity with PyTorch included) and builds the wasm32 library.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
need rustup "install Rust with rustup"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown || {
    echo "error: could not install the wasm32-unknown-unknown target with rustup" >&2; exit 1; }
fi

bash scripts/setup.sh
cargo test --release
echo "[test] building the library for wasm32-unknown-unknown (+simd128)"
cargo build --release --lib --target wasm32-unknown-unknown
ls -l "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/bert_tasks.wasm"
echo "[test] all tests passed"
