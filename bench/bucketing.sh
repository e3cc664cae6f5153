#!/usr/bin/env bash
# Length bucketing, measured end to end on MSRA NER (m3e-small + CRF): the same run with
# --bucket-window 0 (batches padded to their longest sentence, in shuffled order) and 50 (the
# default), one epoch each, one after the other on a quiet machine. One JSON line per run:
# wall seconds of the epoch, tokens/s, the padded share, dev span F1.
#   bash bench/bucketing.sh [TRAIN_SENTENCES] [THREADS]   (default 4000, all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
N="${1:-4000}"; T="${2:-$(nproc)}"
D="$BERT_TASKS_CACHE/data/msra-ner"
OUT="${BENCH_OUT:-bench/results/$(date -u +%Y-%m-%d)}"
mkdir -p "$OUT"
cpu="$(python3 bench/machine.py)"
for w in 0 50; do
  run="$(mktemp -d)"
  "$BERT_TASKS_BIN" --threads "$T" train --task tag --decoder crf --model "$BERT_TASKS_CACHE/models/m3e-small" \
    --train "$D/train.conll" --dev "$D/dev.conll" --limit-train "$N" --limit-dev 500 --epochs 1 \
    --max-len 128 --lr 1e-4 --head-lr 5e-3 --save-every 0 --bucket-window "$w" --out "$run" > "$run/summary.json" 2> "$run/log"
  python3 - "$run/summary.json" "$w" "$N" "$T" "$cpu" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(json.dumps({"bench": "bucketing", "dataset": "msra-ner", "train_sentences": int(sys.argv[3]), "bucket_window": int(sys.argv[2]),
    "threads": int(sys.argv[4]), "cpu": sys.argv[5], "steps": s["steps"], "epoch_seconds": round(s["seconds"], 1),
    "tokens_per_second": round(s["tokens_per_second"], 1), "padded_share": round(1 - s["tokens"] / s["padded_tokens"], 3),
    "dev_span_f1": round(s["best_metric"], 4)}))
PY
  rm -rf "$run"
done | tee -a "$OUT/bucketing.jsonl"
