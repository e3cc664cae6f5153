#!/usr/bin/env bash
# Assemble the static demo site: www/ + the npm package (pkg/) + the demo models + a manifest.
# The result is plain files; any static file server can serve it.
#   scripts/build-site.sh MODELS_DIR SITE_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="${1:?usage: build-site.sh MODELS_DIR SITE_DIR}"; SITE="${2:?}"
[ -f pkg/bert_tasks_bg.wasm ] || { echo "pkg/ is missing: run scripts/build-pkg.sh" >&2; exit 1; }
rm -rf "$SITE"; mkdir -p "$SITE/models"
cp -r www/. "$SITE/"
cp -r pkg "$SITE/pkg"
python3 scripts/site-models.py "$MODELS" "$SITE"
