use std::path::PathBuf;

use crate::tasks::Model;
use crate::train::evaluate::{evaluate_file, Evaluation};
use crate::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Fine-tuned model folder.
    #[arg(long)]
    model: PathBuf,
    /// Labelled file in the task's format.
    #[arg(long)]
    data: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Evaluate the first N examples only.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(a: Args) -> Result<()> {
    let device = crate::device::select(&a.device)?;
    let model = Model::load(&a.model, &device)?;
    let eval = evaluate_file(&model, &a.data, a.limit)?;
    if a.json {
        println!("{}", serde_json::to_string(&eval).map_err(|e| Error::Input(e.to_string()))?);
        return Ok(());
    }
    match &eval {
        Evaluation::Classes(r) => {
            println!("accuracy {:.4}   macro-F1 {:.4}   ({} examples)", r.accuracy, r.macro_f1, r.examples);
            for (label, m) in &r.per_class {
                println!("  {label:<24} P {:.3}  R {:.3}  F1 {:.3}  n={}", m.precision, m.recall, m.f1, m.support);
            }
        }
        Evaluation::Spans { report: r, .. } => {
            println!(
                "span P {:.4}  R {:.4}  F1 {:.4}   token accuracy {:.4}   invalid sequences {}   ({} sentences)",
                r.precision, r.recall, r.f1, r.token_accuracy, r.invalid_sequences, r.sentences
            );
            for (label, m) in &r.per_type {
                println!("  {label:<16} P {:.3}  R {:.3}  F1 {:.3}  n={}", m.precision, m.recall, m.f1, m.support);
            }
        }
    }
    Ok(())
}
