//! A fine-tuned model: encoder + tokenizer + one task head, with the typed APIs
//! `classify`, `tag` and `relate` (and their batch forms). Native and wasm share this code.

mod classify;
mod relate;
pub mod results;
mod tag;

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::encode::TextEncoder;
use crate::model::heads::{ClassifyHead, RelateHead, TagHead, TaskHead};
use crate::model::EncoderOutput;
use crate::text::scheme::{Constraints, Scheme, Tag};
use crate::text::{Batch, Encoded};
use crate::{Error, Result};

pub use results::{Prediction, Scores, Span, TaggedToken, Tagging, WordTag};

pub enum Head {
    Classify(ClassifyHead),
    Tag(TagHead),
    Relate(RelateHead),
}

/// How tags are read back: the scheme, the parsed labels, and the constraints (CRF only).
struct TagDecoding {
    scheme: Scheme,
    tags: Vec<Tag>,
    constraints: Option<Constraints>,
}

pub struct Model {
    pub encoder: TextEncoder,
    pub task: TaskHead,
    pub labels: Vec<String>,
    pub head: Head,
    decoding: Option<TagDecoding>,
    markers: Option<[u32; 4]>,
    max_tokens: usize,
    chunk: usize,
}

/// A summary of a loaded model (`model.info()` in JavaScript).
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub task: String,
    pub head: TaskHead,
    pub labels: Vec<String>,
    pub hidden_size: usize,
    pub layers: usize,
    pub heads: usize,
    pub vocab_size: usize,
    pub max_tokens: usize,
    pub parameters: usize,
}

impl Model {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: impl AsRef<std::path::Path>, device: &Device) -> Result<Self> {
        Self::from_checkpoint(Checkpoint::load(dir)?, device)
    }

    /// From the bytes of `config.json`, `tokenizer.json` and `model.safetensors` (the browser).
    pub fn from_bytes(config: &[u8], tokenizer: &[u8], weights: &[u8], device: &Device) -> Result<Self> {
        Self::from_checkpoint(Checkpoint::from_bytes(config, tokenizer, weights)?, device)
    }

    pub fn from_checkpoint(c: Checkpoint, device: &Device) -> Result<Self> {
        let task = TaskHead::from_config(&c.config)?;
        let vb = c.weights.var_builder(device);
        let prefix = c.weights.encoder_prefix();
        Self::build(c.config, c.tokenizer, task, vb, prefix, device)
    }

    /// Builds the model over `vb` (rooted at the checkpoint's top; the encoder lives under
    /// `encoder_prefix`). Training passes a `VarMap`-backed builder, which creates the head's
    /// tensors that the base checkpoint lacks.
    pub fn build(
        config: crate::model::BertConfig,
        tokenizer: crate::text::TextTokenizer,
        task: TaskHead,
        vb: candle_nn::VarBuilder,
        encoder_prefix: Option<&str>,
        device: &Device,
    ) -> Result<Self> {
        let labels = config.labels();
        if labels.is_empty() {
            return Err(Error::Config("config.json has no id2label: a task model needs its label names".into()));
        }
        let n = labels.len();
        let mut decoding = None;
        let mut markers = None;
        let head = match &task {
            TaskHead::Classify { pooling } => Head::Classify(ClassifyHead::load(vb.clone(), &config, n, *pooling)?),
            TaskHead::Tag { decoder, scheme, constrained } => {
                let scheme = scheme.unwrap_or_else(|| Scheme::infer(&labels));
                let tags = scheme.parse_all(&labels)?;
                let constraints = if *constrained { Some(Constraints::new(scheme, &labels)?) } else { None };
                decoding = Some(TagDecoding { tags, constraints, scheme });
                Head::Tag(TagHead::load(vb.clone(), &config, n, *decoder)?)
            }
            TaskHead::Relate { method, use_cls, pooling, max_distance, markers: names } => {
                if *method == crate::model::heads::RelateMethod::EntityMarkers {
                    let id = |t: &String| {
                        tokenizer.token_to_id(t).ok_or_else(|| {
                            Error::Config(format!("entity marker token {t:?} is not in the vocabulary"))
                        })
                    };
                    markers = Some([id(&names[0])?, id(&names[1])?, id(&names[2])?, id(&names[3])?]);
                }
                Head::Relate(RelateHead::load(vb.clone(), &config, n, *method, *use_cls, *pooling, *max_distance)?)
            }
        };
        let max_tokens = config.max_position_embeddings;
        let vb = match encoder_prefix {
            Some(p) => vb.pp(p),
            None => vb,
        };
        let encoder = TextEncoder::from_var_builder(config, tokenizer, vb, device)?;
        Ok(Model { encoder, task, labels, head, decoding, markers, max_tokens, chunk: 16 })
    }

    /// The tag scheme of a tag model.
    pub fn scheme(&self) -> Option<Scheme> {
        self.decoding.as_ref().map(|d| d.scheme)
    }

    /// The constraints a tag model's scheme imposes (whether or not decoding uses them).
    pub fn scheme_constraints(&self) -> Option<Result<Constraints>> {
        self.decoding.as_ref().map(|d| Constraints::new(d.scheme, &self.labels))
    }

    /// Caps the tokens per encoder pass (default: the model's positions). Longer tag inputs are
    /// windowed; a smaller cap bounds memory, e.g. in the browser.
    pub fn set_max_tokens(&mut self, n: usize) -> Result<()> {
        let limit = self.encoder.config.max_position_embeddings;
        if !(8..=limit).contains(&n) {
            return Err(Error::Input(format!("max tokens must be between 8 and {limit}, got {n}")));
        }
        self.max_tokens = n;
        Ok(())
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    pub fn info(&self) -> ModelInfo {
        let cfg = &self.encoder.config;
        let h = cfg.hidden_size;
        let per_layer = 4 * (h * h + h) + 2 * h * cfg.intermediate_size + cfg.intermediate_size + h + 4 * h;
        let parameters = (cfg.vocab_size + cfg.max_position_embeddings + cfg.type_vocab_size) * h
            + 2 * h
            + cfg.num_hidden_layers * per_layer;
        ModelInfo {
            task: self.task.task_name().to_string(),
            head: self.task.clone(),
            labels: self.labels.clone(),
            hidden_size: h,
            layers: cfg.num_hidden_layers,
            heads: cfg.num_attention_heads,
            vocab_size: cfg.vocab_size,
            max_tokens: self.max_tokens,
            parameters,
        }
    }

    fn wrong_task(&self, wanted: &str) -> Error {
        Error::Input(format!("this is a {} model; {wanted} needs a {wanted} model", self.task.task_name()))
    }

    /// Runs the encoder over `seqs` in chunks, handing each chunk's output to `each`;
    /// `first_position_only`: the caller reads only [CLS] (see `BertModel::forward_for_head`).
    fn run_chunks<T>(
        &self,
        seqs: &[&Encoded],
        first_position_only: bool,
        mut each: impl FnMut(&[&Encoded], &Batch, &EncoderOutput) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(self.chunk) {
            let batch = Batch::pad(chunk, self.encoder.tokenizer.pad_id(), &self.encoder.device)?;
            let enc = self.encoder.bert.forward_for_head(&batch.encoder_input(), None, first_position_only)?;
            out.extend(each(chunk, &batch, &enc)?);
        }
        Ok(out)
    }
}

impl Model {
    /// Classification logits `[batch, labels]` for a padded batch; `train` switches dropout on.
    pub fn classify_logits(&self, batch: &Batch, train: Option<&crate::model::DropoutRng>) -> Result<Tensor> {
        let Head::Classify(head) = &self.head else { return Err(self.wrong_task("classify")) };
        let out = self.encoder.bert.forward_for_head(&batch.encoder_input(), train, head.pooling.reads_first_position_only())?;
        head.forward(&out, &batch.attention_mask, train)
    }

    /// Tag emission scores `[batch, seq, labels]` ([CLS]/[SEP] positions included).
    pub fn tag_emissions(&self, batch: &Batch, train: Option<&crate::model::DropoutRng>) -> Result<Tensor> {
        let Head::Tag(head) = &self.head else { return Err(self.wrong_task("tag")) };
        let out = self.encoder.bert.forward(&batch.encoder_input(), train)?;
        head.forward(&out.last_hidden_state, train)
    }
}

/// Row-wise softmax of `[n, labels]` logits, on the host.
fn probabilities(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(candle_nn::ops::softmax_last_dim(logits)?.to_vec2()?)
}

/// `ln softmax(row)` as `x − max − ln Σ e^(x − max)`: finite where a probability underflows to 0
/// (its `ln` would make every tag path through it −∞).
fn log_softmax_row(row: &[f32]) -> Vec<f32> {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = row.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
    row.iter().map(|v| v - m - log_sum).collect()
}

/// Characters `[start, end)` of `chars`.
fn slice(chars: &[char], start: usize, end: usize) -> String {
    chars[start.min(chars.len())..end.min(chars.len())].iter().collect()
}

#[cfg(test)]
mod row_tests {
    use super::*;

    #[test]
    fn log_softmax_is_finite_where_softmax_underflows() {
        let row = [0.0f32, 200.0, -300.0, 5.0];
        let p = probabilities(&Tensor::new(&[row], &Device::Cpu).unwrap()).unwrap().remove(0);
        let lp = log_softmax_row(&row);
        assert_eq!(p[2], 0.0, "the case this guards against");
        assert!(lp.iter().all(|v| v.is_finite()));
        for (a, b) in p.iter().zip(&lp) {
            assert!((a - b.exp()).abs() < 1e-6);
        }
    }
}
