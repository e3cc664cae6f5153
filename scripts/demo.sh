#!/usr/bin/env bash
# The main job, for now: fetch the real models, build, and run both encoders and a task head on
# example sentences. (The browser demo of issue 6 will take this place.)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
bash scripts/setup.sh
"$BERT_TASKS_BIN" embed --model "$BERT_TASKS_CACHE/models/all-minilm-l6-v2" \
  "BERT runs in the browser through WebAssembly." "The Eiffel Tower is in Paris."
"$BERT_TASKS_BIN" embed --model "$BERT_TASKS_CACHE/models/m3e-small" "今天的天气真好，我们去公园散步吧！"
