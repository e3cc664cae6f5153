//! A loaded encoder folder, ready to turn text into contextual vectors. This is what the task
//! models build on, and what `bert-tasks embed` prints.

use candle_core::Device;

#[cfg(not(target_arch = "wasm32"))]
use crate::checkpoint::Checkpoint;
use crate::model::{BertConfig, BertModel, Weights};
use crate::text::{Batch, Encoded, TextTokenizer};
use crate::Result;

pub struct TextEncoder {
    pub config: BertConfig,
    pub tokenizer: TextTokenizer,
    pub bert: BertModel,
    pub device: Device,
}

/// The encoder's view of one text.
#[derive(Debug, Clone)]
pub struct Embedding {
    pub encoded: Encoded,
    /// `[tokens][hidden]`, [CLS] and [SEP] included.
    pub last_hidden_state: Vec<Vec<f32>>,
    /// `[hidden]` when the checkpoint has a pooler.
    pub pooler_output: Option<Vec<f32>>,
}

impl TextEncoder {
    /// Builds the encoder from a checkpoint's parts; `vb` is rooted at the checkpoint's top
    /// (the `bert.` prefix of `BertFor*` checkpoints is found here).
    pub fn new(config: BertConfig, tokenizer: TextTokenizer, weights: &Weights, device: &Device) -> Result<Self> {
        let vb = weights.var_builder(device);
        let vb = match weights.encoder_prefix() {
            Some(prefix) => vb.pp(prefix),
            None => vb,
        };
        Self::from_var_builder(config, tokenizer, vb, device)
    }

    /// `vb` rooted where `embeddings.*` lives; for training it is backed by a `VarMap`.
    pub fn from_var_builder(config: BertConfig, tokenizer: TextTokenizer, vb: candle_nn::VarBuilder, device: &Device) -> Result<Self> {
        let bert = BertModel::load(vb, &config)?;
        Ok(Self { config, tokenizer, bert, device: device.clone() })
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: impl AsRef<std::path::Path>, device: &Device) -> Result<Self> {
        let c = Checkpoint::load(dir)?;
        Self::new(c.config, c.tokenizer, &c.weights, device)
    }

    /// Encodes texts as one padded batch; padding never changes a text's vectors.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>> {
        let encoded = texts.iter().map(|t| self.tokenizer.encode(t)).collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Encoded> = encoded.iter().collect();
        let batch = Batch::pad(&refs, self.tokenizer.pad_id(), &self.device)?;
        let out = self.bert.forward(&batch.encoder_input(), None)?;
        let hidden: Vec<Vec<Vec<f32>>> = out.last_hidden_state.to_vec3()?;
        let pooled: Option<Vec<Vec<f32>>> = match out.pooler_output {
            Some(p) => Some(p.to_vec2()?),
            None => None,
        };
        Ok(encoded
            .into_iter()
            .zip(hidden)
            .enumerate()
            .map(|(i, (encoded, mut rows))| {
                rows.truncate(encoded.len());
                Embedding {
                    encoded,
                    last_hidden_state: rows,
                    pooler_output: pooled.as_ref().map(|p| p[i].clone()),
                }
            })
            .collect())
    }
}
