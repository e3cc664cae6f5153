#!/usr/bin/env bash
# The main job: fetch the real models and data, fine-tune the demo models with the project's own
# trainer (cached after the first run, ~10 minutes on 2 cores), build the npm package and the
# static site, and serve it on http://127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
need node "install Node.js >= 20"
bash scripts/install-tools.sh wasm
bash scripts/setup.sh
bash scripts/demo-models.sh "$BERT_TASKS_CACHE/demo-models"
bash scripts/build-pkg.sh
SITE="$BERT_TASKS_CACHE/site"
bash scripts/build-site.sh "$BERT_TASKS_CACHE/demo-models" "$SITE"
echo "[demo] open http://127.0.0.1:${PORT:-8080}/"
exec node scripts/serve.mjs "$SITE" "${PORT:-8080}"
