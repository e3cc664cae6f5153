//! Sequence classification: pool the sentence, dropout, linear over the labels
//! (transformers' `BertForSequenceClassification.classifier`).

use candle_core::{Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use crate::model::dropout::{Dropout, DropoutRng};
use crate::model::encoder::EncoderOutput;
use crate::model::pooling::{pool, Pooling};
use crate::model::BertConfig;
use crate::{Error, Result};

pub struct ClassifyHead {
    pub pooling: Pooling,
    dropout: Dropout,
    classifier: Linear,
}

impl ClassifyHead {
    pub fn load(vb: VarBuilder, cfg: &BertConfig, num_labels: usize, pooling: Pooling) -> Result<Self> {
        let classifier = linear(cfg.hidden_size, num_labels, vb.pp("classifier"))
            .map_err(|e| Error::Weights(format!("classification head: {}", crate::error::clean(&e))))?;
        let p = cfg.classifier_dropout.unwrap_or(cfg.hidden_dropout_prob);
        Ok(Self { pooling, dropout: Dropout::new(p), classifier })
    }

    /// Logits `[batch, labels]`.
    pub fn forward(&self, out: &EncoderOutput, mask: &Tensor, train: Option<&DropoutRng>) -> Result<Tensor> {
        let pooled = pool(self.pooling, &out.last_hidden_state, mask, out.pooler_output.as_ref())?;
        let pooled = self.dropout.forward(&pooled, train)?;
        Ok(self.classifier.forward(&pooled)?)
    }
}
