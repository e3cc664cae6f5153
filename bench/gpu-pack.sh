#!/usr/bin/env bash
# Packs what bench/gpu.sh needs into .gpu/ (git-ignored; under the 64 MiB a device run carries):
# the stripped, xz-compressed CUDA binary, all-MiniLM-L6-v2 in f16, and the MR and WNUT-16 data.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cuda_bin="$BERT_TASKS_CACHE/target-cuda/release/bert-tasks"
[ -x "$cuda_bin" ] || { echo "build it first: bash scripts/build-cuda.sh" >&2; exit 1; }
rm -rf .gpu && mkdir -p .gpu/cache/data/en-sentiment .gpu/cache/data/wnut16-ner
strip -o .gpu/bert-tasks "$cuda_bin" && xz -T2 -9 .gpu/bert-tasks
"$BERT_TASKS_BIN" export --model "$BERT_TASKS_CACHE/models/all-minilm-l6-v2" --out .gpu/cache/models/all-minilm-l6-v2 --dtype f16
cp "$BERT_TASKS_CACHE"/data/en-sentiment/*.tsv .gpu/cache/data/en-sentiment/
cp "$BERT_TASKS_CACHE"/data/wnut16-ner/*.conll .gpu/cache/data/wnut16-ner/
du -sh .gpu
