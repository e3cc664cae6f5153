//! Crash safety of `bert-tasks train`, on the real binary at small scale (a tiny base model
//! written to disk, so each run takes seconds): a run killed with SIGKILL at a random step and
//! resumed with `--resume` ends with the same model and metrics, bit for bit, as a run never
//! interrupted; a process that dies halfway through writing a checkpoint leaves `latest`
//! naming the previous, complete one.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use bert_tasks::testing::tiny_model;
use common::TempDir;
use serde_json::json;

const WORDS: [&str; 10] = ["hello", "world", "paris", "is", "in", "france", "好", "北", "京", "我"];

/// A base model folder and labelled train/dev files in `dir`.
fn setup(dir: &Path) {
    let base = dir.join("base");
    std::fs::create_dir_all(&base).unwrap();
    let (c, t, w) = tiny_model(json!({"task": "classify"}), &["a", "b"], 11);
    std::fs::write(base.join("config.json"), c).unwrap();
    std::fs::write(base.join("tokenizer.json"), t).unwrap();
    std::fs::write(base.join("model.safetensors"), w).unwrap();
    let mut state = 7u64;
    let mut rows = |n: usize| -> String {
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let k = 3 + (state >> 60) as usize % 5;
                let words: Vec<&str> = (0..k).map(|j| WORDS[((state >> (4 * j)) & 0xF) as usize % WORDS.len()]).collect();
                let label = if words.contains(&"paris") || words.contains(&"北") { "a" } else { "b" };
                format!("{label}\t{}\n", words.join(" "))
            })
            .collect()
    };
    std::fs::write(dir.join("train.tsv"), rows(240)).unwrap();
    std::fs::write(dir.join("dev.tsv"), rows(40)).unwrap();
}

fn train(dir: &Path, out: &str, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bert-tasks"));
    c.args(["train", "--task", "classify", "--pooling", "mean", "--epochs", "2", "--batch-size", "4", "--max-len", "16"]);
    c.args(["--seed", "5", "--save-every", "1", "--lr", "1e-3"]);
    c.arg("--model").arg(dir.join("base"));
    c.arg("--train").arg(dir.join("train.tsv"));
    c.arg("--dev").arg(dir.join("dev.tsv"));
    c.arg("--out").arg(dir.join(out));
    if resume {
        c.arg("--resume");
    }
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn run_ok(mut c: Command) {
    let out = c.output().unwrap();
    assert!(out.status.success(), "training failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The step the `latest` checkpoint holds (0 when there is none).
fn latest_step(out: &Path) -> usize {
    let Ok(name) = std::fs::read_to_string(out.join("checkpoints/latest")) else { return 0 };
    name.trim().trim_start_matches("step-").split('-').next().unwrap().parse().unwrap()
}

/// What must be identical: the weights and every dev evaluation (not the timings).
fn outcome(out: &Path) -> (Vec<u8>, serde_json::Value) {
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    (std::fs::read(out.join("model.safetensors")).unwrap(), metrics["evals"].clone())
}

#[test]
fn killed_at_random_steps_and_resumed_equals_uninterrupted() {
    let tmp = TempDir::new("crash");
    setup(&tmp.0);
    run_ok(train(&tmp.0, "whole", false));
    let want = outcome(&tmp.0.join("whole"));
    let total = 2 * 240 / 4;

    // Three kills at random steps (seeded by the clock, printed for reproduction); the last
    // resume runs to the end.
    let mut seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    let out = tmp.0.join("killed");
    let mut at = 0;
    for round in 0..3 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        at = (at + 1 + (seed >> 33) as usize % (total / 4)).min(total - 1);
        let mut child = train(&tmp.0, "killed", round > 0).spawn().unwrap();
        let t = Instant::now();
        while latest_step(&out) < at && t.elapsed() < Duration::from_secs(120) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        eprintln!("round {round}: killed after checkpoint {} (aimed at {at})", latest_step(&out));
    }
    run_ok(train(&tmp.0, "killed", true));
    assert!(want == outcome(&out), "a killed and resumed run must end bit for bit like an uninterrupted one");
}

#[test]
fn dying_while_writing_a_checkpoint_leaves_latest_complete() {
    let tmp = TempDir::new("crash-write");
    setup(&tmp.0);
    run_ok(train(&tmp.0, "whole", false));
    let out = tmp.0.join("broken");
    let mut c = train(&tmp.0, "broken", false);
    c.env("BERT_TASKS_CRASH_IN_CHECKPOINT", "17");
    let status = c.status().unwrap();
    assert!(!status.success(), "the process aborted");
    // The half-written step-17 folder is not what `latest` names: step 16 is, complete.
    assert_eq!(latest_step(&out), 16);
    let latest = out.join("checkpoints").join(std::fs::read_to_string(out.join("checkpoints/latest")).unwrap().trim());
    for f in ["model.safetensors", "optimizer.safetensors", "state.json", "config.json"] {
        assert!(latest.join(f).exists(), "{f} in {}", latest.display());
    }
    run_ok(train(&tmp.0, "broken", true));
    assert!(outcome(&tmp.0.join("whole")) == outcome(&out), "resumed from step 16, same result");
}
