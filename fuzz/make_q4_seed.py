"""Writes fuzz/seeds/model_folder/tiny-classify-q4.bin: a tiny classify model in the q4 layout
(src/model/q4.rs), written with numpy and safetensors.numpy rather than by bert-tasks, so that the
fuzz target starts from another writer's 4-bit file and tests/quantized.rs checks it loads.

It takes config.json and tokenizer.json from the f32 seed (tiny-classify.bin), widens the model
to hidden 32 (a 4-bit block is 32 values of a row; the f32 seed's 8 is too narrow), draws seeded
weights, and stores every 2-D `*.weight` whose width is a multiple of 32 as U8 nibbles + F16
block scales. Run with the reference env: $BERT_TASKS_CACHE/refenv/bin/python fuzz/make_q4_seed.py
"""
import json, pathlib, struct

import numpy as np
from safetensors.numpy import save

HERE = pathlib.Path(__file__).parent / "seeds/model_folder"
H, FFN, BLOCK = 32, 32, 32

raw = (HERE / "tiny-classify.bin").read_bytes()
a, b = struct.unpack("<HH", raw[:4])
config = json.loads(raw[4 : 4 + a])
tokenizer = raw[4 + a : 4 + a + b]
config.update(hidden_size=H, intermediate_size=FFN, num_attention_heads=2)

rng = np.random.default_rng(0)
shapes = {
    "bert.embeddings.word_embeddings.weight": (config["vocab_size"], H),
    "bert.embeddings.position_embeddings.weight": (config["max_position_embeddings"], H),
    "bert.embeddings.token_type_embeddings.weight": (2, H),
    "bert.embeddings.LayerNorm.weight": (H,),
    "bert.embeddings.LayerNorm.bias": (H,),
    "bert.pooler.dense.weight": (H, H),
    "bert.pooler.dense.bias": (H,),
    "classifier.weight": (len(config["id2label"]), H),
    "classifier.bias": (len(config["id2label"]),),
}
for name, shape in [("attention.self.query", (H, H)), ("attention.self.key", (H, H)), ("attention.self.value", (H, H)),
                    ("attention.output.dense", (H, H)), ("intermediate.dense", (FFN, H)), ("output.dense", (H, FFN))]:
    shapes[f"bert.encoder.layer.0.{name}.weight"] = shape
    shapes[f"bert.encoder.layer.0.{name}.bias"] = (shape[0],)
for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
    shapes[f"bert.encoder.layer.0.{ln}.weight"] = (H,)
    shapes[f"bert.encoder.layer.0.{ln}.bias"] = (H,)

tensors = {}
for name, shape in shapes.items():
    w = np.ones(shape, np.float32) if name.endswith("LayerNorm.weight") else rng.uniform(-0.5, 0.5, shape).astype(np.float32)
    if name.endswith(".weight") and len(shape) == 2 and shape[1] % BLOCK == 0 and shape[0] > 2:
        blocks = w.reshape(-1, BLOCK)
        scale = (np.abs(blocks).max(axis=1) / 7).astype(np.float16)
        s = scale.astype(np.float32)[:, None]
        q = (np.clip(np.round(np.divide(blocks, s, out=np.zeros_like(blocks), where=s > 0)), -8, 7) + 8).astype(np.uint8)
        q = q.reshape(-1, 2)
        tensors[name] = (q[:, 0] | (q[:, 1] << 4)).astype(np.uint8).reshape(shape[0], shape[1] // 2)
        tensors[name + "_scale"] = scale.reshape(shape[0], shape[1] // BLOCK)
    else:
        tensors[name] = w.astype(np.float16)

weights = save(tensors, metadata={"format": "pt", "bert_tasks.quantization": "q4-block32-symmetric"})
config = json.dumps(config).encode()
(HERE / "tiny-classify-q4.bin").write_bytes(struct.pack("<HH", len(config), len(tokenizer)) + config + tokenizer + weights)
print(f"wrote {HERE / 'tiny-classify-q4.bin'} ({len(weights)} bytes of weights)")
