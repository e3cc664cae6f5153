use std::path::PathBuf;

use candle_core::DType;

use crate::model::weights::{save_safetensors, Weights};
use crate::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Model folder to export.
    #[arg(long)]
    model: PathBuf,
    /// Output folder (config.json, tokenizer.json, model.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Weight type: f16 or bf16 halve the download; f32 keeps it exact.
    #[arg(long, default_value = "f16", value_parser = ["f32", "f16", "bf16"])]
    dtype: String,
}

pub fn run(a: Args) -> Result<()> {
    let dtype = match a.dtype.as_str() {
        "f32" => DType::F32,
        "bf16" => DType::BF16,
        _ => DType::F16,
    };
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    let weights = Weights::from_dir(&a.model)?;
    save_safetensors(&weights.into_tensors(), dtype, &a.out.join("model.safetensors"))?;
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(a.model.join(f), a.out.join(f)).map_err(|e| Error::io(a.model.join(f), e))?;
    }
    let size = std::fs::metadata(a.out.join("model.safetensors")).map(|m| m.len()).unwrap_or(0);
    eprintln!("exported {} as {} ({:.1} MB of weights)", a.out.display(), a.dtype, size as f64 / 1e6);
    Ok(())
}
