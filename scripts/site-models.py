#!/usr/bin/env python3
"""Puts the trained demo models into a built site and (re)writes its models/manifest.json.

    python3 scripts/site-models.py MODELS_DIR SITE_DIR [--quiet]

Safe to run again and again while scripts/demo-models.sh trains (scripts/demo.sh does, every few
seconds): a model is linked into the site once its folder is complete, and the manifest is
replaced atomically. While training runs, the manifest's "training" object lists the models of
the plan (MODELS_DIR/.plan, written by demo-models.sh) that are not ready yet and the step the
current one is at (from its log), so the page can say what is still coming.
"""
import json, os, re, shutil, sys

FILES = ("config.json", "tokenizer.json", "model.safetensors")


def dtype(path):
    # From the safetensors header: q8 or q4 from our metadata entry (q8 also when any tensor is
    # int8, as in files without it), else the first float dtype.
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    scheme = header.get("__metadata__", {}).get("bert_tasks.quantization", "")
    if scheme:
        return scheme.split("-")[0]
    types = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    return "q8" if "I8" in types else next((t.lower() for t in ("F32", "F16", "BF16") if t in types), "?")


def size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in FILES)


def ready(d):
    # demo-models.sh trains in MODELS/.train-<id>, exports q8 then f16 into MODELS/<id>, copies
    # metrics.json and removes .train-<id> last: a folder is complete once that is gone.
    training = os.path.join(os.path.dirname(d), ".train-" + os.path.basename(d))
    return all(os.path.isfile(os.path.join(d, f)) for f in FILES) and not os.path.exists(training)


def link(src, dst):
    os.makedirs(dst, exist_ok=True)
    for f in FILES:
        target = os.path.join(dst, f)
        if os.path.exists(target):
            continue
        try:
            os.link(os.path.join(src, f), target)
        except OSError:
            shutil.copyfile(os.path.join(src, f), target)


def entry(mid, d):
    """The manifest entry of model folder `d`, and the training file it was trained on (kept out of
    the manifest: it is a path on the machine that built the site)."""
    cfg = json.load(open(os.path.join(d, "config.json")))
    head = cfg.get("task_head", {})
    metric, trained, train_file = None, None, None
    if os.path.isfile(os.path.join(d, "metrics.json")):
        # What the model was trained on and how it scored, from the files the trainer wrote.
        m = json.load(open(os.path.join(d, "metrics.json")))
        metric = m["summary"].get("best_metric")
        c = m.get("config", {})
        train_file = str(c.get("train", "")) or None
        trained = {
            "base": os.path.basename(str(c.get("base", "")).rstrip("/")),
            "data": "/".join(str(c.get("train", "")).split("/")[-2:]),
            "examples": m["summary"].get("examples"), "epochs": c.get("epochs"),
            "dev_examples": c.get("limit_dev"),
            "metric": "span F1" if head.get("task") == "tag" else "macro-F1",
        }
    e = {
        "id": mid, "task": head.get("task"), "head": head,
        "labels": [cfg["id2label"][k] for k in sorted(cfg["id2label"], key=int)],
        "bytes": size(d), "dtype": dtype(os.path.join(d, "model.safetensors")),
        "dev_metric": metric, "trained": trained,
    }
    if os.path.isfile(os.path.join(d, "f16", "model.safetensors")):
        e["variants"] = {"f16": {"path": f"{mid}/f16/", "bytes": size(os.path.join(d, "f16"))}}
    return e, train_file


def utf16(text, chars):
    """Character offset → UTF-16 offset (what the page's JavaScript strings count)."""
    return len(text[:chars].encode("utf-16-le")) // 2


def relation_examples(entries, train_files, limit=6):
    """Held-out examples for the relate panel: from the test split next to the training file of
    the relate models (when it is there), each with its gold label, spans in UTF-16."""
    for e in entries:
        data = train_files.get(e["id"])
        if e["task"] != "relate" or not data:
            continue
        test = os.path.join(os.path.dirname(data), "test.jsonl")
        if not os.path.isfile(test) or os.path.samefile(test, data):
            continue
        out, labels = [], set()
        with open(test, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r["label"] in labels or r["label"] not in e["labels"]:
                    continue  # one example per label: the panel shows variety
                labels.add(r["label"])
                t = r["text"]
                out.append({"text": t, "gold": r["label"],
                            "head": [utf16(t, r["head"]["start"]), utf16(t, r["head"]["end"])],
                            "tail": [utf16(t, r["tail"]["start"]), utf16(t, r["tail"]["end"])]})
                if len(out) == limit:
                    break
        return out
    return []


def progress(models, mid):
    """The last `step a/b` of a model's training log, or None."""
    try:
        with open(os.path.join(models, f"{mid}.log"), errors="replace") as f:
            steps = re.findall(r"step (\d+)/(\d+)", f.read()[-4000:])
    except OSError:
        return None
    return {"step": int(steps[-1][0]), "steps": int(steps[-1][1])} if steps else None


def main():
    models, site = sys.argv[1], sys.argv[2]
    quiet = "--quiet" in sys.argv[3:]
    entries, train_files = [], {}
    for mid in sorted(os.listdir(models)):
        d = os.path.join(models, mid)
        if mid.startswith(".") or not os.path.isdir(d) or not ready(d):
            continue
        link(d, os.path.join(site, "models", mid))
        if os.path.isfile(os.path.join(d, "f16", "model.safetensors")):
            link(os.path.join(d, "f16"), os.path.join(site, "models", mid, "f16"))
        e, train_files[mid] = entry(mid, d)
        entries.append(e)
    manifest = {"models": entries}
    examples = relation_examples(entries, train_files)
    if examples:
        manifest["relation_examples"] = examples
    plan_file = os.path.join(models, ".plan")
    if os.path.isfile(plan_file):
        have = {e["id"] for e in entries}
        pending = [m for m in open(plan_file).read().split() if m not in have]
        if pending:
            current = next((m for m in pending if os.path.isdir(os.path.join(models, f".train-{m}"))), None)
            manifest["training"] = {"pending": pending, "current": current, "progress": progress(models, current) if current else None}
    os.makedirs(os.path.join(site, "models"), exist_ok=True)
    out = os.path.join(site, "models", "manifest.json")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, out)
    if not quiet:
        print(f"[site] {len(entries)} models: " + ", ".join(e["id"] for e in entries)
              + (f"; still training: {', '.join(manifest['training']['pending'])}" if "training" in manifest else ""))


if __name__ == "__main__":
    main()
