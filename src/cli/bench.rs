//! `bert-tasks bench`: the native side of the benchmark harness in `bench/` (one JSON line per
//! measurement; the harness compares them with PyTorch and transformers.js run on the same machine).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;

use crate::tasks::{Head, Model};
use crate::train::{TrainConfig, Trainer};
use crate::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// `infer`: classify or tag with a fine-tuned model folder; `train`: optimizer steps of
    /// classify fine-tuning (forward + backward + AdamW) from a base folder.
    #[arg(long, value_parser = ["infer", "train"])]
    mode: String,
    #[arg(long)]
    model: PathBuf,
    /// infer: JSON object {"T": text of exactly T tokens, ...} (bench/texts.json).
    #[arg(long)]
    texts: Option<PathBuf>,
    /// infer: shapes BATCHxTOKENS, comma separated.
    #[arg(long, default_value = "1x16,1x128,1x512,8x128")]
    shapes: String,
    /// train: a classify TSV file (its first batches are reused).
    #[arg(long)]
    train: Option<PathBuf>,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    /// Timed repetitions (the median is reported) after `--warmup` untimed ones.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// train: `bf16` for autocast-style mixed precision on a GPU.
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16"])]
    precision: String,
}

fn summary(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    let q = |f: f64| ms[((ms.len() - 1) as f64 * f).round() as usize];
    serde_json::json!({ "median_ms": q(0.5), "p10_ms": q(0.1), "p90_ms": q(0.9), "runs": ms.len() })
}

/// Threads candle's kernels use; `--threads` also sizes rayon's pool (reported as `pool_threads`).
fn threads() -> usize {
    candle_core::utils::get_num_threads()
}

pub fn run(a: Args) -> Result<()> {
    let device = crate::device::select(&a.device)?;
    match a.mode.as_str() {
        "infer" => infer(&a, &device),
        _ => train(&a),
    }
}

fn infer(a: &Args, device: &Device) -> Result<()> {
    let path = a.texts.as_ref().ok_or_else(|| Error::Input("--mode infer needs --texts".into()))?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let texts: HashMap<String, String> = serde_json::from_str(&text).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    let model = Model::load(&a.model, device)?;
    // q8 models run the int8 kernels on the CPU: say which one.
    let weights = std::fs::read(a.model.join("model.safetensors")).unwrap_or_default();
    let int8_kernel = (crate::model::quantize::is_quantized_file(&weights) == Some(true)).then(crate::model::int8::kernel_name);
    for shape in a.shapes.split(',') {
        let (b, t) = shape
            .split_once('x')
            .and_then(|(b, t)| Some((b.parse::<usize>().ok()?, t.parse::<usize>().ok()?)))
            .ok_or_else(|| Error::Input(format!("bad shape {shape:?} (want BATCHxTOKENS)")))?;
        let one = texts.get(&t.to_string()).ok_or_else(|| Error::Input(format!("{}: no text of {t} tokens", path.display())))?;
        let got = model.encoder.tokenizer.encode(one)?.len();
        if got != t {
            return Err(Error::Input(format!("the {t}-token text encodes to {got} tokens with this tokenizer")));
        }
        let batch: Vec<&str> = vec![one.as_str(); b];
        let run_once = || -> Result<()> {
            match &model.head {
                Head::Classify(_) => {
                    let inputs: Vec<(&str, Option<&str>)> = batch.iter().map(|s| (*s, None)).collect();
                    model.classify_batch(&inputs)?;
                }
                Head::Tag(_) => {
                    model.tag_batch(&batch)?;
                }
                Head::Relate(_) => return Err(Error::Input("bench infer takes a classify or tag model".into())),
            }
            device.synchronize()?;
            Ok(())
        };
        for _ in 0..a.warmup {
            run_once()?;
        }
        let mut ms = Vec::with_capacity(a.repeat);
        for _ in 0..a.repeat {
            let t0 = Instant::now();
            run_once()?;
            ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        let mut row = summary(ms);
        row["engine"] = "bert-tasks native".into();
        row["task"] = model.task.task_name().into();
        row["batch"] = b.into();
        row["tokens"] = t.into();
        row["threads"] = threads().into();
        row["pool_threads"] = rayon::current_num_threads().into();
        row["device"] = a.device.clone().into();
        if let Some(k) = int8_kernel {
            row["int8_kernel"] = k.into();
        }
        println!("{row}");
    }
    Ok(())
}

fn train(a: &Args) -> Result<()> {
    let data = a.train.clone().ok_or_else(|| Error::Input("--mode train needs --train".into()))?;
    let out = std::env::temp_dir().join(format!("bert-tasks-bench-{}", std::process::id()));
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: a.batch_size,
        lr: 2e-5,
        max_len: a.max_len,
        warmup: 0.0,
        save_every: 0,
        device: a.device.clone(),
        precision: a.precision.parse()?,
        ..TrainConfig::new(crate::train::Task::Classify, a.model.clone(), data, out.clone())
    };
    let mut trainer = Trainer::new(cfg, false)?;
    let times = trainer.time_steps(a.warmup + a.repeat)?;
    let _ = std::fs::remove_dir_all(&out);
    let timed = &times[a.warmup..];
    let mut row = summary(timed.iter().map(|(p, _)| p.iter().sum::<f64>() * 1e3).collect());
    for (k, name) in ["forward_ms", "backward_ms", "optimizer_ms"].iter().enumerate() {
        row[*name] = summary(timed.iter().map(|(p, _)| p[k] * 1e3).collect())["median_ms"].clone();
    }
    // Every step's loss (warm-up included): two runs of the same code path give the same
    // sequence, so comparing them checks that an optimizer variant computes the same update.
    row["losses"] = times.iter().map(|(_, l)| *l).collect::<Vec<f32>>().into();
    row["precision"] = a.precision.clone().into();
    row["engine"] = "bert-tasks native".into();
    row["task"] = "train_step".into();
    row["batch"] = a.batch_size.into();
    row["tokens"] = a.max_len.into();
    row["threads"] = threads().into();
    row["pool_threads"] = rayon::current_num_threads().into();
    row["device"] = a.device.clone().into();
    println!("{row}");
    Ok(())
}
