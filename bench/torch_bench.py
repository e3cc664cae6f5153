"""PyTorch (transformers, eager) side of the benchmark: the same folders, texts and shapes as
`bert-tasks bench`, one JSON line per measurement.

  python bench/torch_bench.py infer --threads 1 [--device cpu]
  python bench/torch_bench.py train --threads 2 [--device cuda]

infer: text in -> probabilities out (tokenizer + forward + softmax), like bert-tasks' classify/tag.
train: one optimizer step of BertForSequenceClassification fine-tuning (train mode, dropout on):
forward, cross-entropy, backward, global-norm clipping to 1.0, AdamW -- batch 16 x 128 by default.
"""
import argparse, json, os, pathlib, statistics, time

import torch
from transformers import AutoTokenizer, BertForSequenceClassification, BertForTokenClassification

CACHE = pathlib.Path(os.environ.get("BERT_TASKS_CACHE", pathlib.Path.home() / ".cache/bert-tasks")) / "bench"


def summary(ms):
    ms = sorted(ms)
    q = lambda f: ms[round((len(ms) - 1) * f)]
    return {"median_ms": q(0.5), "p10_ms": q(0.1), "p90_ms": q(0.9), "runs": len(ms)}


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, warmup, repeat, device):
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync(device)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def infer(a):
    texts = json.loads((CACHE / "texts.json").read_text())
    for task, cls in (("classify", BertForSequenceClassification), ("tag", BertForTokenClassification)):
        tok = AutoTokenizer.from_pretrained(CACHE / task)
        model = cls.from_pretrained(CACHE / task, dtype=torch.float32).to(a.device).eval()
        for shape in a.shapes.split(","):
            b, t = map(int, shape.split("x"))
            batch = [texts[str(t)]] * b

            @torch.inference_mode()
            def run():
                enc = tok(batch, return_tensors="pt", padding=True).to(a.device)
                assert enc["input_ids"].shape[1] == t
                model(**enc).logits.softmax(-1).cpu()

            row = summary(timed(run, a.warmup, a.repeat, a.device))
            row |= {"engine": "PyTorch", "task": task, "batch": b, "tokens": t, "threads": torch.get_num_threads(), "device": a.device}
            print(json.dumps(row), flush=True)


def train(a):
    tok = AutoTokenizer.from_pretrained(CACHE / "classify")
    rows = [l.split("\t", 1) for l in (CACHE / "train.tsv").read_text().splitlines()]
    torch.manual_seed(42)
    model = BertForSequenceClassification.from_pretrained(CACHE.parent / "models/all-minilm-l6-v2", dtype=torch.float32, num_labels=2).to(a.device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    labels = {"neg": 0, "pos": 1}
    batches = []
    for i in range(0, len(rows) - a.batch_size + 1, a.batch_size):
        chunk = rows[i : i + a.batch_size]
        enc = tok([r[1] for r in chunk], return_tensors="pt", padding=True, truncation=True, max_length=a.max_len)
        enc["labels"] = torch.tensor([labels[r[0]] for r in chunk])
        batches.append(enc.to(a.device))
    k = [0]

    def step():
        enc = batches[k[0] % len(batches)]
        k[0] += 1
        # --precision bf16: torch.autocast, the mixed precision bert-tasks' --precision bf16 mirrors.
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = model(**enc).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    row = summary(timed(step, a.warmup, a.repeat, a.device))
    row |= {"engine": "PyTorch", "task": "train_step", "batch": a.batch_size, "tokens": a.max_len, "threads": torch.get_num_threads(), "device": a.device, "precision": a.precision}
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["infer", "train"])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--device", default="cpu")
    p.add_argument("--shapes", default="1x16,1x128,1x512,8x128")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    (infer if a.mode == "infer" else train)(a)
