//! Relation classification between a head and a tail entity span, three ways:
//! - `entity_pool`: mean of each span's token states, concatenated (optionally with [CLS]), linear;
//! - `position_embedding`: learned embeddings of every token's distance to the head and to the
//!   tail, added in the encoder's embedding layer; the pooled sentence goes to a linear layer;
//! - `entity_markers`: `[E1] … [/E1] … [E2] … [/E2]` inserted around the spans; the states of
//!   the two start markers, concatenated, go to a linear layer ("Matching the Blanks").

use candle_core::{Module, Tensor};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::model::dropout::{Dropout, DropoutRng};
use crate::model::encoder::EncoderOutput;
use crate::model::pooling::{masked_mean, pool, Pooling};
use crate::model::BertConfig;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelateMethod {
    EntityPool,
    PositionEmbedding,
    EntityMarkers,
}

impl std::str::FromStr for RelateMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "entity_pool" => Ok(RelateMethod::EntityPool),
            "position_embedding" => Ok(RelateMethod::PositionEmbedding),
            "entity_markers" => Ok(RelateMethod::EntityMarkers),
            _ => Err(Error::Input(format!(
                "unknown relation method {s:?} (entity_pool, position_embedding, entity_markers)"
            ))),
        }
    }
}

pub fn default_max_distance() -> usize {
    64
}

/// `[unused1]`…`[unused4]` exist in both the English uncased and the Chinese BERT vocabularies.
pub fn default_markers() -> [String; 4] {
    ["[unused1]", "[unused2]", "[unused3]", "[unused4]"].map(String::from)
}

/// Per-batch tensors describing where the entities are.
pub struct RelationTensors {
    /// `[b, t]`, 1 on the head span's tokens.
    pub head_mask: Tensor,
    /// `[b, t]`, 1 on the tail span's tokens.
    pub tail_mask: Tensor,
    /// `[b]` flat indices (`row * seq + position`) of the `[E1]` / `[E2]` markers.
    pub head_marker: Tensor,
    pub tail_marker: Tensor,
    /// `[b, t]` clipped, shifted distances in `0..=2*max_distance`.
    pub head_distance: Tensor,
    pub tail_distance: Tensor,
}

pub struct RelateHead {
    pub method: RelateMethod,
    use_cls: bool,
    pooling: Pooling,
    distance: Option<(Embedding, Embedding)>,
    dropout: Dropout,
    classifier: Linear,
}

impl RelateHead {
    pub fn load(
        vb: VarBuilder,
        cfg: &BertConfig,
        num_labels: usize,
        method: RelateMethod,
        use_cls: bool,
        pooling: Pooling,
        max_distance: usize,
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        let features = match method {
            RelateMethod::EntityPool => h * if use_cls { 3 } else { 2 },
            RelateMethod::PositionEmbedding => h,
            RelateMethod::EntityMarkers => 2 * h,
        };
        let build = || -> candle_core::Result<Self> {
            let distance = if method == RelateMethod::PositionEmbedding {
                let n = 2 * max_distance + 1;
                let vb = vb.pp("relation_positions");
                Some((embedding(n, h, vb.pp("head_distance"))?, embedding(n, h, vb.pp("tail_distance"))?))
            } else {
                None
            };
            Ok(Self {
                method,
                use_cls,
                pooling,
                distance,
                dropout: Dropout::new(cfg.classifier_dropout.unwrap_or(cfg.hidden_dropout_prob)),
                classifier: linear(features, num_labels, vb.pp("classifier"))?,
            })
        };
        build().map_err(|e| Error::Weights(format!("relation head ({method:?}): {}", crate::error::clean(&e))))
    }

    /// The relation-position embeddings to add inside the encoder's embedding layer
    /// (`position_embedding` only).
    pub fn extra_embeddings(&self, r: &RelationTensors) -> Result<Option<Tensor>> {
        match &self.distance {
            Some((head, tail)) => Ok(Some(head.forward(&r.head_distance)?.add(&tail.forward(&r.tail_distance)?)?)),
            None => Ok(None),
        }
    }

    /// Whether the features come from [CLS] alone (relation-position embeddings with the pooler
    /// or [CLS] pooling), so that inference may run the last layer on that position only.
    pub fn reads_first_position_only(&self) -> bool {
        self.method == RelateMethod::PositionEmbedding && self.pooling.reads_first_position_only()
    }

    /// Logits `[batch, labels]`.
    pub fn forward(
        &self,
        out: &EncoderOutput,
        r: &RelationTensors,
        mask: &Tensor,
        train: Option<&DropoutRng>,
    ) -> Result<Tensor> {
        let hidden = &out.last_hidden_state;
        let features = match self.method {
            RelateMethod::EntityPool => {
                let mut parts = vec![masked_mean(hidden, &r.head_mask)?, masked_mean(hidden, &r.tail_mask)?];
                if self.use_cls {
                    parts.insert(0, hidden.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?);
                }
                Tensor::cat(&parts, 1)?
            }
            RelateMethod::PositionEmbedding => pool(self.pooling, hidden, mask, out.pooler_output.as_ref())?,
            RelateMethod::EntityMarkers => {
                let (b, t, h) = hidden.dims3()?;
                let flat = hidden.reshape((b * t, h))?;
                Tensor::cat(&[flat.index_select(&r.head_marker, 0)?, flat.index_select(&r.tail_marker, 0)?], 1)?
            }
        };
        let features = self.dropout.forward(&features, train)?;
        Ok(self.classifier.forward(&features)?)
    }
}
