#!/usr/bin/env bash
# The main job: fetch the real models and data, build the npm package and the static site, serve
# it on http://127.0.0.1:8080 at once, and fine-tune the demo models with the project's own
# trainer in the meantime (cached after the first run, ~15 minutes on 2 cores): each model appears
# on the page when its training ends, and the page shows which ones are still training.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
need node "install Node.js >= 20"
bash scripts/install-tools.sh wasm
bash scripts/setup.sh
bash scripts/build-pkg.sh
MODELS="$BERT_TASKS_CACHE/demo-models"; SITE="$BERT_TASKS_CACHE/site"
mkdir -p "$MODELS"
bash scripts/build-site.sh "$MODELS" "$SITE"
node scripts/serve.mjs "$SITE" "${PORT:-8080}" &
server=$!
refresher=""
trap 'kill $server $refresher 2>/dev/null || true' EXIT
echo "[demo] open http://127.0.0.1:${PORT:-8080}/ (models appear as their training ends)"
# The manifest follows the training: new models and the current one's step, every 3 s.
( while sleep 3; do python3 scripts/site-models.py "$MODELS" "$SITE" --quiet || true; done ) &
refresher=$!
bash scripts/demo-models.sh "$MODELS"
kill $refresher 2>/dev/null || true
python3 scripts/site-models.py "$MODELS" "$SITE"
echo "[demo] all models ready; serving until Ctrl-C"
wait $server
