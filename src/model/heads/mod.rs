//! What sits on the encoder for each task, and how `config.json` describes it.
//!
//! Our checkpoints are transformers configs plus one object, `task_head`; a checkpoint without it
//! is read from `architectures` (`BertForSequenceClassification` → classify with the pooler,
//! `BertForTokenClassification` → tag with softmax), so PyTorch's `save_pretrained` output loads.

pub mod classify;
pub mod crf;
pub mod relate;
pub mod tag;

use serde::{Deserialize, Serialize};

use super::config::BertConfig;
use super::pooling::Pooling;
use crate::text::scheme::Scheme;
use crate::{Error, Result};

pub use classify::ClassifyHead;
pub use crf::Crf;
pub use relate::{RelateHead, RelateMethod};
pub use tag::{Decoder, TagHead};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum TaskHead {
    Classify {
        #[serde(default)]
        pooling: Pooling,
    },
    Tag {
        #[serde(default)]
        decoder: Decoder,
        /// Inferred from the label names when absent.
        #[serde(default)]
        scheme: Option<Scheme>,
        /// Forbid the transitions the scheme rules out when decoding — on by default. The CRF
        /// then finds its best allowed path; the softmax decoder the most probable allowed path
        /// under its per-token probabilities (per-token argmax wherever that is valid). A
        /// `BertForTokenClassification` checkpoint without a `task_head` decodes unconstrained,
        /// per-token argmax, as transformers does.
        #[serde(default = "yes")]
        constrained: bool,
    },
    Relate {
        method: RelateMethod,
        /// `entity_pool`: also concatenate the [CLS] state.
        #[serde(default)]
        use_cls: bool,
        /// `position_embedding`: how the sentence is pooled.
        #[serde(default)]
        pooling: Pooling,
        /// `position_embedding`: distances are clipped to ±max_distance tokens.
        #[serde(default = "relate::default_max_distance")]
        max_distance: usize,
        /// `entity_markers`: the vocabulary tokens used as `[E1] [/E1] [E2] [/E2]`.
        #[serde(default = "relate::default_markers")]
        markers: [String; 4],
    },
}

fn yes() -> bool {
    true
}

impl TaskHead {
    /// The head a config describes: its `task_head` object, else what `architectures` implies.
    pub fn from_config(cfg: &BertConfig) -> Result<Self> {
        if let Some(v) = cfg.extra.get("task_head") {
            return serde_json::from_value(v.clone())
                .map_err(|e| Error::Config(format!("task_head: {e}")));
        }
        let arch = cfg.architectures.as_deref().unwrap_or_default();
        if arch.iter().any(|a| a == "BertForSequenceClassification") {
            Ok(TaskHead::Classify { pooling: Pooling::Pooler })
        } else if arch.iter().any(|a| a == "BertForTokenClassification") {
            Ok(TaskHead::Tag { decoder: Decoder::Softmax, scheme: None, constrained: false })
        } else {
            Err(Error::Config(format!(
                "config.json has no task_head and its architectures {arch:?} name no task head \
                 (expected BertForSequenceClassification or BertForTokenClassification)"
            )))
        }
    }

    pub fn task_name(&self) -> &'static str {
        match self {
            TaskHead::Classify { .. } => "classify",
            TaskHead::Tag { .. } => "tag",
            TaskHead::Relate { .. } => "relate",
        }
    }
}
