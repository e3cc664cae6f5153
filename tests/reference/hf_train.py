#!/usr/bin/env python3
"""Train the same subset with the same hyper-parameters through Hugging Face transformers
(+ pytorch-crf for the CRF) to compare with `bert-tasks train`. Run by hand in the reference
environment (see make_fixtures.py); prints one JSON object with the dev metrics.

    refenv/bin/python tests/reference/hf_train.py --task classify --model DIR --train F --dev F \
        --epochs 3 --batch-size 16 --lr 5e-5 --head-lr 1e-3 --max-len 64 --pooling pooler
    refenv/bin/python tests/reference/hf_train.py --task tag --decoder crf ...
    (--device cuda on a GPU machine: bench/gpu.sh runs the full-data references there)
"""
import argparse
import json
import random

import torch
from seqeval.metrics import f1_score
from tokenizers import Tokenizer
from torchcrf import CRF
from transformers import BertModel, get_linear_schedule_with_warmup


def read_tsv(path, limit):
    rows = [l.rstrip("\n").split("\t") for l in open(path, encoding="utf-8") if l.strip()]
    return rows[:limit] if limit else rows


def read_conll(path, limit):
    sents, cur = [], []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line:
            if cur:
                sents.append(cur)
            cur = []
            continue
        parts = line.split()
        cur.append((parts[0], parts[-1]))
    if cur:
        sents.append(cur)
    return sents[:limit] if limit else sents


class Model(torch.nn.Module):
    def __init__(self, base, n, task, pooling, decoder):
        super().__init__()
        self.bert = BertModel.from_pretrained(base, dtype=torch.float32)  # f16 exports train in f32
        h = self.bert.config.hidden_size
        self.drop = torch.nn.Dropout(self.bert.config.hidden_dropout_prob)
        self.classifier = torch.nn.Linear(h, n)
        torch.nn.init.normal_(self.classifier.weight, std=0.02)
        torch.nn.init.zeros_(self.classifier.bias)
        self.task, self.pooling = task, pooling
        self.crf = CRF(n, batch_first=True) if decoder == "crf" else None

    def forward(self, ids, mask):
        out = self.bert(input_ids=ids, attention_mask=mask)
        h = out.last_hidden_state
        if self.task == "tag":
            return self.classifier(self.drop(h))
        m = mask.unsqueeze(-1).float()
        pooled = {"pooler": out.pooler_output, "cls": h[:, 0],
                  "mean": (h * m).sum(1) / m.sum(1), "max": h.masked_fill(m == 0, -1e9).max(1).values}[self.pooling]
        return self.classifier(self.drop(pooled))


def allowed(labels):
    """Start, end and transition masks of the tag scheme (BIO, or BIOES when E-/S- tags occur),
    the rules bert-tasks' constrained decoding uses: I-X/E-X only after B-X or I-X, and (BIOES)
    B-X/I-X only before I-X/E-X, no sequence starting with I/E or ending with B/I."""
    bioes = any(l[:2] in ("E-", "S-") for l in labels)
    role = lambda l: l[0] if l != "O" else "O"
    kind = lambda l: l[2:]
    start = [role(l) not in "IE" for l in labels]
    end = [not bioes or role(l) not in "BI" for l in labels]
    trans = []
    for a in labels:
        row = []
        for b in labels:
            if bioes and role(a) in "BI":
                ok = role(b) in "IE" and kind(a) == kind(b)
            elif role(b) in "IE":
                ok = role(a) in "BI" and kind(a) == kind(b)
            else:
                ok = True
            row.append(ok)
        trans.append(row)
    return torch.tensor(start), torch.tensor(end), torch.tensor(trans)


def constrained_crf(crf, labels):
    """A copy of `crf` whose forbidden moves score -10000 (pytorch-crf has no constraint option)."""
    start, end, trans = (t.to(crf.transitions.device) for t in allowed(labels))
    c = CRF(crf.num_tags, batch_first=True).to(crf.transitions.device)
    with torch.no_grad():
        c.start_transitions.copy_(crf.start_transitions.masked_fill(~start, -10000.0))
        c.end_transitions.copy_(crf.end_transitions.masked_fill(~end, -10000.0))
        c.transitions.copy_(crf.transitions.masked_fill(~trans, -10000.0))
    return c


def pad(seqs, value=0):
    n = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (n - len(s)) for s in seqs]), torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs])


def main():
    ap = argparse.ArgumentParser()
    for a in ["task", "model", "train", "dev", "pooling", "decoder", "device"]:
        ap.add_argument("--" + a, default={"pooling": "pooler", "decoder": "softmax", "device": "cpu"}.get(a))
    for a, d in [("epochs", 3), ("batch-size", 16), ("max-len", 128), ("limit-train", 0), ("limit-dev", 0), ("seed", 42)]:
        ap.add_argument("--" + a, type=int, default=d)
    for a, d in [("lr", 5e-5), ("head-lr", 1e-3), ("warmup", 0.1), ("weight-decay", 0.01)]:
        ap.add_argument("--" + a, type=float, default=d)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    tok = Tokenizer.from_file(f"{args.model}/tokenizer.json")
    tok.no_truncation()
    tok.no_padding()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if args.task == "classify":
        train, dev = read_tsv(args.train, args.limit_train), read_tsv(args.dev, args.limit_dev)
        labels = sorted({r[0] for r in train})
        enc = lambda r: tok.encode(r[1]).ids[: args.max_len - 1][:-1] + [sep] if len(tok.encode(r[1]).ids) > args.max_len else tok.encode(r[1]).ids
        items = [(enc(r), labels.index(r[0])) for r in train]
    else:
        train, dev = read_conll(args.train, args.limit_train), read_conll(args.dev, args.limit_dev)
        labels = sorted({t for s in train for _, t in s}, key=lambda l: (l != "O", l[2:], l[:1]))
        items = []
        for s in train:  # one token per character/word piece; first piece keeps the tag, others I-/same
            ids, tags = [cls], []
            for w, t in s:
                pieces = tok.encode(w, add_special_tokens=False).ids or []
                for k, p in enumerate(pieces):
                    ids.append(p)
                    tags.append(labels.index(t if k == 0 or t == "O" else "I-" + t[2:] if "I-" + t[2:] in labels else t))
            ids = ids[: args.max_len - 1] + [sep]
            items.append((ids, tags[: len(ids) - 2]))
    n = len(labels)
    dev_ = torch.device(args.device)
    model = Model(args.model, n, args.task, args.pooling, args.decoder).to(dev_)
    head = [p for name, p in model.named_parameters() if not name.startswith("bert.")]
    enc_params = [(name, p) for name, p in model.named_parameters() if name.startswith("bert.")]
    no_decay = lambda name: name.endswith("bias") or "LayerNorm" in name
    opt = torch.optim.AdamW([
        {"params": [p for nme, p in enc_params if not no_decay(nme)], "lr": args.lr, "weight_decay": args.weight_decay},
        {"params": [p for nme, p in enc_params if no_decay(nme)], "lr": args.lr, "weight_decay": 0.0},
        {"params": head, "lr": args.head_lr, "weight_decay": args.weight_decay},
    ])
    steps = args.epochs * ((len(items) + args.batch_size - 1) // args.batch_size)
    sched = get_linear_schedule_with_warmup(opt, round(args.warmup * steps), steps)
    for epoch in range(args.epochs):
        model.train()
        order = list(range(len(items)))
        random.shuffle(order)
        for b in range(0, len(order), args.batch_size):
            batch = [items[i] for i in order[b:b + args.batch_size]]
            ids, mask = pad([x[0] for x in batch])
            out = model(ids.to(dev_), mask.to(dev_))
            if args.task == "classify":
                loss = torch.nn.functional.cross_entropy(out, torch.tensor([x[1] for x in batch], device=dev_))
            else:
                em = out[:, 1:-1]
                tags, tmask = pad([x[1] for x in batch])
                tags, tmask = tags.to(dev_), tmask.to(dev_)
                em = em[:, : tags.shape[1]]
                if model.crf is not None:
                    loss = -model.crf(em, tags, tmask.bool(), reduction="mean")
                else:
                    loss = torch.nn.functional.cross_entropy(em.reshape(-1, n), tags.reshape(-1), reduction="none")
                    loss = (loss * tmask.reshape(-1)).sum() / tmask.sum()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
    model.eval()
    with torch.no_grad():
        if args.task == "classify":
            gold, pred = [], []
            for r in dev:
                ids = tok.encode(r[1]).ids[:512]
                logits = model(torch.tensor([ids], device=dev_), torch.ones(1, len(ids), dtype=torch.long, device=dev_))
                gold.append(r[0])
                pred.append(labels[logits.argmax(-1).item()])
            acc = sum(g == p for g, p in zip(gold, pred)) / len(gold)
            f1s = []
            for l in labels:
                tp = sum(g == p == l for g, p in zip(gold, pred))
                pp, gg = sum(p == l for p in pred), sum(g == l for g in gold)
                pr, rc = (tp / pp if pp else 0), (tp / gg if gg else 0)
                f1s.append(2 * pr * rc / (pr + rc) if pr + rc else 0)
            print(json.dumps({"accuracy": acc, "macro_f1": sum(f1s) / len(f1s)}))
        else:
            gold, pred, pred_free = [], [], []
            crf_c = constrained_crf(model.crf, labels) if model.crf is not None else None
            for s in dev:
                ids, first = [cls], []
                for w, _ in s:
                    pieces = tok.encode(w, add_special_tokens=False).ids
                    first.append(len(ids) if pieces else None)
                    ids.extend(pieces)
                ids = ids[:511] + [sep]  # evaluate on whole sentences, as bert-tasks does
                em = model(torch.tensor([ids], device=dev_), torch.ones(1, len(ids), dtype=torch.long, device=dev_))[:, 1:-1]
                free = model.crf.decode(em)[0] if model.crf is not None else em[0].argmax(-1).tolist()
                path = crf_c.decode(em)[0] if crf_c is not None else free
                word_tags = lambda p: [labels[p[f - 1]] if f is not None and f - 1 < len(p) else "O" for f in first]
                gold.append([t for _, t in s])
                pred.append(word_tags(path))
                pred_free.append(word_tags(free))
            # span_f1: decoding constrained by the scheme (bert-tasks' default); also unconstrained.
            print(json.dumps({"span_f1": f1_score(gold, pred), "span_f1_unconstrained": f1_score(gold, pred_free)}))


if __name__ == "__main__":
    main()
