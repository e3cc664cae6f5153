#!/usr/bin/env bash
# The benchmark, one command: every engine on the same machine in the same run, results to
# bench/results/<date>/*.jsonl and BENCHMARKS.md (bench/report.py).
#   bash bench/run.sh            full run (~20 min on 2 cores)
#   REPEAT=5 bash bench/run.sh   quicker, noisier (BENCH_OUT=dir names the results folder)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
REPEAT="${REPEAT:-20}"
TRAIN_REPEAT="${TRAIN_REPEAT:-8}"
ALL=$(nproc)
bash scripts/setup.sh >/dev/null
bash scripts/install-tools.sh wasm browser refenv bench
PY="$BERT_TASKS_CACHE/refenv/bin/python"
bash scripts/build-pkg.sh >/dev/null
"$PY" bench/prepare.py
B="$BERT_TASKS_CACHE/bench"
OUT="${BENCH_OUT:-bench/results/$(date -u +%Y-%m-%d)}"
mkdir -p "$OUT"
: > "$OUT/native.jsonl"; : > "$OUT/train.jsonl"; : > "$OUT/node.jsonl"

echo "[bench] native inference (bert-tasks vs PyTorch), 1 and $ALL threads"
for t in 1 "$ALL"; do
  for task in classify tag; do
    "$BERT_TASKS_BIN" --threads "$t" bench --mode infer --model "$B/$task" --texts "$B/texts.json" --repeat "$REPEAT" >> "$OUT/native.jsonl"
  done
  "$PY" bench/torch_bench.py infer --threads "$t" --repeat "$REPEAT" 2>/dev/null >> "$OUT/native.jsonl"
done

echo "[bench] training step, batch 16 x 128, 1 and $ALL threads"
for t in 1 "$ALL"; do
  "$BERT_TASKS_BIN" --threads "$t" bench --mode train --model "$BERT_TASKS_CACHE/models/all-minilm-l6-v2" --train "$B/train.tsv" --repeat "$TRAIN_REPEAT" --warmup 2 >> "$OUT/train.jsonl"
  "$PY" bench/torch_bench.py train --threads "$t" --repeat "$TRAIN_REPEAT" --warmup 2 2>/dev/null >> "$OUT/train.jsonl"
done

echo "[bench] wasm in Node"
for task in classify tag; do
  for t in 1 "$ALL"; do
    node bench/js/node-bench.mjs ours "$task" "$t" "$REPEAT" >> "$OUT/node.jsonl"
    node bench/js/node-bench.mjs tjs "$task" "$t" "$REPEAT" >> "$OUT/node.jsonl"
  done
  node bench/js/node-bench.mjs tjs-node "$task" "$ALL" "$REPEAT" >> "$OUT/node.jsonl"
  # Node 20 has relaxed SIMD only behind a flag (default from Node 22): ours with it, for the record.
  if node --experimental-wasm-relaxed-simd -e 0 2>/dev/null; then
    for t in 1 "$ALL"; do
      node --experimental-wasm-relaxed-simd bench/js/node-bench.mjs ours "$task" "$t" "$REPEAT" >> "$OUT/node.jsonl"
    done
  fi
done

echo "[bench] wasm in headless Chromium"
node bench/js/browser-bench.mjs "$REPEAT" > "$OUT/browser.jsonl"

echo "[bench] sizes"
{
  for f in pkg/bert_tasks_bg.wasm pkg/relaxed/bert_tasks_bg.wasm pkg/threads/bert_tasks_bg.wasm pkg/threads-relaxed/bert_tasks_bg.wasm bench/js/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded*.wasm; do
    [ -f "$f" ] || continue
    printf '{"file":"%s","bytes":%d,"gzip_bytes":%d}\n' "$(case "$f" in pkg/*) echo "${f#pkg/}" ;; *) basename "$f" ;; esac)" "$(stat -c %s "$f")" "$(gzip -9 -c "$f" | wc -c)"
  done
} > "$OUT/size.jsonl"

echo "$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed "s/^ //"), $ALL cores" > "$OUT/machine.txt"
"$PY" bench/report.py "$OUT" > BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
echo "[bench] results in $OUT, summary in BENCHMARKS.md"
