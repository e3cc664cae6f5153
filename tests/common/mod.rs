//! Helpers shared by the integration tests that run on the real fetched weights.
#![allow(dead_code)]

use std::path::PathBuf;

/// The asset cache (`$BERT_TASKS_CACHE`, default `~/.cache/bert-tasks`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("BERT_TASKS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME is set")).join(".cache/bert-tasks"))
}

/// A fetched model folder. These tests never skip: a missing model is a failure that says how
/// to fetch it, because CI fetches the weights and must run these tests.
pub fn model_dir(name: &str) -> PathBuf {
    let dir = cache_dir().join("models").join(name);
    assert!(
        dir.join("model.safetensors").exists(),
        "{} is missing: run `bash scripts/setup.sh` to fetch the real models",
        dir.display()
    );
    dir
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
