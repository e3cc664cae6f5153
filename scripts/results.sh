#!/usr/bin/env bash
# Reproduce the README's results on real data, one experiment per line (CPU; subsets chosen so
# the whole set runs in about an hour on 2 cores). Usage:
#   bash scripts/results.sh            # everything
#   bash scripts/results.sh mr-en msra-crf   # some experiments by name
# Each run writes $BERT_TASKS_CACHE/runs/<name>/ (model, metrics.json, curve.svg, confusion.svg)
# and test.json (test-set metrics). Subsets, for CPU time: 800–1,000 training sentences/texts,
# 1–2 epochs, dev 300, test 500. VitaminC and WebNLG come from bigbench (fetched by default by scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
bash scripts/setup.sh >/dev/null
D="$BERT_TASKS_CACHE/data"; M="$BERT_TASKS_CACHE/models"; R="$BERT_TASKS_CACHE/runs"
EN="$M/all-minilm-l6-v2"; ZH="$M/m3e-small"
mkdir -p "$R"

run() { # name base data-dir ext test-limit (0: all) -- train args...
  local name=$1 base=$2 data=$3 ext=$4 limit=$5; shift 6
  local test_limit=(--limit "$limit"); [ "$limit" = 0 ] && test_limit=()
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  echo "== $name"
  if [ -f "$R/$name/test.json" ] && [ -z "${FORCE:-}" ]; then cat "$R/$name/test.json" | head -c 300; echo; return; fi
  local start=$(date +%s)
  "$BERT_TASKS_BIN" train --model "$base" --train "$D/$data/train.$ext" --dev "$D/$data/dev.$ext" \
    --out "$R/$name" --limit-dev "${LIMIT_DEV:-300}" "$@" > "$R/$name.log" 2>&1
  "$BERT_TASKS_BIN" eval --model "$R/$name" --data "$D/$data/test.$ext" "${test_limit[@]}" --json > "$R/$name/test.json"
  echo "$(( $(date +%s) - start ))" > "$R/$name/seconds"
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print({k: round(v, 4) for k, v in d.items() if isinstance(v, float)})" "$R/$name/test.json"
}
# The PyTorch reference of a relation method (needs the reference env: install-tools.sh refenv).
torch_relate() { # name method -- args
  local name=$1 method=$2; shift 2
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  echo "== $name"
  if [ -f "$R/$name/test.json" ] && [ -z "${FORCE:-}" ]; then head -c 300 "$R/$name/test.json"; echo; return; fi
  bash scripts/install-tools.sh refenv
  mkdir -p "$R/$name"
  local start=$(date +%s)
  "$BERT_TASKS_CACHE/refenv/bin/python" tests/reference/hf_relate.py --model "$EN" --method "$method" \
    --train "$D/webnlg/train.jsonl" --dev "$D/webnlg/dev.jsonl" --test "$D/webnlg/test.jsonl" --limit-dev 300 \
    --threads "$(nproc)" "$@" > "$R/$name.log" 2>&1
  tail -1 "$R/$name.log" > "$R/$name/test.json"
  echo "$(( $(date +%s) - start ))" > "$R/$name/seconds"
  head -c 300 "$R/$name/test.json"; echo
}
# A finished run's model exported as f16, q8 and q4 (bert-tasks export), each evaluated on the
# same test subset as the f32 model: test-f16.json, test-q8.json, test-q4.json beside test.json.
quantised() { # name data-dir ext test-limit
  local name=$1 data=$2 ext=$3 limit=$4
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  for d in f16 q8 q4; do
    [ -f "$R/$name/test-$d.json" ] && [ -z "${FORCE:-}" ] && continue
    "$BERT_TASKS_BIN" export --model "$R/$name" --out "$R/$name-$d" --dtype "$d" 2>/dev/null
    "$BERT_TASKS_BIN" eval --model "$R/$name-$d" --data "$D/$data/test.$ext" --limit "$limit" --json > "$R/$name/test-$d.json"
  done
  python3 - "$R/$name" <<'PY'
import json, pathlib, sys
run = pathlib.Path(sys.argv[1])
for d in ("", "-f16", "-q8", "-q4"):
    m = json.loads((run / f"test{d}.json").read_text())
    size = (run.parent / (run.name + d) / "model.safetensors").stat().st_size if d else (run / "model.safetensors").stat().st_size
    print(f"  {d[1:] or 'f32'}: {({k: round(v, 4) for k, v in m.items() if isinstance(v, float)})} weights {size / 1e6:.1f} MB")
PY
}
ONLY="${*:-}"
# Full-data rows (*-full): the whole training split, best dev epoch (first 2,000 dev examples),
# every test example, batch 32. Hours on 2 CPU cores, so they run only when named or with FULL=1;
# DEVICE=cuda runs them on a GPU build (bench/gpu.sh runs the same recipes on a GPU machine).
full() { # name base data-dir ext -- train args
  local name=$1; shift
  if [ -z "${FULL:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  local base=$1 data=$2 ext=$3; shift 4
  ONLY="$name" LIMIT_DEV=2000 run "$name" "$base" "$data" "$ext" 0 -- --device "${DEVICE:-cpu}" --batch-size 32 "$@"
}
FCLS="--task classify --pooling mean --lr 1e-4 --head-lr 1e-3"
FTAG="--task tag --lr 1e-4 --head-lr 5e-3 --max-len 128"
full mr-full           "$EN" en-sentiment tsv -- $FCLS --epochs 3 --max-len 64
full zh-sentiment-full "$ZH" zh-sentiment tsv -- $FCLS --epochs 2 --max-len 128
full msra-crf-full     "$ZH" msra-ner conll -- $FTAG --decoder crf --epochs 2
full msra-softmax-full "$ZH" msra-ner conll -- $FTAG --decoder softmax --epochs 2
full pd-seg-full       "$ZH" pd-seg conll -- $FTAG --decoder crf --epochs 2
full pd-pos-full       "$ZH" pd-pos conll -- $FTAG --decoder softmax --epochs 2
full wnut16-full       "$EN" wnut16-ner conll -- $FTAG --decoder crf --epochs 3
full brown-pos-full    "$EN" brown-pos conll -- $FTAG --decoder softmax --epochs 2
[ -n "${FULL:-}" ] && exit 0

CLS="--task classify --pooling mean --lr 1e-4 --head-lr 1e-3 --batch-size 16"
TAG="--task tag --lr 1e-4 --batch-size 16"

# f32 vs f16 vs q8 vs q4 on the same test subsets (README, "q8 and q4 weights"): the demo's recipes
# for English sentiment and the MSRA CRF tagger, then each model exported three ways.
run quant-en-sentiment "$EN" en-sentiment tsv 500 -- $CLS --epochs 1 --max-len 64 --limit-train 2000
quantised quant-en-sentiment en-sentiment tsv 500
run quant-msra-crf "$ZH" msra-ner conll 500 -- $TAG --epochs 1 --max-len 128 --limit-train 1500 --decoder crf --head-lr 5e-3
quantised quant-msra-crf msra-ner conll 500

# Imbalance study: English sentiment with positives cut to 1 in 20, balanced dev/test.
IMB="$D/en-sentiment-imbalanced"
if [ ! -f "$IMB/train.tsv" ]; then
  mkdir -p "$IMB"
  # The first 800 negatives and 1 positive in 20 of the first 800 positives: 800:40.
  awk -F'\t' '($1=="neg" && ++n <= 800) || ($1=="pos" && ++p <= 800 && p % 20 == 0)' "$D/en-sentiment/train.tsv" > "$IMB/train.tsv"
  cp "$D/en-sentiment/dev.tsv" "$D/en-sentiment/test.tsv" "$IMB/"
fi
IMBARGS="$CLS --epochs 2 --max-len 64"
run imb-ce       "$EN" en-sentiment-imbalanced tsv 500 -- $IMBARGS --loss ce
run imb-weighted "$EN" en-sentiment-imbalanced tsv 500 -- $IMBARGS --loss weighted --class-weights auto
run imb-focal    "$EN" en-sentiment-imbalanced tsv 500 -- $IMBARGS --loss focal --gamma 2
run imb-class    "$EN" en-sentiment-imbalanced tsv 500 -- $IMBARGS --sampling class
run imb-sqrt     "$EN" en-sentiment-imbalanced tsv 500 -- $IMBARGS --sampling power --q 0.5

run msra-softmax "$ZH" msra-ner conll 500 -- $TAG --epochs 1 --max-len 64 --limit-train 1000 --decoder softmax --head-lr 5e-3
run msra-crf     "$ZH" msra-ner conll 500 -- $TAG --epochs 1 --max-len 64 --limit-train 1000 --decoder crf --head-lr 5e-3
run mr-en        "$EN" en-sentiment tsv 500 -- $CLS --epochs 2 --max-len 64 --limit-train 1000
run zh-sentiment "$ZH" zh-sentiment tsv 500 -- $CLS --epochs 1 --max-len 96 --limit-train 800
run pd-seg       "$ZH" pd-seg conll 500 -- $TAG --epochs 1 --max-len 64 --limit-train 800 --decoder crf --head-lr 5e-3
run pd-pos       "$ZH" pd-pos conll 500 -- $TAG --epochs 1 --max-len 64 --limit-train 800 --decoder softmax --head-lr 5e-3
# The demo's People's Daily recipes (scripts/demo-models.sh): 5,000 sentences, max-len 128, lr 2e-4.
run demo-pd-seg  "$ZH" pd-seg conll 500 -- --task tag --batch-size 16 --lr 2e-4 --epochs 1 --max-len 128 --limit-train 5000 --decoder crf --head-lr 5e-3
run demo-pd-pos  "$ZH" pd-pos conll 500 -- --task tag --batch-size 16 --lr 2e-4 --epochs 1 --max-len 128 --limit-train 5000 --decoder softmax --head-lr 5e-3
run wnut16       "$EN" wnut16-ner conll 500 -- $TAG --epochs 1 --max-len 64 --limit-train 800 --decoder crf --head-lr 5e-3
run brown-pos    "$EN" brown-pos conll 500 -- $TAG --epochs 1 --max-len 64 --limit-train 800 --decoder softmax --head-lr 5e-3
if [ -d "$D/vitaminc" ]; then
  run vitaminc   "$EN" vitaminc tsv 500 -- $CLS --epochs 1 --max-len 128 --limit-train 800
  run vitaminc-3k "$EN" vitaminc tsv 500 -- $CLS --epochs 1 --max-len 128 --limit-train 3000
  for m in entity_pool position_embedding entity_markers; do
    run "webnlg-$m" "$EN" webnlg jsonl 500 -- --task relate --method $m --pooling mean --lr 1e-4 --head-lr 1e-3 --epochs 2 --max-len 96 --limit-train 600
  done
  # Full training split, 3 epochs, every test example; each method also through its PyTorch
  # reference (tests/reference/hf_relate.py: transformers' BertModel + the same head), same data
  # and hyper-parameters, best dev epoch kept by both.
  REL="--pooling mean --lr 1e-4 --head-lr 1e-3 --epochs 3 --max-len 96 --batch-size 16 --seed ${SEED:-42}"
  for m in entity_pool entity_markers position_embedding; do
    # SEED=N names the runs webnlg-full-<method>[-pytorch]-seedN (the seed experiment in README).
    run "webnlg-full-$m${SEED:+-seed$SEED}" "$EN" webnlg jsonl 1000 -- --task relate --method $m $REL
    torch_relate "webnlg-full-$m-pytorch${SEED:+-seed$SEED}" "$m" $REL
  done
fi

