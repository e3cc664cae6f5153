#!/usr/bin/env bash
# The benchmark, one command: every engine on the same machine in the same run, results to
# bench/results/<date>/*.jsonl and BENCHMARKS.md (bench/report.py).
#   bash bench/run.sh            full run (~20 min on 2 cores)
#   REPEAT=5 bash bench/run.sh   quicker, noisier (BENCH_OUT=dir names the results folder)
#   bash bench/run.sh q8         only the q8/q4 section (into the same results folder)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
REPEAT="${REPEAT:-20}"
TRAIN_REPEAT="${TRAIN_REPEAT:-8}"
ALL=$(nproc)
ONLY="${1:-}"
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
bash scripts/setup.sh >/dev/null
bash scripts/install-tools.sh wasm browser refenv bench node-lts
PY="$BERT_TASKS_CACHE/refenv/bin/python"
# BENCH_NO_BUILD=1 measures pkg/ as it is (built by the test command or build-pkg.sh just before).
[ "${BENCH_NO_BUILD:-}" = 1 ] && [ -f pkg/package.json ] || bash scripts/build-pkg.sh >/dev/null
"$PY" bench/prepare.py
B="$BERT_TASKS_CACHE/bench"
# One Node measurement, under a time limit: the threaded wasm build hung once in Node 20 (AMD EPYC,
# 2026-12-05: a pool thread spinning, the caller waiting; not reproduced in ~130 runs since, some
# of them under load). A hang is logged in $OUT/hangs.txt with every thread's JS and wasm stack
# (bench/js/stacks.mjs, through the process's inspector) and the measurement taken again,
# instead of stalling the run.
nb() {
  local tries rc pid waited
  for tries in 1 2; do
    "${NODE:-node}" "$@" &
    pid=$!
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt "${NODE_LIMIT:-600}" ]; do sleep 1; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$(date -u +%FT%TZ) node $* still running after ${NODE_LIMIT:-600} s (try $tries); its threads:" >> "$OUT/hangs.txt"
      timeout 60 node bench/js/stacks.mjs "$pid" >> "$OUT/hangs.txt" 2>&1 || true
      kill -9 "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      echo "hang logged in $OUT/hangs.txt" >&2
      continue
    fi
    wait "$pid" && return 0
    rc=$? # before the message: a command substitution in it would reset $?
    echo "$(date -u +%FT%TZ) node $* exited $rc (try $tries)" | tee -a "$OUT/hangs.txt" >&2
  done
  return 1
}
OUT="${BENCH_OUT:-bench/results/$(date -u +%Y-%m-%d)}"
mkdir -p "$OUT"
: > "$OUT/q8.jsonl"
if want main; then
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
    nb bench/js/node-bench.mjs ours "$task" "$t" "$REPEAT" >> "$OUT/node.jsonl"
    nb bench/js/node-bench.mjs tjs "$task" "$t" "$REPEAT" >> "$OUT/node.jsonl"
  done
  nb bench/js/node-bench.mjs tjs-node "$task" "$ALL" "$REPEAT" >> "$OUT/node.jsonl"
  # Node 20 has relaxed SIMD only behind a flag (default from Node 22): ours with it, for the record.
  if node --experimental-wasm-relaxed-simd -e 0 2>/dev/null; then
    for t in 1 "$ALL"; do
      nb --experimental-wasm-relaxed-simd bench/js/node-bench.mjs ours "$task" "$t" "$REPEAT" >> "$OUT/node.jsonl"
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
fi

if want q8; then
echo "[bench] q8: ours (export --dtype q8 / q4) vs our f32 natively, ours q8 vs transformers.js q8 / q4 in Node and Chromium"
for task in classify tag; do
  for d in q8 q4; do "$BERT_TASKS_BIN" export --model "$B/$task" --out "$B/$task-$d" --dtype "$d" 2>/dev/null; done
done
tagged() { sed "s/^{/{\"dtype\":\"$1\",/"; }
for t in 1 "$ALL"; do
  for task in classify tag; do
    for d in f32 q8 q4; do
      m="$B/$task"; [ "$d" = f32 ] || m="$B/$task-$d"
      "$BERT_TASKS_BIN" --threads "$t" bench --mode infer --model "$m" --texts "$B/texts.json" --repeat "$REPEAT" | tagged "$d" >> "$OUT/q8.jsonl"
    done
  done
done
# Node 20 (the system's: no relaxed SIMD, the issue's goal) and the current LTS (relaxed SIMD on);
# nb runs $NODE — set in a subshell, so that no nb call after this loop inherits the last one.
(for NODE in node "$NODE_LTS"; do
  for task in classify tag; do
    for t in 1 "$ALL"; do
      nb bench/js/node-bench.mjs ours "$task" "$t" "$REPEAT" q8 >> "$OUT/q8.jsonl"
      for d in q8 q4; do nb bench/js/node-bench.mjs tjs "$task" "$t" "$REPEAT" "$d" >> "$OUT/q8.jsonl"; done
    done
  done
done)
node bench/js/browser-bench.mjs "$REPEAT" q8,q4 >> "$OUT/q8.jsonl"
for f in "$B/classify/model.safetensors" "$B/classify-q8/model.safetensors" "$B/classify-q4/model.safetensors" "$B/classify/onnx/model.onnx" "$B/classify/onnx/model_quantized.onnx" "$B/classify/onnx/model_q4.onnx"; do
  printf '{"model_file":"%s","bytes":%d}\n' "${f#$B/}" "$(stat -c %s "$f")" >> "$OUT/q8.jsonl"
done
fi

# The CPU by family / model, vector extensions and L2, not only /proc/cpuinfo's model name
# ("AMD EPYC" covers Zen 3 and Zen 4, which our kernels run very differently).
python3 bench/machine.py > "$OUT/machine.txt"
# The report shows the last full run (bench/results/latest-full names it) and, when this run was
# only the q8 section, this run beside it, each under its own machine.
if want main; then echo "$OUT" > bench/results/latest-full; fi
runs=("$(cat bench/results/latest-full)")
[ "${runs[0]}" = "$OUT" ] || runs+=("$OUT")
"$PY" bench/report.py "${runs[@]}" > BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
echo "[bench] results in $OUT, summary in BENCHMARKS.md"
