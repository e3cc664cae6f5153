//! classify and tag heads on the real encoders agree with PyTorch checkpoints saved by
//! transformers' `save_pretrained` (fixtures from tests/reference/make_fixtures.py): probabilities
//! within 1e-4, tags and offsets exactly; CRF decoding equals pytorch-crf's, constrained or not.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use bert_tasks::tasks::Model;
use candle_core::Device;
use common::*;
use serde_json::json;

const BASES: [&str; 2] = ["all-minilm-l6-v2", "m3e-small"];

fn classify_model(base: &str, pooling: Option<&str>) -> (TempDir, Model) {
    let th = pooling.map(|p| json!({"task": "classify", "pooling": p}));
    let dir = pytorch_checkpoint(&format!("{base}-classify"), base, th);
    let model = Model::load(&dir.0, &Device::Cpu).unwrap();
    (dir, model)
}

#[test]
fn classify_matches_pytorch_for_every_pooling() {
    for base in BASES {
        let fx = fixture(&format!("classify-{base}.json"));
        // No task_head: the head is inferred from `architectures`, as for any save_pretrained folder.
        for pooling in [None, Some("cls"), Some("mean"), Some("max")] {
            let (_dir, model) = classify_model(base, pooling);
            let key = pooling.unwrap_or("pooler");
            let mut worst = 0f32;
            for input in fx["inputs"].as_array().unwrap() {
                let a = input["text"].as_str().unwrap();
                let b = input["text_pair"].as_str();
                let enc = match b {
                    Some(b) => model.encoder.tokenizer.encode_pair(a, b).unwrap(),
                    None => model.encoder.tokenizer.encode(a).unwrap(),
                };
                let ids: Vec<u32> = serde_json::from_value(input["input_ids"].clone()).unwrap();
                let types: Vec<u32> = serde_json::from_value(input["type_ids"].clone()).unwrap();
                assert_eq!((enc.ids, enc.type_ids), (ids, types), "{base} {a:?}");
                let p = model.classify(a, b).unwrap();
                let got: Vec<f32> = p.scores.0.iter().map(|(_, v)| *v).collect();
                worst = worst.max(max_abs_diff(&got, &floats(&input["probs"][key])));
                let labels: Vec<String> = serde_json::from_value(fx["labels"].clone()).unwrap();
                let best = got.iter().cloned().fold(f32::MIN, f32::max);
                assert_eq!(p.score, best);
                assert!(labels.contains(&p.label));
            }
            eprintln!("{base} classify/{key}: max |ours - pytorch| = {worst:.2e}");
            assert!(worst <= 1e-4, "{base} {key}: {worst}");
        }
    }
}

#[test]
fn classify_batch_equals_one_at_a_time() {
    // mean: every position; pooler: the last layer on [CLS] alone, padded batch or not.
    for (base, pooling) in BASES.into_iter().flat_map(|b| [(b, "mean"), (b, "pooler")]) {
        let (_dir, model) = classify_model(base, Some(pooling));
        let fx = fixture(&format!("classify-{base}.json"));
        let inputs: Vec<(&str, Option<&str>)> = fx["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["text"].as_str().unwrap(), i["text_pair"].as_str()))
            .collect();
        let batch = model.classify_batch(&inputs).unwrap();
        for (one, (a, b)) in batch.iter().zip(&inputs) {
            let single = model.classify(a, *b).unwrap();
            assert_eq!(one.label, single.label);
            let d = max_abs_diff(
                &one.scores.0.iter().map(|x| x.1).collect::<Vec<_>>(),
                &single.scores.0.iter().map(|x| x.1).collect::<Vec<_>>(),
            );
            assert!(d < 1e-5, "{base} {pooling}: batch vs single differ by {d}");
        }
    }
}

fn tag_model(name: &str, base: &str, decoder: &str, scheme: &str, constrained: bool) -> (TempDir, Model) {
    let th = (decoder != "inferred")
        .then(|| json!({"task": "tag", "decoder": decoder, "scheme": scheme, "constrained": constrained}));
    let dir = pytorch_checkpoint(name, base, th);
    let model = Model::load(&dir.0, &Device::Cpu).unwrap();
    (dir, model)
}

fn check_tags(fixture_name: &str, checkpoint: &str, base: &str, scheme: &str) {
    let fx = fixture(fixture_name);
    let variants = [("inferred", false, "softmax_tags"), ("crf", false, "crf_tags"), ("crf", true, "crf_constrained_tags")];
    for (decoder, constrained, key) in variants {
        let (_dir, model) = tag_model(checkpoint, base, decoder, scheme, constrained);
        let inputs = fx["inputs"].as_array().unwrap();
        let texts: Vec<&str> = inputs.iter().map(|i| i["text"].as_str().unwrap()).collect();
        let batch = model.tag_batch(&texts).unwrap();
        for (input, got) in inputs.iter().zip(&batch) {
            let text = input["text"].as_str().unwrap();
            let want_tags: Vec<String> = serde_json::from_value(input[key].clone()).unwrap();
            let got_tags: Vec<String> = got.tokens.iter().map(|t| t.tag.clone()).collect();
            assert_eq!(got_tags, want_tags, "{checkpoint} {key} {text:?}");
            let offsets: Vec<(usize, usize)> = got.tokens.iter().map(|t| (t.start, t.end)).collect();
            let want_offsets: Vec<(usize, usize)> = input["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (t["start"].as_u64().unwrap() as usize, t["end"].as_u64().unwrap() as usize))
                .collect();
            assert_eq!(offsets, want_offsets, "{checkpoint} offsets {text:?}");
            if key == "softmax_tags" {
                let scores: Vec<f32> = got.tokens.iter().map(|t| t.score).collect();
                assert!(max_abs_diff(&scores, &floats(&input["softmax_scores"])) <= 1e-4);
            }
            // Batch = one at a time.
            assert_eq!(&model.tag(text).unwrap().tokens.iter().map(|t| t.tag.clone()).collect::<Vec<_>>(), &got_tags);
            // Spans point at the caller's characters.
            let chars: Vec<char> = text.chars().collect();
            for s in &got.spans {
                assert_eq!(s.text, chars[s.start..s.end].iter().collect::<String>());
            }
        }
    }
}

#[test]
fn tag_bio_matches_pytorch_and_pytorch_crf_english() {
    check_tags("tag-all-minilm-l6-v2-bio.json", "all-minilm-l6-v2-tag-bio", "all-minilm-l6-v2", "BIO");
}

#[test]
fn tag_bio_matches_pytorch_and_pytorch_crf_chinese() {
    check_tags("tag-m3e-small-bio.json", "m3e-small-tag-bio", "m3e-small", "BIO");
}

#[test]
fn word_segmentation_bmes_matches_pytorch_crf() {
    check_tags("tag-m3e-small-bmes.json", "m3e-small-tag-bmes", "m3e-small", "BMES");
}

/// Text longer than the window is tagged in overlapping windows: every token is tagged once,
/// offsets stay in order, constrained decoding (CRF or softmax) stays valid across window
/// borders, and the windows' emissions mostly agree with the single-pass ones.
#[test]
fn long_text_is_windowed_not_truncated() {
    let text = "北京是中国的首都，上海是最大的城市。".repeat(6);
    for (decoder, constrained) in [("softmax", false), ("softmax", true), ("crf", true)] {
        let (_dir, mut model) = tag_model("m3e-small-tag-bio", "m3e-small", decoder, "BIO", constrained);
        let full = model.tag(&text).unwrap();
        model.set_max_tokens(40).unwrap();
        let windowed = model.tag(&text).unwrap();
        assert_eq!(windowed.tokens.len(), text.chars().count());
        assert_eq!(
            windowed.tokens.iter().map(|t| (t.start, t.end)).collect::<Vec<_>>(),
            full.tokens.iter().map(|t| (t.start, t.end)).collect::<Vec<_>>()
        );
        let labels = model.labels.clone();
        let path: Vec<usize> =
            windowed.tokens.iter().map(|t| labels.iter().position(|l| *l == t.tag).unwrap()).collect();
        if constrained {
            let cons = bert_tasks::text::scheme::Constraints::new(bert_tasks::text::scheme::Scheme::BIO, &labels).unwrap();
            assert!(cons.is_valid(&path), "constrained {decoder} produced an invalid sequence across windows");
        } else {
            let agree = windowed.tokens.iter().zip(&full.tokens).filter(|(a, b)| a.tag == b.tag).count();
            eprintln!("windowed softmax: {agree}/{} tags as in one pass", full.tokens.len());
            // A random head turns small context changes into tag flips, so exact agreement is
            // not expected; a mis-merged window (wrong token → window row) scores near chance (1/7).
            assert!(agree * 10 >= full.tokens.len() * 7, "only {agree}/{} tags agree", full.tokens.len());
        }
    }
}

#[test]
fn word_level_input_gets_one_tag_per_word() {
    let (_dir, model) = tag_model("all-minilm-l6-v2-tag-bio", "all-minilm-l6-v2", "softmax", "BIO", false);
    let words = ["Johanssen", "visited", "Reykjavik", "yesterday", "."];
    let tagged = model.tag_words(&words).unwrap();
    assert_eq!(tagged.len(), words.len());
    let full = model.tag(&words.join(" ")).unwrap();
    // "Johanssen" splits into several word pieces; the word takes the first one's tag.
    assert!(full.tokens.len() > words.len());
    assert_eq!(tagged[0].tag.as_deref(), Some(full.tokens[0].tag.as_str()));
    assert!(model.tag_words(&["two words"]).is_err());
}

#[test]
fn wrong_task_and_missing_labels_are_clear_errors() {
    let (_dir, model) = classify_model("all-minilm-l6-v2", None);
    let e = model.tag("hello").unwrap_err().to_string();
    assert!(e.contains("classify model"), "{e}");
    let e = Model::load(model_dir("all-minilm-l6-v2"), &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("task_head") || e.contains("id2label"), "{e}");
}
