//! The `bert-tasks` binary: --help, predict on JSON lines (tag and classify), errors naming
//! file and line.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bert-tasks"))
}

#[test]
fn help_lists_the_commands() {
    let out = bin().arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in ["convert", "embed", "predict"] {
        assert!(text.contains(cmd), "{text}");
    }
}

/// `--threads N` sizes both pools the binary computes on: candle's (what its kernels and gemm
/// calls ask for) and rayon's global pool (our fused kernels).
#[test]
fn threads_option_sizes_every_pool() {
    let dir = pytorch_checkpoint("all-minilm-l6-v2-classify", "all-minilm-l6-v2", None);
    let texts = dir.0.join("texts.json");
    std::fs::write(&texts, r#"{"4": "hello world"}"#).unwrap();
    for n in [1usize, 3] {
        let out = bin()
            .args(["--threads", &n.to_string(), "bench", "--mode", "infer", "--shapes", "1x4", "--repeat", "1", "--warmup", "0", "--model"])
            .arg(&dir.0)
            .arg("--texts")
            .arg(&texts)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let row: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(row["threads"], n, "{row}");
        assert_eq!(row["pool_threads"], n, "{row}");
    }
    let out = bin().args(["--threads", "0", "embed", "--model"]).arg(&dir.0).arg("x").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads must be at least 1"));
}

#[test]
fn predict_reads_json_lines_and_prints_one_object_per_line() {
    let dir = pytorch_checkpoint("m3e-small-tag-bio", "m3e-small", Some(json!({"task": "tag", "decoder": "crf", "scheme": "BIO"})));
    let input = dir.0.join("in.jsonl");
    std::fs::write(&input, "{\"text\": \"我爱北京天安门。\"}\n\n{\"text\": \"😡好\"}\n").unwrap();
    let out = bin().args(["predict", "--model"]).arg(&dir.0).arg("--input").arg(&input).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["tokens"].as_array().unwrap().len(), 8);
    assert_eq!(lines[0]["tokens"][2]["text"], "北");
    assert_eq!(lines[0]["tokens"][2]["start"], 2);
    // Character offsets: the emoji is one character.
    assert_eq!(lines[1]["tokens"][1]["start"], 1);
    assert!(lines[0]["spans"].is_array());

    std::fs::write(&input, "{\"text\": \"好\"}\n{\"txt\": 1}\n").unwrap();
    let out = bin().args(["predict", "--model"]).arg(&dir.0).arg("--input").arg(&input).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("in.jsonl:2"), "{err}");
}

#[test]
fn predict_classifies_a_pair_from_the_command_line() {
    let dir = pytorch_checkpoint("all-minilm-l6-v2-classify", "all-minilm-l6-v2", None);
    let out = bin()
        .args(["predict", "--json", "--model"])
        .arg(&dir.0)
        .args(["A man is playing a guitar.", "--pair", "Someone plays music."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let scores = v["scores"].as_object().unwrap();
    assert_eq!(scores.keys().collect::<Vec<_>>(), vec!["NEG", "NEU", "POS"]);
    let total: f64 = scores.values().map(|p| p.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4);
    assert_eq!(v["score"], scores[v["label"].as_str().unwrap()]);
}
