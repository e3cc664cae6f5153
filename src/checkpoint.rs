//! A model folder in Hugging Face layout: `config.json`, `tokenizer.json`, `model.safetensors`
//! (or `pytorch_model.bin`). Loaded from disk natively, or from three byte buffers in the browser.

#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

use crate::model::{BertConfig, Weights};
use crate::text::TextTokenizer;
use crate::Result;

pub struct Checkpoint {
    pub config: BertConfig,
    pub tokenizer: TextTokenizer,
    pub weights: Weights,
}

impl Checkpoint {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        Ok(Checkpoint {
            config: BertConfig::from_file(dir.join("config.json"))?,
            tokenizer: TextTokenizer::from_file(dir.join("tokenizer.json"))?,
            weights: Weights::from_dir(dir)?,
        })
    }

    pub fn from_bytes(config: &[u8], tokenizer: &[u8], weights: &[u8]) -> Result<Self> {
        let config = std::str::from_utf8(config)
            .map_err(|e| crate::Error::Config(format!("config.json is not UTF-8: {e}")))?;
        Ok(Checkpoint {
            config: BertConfig::from_json(config, "config.json")?,
            tokenizer: TextTokenizer::from_bytes(tokenizer, "tokenizer.json")?,
            weights: Weights::from_safetensors(weights, "model.safetensors")?,
        })
    }
}
