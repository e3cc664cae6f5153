//! Command-line interface (native builds only).

mod bench;
mod convert;
mod embed;
mod eval;
mod export;
mod predict;
mod train;

use clap::{Parser, Subcommand};

use crate::Result;

#[derive(Parser)]
#[command(name = "bert-tasks", version, about = "Fine-tune BERT for classify / tag / relate and run it natively or in the browser")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a checkpoint's weights (pytorch_model.bin or safetensors) to safetensors in f32/f16/bf16.
    Convert(convert::Args),
    /// Run the encoder on text and print its vectors (a quick check that a model folder works).
    Embed(embed::Args),
    /// Run a fine-tuned model (classify, tag or relate) on a text or a JSON-lines file.
    Predict(predict::Args),
    /// Fine-tune a base encoder with a task head on labelled data.
    Train(train::Args),
    /// Score a fine-tuned model on a labelled file.
    Eval(eval::Args),
    /// Time inference or training steps (the native side of bench/; one JSON line per shape).
    Bench(bench::Args),
    /// Copy a model folder with its weights in f16/bf16 (half the download) or f32.
    Export(export::Args),
}

pub fn run() -> Result<()> {
    match Cli::parse().command {
        Command::Convert(a) => convert::run(a),
        Command::Embed(a) => embed::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Export(a) => export::run(a),
        Command::Bench(a) => bench::run(a),
    }
}
