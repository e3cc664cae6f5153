use std::path::PathBuf;

use candle_core::DType;

use crate::model::weights::{save_safetensors, Weights};
use crate::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// `pytorch_model.bin` or `model.safetensors`
    input: PathBuf,
    /// Output `.safetensors` file (written atomically).
    output: PathBuf,
    /// Floating-point type of the output.
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16", "bf16"])]
    dtype: String,
}

pub fn run(args: Args) -> Result<()> {
    let weights = if args.input.extension().is_some_and(|e| e == "bin") {
        Weights::from_pytorch_bin(&args.input)?
    } else {
        let bytes = std::fs::read(&args.input).map_err(|e| Error::io(&args.input, e))?;
        Weights::from_safetensors(&bytes, &args.input.display().to_string())?
    };
    let dtype = match args.dtype.as_str() {
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        _ => DType::F32,
    };
    let tensors = weights.into_tensors()?;
    save_safetensors(&tensors, dtype, &args.output)?;
    eprintln!("wrote {} tensors to {} ({})", tensors.len(), args.output.display(), args.dtype);
    Ok(())
}
