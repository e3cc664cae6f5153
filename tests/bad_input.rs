//! The bad-input table (README "Reliability"): every row is a test here, natively; the rows that
//! apply to the browser also run in wasm (tests/wasm_shared, tests/js). Each bad input must give
//! an error that names the problem — or a defined result, for empty text — and leave the process
//! and the model usable. Tiny in-memory models keep this fast; the files are real files.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use bert_tasks::tasks::Model;
use bert_tasks::testing::tiny_model;
use bert_tasks::text::relation::CharSpan;
use candle_core::{Device, Tensor};
use common::TempDir;
use serde_json::{json, Value};

/// A tiny classify model folder; `edit` changes the three files before they are written.
fn folder(edit: impl FnOnce(&mut Value, &mut Vec<u8>, &mut Vec<u8>)) -> TempDir {
    let dir = TempDir::new("bad-input");
    let (c, mut t, mut w) = tiny_model(json!({"task": "classify", "pooling": "pooler"}), &["NEG", "POS"], 3);
    let mut config: Value = serde_json::from_slice(&c).unwrap();
    edit(&mut config, &mut t, &mut w);
    std::fs::write(dir.0.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.0.join("tokenizer.json"), t).unwrap();
    std::fs::write(dir.0.join("model.safetensors"), w).unwrap();
    dir
}

fn load(dir: &Path) -> Result<Model, String> {
    Model::load(dir, &Device::Cpu).map_err(|e| e.to_string())
}

fn load_err(dir: &TempDir) -> String {
    let e = load(&dir.0).err().expect("this folder must not load");
    // The process stays usable: a good folder still loads right after.
    let good = folder(|_, _, _| {});
    load(&good.0).expect("a good model still loads after an error");
    e
}

fn assert_names(e: &str, words: &[&str]) {
    assert!(!e.contains("\n   0: "), "no backtrace in a message for people: {e}");
    for w in words {
        assert!(e.contains(w), "error {e:?} should mention {w:?}");
    }
}

/// The safetensors header (JSON) and the data after it.
fn split(w: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(w[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&w[8..8 + n]).unwrap(), w[8 + n..].to_vec())
}

fn join(header: &Value, data: &[u8]) -> Vec<u8> {
    let h = header.to_string().into_bytes();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

/// Re-encodes the weights after changing the tensors themselves.
fn retensor(w: &mut Vec<u8>, f: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let mut map = candle_core::safetensors::load_buffer(w, &Device::Cpu).unwrap();
    f(&mut map);
    let dir = TempDir::new("retensor");
    let p = dir.0.join("w.safetensors");
    candle_core::safetensors::save(&map, &p).unwrap();
    *w = std::fs::read(&p).unwrap();
}

#[test]
fn missing_files_are_named() {
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        let dir = folder(|_, _, _| {});
        std::fs::remove_file(dir.0.join(file)).unwrap();
        assert_names(&load_err(&dir), &[file]);
    }
    assert_names(&load(Path::new("/no/such/folder")).err().unwrap(), &["/no/such/folder"]);
}

#[test]
fn config_that_is_not_json_names_the_file_and_place() {
    let dir = folder(|_, _, _| {});
    std::fs::write(dir.0.join("config.json"), "{\"hidden_size\": 8,\n  oops }").unwrap();
    assert_names(&load_err(&dir), &["config.json", "line 2"]);
}

#[test]
fn config_missing_fields_fall_back_to_bert_defaults_and_the_mismatch_names_a_tensor() {
    // transformers fills a missing field with BertConfig's default (hidden_size 768); so do we.
    // Here that contradicts the weights, and the error names the first tensor that disagrees
    // and both shapes.
    let dir = folder(|c, _, _| {
        c.as_object_mut().unwrap().remove("hidden_size");
    });
    assert_names(&load_err(&dir), &["shape mismatch", "768"]);
}

#[test]
fn config_with_wrong_field_types_names_the_field() {
    let dir = folder(|c, _, _| c["num_hidden_layers"] = json!("six"));
    assert_names(&load_err(&dir), &["config.json", "num_hidden_layers"]);
}

#[test]
fn id2label_size_unequal_to_the_head_names_the_head_tensor() {
    let dir = folder(|c, _, _| c["id2label"]["2"] = json!("EXTRA"));
    assert_names(&load_err(&dir), &["classifier.weight", "3"]);
}

#[test]
fn truncated_weights_are_an_error() {
    for keep in [0usize, 7, 100, 1000] {
        let dir = folder(|_, _, w| w.truncate(keep.min(w.len() - 1)));
        assert_names(&load_err(&dir), &["model.safetensors"]);
    }
}

#[test]
fn a_header_that_lies_is_refused_without_a_huge_allocation() {
    // Offsets past the end of the data.
    let dir = folder(|_, _, w| {
        let (mut h, data) = split(w);
        h["classifier.bias"]["data_offsets"][1] = json!(1u64 << 40);
        *w = join(&h, &data);
    });
    assert_names(&load_err(&dir), &["model.safetensors"]);
    // A shape whose size disagrees with its offsets.
    let dir = folder(|_, _, w| {
        let (mut h, data) = split(w);
        h["classifier.bias"]["shape"] = json!([1u64 << 40]);
        *w = join(&h, &data);
    });
    assert_names(&load_err(&dir), &["model.safetensors"]);
    // A header length of 2^62 bytes: must be refused before anything that size is allocated.
    let dir = folder(|_, _, w| w[..8].copy_from_slice(&(1u64 << 62).to_le_bytes()));
    let t = Instant::now();
    assert_names(&load_err(&dir), &["model.safetensors"]);
    assert!(t.elapsed().as_secs() < 5, "refused at once, not after allocating");
}

#[test]
fn an_unknown_dtype_is_an_error() {
    let dir = folder(|_, _, w| {
        let (mut h, data) = split(w);
        h["classifier.bias"]["dtype"] = json!("Q7");
        *w = join(&h, &data);
    });
    assert_names(&load_err(&dir), &["model.safetensors"]);
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = folder(|_, _, w| {
        retensor(w, |m| {
            m.remove("bert.encoder.layer.0.attention.self.key.weight");
        })
    });
    assert_names(&load_err(&dir), &["encoder.layer.0.attention.self.key.weight"]);
}

#[test]
fn a_misshaped_tensor_is_named_with_both_shapes() {
    let dir = folder(|_, _, w| {
        retensor(w, |m| {
            m.insert("bert.pooler.dense.weight".into(), Tensor::zeros((8, 4), candle_core::DType::F32, &Device::Cpu).unwrap());
        })
    });
    assert_names(&load_err(&dir), &["pooler.dense.weight", "[8, 4]", "[8, 8]"]);
}

#[test]
fn a_broken_tokenizer_is_named() {
    let dir = folder(|_, t, _| t.truncate(t.len() / 2));
    assert_names(&load_err(&dir), &["tokenizer.json"]);
    let dir = folder(|_, t, _| *t = b"{\"model\": {\"type\": \"Nonsense\"}}".to_vec());
    assert_names(&load_err(&dir), &["tokenizer.json"]);
}

fn tiny(head: Value, labels: &[&str]) -> Model {
    let (c, t, w) = tiny_model(head, labels, 9);
    Model::from_bytes(&c, &t, &w, &Device::Cpu).unwrap()
}

#[test]
fn empty_blank_and_control_only_text_have_defined_results() {
    let c = tiny(json!({"task": "classify", "pooling": "mean"}), &["NEG", "POS"]);
    let t = tiny(json!({"task": "tag", "decoder": "crf", "scheme": "BIO"}), &["O", "B-LOC", "I-LOC"]);
    for text in ["", "   ", "\t\n\r", "\u{0}\u{7}\u{1b}", "\u{200b}\u{feff}"] {
        // classify: the model's answer for "[CLS] [SEP]" — a real distribution.
        let p = c.classify(text, None).unwrap();
        let sum: f32 = p.scores.0.iter().map(|s| s.1).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{text:?}: {sum}");
        // tag: nothing to tag.
        let r = t.tag(text).unwrap();
        assert!(r.tokens.is_empty() && r.spans.is_empty(), "{text:?}");
    }
    let words = t.tag_words(&[]).unwrap();
    assert!(words.is_empty());
}

#[test]
fn very_long_texts_are_windowed() {
    let t = tiny(json!({"task": "tag", "decoder": "crf", "scheme": "BIO"}), &["O", "B-LOC", "I-LOC"]);
    let c = tiny(json!({"task": "classify", "pooling": "cls"}), &["NEG", "POS"]);
    for n in [100_000usize, 1_000_000] {
        // "北京 " repeated: two CJK tokens per three characters.
        let text: String = "北京 ".repeat(n / 3);
        let r = t.tag(&text).unwrap();
        assert_eq!(r.tokens.len(), 2 * (n / 3));
        let last = r.tokens.last().unwrap();
        assert_eq!((last.start, last.end), (text.chars().count() - 2, text.chars().count() - 1));
        let p = c.classify(&text, None).unwrap();
        assert!((p.scores.0.iter().map(|s| s.1).sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn bad_relation_spans_name_the_span_and_the_model_survives() {
    let m = tiny(json!({"task": "relate", "method": "entity_markers"}), &["r1", "r2"]);
    let text = "paris is in france";
    let ok = (CharSpan { start: 0, end: 5 }, CharSpan { start: 12, end: 18 });
    let cases = [
        (CharSpan { start: 5, end: 0 }, ok.1, "head"),                  // reversed
        (CharSpan { start: 3, end: 3 }, ok.1, "head"),                  // empty
        (ok.0, CharSpan { start: 12, end: 99 }, "tail"),                // out of range
        (CharSpan { start: 0, end: 8 }, CharSpan { start: 6, end: 18 }, "overlap"), // overlapping
        (CharSpan { start: 5, end: 6 }, ok.1, "head"),                  // only a space: no token
    ];
    for (head, tail, word) in cases {
        let e = m.relate(text, head, tail).expect_err("bad span").to_string();
        assert!(e.contains(word), "{head:?} {tail:?}: {e}");
        assert!(e.contains(&format!("{}", head.start)) || e.contains(&format!("{}", tail.end)), "names the offsets: {e}");
    }
    m.relate(text, ok.0, ok.1).expect("the model still works");
}

/// Writes the seed of the `model_folder` fuzz target (run by hand: `cargo test --release --test
/// bad_input -- --ignored`): a tiny classify model as [u16 config len][u16 tokenizer len] + files.
#[test]
#[ignore]
fn write_fuzz_seed() {
    let (c, t, w) = tiny_model(json!({"task": "classify", "pooling": "mean"}), &["a", "b"], 1);
    let mut out = (c.len() as u16).to_le_bytes().to_vec();
    out.extend((t.len() as u16).to_le_bytes());
    out.extend(c);
    out.extend(t);
    out.extend(w);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/model_folder");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tiny-classify.bin"), out).unwrap();
}

/// Inputs the fuzzer found crashing (tests/fixtures/fuzz-crashes/, model_folder layout): each must
/// now be a clean error.
#[test]
fn fuzz_crashes_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-crashes");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let a = u16::from_le_bytes([data[0], data[1]]) as usize;
        let b = u16::from_le_bytes([data[2], data[3]]) as usize;
        let (c, rest) = data[4..].split_at(a);
        let (t, w) = rest.split_at(b);
        assert!(bert_tasks::checkpoint::Checkpoint::from_bytes(c, t, w).is_err());
    }
}

#[test]
fn tokenizer_parts_the_tokenizers_crate_would_panic_on_are_errors() {
    // A syntax error inside "decoder" (tokenizers 0.23 `expect`s there) and an undecodable
    // Precompiled normaliser (another `expect`).
    let (c, t, w) = tiny_model(json!({"task": "classify"}), &["a", "b"], 3);
    let text = String::from_utf8(t).unwrap();
    let broken = text.replacen("\"decoder\":{", "\"decoder\":{\"type\":\u{1}", 1).into_bytes();
    let e = Model::from_bytes(&c, &broken, &w, &Device::Cpu).err().unwrap().to_string();
    assert_names(&e, &["tokenizer.json"]);
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["normalizer"] = json!({"type": "Precompiled", "precompiled_charsmap": "AAAA"});
    let e = Model::from_bytes(&c, v.to_string().as_bytes(), &w, &Device::Cpu).err().unwrap().to_string();
    assert_names(&e, &["tokenizer.json", "Precompiled"]);
}
