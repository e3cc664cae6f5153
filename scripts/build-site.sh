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
  if [ -f "$d/f16/model.safetensors" ]; then # the f16 export kept for comparison
    mkdir -p "$SITE/models/$id/f16"
    for f in config.json tokenizer.json model.safetensors; do ln -f "$d/f16/$f" "$SITE/models/$id/f16/$f" 2>/dev/null || cp "$d/f16/$f" "$SITE/models/$id/f16/$f"; done
  fi
done
python3 - "$MODELS" "$SITE/models/manifest.json" <<'PY'
import json, os, sys
models, out = sys.argv[1], sys.argv[2]
def dtype(path):
    # From the safetensors header: q8 when any tensor is int8, else the first float dtype.
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    types = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    return "q8" if "I8" in types else next((t.lower() for t in ("F32", "F16", "BF16") if t in types), "?")

def size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in ("config.json", "tokenizer.json", "model.safetensors"))

entries = []
for mid in sorted(os.listdir(models)):
    d = os.path.join(models, mid)
    if not os.path.isfile(os.path.join(d, "model.safetensors")):
        continue
    cfg = json.load(open(os.path.join(d, "config.json")))
    head = cfg.get("task_head", {})
    metric, trained = None, None
    if os.path.isfile(os.path.join(d, "metrics.json")):
        # What the model was trained on and how it scored, from the files the trainer wrote.
        m = json.load(open(os.path.join(d, "metrics.json")))
        metric = m["summary"].get("best_metric")
        c = m.get("config", {})
        trained = {
            "base": os.path.basename(str(c.get("base", "")).rstrip("/")),
            "data": "/".join(str(c.get("train", "")).split("/")[-2:]),
            "examples": m["summary"].get("examples"), "epochs": c.get("epochs"),
            "dev_examples": c.get("limit_dev"),
            "metric": "span F1" if head.get("task") == "tag" else "macro-F1",
        }
    entries.append({
        "id": mid, "task": head.get("task"), "head": head,
        "labels": [cfg["id2label"][k] for k in sorted(cfg["id2label"], key=int)],
        "bytes": size(d), "dtype": dtype(os.path.join(d, "model.safetensors")),
        "dev_metric": metric, "trained": trained,
    })
    f16 = os.path.join(d, "f16")
    if os.path.isfile(os.path.join(f16, "model.safetensors")):
        entries[-1]["variants"] = {"f16": {"path": f"{mid}/f16/", "bytes": size(f16)}}
json.dump({"models": entries}, open(out, "w"), indent=1)
print(f"[site] {len(entries)} models: " + ", ".join(e["id"] for e in entries))
PY
