//! Writes the real-weight models and the native outputs that the JavaScript tests (tests/js/,
//! Node and Chromium) compare the wasm package against, into `$BERT_TASKS_CACHE/js-fixtures/`.
//! It checks its own outputs too, so it is a test and not just a generator.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use bert_tasks::tasks::Model;
use bert_tasks::text::relation::CharSpan;
use candle_core::Device;
use common::*;
use serde_json::{json, Value};

#[test]
fn writes_models_and_native_outputs_for_the_js_tests() {
    let root = cache_dir().join("js-fixtures");
    std::fs::create_dir_all(&root).unwrap();
    let mut all = serde_json::Map::new();

    // classify (PyTorch BertForSequenceClassification checkpoint, pooler).
    let dir = root.join("classify-en");
    pytorch_checkpoint_in("all-minilm-l6-v2-classify", "all-minilm-l6-v2", None, &dir);
    let m = Model::load(&dir, &Device::Cpu).unwrap();
    let inputs = json!([["I love Paris 🗼 and 東京.", null], ["A man is playing a guitar.", "Someone plays music."]]);
    let outputs: Vec<Value> = inputs
        .as_array()
        .unwrap()
        .iter()
        .map(|i| serde_json::to_value(m.classify(i[0].as_str().unwrap(), i[1].as_str()).unwrap()).unwrap())
        .collect();
    all.insert("classify-en".into(), json!({"task": "classify", "inputs": inputs, "outputs": outputs}));

    // tag: softmax (BertForTokenClassification as saved) and constrained CRF (word segmentation).
    let texts = json!(["这家酒店的服务太差了😡", "苹果公司发布了新款iPhone 15手机。", "𠮷野家在北京开店"]);
    for (name, ckpt, head) in [
        ("tag-softmax-zh", "m3e-small-tag-bio", None),
        ("tag-crf-zh", "m3e-small-tag-bmes", Some(json!({"task": "tag", "decoder": "crf", "scheme": "BMES", "constrained": true}))),
    ] {
        let dir = root.join(name);
        pytorch_checkpoint_in(ckpt, "m3e-small", head, &dir);
        let m = Model::load(&dir, &Device::Cpu).unwrap();
        let outputs: Vec<Value> = texts
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let r = m.tag(t.as_str().unwrap()).unwrap();
                let chars: Vec<char> = t.as_str().unwrap().chars().collect();
                for tok in &r.tokens {
                    assert_eq!(tok.text, chars[tok.start..tok.end].iter().collect::<String>());
                }
                serde_json::to_value(r).unwrap()
            })
            .collect();
        all.insert(name.into(), json!({"task": "tag", "inputs": texts, "outputs": outputs}));
    }

    // relate (entity markers on the real English encoder, seeded random head).
    let dir = root.join("relate-en");
    let tmp = random_head_checkpoint(
        "all-minilm-l6-v2",
        &["birthPlace", "capital", "leader"],
        json!({"task": "relate", "method": "entity_markers"}),
        &[("classifier.weight", vec![3, 768]), ("classifier.bias", vec![3])],
    );
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(tmp.0.join(f), dir.join(f)).unwrap();
    }
    let m = Model::load(&dir, &Device::Cpu).unwrap();
    // Character offsets here; the JS side converts them to UTF-16 (the emoji counts twice there).
    let inputs = json!([
        {"text": "Barack Obama was born in Honolulu, Hawaii.", "head": {"start": 0, "end": 12}, "tail": {"start": 25, "end": 33}},
        {"text": "🗼 Paris is the capital of France.", "head": {"start": 2, "end": 7}, "tail": {"start": 26, "end": 32}}
    ]);
    let outputs: Vec<Value> = inputs
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let span = |v: &Value| CharSpan { start: v["start"].as_u64().unwrap() as usize, end: v["end"].as_u64().unwrap() as usize };
            serde_json::to_value(m.relate(i["text"].as_str().unwrap(), span(&i["head"]), span(&i["tail"])).unwrap()).unwrap()
        })
        .collect();
    all.insert("relate-en".into(), json!({"task": "relate", "inputs": inputs, "outputs": outputs}));

    // q8 and q4 exports of two of them: the wasm package reads quantised weights as native does.
    use bert_tasks::model::quantize::Scheme;
    for (name, from, scheme) in [
        ("classify-en-q8", "classify-en", Scheme::Q8),
        ("tag-crf-zh-q8", "tag-crf-zh", Scheme::Q8),
        ("classify-en-q4", "classify-en", Scheme::Q4),
        ("tag-crf-zh-q4", "tag-crf-zh", Scheme::Q4),
    ] {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["config.json", "tokenizer.json"] {
            std::fs::copy(root.join(from).join(f), dir.join(f)).unwrap();
        }
        let tensors = bert_tasks::model::Weights::from_dir(&root.join(from)).unwrap().into_tensors().unwrap();
        bert_tasks::model::weights::save_quantized(&tensors, scheme, &dir.join("model.safetensors")).unwrap();
        let m = Model::load(&dir, &Device::Cpu).unwrap();
        let f = all[from].clone();
        let outputs: Vec<Value> = f["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| match f["task"].as_str().unwrap() {
                "classify" => serde_json::to_value(m.classify(i[0].as_str().unwrap(), i[1].as_str()).unwrap()).unwrap(),
                _ => serde_json::to_value(m.tag(i.as_str().unwrap()).unwrap()).unwrap(),
            })
            .collect();
        all.insert(name.into(), json!({"task": f["task"], "inputs": f["inputs"], "outputs": outputs}));
    }

    std::fs::write(root.join("native.json"), serde_json::to_string_pretty(&Value::Object(all)).unwrap()).unwrap();
}
