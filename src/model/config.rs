//! `config.json` as written by Hugging Face transformers (4.x and 5.x) for BERT checkpoints.
//!
//! Missing fields take `BertConfig`'s defaults in transformers, so a config that loads there
//! loads here. Fields we do not use are kept in `extra` so that a config we write back keeps them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The activation of the feed-forward block, by its transformers name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum HiddenAct {
    /// Exact GELU (erf), transformers' `"gelu"`.
    #[serde(rename = "gelu")]
    Gelu,
    /// Tanh approximation of GELU.
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
    #[serde(rename = "relu")]
    Relu,
    #[serde(rename = "silu", alias = "swish")]
    Silu,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BertConfig {
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "defaults::hidden_size")]
    pub hidden_size: usize,
    #[serde(default = "defaults::num_hidden_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "defaults::num_attention_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "defaults::intermediate_size")]
    pub intermediate_size: usize,
    #[serde(default = "defaults::hidden_act")]
    pub hidden_act: HiddenAct,
    #[serde(default = "defaults::dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "defaults::dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "defaults::max_position_embeddings")]
    pub max_position_embeddings: usize,
    #[serde(default = "defaults::type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "defaults::layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    /// `classifier_dropout` of `BertFor*` heads; `null` means "use `hidden_dropout_prob`".
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    /// Label names by class index (transformers writes the keys as strings: `{"0": "NEG"}`).
    #[serde(default)]
    pub id2label: Option<BTreeMap<usize, String>>,
    /// Every other field, kept so that writing the config back loses nothing.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

mod defaults {
    use super::HiddenAct;
    pub fn vocab_size() -> usize { 30522 }
    pub fn hidden_size() -> usize { 768 }
    pub fn num_hidden_layers() -> usize { 12 }
    pub fn num_attention_heads() -> usize { 12 }
    pub fn intermediate_size() -> usize { 3072 }
    pub fn hidden_act() -> HiddenAct { HiddenAct::Gelu }
    pub fn dropout() -> f64 { 0.1 }
    pub fn max_position_embeddings() -> usize { 512 }
    pub fn type_vocab_size() -> usize { 2 }
    pub fn layer_norm_eps() -> f64 { 1e-12 }
}

impl BertConfig {
    /// Parses and validates `config.json` text. `source` names the file in error messages.
    pub fn from_json(text: &str, source: &str) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let cfg: BertConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                Error::Config(format!("{source}: {inner}"))
            } else {
                Error::Config(format!("{source}: field `{path}`: {inner}"))
            }
        })?;
        cfg.validate().map_err(|m| Error::Config(format!("{source}: {m}")))?;
        Ok(cfg)
    }

    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text, &path.display().to_string())
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if let Some(mt) = &self.model_type {
            if mt != "bert" {
                return Err(format!("model_type is {mt:?}; only \"bert\" checkpoints are supported"));
            }
        }
        if let Some(pe) = &self.position_embedding_type {
            if pe != "absolute" {
                return Err(format!(
                    "position_embedding_type {pe:?} is not supported (only \"absolute\")"
                ));
            }
        }
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if let Some(map) = &self.id2label {
            for (expected, (&i, _)) in map.iter().enumerate() {
                if i != expected {
                    return Err(format!("id2label is missing label index {expected}"));
                }
            }
        }
        Ok(())
    }

    /// Label names in class-index order (empty when the config has none).
    pub fn labels(&self) -> Vec<String> {
        self.id2label.as_ref().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_transformers_config_with_string_label_keys() {
        let cfg = BertConfig::from_json(
            r#"{"model_type":"bert","hidden_size":8,"num_attention_heads":2,
                "id2label":{"0":"NEG","1":"POS"},"torch_dtype":"float32","hidden_act":"gelu_new"}"#,
            "config.json",
        )
        .unwrap();
        assert_eq!(cfg.labels(), vec!["NEG", "POS"]);
        assert_eq!(cfg.hidden_act, HiddenAct::GeluTanh);
        assert_eq!(cfg.num_hidden_layers, 12, "defaults follow transformers' BertConfig");
        assert_eq!(cfg.extra["torch_dtype"], "float32", "unknown fields are kept");
        let again = BertConfig::from_json(&cfg.to_json().unwrap(), "x").unwrap();
        assert_eq!(again.labels(), cfg.labels());
    }

    #[test]
    fn rejects_what_it_cannot_run_with_a_named_reason() {
        let e = BertConfig::from_json(r#"{"model_type":"roberta"}"#, "c.json").unwrap_err();
        assert!(e.to_string().contains("roberta"), "{e}");
        let e = BertConfig::from_json(r#"{"hidden_size":10,"num_attention_heads":3}"#, "c.json")
            .unwrap_err();
        assert!(e.to_string().contains("multiple"), "{e}");
        let e = BertConfig::from_json(r#"{"id2label":{"0":"a","2":"b"}}"#, "c.json").unwrap_err();
        assert!(e.to_string().contains("index 1"), "{e}");
        let e = BertConfig::from_json("{not json", "c.json").unwrap_err();
        assert!(e.to_string().starts_with("config: c.json"), "{e}");
    }
}
