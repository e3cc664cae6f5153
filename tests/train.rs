//! Fine-tuning on the real encoders and real data (small subsets, so CI stays fast): the loss
//! falls and the model beats chance, a run stopped midway and resumed ends bit for bit where an
//! uninterrupted run ends, the CRF trains, and the output folder is a loadable model.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use bert_tasks::model::heads::{Decoder, RelateMethod};
use bert_tasks::model::Pooling;
use bert_tasks::tasks::Model;
use bert_tasks::train::sampler::Sampling;
use bert_tasks::train::{TrainConfig, Trainer};
use candle_core::Device;
use common::*;

fn data(name: &str, split: &str) -> std::path::PathBuf {
    let ext = if name.ends_with("sentiment") { "tsv" } else { "conll" };
    let p = cache_dir().join("data").join(name).join(format!("{split}.{ext}"));
    assert!(p.exists(), "{} missing: run `bash scripts/setup.sh`", p.display());
    p
}

fn config(task: &str, base: &str, train: std::path::PathBuf, dev: Option<std::path::PathBuf>, out: &TempDir) -> TrainConfig {
    TrainConfig {
        dev,
        epochs: 1,
        batch_size: 8,
        max_len: 48,
        seed: 7,
        save_every: 4,
        limit_train: Some(48),
        limit_dev: Some(64),
        ..TrainConfig::new(task.parse().unwrap(), model_dir(base), train, out.0.clone())
    }
}

#[test]
fn classify_learns_and_writes_a_loadable_model() {
    let out = TempDir::new("train-classify");
    let mut cfg = config("classify", "all-minilm-l6-v2", data("en-sentiment", "train"), Some(data("en-sentiment", "dev")), &out);
    cfg.limit_train = Some(400);
    cfg.batch_size = 16;
    cfg.max_len = 64;
    cfg.epochs = 2;
    // all-MiniLM was trained for mean pooling; its pooler output is small and learns slowly.
    cfg.pooling = Pooling::Mean;
    cfg.lr = 2e-4;
    cfg.head_lr = 3e-3;
    let mut t = Trainer::new(cfg, false).unwrap();
    let summary = t.run(false).unwrap();
    let losses = &t.state().losses;
    let first: f32 = losses[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = losses[losses.len() - 5..].iter().sum::<f32>() / 5.0;
    assert!(last < first, "loss should fall: {first} -> {last}");
    // Throughput is counted on real tokens; bucketing keeps padding small on these short texts.
    assert!(summary.tokens > 0 && summary.tokens <= summary.padded_tokens && summary.tokens_per_second > 0.0);
    assert!((summary.tokens as f64) > 0.8 * summary.padded_tokens as f64, "{} real of {} padded", summary.tokens, summary.padded_tokens);
    let best = summary.best_metric.unwrap();
    assert!(best > 0.6, "dev macro-F1 {best} should beat chance clearly");
    for f in ["config.json", "tokenizer.json", "model.safetensors", "metrics.json", "curve.svg", "confusion.svg"] {
        assert!(out.0.join(f).exists(), "{f}");
    }
    // The output folder is a model: same dev score when loaded back.
    let m = Model::load(&out.0, &Device::Cpu).unwrap();
    let eval = bert_tasks::train::evaluate::evaluate_file(&m, &data("en-sentiment", "dev"), Some(64)).unwrap();
    assert!((eval.primary() - best).abs() < 1e-9);
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.0.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["task_head"]["pooling"], "mean");
}

/// A run stopped after 6 steps and resumed from its step-4 checkpoint ends with exactly the
/// parameters and losses of an uninterrupted run (dropout, sampling order, optimizer moments
/// and schedule are all restored).
#[test]
fn resumed_run_equals_uninterrupted_run_bit_for_bit() {
    let base = |out: &TempDir| {
        let mut c = config("tag", "m3e-small", data("msra-ner", "train"), Some(data("msra-ner", "dev")), out);
        c.decoder = Decoder::Crf;
        c.limit_train = Some(40);
        c.limit_dev = Some(16);
        c.epochs = 2;
        c
    };
    let a = TempDir::new("resume-a");
    let mut ta = Trainer::new(base(&a), false).unwrap();
    ta.run(false).unwrap();

    let b = TempDir::new("resume-b");
    let mut cfg = base(&b);
    cfg.stop_after = Some(6);
    let mut tb = Trainer::new(cfg, false).unwrap();
    assert!(tb.run(false).is_err(), "stopped midway");
    drop(tb);
    let mut tb = Trainer::new(base(&b), true).unwrap();
    assert_eq!(tb.state().global_step, 4, "resumes from the last checkpoint");
    tb.run(false).unwrap();

    assert_eq!(ta.state().losses, tb.state().losses);
    let (pa, pb) = (ta.tensors(), tb.tensors());
    assert_eq!(pa.len(), pb.len());
    for (name, t) in &pa {
        let x: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<f32> = pb[name].flatten_all().unwrap().to_vec1().unwrap();
        assert!(x == y, "{name} differs after resume");
    }
    let (ma, mb) = (ta.state().evals.last().unwrap(), tb.state().evals.last().unwrap());
    assert_eq!(ma.metric, mb.metric);
}

#[test]
fn crf_tagger_trains_and_never_emits_invalid_sequences() {
    let out = TempDir::new("train-crf");
    let mut cfg = config("tag", "m3e-small", data("pd-seg", "train"), Some(data("pd-seg", "dev")), &out);
    cfg.decoder = Decoder::Crf;
    cfg.limit_train = Some(96);
    cfg.limit_dev = Some(32);
    cfg.max_len = 64;
    cfg.head_lr = 5e-3;
    let mut t = Trainer::new(cfg, false).unwrap();
    assert_eq!(t.model.labels, vec!["B", "M", "E", "S"]);
    t.run(false).unwrap();
    let m = Model::load(&out.0, &Device::Cpu).unwrap();
    let eval = bert_tasks::train::evaluate::evaluate_file(&m, &data("pd-seg", "dev"), Some(32)).unwrap();
    let report = serde_json::to_value(&eval).unwrap();
    assert_eq!(report["invalid_sequences"], 0);
    assert!(eval.primary() > 0.5, "word F1 {}", eval.primary());
}

/// Every encoder and head parameter receives a gradient, for every task (the pooler only where
/// the head uses it).
#[test]
fn every_parameter_trains() {
    let out = TempDir::new("train-grads");
    let mut c = config("classify", "all-minilm-l6-v2", data("en-sentiment", "train"), None, &out);
    c.limit_train = Some(8);
    let t = Trainer::new(c, false).unwrap();
    assert_eq!(t.parameters_without_gradient().unwrap(), Vec::<String>::new());
    let mut c = config("tag", "m3e-small", data("msra-ner", "train"), None, &out);
    c.decoder = Decoder::Crf;
    c.limit_train = Some(8);
    let t = Trainer::new(c, false).unwrap();
    let missing = t.parameters_without_gradient().unwrap();
    assert!(missing.iter().all(|n| n.starts_with("bert.pooler.")), "{missing:?}");
    let rel = out.0.join("rel.jsonl");
    std::fs::write(&rel, std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo/relations.jsonl")).unwrap()).unwrap();
    for method in [RelateMethod::EntityPool, RelateMethod::PositionEmbedding, RelateMethod::EntityMarkers] {
        let mut c = config("relate", "all-minilm-l6-v2", rel.clone(), None, &out);
        c.method = method;
        c.pooling = Pooling::Mean;
        let t = Trainer::new(c, false).unwrap();
        let missing = t.parameters_without_gradient().unwrap();
        assert!(missing.iter().all(|n| n.starts_with("bert.pooler.")), "{method:?}: {missing:?}");
    }
}

#[test]
fn bad_training_input_is_a_clear_error() {
    let out = TempDir::new("train-bad");
    let bad = out.0.join("bad.conll");
    std::fs::write(&bad, "北 B-LOC\n京 I-LOC\n\n在 O\n京 X-LOC\n").unwrap();
    let e = Trainer::new(config("tag", "m3e-small", bad.clone(), None, &out), false).err().unwrap().to_string();
    assert!(e.contains("bad.conll:5") && e.contains("X-LOC"), "{e}");
    // A sequence the scheme forbids (`O I-LOC`) is repaired the way seqeval reads it, with a
    // warning, instead of refusing the whole file (MSRA's full split has five such sentences).
    std::fs::write(&bad, "北 B-LOC\n京 I-LOC\n\n在 O\n京 I-LOC\n").unwrap();
    assert!(Trainer::new(config("tag", "m3e-small", bad.clone(), None, &out), false).is_ok());
    let dev = out.0.join("dev.tsv");
    std::fs::write(&dev, "pos\tfine\nmeh\tunknown label\n").unwrap();
    let e = Trainer::new(config("classify", "all-minilm-l6-v2", data("en-sentiment", "train"), Some(dev), &out), false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("dev.tsv:2") && e.contains("meh"), "{e}");
    let mut cfg = config("tag", "m3e-small", data("msra-ner", "train"), None, &out);
    cfg.sampling = Sampling::Class;
    assert!(Trainer::new(cfg, false).err().unwrap().to_string().contains("re-sampling"));
}
