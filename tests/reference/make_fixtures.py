#!/usr/bin/env python3
"""Write the small reference fixtures in tests/fixtures/ from the reference implementations.

Run by hand (not in CI) after `python3 scripts/fetch_assets.py` and `scripts/setup.sh`, in an
environment with the reference packages:

    python3 -m venv ~/.cache/bert-tasks/refenv
    ~/.cache/bert-tasks/refenv/bin/pip install torch transformers safetensors pytorch-crf==0.7.2 seqeval==1.2.2
    ~/.cache/bert-tasks/refenv/bin/python tests/reference/make_fixtures.py [--only encoder|classify|tag|relate]

The fixtures hold only slices and norms of the outputs (kilobytes), never weights.
"""
import json
import os
import sys
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer
from safetensors.torch import load_file, save_file
from torchcrf import CRF
from transformers import BertForSequenceClassification, BertForTokenClassification, BertModel

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


NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
SEG_LABELS = ["B", "M", "E", "S"]
PAIRS = {
    "all-minilm-l6-v2": [("A man is playing a guitar.", "Someone plays music."),
                         ("The cat sat on the mat.", "Stock markets fell 3% on Monday.")],
    "m3e-small": [("我喜欢这部电影。", "这部电影很好看。"), ("北京是中国的首都。", "今天下雨了。")],
}


def forbidden(labels, scheme):
    """(start, transitions[from][to], end) booleans: True where the scheme forbids it."""
    def parse(l):
        if scheme == "BMES":
            return {"B": "B", "M": "I", "E": "E", "S": "S"}[l], ""
        return (l, "") if l == "O" else (l[0], l[2:])
    p = [parse(l) for l in labels]
    n = len(labels)
    start = [pre == "I" or pre == "E" for pre, _ in p]
    end = [scheme != "BIO" and pre in ("B", "I") for pre, _ in p]
    trans = [[False] * n for _ in range(n)]
    for i, (a, ta) in enumerate(p):
        for j, (b, tb) in enumerate(p):
            if scheme == "BIO":
                trans[i][j] = b == "I" and not (a in ("B", "I") and ta == tb)
            else:
                open_a = a in ("B", "I")
                cont_b = b in ("I", "E")
                trans[i][j] = (open_a != cont_b) or (open_a and ta != tb)
    return start, trans, end


def constrained_copy(crf, labels, scheme):
    c = CRF(len(labels), batch_first=True)
    c.load_state_dict(crf.state_dict())
    start, trans, end = forbidden(labels, scheme)
    with torch.no_grad():
        for i in range(len(labels)):
            if start[i]:
                c.start_transitions[i] = -10000.0
            if end[i]:
                c.end_transitions[i] = -10000.0
            for j in range(len(labels)):
                if trans[i][j]:
                    c.transitions[i, j] = -10000.0
    return c


def randomise_head(module, std=0.5):
    """Seeded random head weights, larger than the usual 0.02 so that the tests see decisive logits."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, std)


def save_checkpoint(model, name, extra_tensors=None):
    """save_pretrained into the cache, then commit only what is not the base encoder: the config
    exactly as transformers wrote it, the tensor names and shapes, and the head tensors."""
    ckpt = CACHE / "reference" / "checkpoints" / name
    model.save_pretrained(ckpt)
    tensors = load_file(str(ckpt / "model.safetensors"))
    head = {k: v for k, v in tensors.items() if not k.startswith("bert.")}
    head.update(extra_tensors or {})
    d = OUT / "checkpoints" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text((ckpt / "config.json").read_text())
    (d / "names.json").write_text(json.dumps({k: list(v.shape) for k, v in sorted(tensors.items())}, indent=0))
    save_file({k: v.contiguous() for k, v in head.items()}, str(d / "head.safetensors"))
    print(f"wrote {d}")


@torch.no_grad()
def classify_fixture(base):
    torch.manual_seed(1)
    labels = ["NEG", "NEU", "POS"]
    model = BertForSequenceClassification.from_pretrained(
        torch_weights_dir(base), num_labels=3, id2label=dict(enumerate(labels)),
        label2id={l: i for i, l in enumerate(labels)}).eval()
    randomise_head(model.classifier)
    save_checkpoint(model, f"{base}-classify")
    tok = tokenizer_for(CACHE / "models" / base)
    rows = []
    inputs = [(t, None) for t in SENTENCES[base][:4]] + PAIRS[base]
    for a, b in inputs:
        enc = tok.encode(a, b) if b else tok.encode(a)
        ids = torch.tensor([enc.ids])
        out = model.bert(input_ids=ids, token_type_ids=torch.tensor([enc.type_ids]))
        h = out.last_hidden_state[0]
        pooled = {"pooler": out.pooler_output[0], "cls": h[0], "mean": h.mean(0), "max": h.max(0).values}
        probs = {k: r(torch.softmax(model.classifier(v), -1)) for k, v in pooled.items()}
        full = model(input_ids=ids, token_type_ids=torch.tensor([enc.type_ids])).logits.softmax(-1)[0]
        assert torch.allclose(full, torch.tensor(probs["pooler"]), atol=1e-6)
        rows.append({"text": a, "text_pair": b, "input_ids": enc.ids, "type_ids": enc.type_ids, "probs": probs})
    return {"model": f"{base}-classify", "labels": labels, "inputs": rows}


@torch.no_grad()
def tag_fixture(base, labels, scheme, texts):
    torch.manual_seed(2)
    model = BertForTokenClassification.from_pretrained(
        torch_weights_dir(base), num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={l: i for i, l in enumerate(labels)}).eval()
    randomise_head(model.classifier)
    crf = CRF(len(labels), batch_first=True)
    randomise_head(crf, std=1.0)
    name = f"{base}-tag-{scheme.lower()}"
    save_checkpoint(model, name, {f"crf.{k}": v for k, v in crf.state_dict().items()})
    strict = constrained_copy(crf, labels, scheme)
    tok = tokenizer_for(CACHE / "models" / base)
    rows = []
    for text in texts:
        enc = tok.encode(text)
        ids = torch.tensor([enc.ids])
        logits = model(input_ids=ids, token_type_ids=torch.tensor([enc.type_ids])).logits[0, 1:-1]
        probs = logits.softmax(-1)
        em = logits.unsqueeze(0)
        rows.append({
            "text": text,
            "tokens": [{"text": t, "start": s, "end": e} for t, (s, e) in zip(enc.tokens[1:-1], enc.offsets[1:-1])],
            "softmax_tags": [labels[i] for i in probs.argmax(-1).tolist()],
            "softmax_scores": r(probs.max(-1).values),
            "crf_tags": [labels[i] for i in crf.decode(em)[0]],
            "crf_constrained_tags": [labels[i] for i in strict.decode(em)[0]],
        })
    return {"model": name, "labels": labels, "scheme": scheme, "inputs": rows}


RELATE_LABELS = ["birthPlace", "capital", "leader"]
RELATE_FILLER = "nothing to see here . " * 20
RELATE_INPUTS = [  # (text, head span, tail span, token limit), spans in characters
    ("Barack Obama was born in Honolulu, Hawaii.", (0, 12), (25, 33), 512),
    ("Paris is the capital of France.", (24, 30), (0, 5), 512),
    ("Angela Merkel led Germany for sixteen years, from 2005 to 2021.", (0, 13), (18, 25), 512),
    ("The Acharya Institute of Technology is affiliated with Visvesvaraya Technological University.",
     (4, 35), (55, 92), 512),
    (RELATE_FILLER + "Barack Obama was born in Honolulu, Hawaii. " + RELATE_FILLER,
     (440, 452), (465, 473), 32),
]
RELATE_VARIANTS = [  # (method, pooling, use_cls)
    ("entity_pool", "pooler", False), ("entity_pool", "pooler", True),
    ("position_embedding", "mean", False), ("position_embedding", "pooler", False),
    ("entity_markers", "pooler", False),
]


def seeded(shape, i):
    """The seeded head values tests/common's `random_head_checkpoint` writes for the i-th tensor."""
    k = torch.arange(int(torch.tensor(shape).prod()), dtype=torch.int64)
    v = ((k * 7919 + i * 104729) % 1000).to(torch.float32)
    return ((v / 1000.0 - 0.5) * 0.2).reshape(shape)


@torch.no_grad()
def relate_fixture(base):
    """Our relation heads are not transformers classes: hf_relate.py implements each method on
    `BertModel`; here it runs with seeded head tensors that the Rust test recreates."""
    from hf_relate import RelationModel, collate, encode, load_tokenizer
    d = CACHE / "models" / base
    tok = load_tokenizer(d)
    bert = BertModel.from_pretrained(torch_weights_dir(base)).eval()
    variants = []
    for method, pooling, use_cls in RELATE_VARIANTS:
        model = RelationModel(bert, len(RELATE_LABELS), method, pooling, use_cls).eval()
        names = list(model.head_tensors().items())
        if method == "position_embedding":  # the Rust test's order
            names = names[2:] + names[:2]
        for i, (name, p) in enumerate(names):
            p.copy_(seeded(list(p.shape), i))
        rows = []
        for text, head, tail, limit in RELATE_INPUTS:
            enc = encode(tok, text, head, tail, method == "entity_markers", limit)
            logits = model(collate([enc], model.max_distance))[0]
            rows.append({"input_ids": enc["ids"], "head": enc["head"], "tail": enc["tail"], "markers": enc["markers"],
                         "logits": r(logits)})
        variants.append({"method": method, "pooling": pooling, "use_cls": use_cls,
                         "head_tensors": [[n, list(p.shape)] for n, p in names], "outputs": rows})
    return {"model": base, "labels": RELATE_LABELS,
            "inputs": [{"text": t, "head": h, "tail": tl, "max_tokens": m} for t, h, tl, m in RELATE_INPUTS],
            "variants": variants}


def write(name, obj):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def main():
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    want = lambda kind: only in (None, kind)
    torch.manual_seed(0)
    for name in SENTENCES:
        if want("encoder"):
            write(f"encoder-{name}.json", encoder_fixture(name))
        if want("classify"):
            write(f"classify-{name}.json", classify_fixture(name))
        if want("tag"):
            write(f"tag-{name}-bio.json", tag_fixture(name, NER_LABELS, "BIO", SENTENCES[name]))
    if want("tag"):
        write("tag-m3e-small-bmes.json", tag_fixture("m3e-small", SEG_LABELS, "BMES", SENTENCES["m3e-small"]))
    if want("relate"):
        write("relate-all-minilm-l6-v2.json", relate_fixture("all-minilm-l6-v2"))


if __name__ == "__main__":
    sys.exit(main())
