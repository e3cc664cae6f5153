use candle_core::Tensor;

use super::{probabilities, Head, Model, Prediction};
use crate::model::heads::relate::RelationTensors;
use crate::model::EncoderInput;
use crate::text::relation::{distances, encode_relation, CharSpan, RelationEncoding};
use crate::text::{Batch, Encoded};
use crate::Result;

impl Model {
    /// The relation between the `head` and `tail` spans (character offsets) of `text`.
    pub fn relate(&self, text: &str, head: CharSpan, tail: CharSpan) -> Result<Prediction> {
        Ok(self.relate_batch(&[(text, head, tail)])?.remove(0))
    }

    pub fn relate_batch(&self, inputs: &[(&str, CharSpan, CharSpan)]) -> Result<Vec<Prediction>> {
        let examples = inputs
            .iter()
            .map(|(text, h, t)| self.encode_relation(text, *h, *t))
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(examples.len());
        for chunk in examples.chunks(self.chunk) {
            for probs in probabilities(&self.relation_logits(chunk, None)?)? {
                out.push(Prediction::from_probs(&self.labels, &probs));
            }
        }
        Ok(out)
    }

    /// Tokenises a relation example as this model's method wants it (markers or not).
    pub fn encode_relation(&self, text: &str, head: CharSpan, tail: CharSpan) -> Result<RelationEncoding> {
        if !matches!(self.head, Head::Relate(_)) {
            return Err(self.wrong_task("relate"));
        }
        encode_relation(&self.encoder.tokenizer, text, head, tail, self.markers, self.max_tokens)
    }

    /// Logits `[batch, labels]` for prepared examples (also the training forward pass).
    pub fn relation_logits(&self, examples: &[RelationEncoding], train: Option<&crate::model::DropoutRng>) -> Result<Tensor> {
        let Head::Relate(head) = &self.head else { return Err(self.wrong_task("relate")) };
        let refs: Vec<&Encoded> = examples.iter().map(|e| &e.encoded).collect();
        let dev = &self.encoder.device;
        let batch = Batch::pad(&refs, self.encoder.tokenizer.pad_id(), dev)?;
        let seq = batch.input_ids.dim(1)?;
        let n = examples.len();
        let span_mask = |pick: fn(&RelationEncoding) -> (usize, usize)| -> Result<Tensor> {
            let mut m = vec![0u32; n * seq];
            for (row, e) in examples.iter().enumerate() {
                let (a, b) = pick(e);
                m[row * seq + a..row * seq + b].fill(1);
            }
            Ok(Tensor::from_vec(m, (n, seq), dev)?)
        };
        let marker = |second: bool| -> Result<Tensor> {
            let idx: Vec<u32> = examples
                .iter()
                .enumerate()
                .map(|(row, e)| {
                    let (h, t) = e.markers.unwrap_or((0, 0));
                    (row * seq + if second { t } else { h }) as u32
                })
                .collect();
            Ok(Tensor::from_vec(idx, n, dev)?)
        };
        let max_distance = match &self.task {
            crate::model::TaskHead::Relate { max_distance, .. } => *max_distance,
            _ => 0,
        };
        let distance = |pick: fn(&RelationEncoding) -> (usize, usize)| -> Result<Tensor> {
            let d: Vec<u32> = examples.iter().flat_map(|e| distances(seq, pick(e), max_distance)).collect();
            Ok(Tensor::from_vec(d, (n, seq), dev)?)
        };
        let tensors = RelationTensors {
            head_mask: span_mask(|e| e.head)?,
            tail_mask: span_mask(|e| e.tail)?,
            head_marker: marker(false)?,
            tail_marker: marker(true)?,
            head_distance: distance(|e| e.head)?,
            tail_distance: distance(|e| e.tail)?,
        };
        let extra = head.extra_embeddings(&tensors)?;
        let input = EncoderInput { extra_embeddings: extra.as_ref(), ..batch.encoder_input() };
        let out = self.encoder.bert.forward_for_head(&input, train, head.reads_first_position_only())?;
        head.forward(&out, &tensors, &batch.attention_mask, train)
    }
}
