//! Checks of the wasm API shared by the browser and the Node test suites (tiny in-memory
//! models; the real-weight comparison with native runs in tests/js/).

use bert_tasks::testing::tiny_model;
use bert_tasks::wasm::WasmModel;
use serde_json::{json, Value};
use wasm_bindgen::JsValue;

/// What a JS caller passes: plain objects and arrays.
fn js(v: Value) -> JsValue {
    use serde::Serialize;
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap()
}

fn rs(v: JsValue) -> Value {
    serde_wasm_bindgen::from_value(v).unwrap()
}

fn model(head: Value, labels: &[&str]) -> WasmModel {
    let (c, t, w) = tiny_model(head, labels, 5);
    WasmModel::from_bytes(&c, &t, &w).unwrap_or_else(|_| panic!("tiny model loads"))
}

/// Offsets are UTF-16 code units: `text.slice(start, end)` is the token's text in JS.
pub fn tag_offsets_are_utf16() {
    let m = model(json!({"task": "tag", "decoder": "crf", "scheme": "BIO"}), &["O", "B-LOC", "I-LOC"]);
    let text = "😡北京 hello";
    let r = rs(m.tag(text).unwrap());
    let units: Vec<u16> = text.encode_utf16().collect();
    let tokens = r["tokens"].as_array().unwrap();
    let spans: Vec<(u64, u64)> = tokens.iter().map(|t| (t["start"].as_u64().unwrap(), t["end"].as_u64().unwrap())).collect();
    assert_eq!(spans, vec![(0, 2), (2, 3), (3, 4), (5, 10)]);
    for t in tokens {
        let (a, b) = (t["start"].as_u64().unwrap() as usize, t["end"].as_u64().unwrap() as usize);
        assert_eq!(String::from_utf16(&units[a..b]).unwrap(), t["text"].as_str().unwrap());
    }
}

/// Errors come back as JS errors with a message, and the model keeps working afterwards.
pub fn errors_are_errors_and_the_model_survives() {
    let m = model(json!({"task": "relate", "method": "entity_markers"}), &["r1", "r2"]);
    let text = "😡 paris is in france";
    // 1 falls inside the emoji's surrogate pair.
    assert!(m.relate(text, js(json!({"start": 1, "end": 8})), js(json!({"start": 15, "end": 21}))).is_err());
    assert!(m.relate(text, js(json!({"start": 8, "end": 3})), js(json!({"start": 15, "end": 21}))).is_err());
    assert!(m.relate(text, js(json!({"start": 3})), js(json!({"start": 15, "end": 21}))).is_err());
    let ok = rs(m.relate(text, js(json!({"start": 3, "end": 8})), js(json!({"start": 15, "end": 21}))).unwrap());
    assert!(ok["label"] == "r1" || ok["label"] == "r2");
    assert!(m.tag("x").is_err(), "wrong task is an error");
    assert!(WasmModel::from_bytes(b"{", b"{}", b"").is_err());
    let (c, t, w) = tiny_model(json!({"task": "classify"}), &["a", "b"], 1);
    assert!(WasmModel::from_bytes(&c, &t, &w[..w.len() / 2]).is_err(), "truncated weights");
}

pub fn batches_equal_single_calls() {
    let m = model(json!({"task": "classify", "pooling": "mean"}), &["NEG", "POS"]);
    let batch = rs(m.classify_batch(js(json!(["hello world", ["paris", "france"], {"text": "好", "textPair": "北京"}]))).unwrap());
    let single = rs(m.classify("paris", Some("france".into())).unwrap());
    let (a, b) = (batch[1]["scores"]["POS"].as_f64().unwrap(), single["scores"]["POS"].as_f64().unwrap());
    assert!((a - b).abs() < 1e-5);
    let info = rs(m.info().unwrap());
    assert_eq!(info["task"], "classify");
    assert_eq!(info["labels"], json!(["NEG", "POS"]));
}

/// The model-file rows of the bad-input table (tests/bad_input.rs has them all natively): each is
/// an error with a message naming the file, never a panic, and a good model loads afterwards.
pub fn bad_model_files_are_errors() {
    let (c, t, w) = tiny_model(json!({"task": "classify"}), &["a", "b"], 1);
    let msg = |r: Result<WasmModel, wasm_bindgen::JsError>| -> String {
        let e = r.err().expect("must fail");
        let v: JsValue = e.into();
        js_sys::Error::from(v).message().as_string().unwrap()
    };
    let mut huge = w.clone();
    huge[..8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(msg(WasmModel::from_bytes(&c, &t, &huge)).contains("model.safetensors"));
    assert!(msg(WasmModel::from_bytes(b"{ nope", &t, &w)).contains("config.json"));
    assert!(msg(WasmModel::from_bytes(&c, &t[..t.len() / 2], &w)).contains("tokenizer.json"));
    let mut cfg: Value = serde_json::from_slice(&c).unwrap();
    cfg["id2label"]["2"] = json!("extra");
    assert!(msg(WasmModel::from_bytes(cfg.to_string().as_bytes(), &t, &w)).contains("classifier.weight"));
    assert!(WasmModel::from_bytes(&c, &t, &w).is_ok(), "a good model still loads");
}

/// Empty text has a defined result; long texts (`sizes` characters) are windowed and the
/// module's memory stays bounded. (The browser suite runs 100,000 characters: a synchronous call
/// much longer than 20 s starves the test runner's WebDriver polling; Node runs 1,000,000 too.)
pub fn empty_and_huge_texts(sizes: &[usize]) {
    let m = model(json!({"task": "tag", "decoder": "crf", "scheme": "BIO"}), &["O", "B-LOC", "I-LOC"]);
    for text in ["", "  \t\n", "\u{0}\u{7}"] {
        let r = rs(m.tag(text).unwrap());
        assert_eq!(r["tokens"], json!([]));
        assert_eq!(r["spans"], json!([]));
    }
    for &n in sizes {
        let text = "北京 ".repeat(n / 3);
        let r = rs(m.tag(&text).unwrap());
        assert_eq!(r["tokens"].as_array().unwrap().len(), 2 * (n / 3));
    }
    let pages = core::arch::wasm32::memory_size(0);
    assert!(pages * 65536 < 1 << 30, "wasm memory after a 1M-character text: {} MiB", pages * 65536 >> 20);
}

/// Declares the shared checks as `#[wasm_bindgen_test]`s in the including test file.
#[macro_export]
macro_rules! wasm_tests {
    () => {
        #[wasm_bindgen_test::wasm_bindgen_test]
        fn tag_offsets_are_utf16() {
            wasm_shared::tag_offsets_are_utf16();
        }

        #[wasm_bindgen_test::wasm_bindgen_test]
        fn errors_are_errors_and_the_model_survives() {
            wasm_shared::errors_are_errors_and_the_model_survives();
        }

        #[wasm_bindgen_test::wasm_bindgen_test]
        fn batches_equal_single_calls() {
            wasm_shared::batches_equal_single_calls();
        }

        #[wasm_bindgen_test::wasm_bindgen_test]
        fn bad_model_files_are_errors() {
            wasm_shared::bad_model_files_are_errors();
        }

        #[wasm_bindgen_test::wasm_bindgen_test]
        fn empty_and_huge_texts() {
            wasm_shared::empty_and_huge_texts(&[100_000]);
        }
    };
}
