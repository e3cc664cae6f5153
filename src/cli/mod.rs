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
    /// Threads for every pool the binary uses (candle's kernels, gemm, our fused kernels);
    /// default: all cores. Lets two jobs share a machine without oversubscribing it.
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
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
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        set_threads(n)?;
    }
    match cli.command {
        Command::Convert(a) => convert::run(a),
        Command::Embed(a) => embed::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Export(a) => export::run(a),
        Command::Bench(a) => bench::run(a),
    }
}

/// Sizes the one thread pool every kernel runs on. candle's CPU kernels and the gemm calls it
/// makes ask `candle_core::utils::get_num_threads()`, which reads `RAYON_NUM_THREADS`; our fused
/// kernels and gemm's own parallel loops run on rayon's global pool. Setting both, before any
/// pool exists, makes `--threads N` hold for all of them.
fn set_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(crate::Error::Input("--threads must be at least 1".into()));
    }
    // Called first thing in main, before any other thread exists (set_var is then sound).
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| crate::Error::Input(format!("--threads {n}: {e}")))?;
    debug_assert_eq!(candle_core::utils::get_num_threads(), n);
    Ok(())
}
