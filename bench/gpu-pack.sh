#!/usr/bin/env bash
# Packs what bench/gpu.sh needs, each pack under the 64 MiB a device run carries (git-ignored):
#   .gpu/     the stripped, xz-compressed CUDA binary, all-MiniLM-L6-v2 in f16, the English data
#             (MR, WNUT-16, Brown POS, WebNLG; xz tarball) and the pure-Python reference packages
#             (pytorch-crf, seqeval) from the reference environment;
#   .gpu-zh/  m3e-small in f16 and the Chinese data (MSRA NER, People's Daily, sentiment).
# A second device call on the same (still warm) machine carries .gpu-zh/ and reuses .gpu/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cuda_bin="$BERT_TASKS_CACHE/target-cuda/release/bert-tasks"
[ -x "$cuda_bin" ] || { echo "build it first: bash scripts/build-cuda.sh" >&2; exit 1; }
D="$BERT_TASKS_CACHE/data"
rm -rf .gpu .gpu-zh && mkdir -p .gpu/cache/models .gpu/py .gpu-zh/cache/models
strip -o .gpu/bert-tasks "$cuda_bin" && xz -T2 -9 .gpu/bert-tasks
"$BERT_TASKS_BIN" export --model "$BERT_TASKS_CACHE/models/all-minilm-l6-v2" --out .gpu/cache/models/all-minilm-l6-v2 --dtype f16 >/dev/null
tar -C "$BERT_TASKS_CACHE" -cJf .gpu/data.tar.xz data/en-sentiment data/wnut16-ner data/brown-pos data/webnlg
site=$(ls -d "$BERT_TASKS_CACHE"/refenv/lib/python3*/site-packages)
cp -r "$site/torchcrf" "$site/seqeval" .gpu/py/
"$BERT_TASKS_BIN" export --model "$BERT_TASKS_CACHE/models/m3e-small" --out .gpu-zh/cache/models/m3e-small --dtype f16 >/dev/null
tar -C "$BERT_TASKS_CACHE" -cJf .gpu-zh/data.tar.xz data/msra-ner data/pd-seg data/pd-pos data/zh-sentiment
du -sh .gpu .gpu-zh
