//! Tiny random models built in memory, for unit tests that must run anywhere (natively, in
//! Node, in a browser) without the real weights. Every capability is also tested on the real
//! weights elsewhere; these only exercise plumbing (offsets, errors, batching) quickly.

use serde_json::json;

const VOCAB: [&str; 24] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused1]", "[unused2]", "[unused3]", "[unused4]", "hello", "world",
    "paris", "is", "in", "france", "##s", "好", "北", "京", "我", "爱", ".", ",", "!",
];

/// `tokenizer.json` of a lower-casing BERT WordPiece tokenizer over [`VOCAB`].
pub fn tokenizer_json() -> String {
    let vocab: serde_json::Map<String, serde_json::Value> =
        VOCAB.iter().enumerate().map(|(i, t)| (t.to_string(), json!(i))).collect();
    let special = |id: usize| {
        json!({"id": id, "content": VOCAB[id], "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
    };
    let tok = |id: &str, type_id: u32| json!({"SpecialToken": {"id": id, "type_id": type_id}});
    let seq = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0), special(1), special(2), special(3), special(4)],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0)],
            "pair": [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0), seq("B", 1), tok("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}
    })
    .to_string()
}

const HIDDEN: usize = 8;
const FFN: usize = 16;
const POSITIONS: usize = 32;

/// `(config.json, tokenizer.json, model.safetensors)` for a 1-layer model with `task_head` and
/// `labels`, weights drawn deterministically from `seed`.
pub fn tiny_model(task_head: serde_json::Value, labels: &[&str], seed: u64) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let n = labels.len();
    let h = HIDDEN;
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("bert.embeddings.word_embeddings.weight".into(), vec![VOCAB.len(), h]),
        ("bert.embeddings.position_embeddings.weight".into(), vec![POSITIONS, h]),
        ("bert.embeddings.token_type_embeddings.weight".into(), vec![2, h]),
        ("bert.embeddings.LayerNorm.weight".into(), vec![h]),
        ("bert.embeddings.LayerNorm.bias".into(), vec![h]),
        ("bert.pooler.dense.weight".into(), vec![h, h]),
        ("bert.pooler.dense.bias".into(), vec![h]),
    ];
    let l = "bert.encoder.layer.0";
    for (name, shape) in [
        ("attention.self.query", vec![h, h]),
        ("attention.self.key", vec![h, h]),
        ("attention.self.value", vec![h, h]),
        ("attention.output.dense", vec![h, h]),
        ("intermediate.dense", vec![FFN, h]),
        ("output.dense", vec![h, FFN]),
    ] {
        shapes.push((format!("{l}.{name}.bias"), vec![shape[0]]));
        shapes.push((format!("{l}.{name}.weight"), shape));
    }
    for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
        shapes.push((format!("{l}.{ln}.weight"), vec![h]));
        shapes.push((format!("{l}.{ln}.bias"), vec![h]));
    }
    let features = match task_head["method"].as_str() {
        Some("entity_pool") | Some("entity_markers") => 2 * h,
        _ => h,
    };
    shapes.push(("classifier.weight".into(), vec![n, features]));
    shapes.push(("classifier.bias".into(), vec![n]));
    if task_head["decoder"] == "crf" {
        shapes.push(("crf.transitions".into(), vec![n, n]));
        shapes.push(("crf.start_transitions".into(), vec![n]));
        shapes.push(("crf.end_transitions".into(), vec![n]));
    }
    if task_head["method"] == "position_embedding" {
        shapes.push(("relation_positions.head_distance.weight".into(), vec![129, h]));
        shapes.push(("relation_positions.tail_distance.weight".into(), vec![129, h]));
    }
    let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = shapes
        .into_iter()
        .map(|(name, shape)| {
            let count: usize = shape.iter().product();
            let ones = name.ends_with("LayerNorm.weight");
            let bytes = (0..count).flat_map(|_| (if ones { 1.0 } else { next() }).to_le_bytes()).collect();
            (name, shape, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(name, shape, bytes)| {
            (name.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes).expect("valid view"))
        })
        .collect();
    let weights = safetensors::tensor::serialize(views, None).expect("serialise");
    let config = json!({
        "model_type": "bert", "vocab_size": VOCAB.len(), "hidden_size": h, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": FFN, "max_position_embeddings": POSITIONS,
        "type_vocab_size": 2, "hidden_act": "gelu",
        "id2label": labels.iter().enumerate().map(|(i, l)| (i.to_string(), json!(l))).collect::<serde_json::Map<_, _>>(),
        "task_head": task_head,
    });
    (config.to_string().into_bytes(), tokenizer_json().into_bytes(), weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::Model;

    #[test]
    fn tiny_models_load_and_run_every_task() {
        let dev = candle_core::Device::Cpu;
        let (c, t, w) = tiny_model(json!({"task": "classify", "pooling": "mean"}), &["NEG", "POS"], 1);
        let m = Model::from_bytes(&c, &t, &w, &dev).unwrap();
        let p = m.classify("hello world", Some("paris")).unwrap();
        assert!((p.scores.0.iter().map(|s| s.1).sum::<f32>() - 1.0).abs() < 1e-5);
        let (c, t, w) = tiny_model(json!({"task": "tag", "decoder": "crf", "scheme": "BIO"}), &["O", "B-LOC", "I-LOC"], 2);
        let m = Model::from_bytes(&c, &t, &w, &dev).unwrap();
        let r = m.tag("我爱北京").unwrap();
        assert_eq!(r.tokens.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(), vec!["我", "爱", "北", "京"]);
        let (c, t, w) = tiny_model(json!({"task": "relate", "method": "entity_markers"}), &["r1", "r2"], 3);
        let m = Model::from_bytes(&c, &t, &w, &dev).unwrap();
        let span = |a, b| crate::text::relation::CharSpan { start: a, end: b };
        assert!(m.relate("paris is in france", span(0, 5), span(12, 18)).is_ok());
    }
}
