//! Token classification: a linear layer gives each token's emission scores
//! (transformers' `BertForTokenClassification.classifier`); a per-token softmax or a CRF decodes.

use candle_core::{Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::crf::Crf;
use crate::model::dropout::{Dropout, DropoutRng};
use crate::model::BertConfig;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Decoder {
    #[default]
    Softmax,
    Crf,
}

pub struct TagHead {
    dropout: Dropout,
    classifier: Linear,
    pub crf: Option<Crf>,
}

impl TagHead {
    pub fn load(vb: VarBuilder, cfg: &BertConfig, num_labels: usize, decoder: Decoder) -> Result<Self> {
        let classifier = linear(cfg.hidden_size, num_labels, vb.pp("classifier"))
            .map_err(|e| Error::Weights(format!("tagging head: {}", crate::error::clean(&e))))?;
        let crf = match decoder {
            Decoder::Crf => Some(Crf::load(vb.pp("crf"), num_labels)?),
            Decoder::Softmax => None,
        };
        let p = cfg.classifier_dropout.unwrap_or(cfg.hidden_dropout_prob);
        Ok(Self { dropout: Dropout::new(p), classifier, crf })
    }

    /// Emission scores `[batch, seq, labels]` for every position ([CLS]/[SEP] included).
    pub fn forward(&self, hidden: &Tensor, train: Option<&DropoutRng>) -> Result<Tensor> {
        let hidden = self.dropout.forward(hidden, train)?;
        Ok(self.classifier.forward(&hidden)?)
    }
}
