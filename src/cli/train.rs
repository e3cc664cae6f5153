use std::path::PathBuf;

use crate::model::heads::{Decoder, RelateMethod};
use crate::text::scheme::Scheme;
use crate::train::loss::LossKind;
use crate::train::sampler::Sampling;
use crate::train::{TrainConfig, Trainer};
use crate::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_parser = ["classify", "tag", "relate"])]
    task: String,
    /// Base model folder (a pretrained encoder, e.g. ~/.cache/bert-tasks/models/all-minilm-l6-v2).
    #[arg(long)]
    model: PathBuf,
    /// Training file (classify: TSV or JSONL; tag: CoNLL; relate: JSONL).
    #[arg(long)]
    train: PathBuf,
    /// Dev file, evaluated each epoch; the best model by macro-F1 / span F1 is kept.
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Output folder: the model (config.json, tokenizer.json, model.safetensors), checkpoints/, metrics.json, curve.svg, confusion.svg.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate of the encoder.
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    /// Peak learning rate of the head (CRF transitions and fresh layers learn faster).
    #[arg(long, default_value_t = 1e-3)]
    head_lr: f64,
    /// Tokens per training sequence (longer tag sentences are split, longer texts cut).
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Warm-up, as a fraction of all steps (then linear decay to 0).
    #[arg(long, default_value_t = 0.1)]
    warmup: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Clip the global gradient norm to this.
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// classify / relate(position_embedding) pooling.
    #[arg(long, default_value = "pooler", value_parser = ["pooler", "cls", "mean", "max"])]
    pooling: String,
    #[arg(long, default_value = "softmax", value_parser = ["softmax", "crf"])]
    decoder: String,
    /// Tag scheme; inferred from the tags when absent.
    #[arg(long, value_parser = ["BIO", "BIOES", "BMES"])]
    scheme: Option<String>,
    /// Let the decoder (CRF or softmax) emit sequences the scheme forbids, such as `O I-PER`
    /// (off by default: constrained decoding; the softmax decoder then takes per-token argmax).
    #[arg(long)]
    unconstrained: bool,
    #[arg(long, default_value = "entity_markers", value_parser = ["entity_pool", "position_embedding", "entity_markers"])]
    method: String,
    #[arg(long, default_value = "ce", value_parser = ["ce", "weighted", "focal"])]
    loss: String,
    /// Class weights α(c): `auto` (inverse frequency) or comma-separated, in label order.
    #[arg(long, visible_alias = "alpha")]
    class_weights: Option<String>,
    /// Focal loss γ.
    #[arg(long, default_value_t = 2.0)]
    gamma: f32,
    #[arg(long, default_value = "instance", value_parser = ["instance", "class", "power"])]
    sampling: String,
    /// Exponent of power sampling (p_c ∝ n_c^q; 0.5 = square root).
    #[arg(long, default_value_t = 0.5)]
    q: f64,
    /// Write a checkpoint every N steps (and at each epoch's end).
    #[arg(long, default_value_t = 200)]
    save_every: usize,
    /// Use only the first N training examples.
    #[arg(long)]
    limit_train: Option<usize>,
    /// Evaluate on the first N dev examples only.
    #[arg(long)]
    limit_dev: Option<usize>,
    /// Continue from OUT/checkpoints/latest (with its saved settings).
    #[arg(long)]
    resume: bool,
    /// `cpu` or `cuda[:N]`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Length bucketing: sort each window of this many batches by length so that short
    /// sentences are not padded to long ones (0 or 1: off).
    #[arg(long, default_value_t = 50)]
    bucket_window: usize,
    /// `bf16`: autocast-style mixed precision on a GPU (bf16 matrix products, f32 weights and
    /// optimizer state).
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16"])]
    precision: String,
    /// Stop after N steps (to test interruption and --resume).
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
}

/// The training configuration the arguments describe (and whether to resume).
fn config(a: Args) -> Result<(TrainConfig, bool)> {
    let resume = a.resume;
    let cfg = TrainConfig {
        task: a.task.parse()?,
        base: a.model,
        train: a.train,
        dev: a.dev,
        out: a.out,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        head_lr: a.head_lr,
        max_len: a.max_len,
        seed: a.seed,
        warmup: a.warmup,
        weight_decay: a.weight_decay,
        max_grad_norm: a.max_grad_norm,
        pooling: a.pooling.parse()?,
        decoder: if a.decoder == "crf" { Decoder::Crf } else { Decoder::Softmax },
        scheme: a.scheme.as_deref().map(str::parse::<Scheme>).transpose()?,
        constrained: !a.unconstrained,
        method: a.method.parse::<RelateMethod>()?,
        loss: match a.loss.as_str() {
            "weighted" => LossKind::Weighted,
            "focal" => LossKind::Focal,
            _ => LossKind::Ce,
        },
        class_weights: a.class_weights,
        gamma: a.gamma,
        sampling: match a.sampling.as_str() {
            "class" => Sampling::Class,
            "power" => Sampling::Power,
            _ => Sampling::Instance,
        },
        q: a.q,
        save_every: a.save_every,
        limit_train: a.limit_train,
        limit_dev: a.limit_dev,
        device: a.device,
        bucket_window: a.bucket_window,
        precision: a.precision.parse()?,
        stop_after: a.stop_after,
    };
    Ok((cfg, resume))
}

pub fn run(a: Args) -> Result<()> {
    let (cfg, resume) = config(a)?;
    let mut trainer = Trainer::new(cfg, resume)?;
    eprintln!(
        "[train] {} examples, {} labels: {}",
        trainer.examples(),
        trainer.model.labels.len(),
        trainer.model.labels.join(" ")
    );
    let summary = trainer.run(true)?;
    println!("{}", serde_json::to_string_pretty(&summary).map_err(|e| Error::Input(e.to_string()))?);
    eprintln!("[train] model written to {}", trainer.out_dir().display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: super::Args,
    }

    /// `TrainConfig::new` (used by `bench` and the tests) carries exactly these defaults.
    #[test]
    fn cli_defaults_equal_train_config_new() {
        let a = Cli::parse_from(["x", "--task", "tag", "--model", "m", "--train", "t", "--out", "o"]).args;
        let (from_cli, _) = super::config(a).unwrap();
        let new = crate::train::TrainConfig::new(crate::train::Task::Tag, "m".into(), "t".into(), "o".into());
        assert_eq!(serde_json::to_value(&from_cli).unwrap(), serde_json::to_value(&new).unwrap());
    }
}
