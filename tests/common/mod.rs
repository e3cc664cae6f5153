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

use bert_tasks::model::weights::save_safetensors;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

/// A temporary folder removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("bert-tasks-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn base_tensors(base: &str) -> HashMap<String, Tensor> {
    let bytes = std::fs::read(model_dir(base).join("model.safetensors")).unwrap();
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap()
}

/// Rebuilds the folder PyTorch's `save_pretrained` wrote for fixture checkpoint `name`: its
/// config.json verbatim (plus `task_head` when given), the base encoder's tensors under the
/// names transformers used (`bert.*`, listed in names.json), and the committed head tensors.
pub fn pytorch_checkpoint(name: &str, base: &str, task_head: Option<serde_json::Value>) -> TempDir {
    let dir = TempDir::new(name);
    pytorch_checkpoint_in(name, base, task_head, &dir.0);
    dir
}

/// As [`pytorch_checkpoint`], into `dir`.
pub fn pytorch_checkpoint_in(name: &str, base: &str, task_head: Option<serde_json::Value>, dir: &std::path::Path) {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoints").join(name);
    let names: HashMap<String, Vec<usize>> =
        serde_json::from_str(&std::fs::read_to_string(src.join("names.json")).unwrap()).unwrap();
    let head = candle_core::safetensors::load(src.join("head.safetensors"), &Device::Cpu).unwrap();
    let base_t = base_tensors(base);
    let mut out: HashMap<String, Tensor> = head.clone();
    for (n, shape) in &names {
        let t = match n.strip_prefix("bert.") {
            Some(inner) => base_t.get(inner).unwrap_or_else(|| panic!("base lacks {inner}")).clone(),
            None => head.get(n).unwrap_or_else(|| panic!("head fixture lacks {n}")).clone(),
        };
        assert_eq!(t.dims(), shape.as_slice(), "{n}");
        out.insert(n.clone(), t);
    }
    std::fs::create_dir_all(dir).unwrap();
    save_safetensors(&out, DType::F32, &dir.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    if let Some(th) = task_head {
        cfg["task_head"] = th;
    }
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(model_dir(base).join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
}

/// A model folder with the real base encoder and a seeded random head, for heads PyTorch has no
/// class for (relate). `head` maps tensor names to shapes.
pub fn random_head_checkpoint(base: &str, labels: &[&str], task_head: serde_json::Value, head: &[(&str, Vec<usize>)]) -> TempDir {
    let mut tensors = base_tensors(base);
    let dev = Device::Cpu;
    for (i, (name, shape)) in head.iter().enumerate() {
        let n: usize = shape.iter().product();
        let vals: Vec<f32> = (0..n).map(|k| (((k * 7919 + i * 104729) % 1000) as f32 / 1000.0 - 0.5) * 0.2).collect();
        tensors.insert(name.to_string(), Tensor::from_vec(vals, shape.as_slice(), &dev).unwrap());
    }
    let dir = TempDir::new("random-head");
    save_safetensors(&tensors, DType::F32, &dir.0.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir(base).join("config.json")).unwrap()).unwrap();
    cfg["id2label"] = serde_json::json!(labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.to_string())).collect::<HashMap<_, _>>());
    cfg["task_head"] = task_head;
    std::fs::write(dir.0.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(model_dir(base).join("tokenizer.json"), dir.0.join("tokenizer.json")).unwrap();
    dir
}
