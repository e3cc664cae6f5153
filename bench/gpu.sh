#!/usr/bin/env bash
# The GPU checks, run on a machine with an NVIDIA GPU, PyTorch and no Rust toolchain or network:
# the CUDA binary (scripts/build-cuda.sh, xz-compressed) and an f16 copy of all-MiniLM-L6-v2 plus
# the MR data travel in .gpu/ (bench/gpu-pack.sh makes it). Results: JSON lines and logs in $OUT.
#   training step bert-tasks (cuda) vs PyTorch (cuda), batch 16 x 128; inference on the GPU;
#   the same training step on that machine's CPU; a short real training run, GPU vs CPU speed;
#   tag (CRF) and relate (3 methods) training on the GPU; the error for --device cuda without a
#   visible GPU. QUICK=1: only the training step and the MR run. INFER=1: only inference, on the
#   GPU and on the host's CPU cores, each vs PyTorch (after an inference change).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results/gpu}"
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export BERT_TASKS_CACHE=/tmp/bt-cache PYTHONUNBUFFERED=1
rm -rf "$BERT_TASKS_CACHE" && mkdir -p "$BERT_TASKS_CACHE" && cp -r .gpu/cache/* "$BERT_TASKS_CACHE/"
BIN=/tmp/bert-tasks
xz -dc .gpu/bert-tasks.xz > "$BIN" && chmod +x "$BIN"
lib=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null | head -n1)
export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
echo "host CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores" | tee -a "$OUT/gpu.txt"
M="$BERT_TASKS_CACHE/models/all-minilm-l6-v2"
D="$BERT_TASKS_CACHE/data/en-sentiment"
B="$BERT_TASKS_CACHE/bench"
step() { echo "== $* ($(date +%T))"; }

step prepare; python3 bench/prepare.py --no-onnx 2>&1 | tail -n1
J="$OUT/gpu.jsonl"; : > "$J"
if [ -n "${INFER:-}" ]; then
  step infer cuda; for t in classify tag; do "$BIN" bench --mode infer --device cuda --model "$B/$t" --texts "$B/texts.json" | tee -a "$J"; done
  step torch infer cuda; python3 bench/torch_bench.py infer --device cuda 2>/dev/null | grep '"classify"' | tee -a "$J"
  step infer host cpu; "$BIN" bench --mode infer --model "$B/classify" --texts "$B/texts.json" | tee -a "$OUT/host-cpu.jsonl"
  step torch infer host cpu; python3 bench/torch_bench.py infer 2>/dev/null | grep '"classify"' | tee -a "$OUT/host-cpu.jsonl"
  step done; exit 0
fi
step train step cuda; "$BIN" bench --mode train --device cuda --model "$M" --train "$B/train.tsv" --repeat 20 --warmup 3 | tee -a "$J"
step torch train step cuda; python3 bench/torch_bench.py train --device cuda --repeat 20 --warmup 3 2>/dev/null | tee -a "$J"
if [ -n "${QUICK:-}" ]; then
  # Re-measure only the training step and the real training run (after a training change).
  common=(train --task classify --model "$M" --train "$D/train.tsv" --dev "$D/dev.tsv" --epochs 1 --batch-size 16 --max-len 128 --seed 42)
  step short training cuda; TIMEFORMAT="wall %R s"; time "$BIN" "${common[@]}" --device cuda --out /tmp/run-cuda > "$OUT/train-cuda.json"
  "$BIN" eval --model /tmp/run-cuda --data "$D/test.tsv" --json --device cuda | tee "$OUT/eval-cuda.json"
  step done; exit 0
fi
step infer cuda; for t in classify tag; do "$BIN" bench --mode infer --device cuda --model "$B/$t" --texts "$B/texts.json" | tee -a "$J"; done
step torch infer cuda; python3 bench/torch_bench.py infer --device cuda 2>/dev/null | grep '"classify"' | tee -a "$J"
step train step host cpu; "$BIN" bench --mode train --device cpu --model "$M" --train "$B/train.tsv" --repeat 3 --warmup 1 | tee -a "$J"
step torch train step host cpu; python3 bench/torch_bench.py train --repeat 3 --warmup 1 2>/dev/null | tee -a "$J"

common=(train --task classify --model "$M" --train "$D/train.tsv" --dev "$D/dev.tsv" --epochs 1 --batch-size 16 --max-len 128 --seed 42)
step short training cuda; TIMEFORMAT="wall %R s"; time "$BIN" "${common[@]}" --device cuda --out /tmp/run-cuda > "$OUT/train-cuda.json"
step eval cuda; "$BIN" eval --model /tmp/run-cuda --data "$D/test.tsv" --json --device cuda | tee "$OUT/eval-cuda.json"
step same training, first 800 examples, cuda and cpu
TIMEFORMAT="cuda wall %R s"; time "$BIN" "${common[@]}" --limit-train 800 --device cuda --out /tmp/run-cuda-800 > /dev/null
TIMEFORMAT="cpu wall %R s"; time "$BIN" "${common[@]}" --limit-train 800 --device cpu --out /tmp/run-cpu-800 > /dev/null
W="$BERT_TASKS_CACHE/data/wnut16-ner"
step tag CRF training cuda, WNUT-16 first 320; "$BIN" train --task tag --decoder crf --model "$M" --train "$W/train.conll" --dev "$W/dev.conll" --limit-train 320 --epochs 1 --device cuda --out /tmp/run-crf > /dev/null && "$BIN" eval --model /tmp/run-crf --data "$W/test.conll" --json --device cuda | tee "$OUT/eval-crf-cuda.json"
R=tests/fixtures/demo/relations.jsonl
step relate training cuda, 3 methods; for m in entity_pool position_embedding entity_markers; do "$BIN" train --task relate --method $m --pooling cls --model "$M" --train $R --epochs 2 --batch-size 4 --device cuda --out /tmp/run-rel-$m > /dev/null && "$BIN" eval --model /tmp/run-rel-$m --data $R --json --device cuda; done
step no visible GPU; CUDA_VISIBLE_DEVICES= "$BIN" "${common[@]}" --device cuda --out /tmp/run-none; echo "exit $?"
step done
