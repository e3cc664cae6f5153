//! Reading and writing checkpoint tensors in Hugging Face layout.
//!
//! Accepts `model.safetensors` in f32/f16/bf16 (converted to f32 when a module loads a tensor),
//! our q8 and q4 exports (int8 matrices with per-row scales, or 4-bit blocks: `quantize.rs`; the
//! encoder's linear layers stay int8 for the int8 kernels, everything else is f32 once loaded) and
//! PyTorch's `pytorch_model.bin`. Old TF-era names (`LayerNorm.gamma`/`beta`) are renamed to
//! today's `weight`/`bias`, as transformers does when it loads them.

use std::collections::HashMap;
#[cfg(not(target_arch = "wasm32"))]
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::{Error, Result};

/// All tensors of a checkpoint, by name.
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    source: String,
    /// Read from a q8 or q4 export: fine for inference, not a starting point for training.
    quantized: bool,
}

impl Weights {
    /// Decodes a safetensors file already in memory (the browser path).
    pub fn from_safetensors(bytes: &[u8], source: &str) -> Result<Self> {
        if crate::model::quantize::is_quantized_file(bytes) == Some(true) {
            let tensors = crate::model::quantize::load_quantized(bytes, source)?;
            return Ok(Self { quantized: true, ..Self::new(tensors, source) });
        }
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| Error::Weights(format!("{source}: {}", crate::error::clean(&e))))?;
        Ok(Self::new(tensors, source))
    }

    /// Reads a PyTorch `pytorch_model.bin` (zip + pickle) without Python.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_pytorch_bin(path: &Path) -> Result<Self> {
        let source = path.display().to_string();
        let tensors = candle_core::pickle::read_all(path)
            .map_err(|e| Error::Weights(format!("{source}: {}", crate::error::clean(&e))))?;
        Ok(Self::new(tensors.into_iter().collect(), &source))
    }

    /// Reads `model.safetensors`, or `pytorch_model.bin` when there is no safetensors file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let safetensors = dir.join("model.safetensors");
        if safetensors.exists() {
            let bytes = std::fs::read(&safetensors).map_err(|e| Error::io(&safetensors, e))?;
            return Self::from_safetensors(&bytes, &safetensors.display().to_string());
        }
        let bin = dir.join("pytorch_model.bin");
        if bin.exists() {
            return Self::from_pytorch_bin(&bin);
        }
        Err(Error::Weights(format!(
            "{}: no model.safetensors or pytorch_model.bin in this folder",
            dir.display()
        )))
    }

    fn new(tensors: HashMap<String, Tensor>, source: &str) -> Self {
        let tensors = tensors
            .into_iter()
            .map(|(name, t)| (modern_name(&name), t))
            .collect();
        Weights { tensors, source: source.to_string(), quantized: false }
    }

    /// Whether these came from a q8 or q4 export.
    pub fn is_quantized(&self) -> bool {
        self.quantized
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The prefix under which the encoder's tensors live: `bert` for `BertFor*` checkpoints
    /// saved by transformers, nothing for a bare `BertModel`.
    pub fn encoder_prefix(&self) -> Option<&'static str> {
        if self.tensors.contains_key("bert.embeddings.word_embeddings.weight") {
            Some("bert")
        } else {
            None
        }
    }

    /// A `VarBuilder` over these tensors; modules get f32 whatever the stored dtype.
    pub fn var_builder(&self, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_tensors(self.tensors.clone(), DType::F32, device)
    }

    /// Every tensor as plain floats (a q8 export's int8 matrices dequantised, their scales
    /// dropped): what export and conversion write.
    pub fn into_tensors(self) -> Result<HashMap<String, Tensor>> {
        if self.quantized {
            crate::model::quantize::dequantize_kept(self.tensors)
        } else {
            Ok(self.tensors)
        }
    }
}

fn modern_name(name: &str) -> String {
    if let Some(stem) = name.strip_suffix("LayerNorm.gamma") {
        format!("{stem}LayerNorm.weight")
    } else if let Some(stem) = name.strip_suffix("LayerNorm.beta") {
        format!("{stem}LayerNorm.bias")
    } else {
        name.to_string()
    }
}

/// Writes tensors as safetensors, floats converted to `dtype`, atomically: the data goes to a
/// temporary file in the same folder that is renamed over `path` only once complete, so an
/// interrupted write never leaves a truncated checkpoint behind.
#[cfg(not(target_arch = "wasm32"))]
pub fn save_safetensors(tensors: &HashMap<String, Tensor>, dtype: DType, path: &Path) -> Result<()> {
    let converted = tensors
        .iter()
        .map(|(name, t)| {
            let t = if t.dtype().is_float() { t.to_dtype(dtype)? } else { t.clone() };
            Ok((name.clone(), t.to_device(&Device::Cpu)?.contiguous()?))
        })
        .collect::<Result<HashMap<_, _>>>()?;
    let tmp = temp_path(path);
    candle_core::safetensors::save(&converted, &tmp)
        .map_err(|e| Error::Weights(format!("writing {}: {}", tmp.display(), crate::error::clean(&e))))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Writes a q8 or q4 model file (see `quantize.rs`), atomically like [`save_safetensors`].
#[cfg(not(target_arch = "wasm32"))]
pub fn save_quantized(tensors: &HashMap<String, Tensor>, scheme: crate::model::quantize::Scheme, path: &Path) -> Result<()> {
    let bytes = crate::model::quantize::quantize(tensors, scheme)?;
    let tmp = temp_path(path);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(not(target_arch = "wasm32"))]
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn old_layer_norm_names_are_renamed() {
        assert_eq!(modern_name("bert.embeddings.LayerNorm.gamma"), "bert.embeddings.LayerNorm.weight");
        assert_eq!(modern_name("encoder.layer.0.output.LayerNorm.beta"), "encoder.layer.0.output.LayerNorm.bias");
        assert_eq!(modern_name("pooler.dense.weight"), "pooler.dense.weight");
    }

    #[test]
    fn half_precision_round_trip_loads_as_f32() {
        let dir = std::env::temp_dir().join(format!("bt-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = Tensor::new(&[[1.5f32, -2.25], [0.125, 3.0]], &Device::Cpu).unwrap();
        let map = HashMap::from([("bert.embeddings.word_embeddings.weight".to_string(), t)]);
        for dtype in [DType::F16, DType::BF16] {
            let path = dir.join("model.safetensors");
            save_safetensors(&map, dtype, &path).unwrap();
            let w = Weights::from_dir(&dir).unwrap();
            assert_eq!(w.encoder_prefix(), Some("bert"));
            let got = w.var_builder(&Device::Cpu).get((2, 2), "bert.embeddings.word_embeddings.weight").unwrap();
            assert_eq!(got.dtype(), DType::F32);
            assert_eq!(got.to_vec2::<f32>().unwrap(), vec![vec![1.5, -2.25], vec![0.125, 3.0]]);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_bytes_give_an_error_naming_the_source() {
        let e = Weights::from_safetensors(&[1, 2, 3], "w.safetensors").err().unwrap();
        assert!(e.to_string().contains("w.safetensors"), "{e}");
    }
}
