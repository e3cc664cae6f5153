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
for d in "$MODELS"/*/; do
  id=$(basename "$d")
  [ -f "$d/model.safetensors" ] || continue
  mkdir -p "$SITE/models/$id"
  for f in config.json tokenizer.json model.safetensors; do ln -f "$d/$f" "$SITE/models/$id/$f" 2>/dev/null || cp "$d/$f" "$SITE/models/$id/$f"; done
done
python3 - "$MODELS" "$SITE/models/manifest.json" <<'PY'
import json, os, sys
models, out = sys.argv[1], sys.argv[2]
entries = []
for mid in sorted(os.listdir(models)):
    d = os.path.join(models, mid)
    if not os.path.isfile(os.path.join(d, "model.safetensors")):
        continue
    cfg = json.load(open(os.path.join(d, "config.json")))
    head = cfg.get("task_head", {})
    metric = None
    if os.path.isfile(os.path.join(d, "metrics.json")):
        metric = json.load(open(os.path.join(d, "metrics.json")))["summary"].get("best_metric")
    entries.append({
        "id": mid, "task": head.get("task"), "head": head,
        "labels": [cfg["id2label"][k] for k in sorted(cfg["id2label"], key=int)],
        "bytes": sum(os.path.getsize(os.path.join(d, f)) for f in ("config.json", "tokenizer.json", "model.safetensors")),
        "dev_metric": metric,
    })
json.dump({"models": entries}, open(out, "w"), indent=1)
print(f"[site] {len(entries)} models: " + ", ".join(e["id"] for e in entries))
PY
