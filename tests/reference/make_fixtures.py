#!/usr/bin/env python3
"""Write the small reference fixtures in tests/fixtures/ from the reference implementations.

Run by hand (not in CI) after `python3 scripts/fetch_assets.py` and `scripts/setup.sh`, in an
environment with the reference packages:

    python3 -m venv ~/.cache/bert-tasks/refenv
    ~/.cache/bert-tasks/refenv/bin/pip install torch transformers safetensors pytorch-crf==0.7.2 seqeval==1.2.2
    ~/.cache/bert-tasks/refenv/bin/python tests/reference/make_fixtures.py

The fixtures hold only slices and norms of the outputs (kilobytes), never weights.
"""
import json
import os
import sys
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer
from transformers import BertModel

CACHE = Path(os.environ.get("BERT_TASKS_CACHE", Path.home() / ".cache/bert-tasks"))
OUT = Path(__file__).resolve().parent.parent / "fixtures"

SENTENCES = {
    "all-minilm-l6-v2": [
        "Hello, world!",
        "The quick brown fox jumps over 13 lazy dogs.",
        "Prices rose 4.5% in Q3 2024 — analysts were surprised!",
        "I love Paris 🗼 and 東京.",
        "Don't stop believing: it's only 9:30 p.m.",
        "BERT (Devlin et al., 2019) changed NLP.",
    ],
    "m3e-small": [
        "我爱北京天安门。",
        "今天的天气真好，我们去公园散步吧！",
        "2024年GDP增长了5.2%。",
        "苹果公司发布了新款iPhone 15手机。",
        "这家酒店的服务太差了😡",
        "《红楼梦》是曹雪芹写的长篇小说。",
    ],
}


def strided(n, k=16):
    step = max(1, n // k)
    return list(range(0, n, step))[:k]


def r(x):
    return [round(float(v), 6) for v in x]


def tokenizer_for(model_dir):
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def torch_weights_dir(name):
    """The folder PyTorch loads: for m3e-small the original pytorch_model.bin (so the fixture also
    checks our pickle -> safetensors conversion), for all-MiniLM its shipped safetensors."""
    d = CACHE / "models" / name
    if (d / "pytorch_model.bin").exists():
        alt = CACHE / "reference" / name
        alt.mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "pytorch_model.bin"):
            if not (alt / f).exists():
                (alt / f).symlink_to(d / f)
        return alt
    return d


@torch.no_grad()
def encoder_fixture(name):
    d = CACHE / "models" / name
    tok = tokenizer_for(d)
    model = BertModel.from_pretrained(torch_weights_dir(name)).eval()
    hidden = model.config.hidden_size
    dims = strided(hidden)
    rows = []
    for text in SENTENCES[name]:
        enc = tok.encode(text)
        ids = torch.tensor([enc.ids])
        out = model(input_ids=ids, token_type_ids=torch.tensor([enc.type_ids]),
                    attention_mask=torch.ones_like(ids))
        h = out.last_hidden_state[0]
        p = out.pooler_output[0]
        rows.append({
            "text": text,
            "input_ids": enc.ids,
            "hidden_slice": [r(h[t, dims]) for t in range(h.shape[0])],
            "hidden_norm": r(h.norm(dim=-1)),
            "pooled_slice": r(p[dims]),
            "pooled_norm": float(p.norm()),
        })
    return {"model": name, "transformers": transformers.__version__, "torch": torch.__version__,
            "dims": dims, "sentences": rows}


def write(name, obj):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def main():
    torch.manual_seed(0)
    for name in SENTENCES:
        write(f"encoder-{name}.json", encoder_fixture(name))


if __name__ == "__main__":
    sys.exit(main())
