#!/usr/bin/env python3
"""A PyTorch reference for bert-tasks' three relation methods, on transformers' `BertModel`:

- `entity_pool`: mean of each span's token states, concatenated (optionally after [CLS]), linear;
- `position_embedding`: learned embeddings of each token's clipped distance to the head and to
  the tail, added to the input embeddings (before the embedding LayerNorm); pooled sentence, linear;
- `entity_markers`: `[unused1] … [unused2] … [unused3] … [unused4]` around the spans; the states
  of the two start markers, concatenated, linear ("Matching the Blanks").

It is written from the method descriptions, not translated from our Rust, so that
`make_fixtures.py --only relate` (a forward pass with shared weights, compared by
`tests/relate.rs` at 1e-4) checks the architecture, and training it on the same data and
hyper-parameters as `bert-tasks train` shows what the methods reach in PyTorch:

    refenv/bin/python tests/reference/hf_relate.py --model DIR --method entity_markers \
        --train data/webnlg/train.jsonl --dev data/webnlg/dev.jsonl --test data/webnlg/test.jsonl \
        --epochs 3 --batch-size 16 --lr 1e-4 --head-lr 1e-3 --max-len 96 --pooling mean

Like `bert-tasks train`, it evaluates on the first `--limit-dev` dev examples after each epoch
and keeps the epoch with the best dev macro-F1 for the test. Prints one JSON line per epoch and
a final one with the test metrics.
"""
import argparse
import json
import random
import time

import torch
from tokenizers import Tokenizer
from transformers import BertModel, get_linear_schedule_with_warmup

MARKERS = ["[unused1]", "[unused2]", "[unused3]", "[unused4]"]
METHODS = ["entity_pool", "position_embedding", "entity_markers"]


def read_jsonl(path):
    return [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]


def load_tokenizer(model_dir):
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_truncation()
    tok.no_padding()
    return tok


def encode(tok, text, head, tail, markers, max_tokens):
    """Token ids with [CLS]/[SEP] (and the markers), the head and tail token ranges and the marker
    positions. `head`/`tail` are (start, end) character spans; a span owns every word piece whose
    characters overlap it. A text too long for `max_tokens` keeps a window centred on both spans."""
    enc = tok.encode(text, add_special_tokens=False)
    def tokens_of(span):
        hit = [i for i, (s, e) in enumerate(enc.offsets) if s < span[1] and e > span[0]]
        if not hit:
            raise ValueError(f"span {span} covers no token")
        return hit[0], hit[-1] + 1
    (hs, he), (ts, te) = tokens_of(head), tokens_of(tail)
    budget = max_tokens - 2 - (4 if markers else 0)
    lo, hi = min(hs, ts), max(he, te)
    n = len(enc.ids)
    start = 0
    if n > budget:
        if hi - lo > budget:
            raise ValueError("entities too far apart")
        start = min(max(lo - (budget - (hi - lo)) // 2, 0), n - budget)
    keep = range(start, min(n, start + budget))
    ids = [tok.token_to_id("[CLS]")]
    head_range, tail_range, marker_at = [0, 0], [0, 0], [0, 0]
    m = [tok.token_to_id(x) for x in MARKERS] if markers else None
    for i in keep:
        if m and i == hs:
            marker_at[0] = len(ids)
            ids.append(m[0])
        if m and i == ts:
            marker_at[1] = len(ids)
            ids.append(m[2])
        if i == hs:
            head_range[0] = len(ids)
        if i == ts:
            tail_range[0] = len(ids)
        ids.append(enc.ids[i])
        if i + 1 == he:
            head_range[1] = len(ids)
        if i + 1 == te:
            tail_range[1] = len(ids)
        if m and i + 1 == he:
            ids.append(m[1])
        if m and i + 1 == te:
            ids.append(m[3])
    ids.append(tok.token_to_id("[SEP]"))
    return {"ids": ids, "head": tuple(head_range), "tail": tuple(tail_range), "markers": tuple(marker_at) if m else None}


def distance(length, span, max_distance):
    """Each position's distance to `span` (0 inside, negative before, positive after), clipped to
    ±max_distance and shifted to 0..2*max_distance, the embedding row."""
    a, b = span
    d = torch.arange(length)
    rel = torch.where(d < a, d - a, torch.where(d >= b, d - (b - 1), torch.zeros_like(d)))
    return rel.clamp(-max_distance, max_distance) + max_distance


def collate(batch, max_distance):
    """Padded tensors for a list of `encode` results."""
    t = max(len(x["ids"]) for x in batch)
    ids = torch.zeros(len(batch), t, dtype=torch.long)
    mask = torch.zeros(len(batch), t, dtype=torch.long)
    head_mask = torch.zeros(len(batch), t)
    tail_mask = torch.zeros(len(batch), t)
    for row, x in enumerate(batch):
        ids[row, : len(x["ids"])] = torch.tensor(x["ids"])
        mask[row, : len(x["ids"])] = 1
        head_mask[row, x["head"][0]:x["head"][1]] = 1
        tail_mask[row, x["tail"][0]:x["tail"][1]] = 1
    return {
        "ids": ids, "mask": mask, "head_mask": head_mask, "tail_mask": tail_mask,
        "head_marker": torch.tensor([(x["markers"] or (0, 0))[0] for x in batch]),
        "tail_marker": torch.tensor([(x["markers"] or (0, 0))[1] for x in batch]),
        "head_distance": torch.stack([distance(t, x["head"], max_distance) for x in batch]),
        "tail_distance": torch.stack([distance(t, x["tail"], max_distance) for x in batch]),
    }


class RelationModel(torch.nn.Module):
    def __init__(self, bert, labels, method, pooling="pooler", use_cls=False, max_distance=64):
        super().__init__()
        self.bert, self.method, self.pooling, self.use_cls = bert, method, pooling, use_cls
        self.max_distance = max_distance
        h = bert.config.hidden_size
        if method == "position_embedding":
            self.head_distance = torch.nn.Embedding(2 * max_distance + 1, h)
            self.tail_distance = torch.nn.Embedding(2 * max_distance + 1, h)
        features = {"entity_pool": (3 if use_cls else 2) * h, "position_embedding": h, "entity_markers": 2 * h}[method]
        self.drop = torch.nn.Dropout(bert.config.hidden_dropout_prob)
        self.classifier = torch.nn.Linear(features, labels)

    def head_tensors(self):
        """Our checkpoint's names for the head's tensors."""
        out = {"classifier.weight": self.classifier.weight, "classifier.bias": self.classifier.bias}
        if self.method == "position_embedding":
            out["relation_positions.head_distance.weight"] = self.head_distance.weight
            out["relation_positions.tail_distance.weight"] = self.tail_distance.weight
        return out

    def forward(self, b):
        if self.method == "position_embedding":
            words = self.bert.embeddings.word_embeddings(b["ids"])
            extra = self.head_distance(b["head_distance"]) + self.tail_distance(b["tail_distance"])
            out = self.bert(inputs_embeds=words + extra, attention_mask=b["mask"])
        else:
            out = self.bert(input_ids=b["ids"], attention_mask=b["mask"])
        h = out.last_hidden_state
        if self.method == "entity_pool":
            span_mean = lambda m: (h * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1)
            parts = [span_mean(b["head_mask"]), span_mean(b["tail_mask"])]
            features = torch.cat(([h[:, 0]] if self.use_cls else []) + parts, -1)
        elif self.method == "entity_markers":
            rows = torch.arange(h.shape[0])
            features = torch.cat([h[rows, b["head_marker"]], h[rows, b["tail_marker"]]], -1)
        else:
            m = b["mask"].unsqueeze(-1).float()
            features = {"pooler": lambda: out.pooler_output, "cls": lambda: h[:, 0],
                        "mean": lambda: (h * m).sum(1) / m.sum(1),
                        "max": lambda: h.masked_fill(m == 0, torch.finfo(h.dtype).min).max(1).values}[self.pooling]()
        return self.classifier(self.drop(features))


def metrics(gold, pred, labels):
    acc = sum(g == p for g, p in zip(gold, pred)) / len(gold)
    f1 = {}
    for l in labels:
        tp = sum(g == p == l for g, p in zip(gold, pred))
        pp, gg = sum(p == l for p in pred), sum(g == l for g in gold)
        pr, rc = (tp / pp if pp else 0), (tp / gg if gg else 0)
        if gg or pp:
            f1[l] = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
    return {"accuracy": acc, "macro_f1": sum(f1.values()) / len(f1), "per_class_f1": f1}


@torch.no_grad()
def evaluate(model, tok, rows, labels, args):
    model.eval()
    gold, pred = [], []
    for k in range(0, len(rows), 32):
        chunk = rows[k:k + 32]
        enc = [encode(tok, r["text"], (r["head"]["start"], r["head"]["end"]), (r["tail"]["start"], r["tail"]["end"]),
                      args.method == "entity_markers", 512) for r in chunk]
        logits = model(collate(enc, model.max_distance))
        pred += [labels[i] for i in logits.argmax(-1).tolist()]
        gold += [r["label"] for r in chunk]
    model.train()
    return metrics(gold, pred, labels)


def main():
    ap = argparse.ArgumentParser()
    for a in ["model", "train", "dev", "test"]:
        ap.add_argument("--" + a)
    ap.add_argument("--method", choices=METHODS, required=True)
    ap.add_argument("--pooling", default="mean")
    for a, d in [("epochs", 3), ("batch-size", 16), ("max-len", 96), ("seed", 42), ("threads", 0), ("max-distance", 64),
                 ("limit-dev", 0)]:
        ap.add_argument("--" + a, type=int, default=d)
    for a, d in [("lr", 1e-4), ("head-lr", 1e-3), ("warmup", 0.1), ("weight-decay", 0.01)]:
        ap.add_argument("--" + a, type=float, default=d)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    tok = load_tokenizer(args.model)
    train = read_jsonl(args.train)
    labels = sorted({r["label"] for r in train})
    items = [(encode(tok, r["text"], (r["head"]["start"], r["head"]["end"]), (r["tail"]["start"], r["tail"]["end"]),
                     args.method == "entity_markers", args.max_len), labels.index(r["label"])) for r in train]
    model = RelationModel(BertModel.from_pretrained(args.model), len(labels), args.method, args.pooling,
                          max_distance=args.max_distance)
    # Freshly initialised parameters as bert-tasks initialises them: N(0, 0.02), biases 0.
    for name, p in model.head_tensors().items():
        torch.nn.init.zeros_(p) if name.endswith("bias") else torch.nn.init.normal_(p, std=0.02)
    no_decay = lambda name: name.endswith("bias") or "LayerNorm" in name
    enc_params = [(n, p) for n, p in model.named_parameters() if n.startswith("bert.")]
    head = [(n, p) for n, p in model.named_parameters() if not n.startswith("bert.")]
    opt = torch.optim.AdamW([
        {"params": [p for n, p in enc_params if not no_decay(n)], "lr": args.lr, "weight_decay": args.weight_decay},
        {"params": [p for n, p in enc_params if no_decay(n)], "lr": args.lr, "weight_decay": 0.0},
        {"params": [p for n, p in head if not no_decay(n)], "lr": args.head_lr, "weight_decay": args.weight_decay},
        {"params": [p for n, p in head if no_decay(n)], "lr": args.head_lr, "weight_decay": 0.0},
    ])
    steps = args.epochs * ((len(items) + args.batch_size - 1) // args.batch_size)
    sched = get_linear_schedule_with_warmup(opt, round(args.warmup * steps), steps)
    dev = read_jsonl(args.dev) if args.dev else []
    dev = dev[: args.limit_dev] if args.limit_dev else dev
    best = None  # (dev macro-F1, epoch, state dict)
    started = time.time()
    model.train()
    for epoch in range(args.epochs):
        order = list(range(len(items)))
        random.shuffle(order)
        for b in range(0, len(order), args.batch_size):
            batch = [items[i] for i in order[b:b + args.batch_size]]
            logits = model(collate([x[0] for x in batch], args.max_distance))
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor([x[1] for x in batch]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
        if dev:
            m = evaluate(model, tok, dev, labels, args)
            print(json.dumps({"split": "dev", "epoch": epoch + 1, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                              "secs": round(time.time() - started)}), flush=True)
            if best is None or m["macro_f1"] > best[0]:
                best = (m["macro_f1"], epoch + 1, {k: v.detach().clone() for k, v in model.state_dict().items()})
    if best is not None:
        model.load_state_dict(best[2])
    test = read_jsonl(args.test) if args.test else dev
    m = evaluate(model, tok, test, labels, args)
    print(json.dumps({"bench": "webnlg-relate-pytorch", "method": args.method, "train": len(items), "epochs": args.epochs,
                      "batch": args.batch_size, "max_len": args.max_len, "lr": args.lr, "head_lr": args.head_lr,
                      "pooling": args.pooling, "seed": args.seed, "test_examples": len(test),
                      "best_epoch": best[1] if best else args.epochs,
                      "secs": round(time.time() - started), **m}), flush=True)


if __name__ == "__main__":
    main()
