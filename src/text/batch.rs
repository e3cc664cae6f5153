//! Padding a list of encodings into one batch of tensors with an attention mask.

use candle_core::{Device, Tensor};

use super::Encoded;
use crate::model::EncoderInput;
use crate::{Error, Result};

/// `[batch, seq]` tensors for the encoder, padded on the right to the longest input.
pub struct Batch {
    pub input_ids: Tensor,
    pub token_type_ids: Tensor,
    pub attention_mask: Tensor,
    /// Number of real tokens of each input.
    pub lengths: Vec<usize>,
}

impl Batch {
    pub fn pad(encodings: &[&Encoded], pad_id: u32, device: &Device) -> Result<Self> {
        let seq = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        if seq == 0 {
            return Err(Error::Input("cannot build a batch from no tokens".into()));
        }
        let n = encodings.len();
        let (mut ids, mut types, mut mask) =
            (vec![pad_id; n * seq], vec![0u32; n * seq], vec![0u32; n * seq]);
        for (row, e) in encodings.iter().enumerate() {
            let at = row * seq;
            ids[at..at + e.len()].copy_from_slice(&e.ids);
            types[at..at + e.len()].copy_from_slice(&e.type_ids);
            mask[at..at + e.len()].fill(1);
        }
        Ok(Batch {
            input_ids: Tensor::from_vec(ids, (n, seq), device)?,
            token_type_ids: Tensor::from_vec(types, (n, seq), device)?,
            attention_mask: Tensor::from_vec(mask, (n, seq), device)?,
            lengths: encodings.iter().map(|e| e.len()).collect(),
        })
    }

    pub fn encoder_input(&self) -> EncoderInput<'_> {
        EncoderInput {
            input_ids: &self.input_ids,
            token_type_ids: &self.token_type_ids,
            attention_mask: &self.attention_mask,
            extra_embeddings: None,
        }
    }
}
