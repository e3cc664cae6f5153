# Shared settings for the project's scripts (sourced, not run).
# Everything heavy lives outside the clone so that fresh clones reuse it.
export BERT_TASKS_CACHE="${BERT_TASKS_CACHE:-$HOME/.cache/bert-tasks}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERT_TASKS_CACHE/target}"
# The nightly that builds the threaded wasm variant (std rebuilt with atomics; scripts/build-pkg.sh).
export WASM_THREADS_TOOLCHAIN=nightly-2026-05-19
export BERT_TASKS_BIN="$CARGO_TARGET_DIR/release/bert-tasks"
# A current LTS Node beside the system's (scripts/install-tools.sh node-lts): the package's Node
# tests and the q8 benchmark run on both, since from Node 22 on relaxed SIMD is on by default.
export NODE_LTS_VERSION=24.22.3
export NODE_LTS="${NODE_LTS:-$BERT_TASKS_CACHE/node-$NODE_LTS_VERSION/node}"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required: $2" >&2; exit 1; }
}
