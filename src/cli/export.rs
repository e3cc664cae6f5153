use std::path::PathBuf;

use candle_core::DType;

use crate::model::quantize::Scheme;
use crate::model::weights::{save_quantized, save_safetensors, Weights};
use crate::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Model folder to export.
    #[arg(long)]
    model: PathBuf,
    /// Output folder (config.json, tokenizer.json, model.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Weight type: f16 or bf16 halve the download; q8 (int8 matrices with per-row scales, the
    /// rest f16) quarters it; q4 (4-bit blocks of 32 with f16 scales) takes it to about a
    /// seventh; f32 keeps it exact.
    #[arg(long, default_value = "f16", value_parser = ["f32", "f16", "bf16", "q8", "q4"])]
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
    if weights.is_quantized() {
        return Err(Error::Input(format!("{} is already a quantised (q8/q4) export; export from the f32/f16 model", a.model.display())));
    }
    let out = a.out.join("model.safetensors");
    if let Some(scheme) = match a.dtype.as_str() {
        "q8" => Some(Scheme::Q8),
        "q4" => Some(Scheme::Q4),
        _ => None,
    } {
        save_quantized(&weights.into_tensors()?, scheme, &out)?;
    } else {
        save_safetensors(&weights.into_tensors()?, dtype, &out)?;
    }
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(a.model.join(f), a.out.join(f)).map_err(|e| Error::io(a.model.join(f), e))?;
    }
    let size = std::fs::metadata(a.out.join("model.safetensors")).map(|m| m.len()).unwrap_or(0);
    eprintln!("exported {} as {} ({:.1} MB of weights)", a.out.display(), a.dtype, size as f64 / 1e6);
    Ok(())
}
