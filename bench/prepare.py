"""Prepares what every engine in the benchmark reads, from the cached all-MiniLM-L6-v2 weights:

- $CACHE/bench/classify, $CACHE/bench/tag: BertForSequenceClassification (2 labels) and
  BertForTokenClassification (9 labels) with seeded heads, saved by transformers (safetensors,
  f32) -- bert-tasks loads these folders as is -- plus onnx/model.onnx (f32, torch.onnx export,
  dynamic batch and length) for transformers.js, and the two quantised files transformers.js
  loads for `dtype: "q8"` and `"q4"`: onnx/model_quantized.onnx (onnxruntime's dynamic int8:
  uint8 weights, one scale per tensor, activations quantised at run time -- the recipe of
  transformers.js's conversion script) and onnx/model_q4.onnx (MatMulNBits, 4-bit blocks of 32,
  symmetric); bench/q8.sh adds our own q8 exports (`bert-tasks export --dtype q8`);
- bench/texts.json (in $CACHE/bench): real English text cut to exactly 16, 128 and 512 tokens
  ([CLS] and [SEP] included), so every engine runs the same token count;
- train.tsv: 64 labelled texts of at least 128 tokens (training-step timing, batch 16 x 128).

Run with the reference environment (torch, transformers, onnx): bench/run.sh does.
"""
import json, os, pathlib, shutil, sys

import torch
from transformers import AutoTokenizer, BertForSequenceClassification, BertForTokenClassification

CACHE = pathlib.Path(os.environ.get("BERT_TASKS_CACHE", pathlib.Path.home() / ".cache/bert-tasks"))
BASE = CACHE / "models/all-minilm-l6-v2"
OUT = CACHE / "bench"
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]
VERSION = "2"


def export_onnx(model, folder: pathlib.Path):
    model.eval()
    ids = torch.ones(1, 16, dtype=torch.long)
    (folder / "onnx").mkdir(exist_ok=True)
    torch.onnx.export(
        model,
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        str(folder / "onnx/model.onnx"),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ["input_ids", "attention_mask", "token_type_ids"]}
        | {"logits": {0: "batch"} | ({1: "sequence"} if isinstance(model, BertForTokenClassification) else {})},
        opset_version=17,
        dynamo=False,
    )
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    import onnx
    quantize_dynamic(str(folder / "onnx/model.onnx"), str(folder / "onnx/model_quantized.onnx"),
                     weight_type=QuantType.QUInt8, per_channel=False, reduce_range=False)
    q4 = MatMulNBitsQuantizer(onnx.load(str(folder / "onnx/model.onnx")), block_size=32, is_symmetric=True)
    q4.process()
    q4.model.save_model_to_file(str(folder / "onnx/model_q4.onnx"))


def make(cls, name, labels):
    folder = OUT / name
    torch.manual_seed(0)
    model = cls.from_pretrained(
        BASE, dtype=torch.float32, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)}
    )
    model.save_pretrained(folder, safe_serialization=True)
    # tokenizer.json as fetched (bert-tasks), plus tokenizer_config.json (transformers.js).
    AutoTokenizer.from_pretrained(BASE).save_pretrained(folder)
    shutil.copy(BASE / "tokenizer.json", folder / "tokenizer.json")
    if "--no-onnx" not in sys.argv:
        export_onnx(model, folder)


def texts(tok):
    lines = (CACHE / "data/en-sentiment/train.tsv").read_text().splitlines()
    corpus = " ".join(l.split("\t", 1)[1] for l in lines[:400])
    enc = tok(corpus, add_special_tokens=False, return_offsets_mapping=True)
    out = {}
    for n in (16, 128, 512):
        end = enc["offset_mapping"][n - 3][1]
        text = corpus[:end]
        # Cutting can merge or split a word piece: adjust until the count is exact.
        k = n - 3
        while len(tok(text)["input_ids"]) != n:
            k += 1 if len(tok(text)["input_ids"]) < n else -1
            text = corpus[: enc["offset_mapping"][k][1]]
        out[str(n)] = text
    return out, lines


def main():
    marker = OUT / f".complete-{VERSION}"
    if marker.exists() and "--force" not in sys.argv:
        print(f"bench inputs ready in {OUT}")
        return
    OUT.mkdir(parents=True, exist_ok=True)
    make(BertForSequenceClassification, "classify", ["neg", "pos"])
    make(BertForTokenClassification, "tag", TAGS)
    tok = AutoTokenizer.from_pretrained(OUT / "classify")
    t, lines = texts(tok)
    (OUT / "texts.json").write_text(json.dumps(t, ensure_ascii=False, indent=1))
    # Training rows: consecutive sentences joined until the text has >= 128 tokens.
    rows, buf = [], []
    for l in lines:
        label, text = l.split("\t", 1)
        buf.append(text)
        if len(tok(" ".join(buf))["input_ids"]) >= 130:
            rows.append(f"{label}\t{' '.join(buf)}")
            buf = []
        if len(rows) == 64:
            break
    (OUT / "train.tsv").write_text("\n".join(rows) + "\n")
    marker.write_text("ok\n")
    print(f"bench inputs written to {OUT}")


if __name__ == "__main__":
    main()
