//! The JavaScript API (wasm32 builds only). The public JS surface is the glue in `js/`, which
//! adds `Model.load` (fetch with progress, Cache API) and a worker; this file is what it calls.
//!
//! Offsets cross this boundary in UTF-16 code units (what JS strings index); inside Rust they are
//! characters. Every error becomes a JS `Error` with the message; a failed call leaves the model
//! usable.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::tasks::{Model, Tagging};

/// The thread pool of the threaded build (`+atomics`).
#[cfg(target_feature = "atomics")]
pub(crate) mod threads;

use crate::parallel::in_pool;
use crate::text::relation::CharSpan;
use crate::text::utf16::Utf16Map;

/// Runs once when the module is instantiated: panics (which the API is written never to raise)
/// would then reach `console.error` with a readable message.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Threads the kernels split work over: 1 in the single-threaded build or before the pool starts.
#[wasm_bindgen(js_name = threadCount)]
pub fn thread_count() -> usize {
    rayon::current_num_threads()
}

/// The int8 kernel q8/q4 models run in this engine, checked first against the portable one
/// (equal integer products, so equal outputs): `{ kernel, checked }`, or an error naming the
/// shape where a kernel differs. For tests and diagnostics: the relaxed-SIMD kernel exists only
/// inside an engine.
#[wasm_bindgen(js_name = int8KernelCheck)]
pub fn int8_kernel_check() -> Result<JsValue, JsError> {
    let checked = crate::model::int8::check_kernels().map_err(|e| JsError::new(&e))?;
    to_js(&serde_json::json!({ "kernel": crate::model::int8::kernel_name(), "checked": checked }))
}

fn js_err(e: crate::Error) -> JsError {
    JsError::new(&e.to_string())
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&format!("could not build the result: {e}")))
}

/// Character offsets → UTF-16 offsets in a tagging result.
fn tagging_to_utf16(text: &str, mut t: Tagging) -> Tagging {
    let m = Utf16Map::new(text);
    for tok in &mut t.tokens {
        tok.start = m.to_utf16(tok.start);
        tok.end = m.to_utf16(tok.end);
    }
    for s in &mut t.spans {
        s.start = m.to_utf16(s.start);
        s.end = m.to_utf16(s.end);
    }
    t
}

/// A span as JS gives it: UTF-16 code units.
#[derive(serde::Deserialize)]
struct Utf16Span {
    start: usize,
    end: usize,
}

impl Utf16Span {
    fn to_chars(&self, m: &Utf16Map, name: &str) -> Result<CharSpan, JsError> {
        Ok(CharSpan {
            start: m.to_chars(self.start, &format!("{name} start")).map_err(js_err)?,
            end: m.to_chars(self.end, &format!("{name} end")).map_err(js_err)?,
        })
    }
}

fn span_from_js(text: &str, v: JsValue, name: &str) -> Result<CharSpan, JsError> {
    let s: Utf16Span = serde_wasm_bindgen::from_value(v)
        .map_err(|e| JsError::new(&format!("{name} must be {{start, end}}: {e}")))?;
    s.to_chars(&Utf16Map::new(text), name)
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ClassifyInput {
    Text(String),
    Pair(String, String),
    Object {
        text: String,
        #[serde(default, alias = "textPair", alias = "text_pair")]
        pair: Option<String>,
    },
}

#[derive(serde::Deserialize)]
struct RelateInput {
    text: String,
    head: Utf16Span,
    tail: Utf16Span,
}

#[wasm_bindgen]
pub struct WasmModel {
    inner: Model,
}

#[wasm_bindgen]
impl WasmModel {
    /// Builds a model from the bytes of `config.json`, `tokenizer.json`, `model.safetensors`.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(config: &[u8], tokenizer: &[u8], weights: &[u8]) -> Result<WasmModel, JsError> {
        let inner = Model::from_bytes(config, tokenizer, weights, &candle_core::Device::Cpu).map_err(js_err)?;
        Ok(WasmModel { inner })
    }

    pub fn classify(&self, text: &str, text_pair: Option<String>) -> Result<JsValue, JsError> {
        to_js(&in_pool(|| self.inner.classify(text, text_pair.as_deref())).map_err(js_err)?)
    }

    /// `inputs`: an array of strings, `[a, b]` pairs or `{text, textPair}` objects.
    #[wasm_bindgen(js_name = classifyBatch)]
    pub fn classify_batch(&self, inputs: JsValue) -> Result<JsValue, JsError> {
        let inputs: Vec<ClassifyInput> = serde_wasm_bindgen::from_value(inputs)
            .map_err(|e| JsError::new(&format!("classifyBatch takes an array of texts or [text, pair]: {e}")))?;
        let pairs: Vec<(&str, Option<&str>)> = inputs
            .iter()
            .map(|i| match i {
                ClassifyInput::Text(t) => (t.as_str(), None),
                ClassifyInput::Pair(a, b) => (a.as_str(), Some(b.as_str())),
                ClassifyInput::Object { text, pair } => (text.as_str(), pair.as_deref()),
            })
            .collect();
        to_js(&in_pool(|| self.inner.classify_batch(&pairs)).map_err(js_err)?)
    }

    pub fn tag(&self, text: &str) -> Result<JsValue, JsError> {
        to_js(&tagging_to_utf16(text, in_pool(|| self.inner.tag(text)).map_err(js_err)?))
    }

    #[wasm_bindgen(js_name = tagBatch)]
    pub fn tag_batch(&self, texts: Vec<String>) -> Result<JsValue, JsError> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let out = in_pool(|| self.inner.tag_batch(&refs)).map_err(js_err)?;
        let out: Vec<Tagging> = texts.iter().zip(out).map(|(t, r)| tagging_to_utf16(t, r)).collect();
        to_js(&out)
    }

    /// `head`, `tail`: `{start, end}` in UTF-16 code units (as `String.prototype.slice` counts).
    pub fn relate(&self, text: &str, head: JsValue, tail: JsValue) -> Result<JsValue, JsError> {
        let h = span_from_js(text, head, "head")?;
        let t = span_from_js(text, tail, "tail")?;
        to_js(&in_pool(|| self.inner.relate(text, h, t)).map_err(js_err)?)
    }

    /// `inputs`: an array of `{text, head, tail}`.
    #[wasm_bindgen(js_name = relateBatch)]
    pub fn relate_batch(&self, inputs: JsValue) -> Result<JsValue, JsError> {
        let inputs: Vec<RelateInput> = serde_wasm_bindgen::from_value(inputs)
            .map_err(|e| JsError::new(&format!("relateBatch takes an array of {{text, head, tail}}: {e}")))?;
        let mut spans = Vec::with_capacity(inputs.len());
        for (i, r) in inputs.iter().enumerate() {
            let m = Utf16Map::new(&r.text);
            let head = r.head.to_chars(&m, &format!("input {i}: head"))?;
            let tail = r.tail.to_chars(&m, &format!("input {i}: tail"))?;
            spans.push((r.text.as_str(), head, tail));
        }
        to_js(&in_pool(|| self.inner.relate_batch(&spans)).map_err(js_err)?)
    }

    /// Task, labels, sizes.
    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.info())
    }

    /// Caps tokens per encoder pass (longer tag inputs are windowed): bounds memory in the page.
    #[wasm_bindgen(js_name = setMaxTokens)]
    pub fn set_max_tokens(&mut self, n: usize) -> Result<(), JsError> {
        self.inner.set_max_tokens(n).map_err(js_err)
    }
}
