#!/usr/bin/env bash
# The GPU work, run on a machine with an NVIDIA GPU and PyTorch (+ transformers) but no Rust
# toolchain and no network. bench/gpu-pack.sh makes the two packs it reads:
#   .gpu/     the CUDA binary, all-MiniLM-L6-v2 (f16), English data, pytorch-crf + seqeval
#   .gpu-zh/  m3e-small (f16) and the Chinese data (carried by a second call; .gpu stays there)
# PARTS picks what runs (default "step cpu en rel"), results as JSON lines and logs in $OUT:
#   step   training step 16 × 128 on the GPU: ours, then each change switched off on its own
#          (BERT_TASKS_CUDA_ADAMW=ops: the tensor-op optimizer; BERT_TASKS_CUDA_EVENTS=1: cudarc's
#          event tracking), --precision bf16, PyTorch eager f32 and autocast bf16; and the check
#          that the fused optimizer gives the tensor-op optimizer's losses step for step
#   cpu    the same step on the host's CPU cores, ours vs PyTorch
#   infer  inference on the GPU and on the host's CPU, each vs PyTorch
#   en     full-data rows: MR (f32, bf16, and transformers on the same data), WNUT-16
#   brown  full-data row: Brown POS (45,000 sentences)
#   rel    WebNLG position_embedding experiments (issue 15)
#   zh     full-data rows: MSRA NER CRF (+ transformers + pytorch-crf), Chinese sentiment, MSRA
#          softmax, People's Daily segmentation and POS
#   nogpu  the error for --device cuda without a visible GPU
# REPEAT / WARMUP (timed steps) and ROW_LIMIT (training examples per row) shorten a dry run.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results/gpu}"
PARTS="${PARTS:-step cpu en rel}"
mkdir -p "$OUT/rows"
exec > >(tee -a "$OUT/log.txt") 2>&1
export BERT_TASKS_CACHE=/tmp/bt-cache PYTHONUNBUFFERED=1
mkdir -p "$BERT_TASKS_CACHE"
for pack in .gpu .gpu-zh; do
  [ -d "$pack/cache" ] && cp -r "$pack/cache/." "$BERT_TASKS_CACHE/"
  # A second call on the same machine finds the first pack unpacked already.
  if [ -f "$pack/data.tar.xz" ] && [ ! -f "$BERT_TASKS_CACHE/.unpacked$pack" ]; then
    tar -C "$BERT_TASKS_CACHE" -xJf "$pack/data.tar.xz" && touch "$BERT_TASKS_CACHE/.unpacked$pack"
  fi
done
BIN=/tmp/bert-tasks
[ -x "$BIN" ] || { xz -dc .gpu/bert-tasks.xz > "$BIN" && chmod +x "$BIN"; } || { echo "no CUDA binary (.gpu/bert-tasks.xz)"; exit 1; }
lib=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null | head -n1)
export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
# The references' pure-Python packages; seqeval imports one warning class from scikit-learn.
export PYTHONPATH="$PWD/.gpu/py:${PYTHONPATH:-}"
if ! python3 -c "import sklearn.exceptions" 2>/dev/null; then
  mkdir -p /tmp/shim/sklearn && touch /tmp/shim/sklearn/__init__.py
  echo "class UndefinedMetricWarning(UserWarning): pass" > /tmp/shim/sklearn/exceptions.py
  export PYTHONPATH="$PYTHONPATH:/tmp/shim"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
echo "host CPU: $(python3 bench/machine.py)" | tee -a "$OUT/gpu.txt"
M="$BERT_TASKS_CACHE/models/all-minilm-l6-v2"
ZH="$BERT_TASKS_CACHE/models/m3e-small"
DD="$BERT_TASKS_CACHE/data"
B="$BERT_TASKS_CACHE/bench"
step() { echo "== $* ($(date +%T))"; }
has() { [[ " $PARTS " == *" $1 "* ]]; }
prepare() { [ -f "$B/train.tsv" ] || { step prepare; python3 bench/prepare.py --no-onnx 2>&1 | tail -n1; }; }

if has step; then
  prepare
  J="$OUT/steps.jsonl"
  tstep() { # variant [VAR=value ...] [-- extra bench args]
    local variant=$1; shift; local envs=() extra=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
    [ "${1:-}" = "--" ] && shift && extra=("$@")
    step "train step cuda: $variant"
    env "${envs[@]}" "$BIN" bench --mode train --device cuda --model "$M" --train "$B/train.tsv" --repeat "${REPEAT:-30}" --warmup "${WARMUP:-5}" "${extra[@]}" \
      | sed "s/^{/{\"variant\":\"$variant\",/" | tee -a "$J"
  }
  tstep fused
  if ! grep -q '"variant":"fused"' "$J"; then
    echo "the fused optimizer failed: the rest runs with the tensor-op optimizer"; export BERT_TASKS_CUDA_ADAMW=ops
  fi
  tstep tensor-op-adamw BERT_TASKS_CUDA_ADAMW=ops
  tstep event-tracking BERT_TASKS_CUDA_EVENTS=1
  tstep before BERT_TASKS_CUDA_ADAMW=ops BERT_TASKS_CUDA_EVENTS=1
  tstep bf16 -- --precision bf16
  step torch train step cuda
  for p in f32 bf16; do python3 bench/torch_bench.py train --device cuda --repeat "${REPEAT:-30}" --warmup "${WARMUP:-5}" --precision $p 2>/dev/null | tee -a "$J"; done
  step "check: fused optimizer vs tensor-op optimizer, loss of every step"
  python3 - "$J" <<'PY' | tee "$OUT/adamw-check.txt"
import json, sys
rows = {r.get("variant"): r for r in map(json.loads, open(sys.argv[1])) if "variant" in r}
a, b = rows["fused"]["losses"], rows["tensor-op-adamw"]["losses"]
diff = max(abs(x - y) for x, y in zip(a, b))
print(json.dumps({"steps": len(a), "max_abs_loss_diff": diff, "first": a[:3], "last": [a[-1], b[-1]],
                  "verdict": "PASS" if diff < 1e-3 and len(a) == len(b) else "FAIL"}))
PY
fi

if has cpu; then
  prepare
  step train step host cpu
  "$BIN" bench --mode train --device cpu --model "$M" --train "$B/train.tsv" --repeat 3 --warmup 1 | tee -a "$OUT/host-cpu.jsonl"
  python3 bench/torch_bench.py train --repeat 3 --warmup 1 2>/dev/null | tee -a "$OUT/host-cpu.jsonl"
fi

if has infer; then
  prepare
  step infer cuda; for t in classify tag; do "$BIN" bench --mode infer --device cuda --model "$B/$t" --texts "$B/texts.json" | tee -a "$OUT/infer.jsonl"; done
  python3 bench/torch_bench.py infer --device cuda 2>/dev/null | grep '"classify"' | tee -a "$OUT/infer.jsonl"
  step infer host cpu; "$BIN" bench --mode infer --model "$B/classify" --texts "$B/texts.json" | tee -a "$OUT/host-cpu.jsonl"
  python3 bench/torch_bench.py infer 2>/dev/null | grep '"classify"' | tee -a "$OUT/host-cpu.jsonl"
fi

# One full-data row: the whole training split, best dev epoch kept, every test example.
row() { # name base data ext -- train args
  local name=$1 base=$2 data=$3 ext=$4; shift 5
  step "row $name"
  local t0=$(date +%s.%N)
  if ! "$BIN" train --model "$base" --train "$DD/$data/train.$ext" --dev "$DD/$data/dev.$ext" --limit-dev 2000 \
       --out "/tmp/runs/$name" --device cuda ${ROW_LIMIT:+--limit-train $ROW_LIMIT} "$@" > "$OUT/rows/$name.log" 2>&1; then
    echo "$name: training failed"; tail -n3 "$OUT/rows/$name.log"; return
  fi
  local t1=$(date +%s.%N)
  "$BIN" eval --model "/tmp/runs/$name" --data "$DD/$data/test.$ext" --json --device cuda > "$OUT/rows/$name.test.json"
  cp "/tmp/runs/$name/metrics.json" "$OUT/rows/$name.metrics.json" 2>/dev/null
  python3 - "$name" "$t0" "$t1" "$OUT/rows/$name.test.json" "$*" <<'PY' | tee -a "$OUT/rows.jsonl"
import json, sys, time
name, t0, t1, test, args = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), json.load(open(sys.argv[4])), sys.argv[5]
keep = {k: v for k, v in test.items() if isinstance(v, (int, float))}
print(json.dumps({"name": name, "engine": "bert-tasks cuda", "train_s": round(t1 - t0, 1), "eval_s": round(time.time() - t1, 1), "args": args, **keep}))
PY
}
# The same row through transformers (+ pytorch-crf): tests/reference/hf_train.py on the GPU,
# trained for the same epochs, evaluated on the test split.
ref() { # name base data ext -- hf_train args
  local name=$1 base=$2 data=$3 ext=$4; shift 5
  step "reference $name"
  local t0=$(date +%s.%N)
  python3 tests/reference/hf_train.py --model "$base" --train "$DD/$data/train.$ext" --dev "$DD/$data/test.$ext" --device cuda ${ROW_LIMIT:+--limit-train $ROW_LIMIT --limit-dev $ROW_LIMIT} "$@" \
    > "$OUT/rows/$name.log" 2>&1
  python3 - "$name" "$t0" "$OUT/rows/$name.log" "$*" <<'PY' | tee -a "$OUT/rows.jsonl"
import json, sys, time
name, t0, log, args = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = open(log).read().splitlines()
try:
    res = json.loads(lines[-1])
except (IndexError, ValueError):
    res = {"failed": "\n".join(lines[-5:])}
print(json.dumps({"name": name, "engine": "transformers cuda", "total_s": round(time.time() - t0, 1), "args": args, **res}))
PY
}
CLS=(--task classify --pooling mean --lr 1e-4 --head-lr 1e-3 --batch-size 32)
TAG=(--task tag --lr 1e-4 --head-lr 5e-3 --batch-size 32 --max-len 128)
if has en; then
  row mr-full "$M" en-sentiment tsv -- "${CLS[@]}" --epochs 3 --max-len 64
  row mr-full-bf16 "$M" en-sentiment tsv -- "${CLS[@]}" --epochs 3 --max-len 64 --precision bf16
  ref mr-full-pytorch "$M" en-sentiment tsv -- --task classify --pooling mean --lr 1e-4 --head-lr 1e-3 --batch-size 32 --epochs 3 --max-len 64
  row wnut16-full "$M" wnut16-ner conll -- "${TAG[@]}" --decoder crf --epochs 3
fi
if has brown; then
  row brown-pos-full "$M" brown-pos conll -- "${TAG[@]}" --decoder softmax --epochs 2
fi
if has rel; then
  # Issue 15's open question: position_embedding trails the other methods by ~2 points in both
  # implementations at the shared recipe (head lr 1e-3, 3 epochs). Do its fresh distance
  # embeddings want a larger learning rate, or more epochs?
  REL=(--task relate --method position_embedding --pooling mean --lr 1e-4 --max-len 96 --batch-size 16 --seed 42)
  row webnlg-pe-headlr5e-3 "$M" webnlg jsonl -- "${REL[@]}" --head-lr 5e-3 --epochs 3
  row webnlg-pe-6ep "$M" webnlg jsonl -- "${REL[@]}" --head-lr 1e-3 --epochs 6
fi
if has zh; then
  # Ours first; the transformers reference last: it took 334 s on the H200 (per-character
  # Python tokenisation and pytorch-crf's per-time-step loop), most of a device call.
  row msra-crf-full "$ZH" msra-ner conll -- "${TAG[@]}" --decoder crf --epochs 2
  row zh-sentiment-full "$ZH" zh-sentiment tsv -- "${CLS[@]}" --epochs 2 --max-len 128
  row msra-softmax-full "$ZH" msra-ner conll -- "${TAG[@]}" --decoder softmax --epochs 2
  row pd-seg-full "$ZH" pd-seg conll -- "${TAG[@]}" --decoder crf --epochs 2
  row pd-pos-full "$ZH" pd-pos conll -- "${TAG[@]}" --decoder softmax --epochs 2
  ref msra-crf-full-pytorch "$ZH" msra-ner conll -- --task tag --decoder crf --lr 1e-4 --head-lr 5e-3 --batch-size 32 --epochs 2 --max-len 128
fi
if has nogpu; then
  step no visible GPU; CUDA_VISIBLE_DEVICES= "$BIN" train --task classify --model "$M" --train "$DD/en-sentiment/train.tsv" --device cuda --out /tmp/run-none; echo "exit $?"
fi
step done
