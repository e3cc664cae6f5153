use super::{probabilities, Head, Model, Prediction};
use crate::text::Encoded;
use crate::Result;

impl Model {
    /// Classifies one text, or a pair (`[CLS] a [SEP] b [SEP]`).
    pub fn classify(&self, text: &str, text_pair: Option<&str>) -> Result<Prediction> {
        Ok(self.classify_batch(&[(text, text_pair)])?.remove(0))
    }

    /// Classifies many inputs in padded batches; results equal one-at-a-time calls.
    ///
    /// A single text longer than the model's positions is split into overlapping windows and
    /// the windows' probabilities are averaged; a pair that long is an error.
    pub fn classify_batch(&self, inputs: &[(&str, Option<&str>)]) -> Result<Vec<Prediction>> {
        let Head::Classify(head) = &self.head else { return Err(self.wrong_task("classify")) };
        let tok = &self.encoder.tokenizer;
        let mut seqs: Vec<Encoded> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        for (i, (a, b)) in inputs.iter().enumerate() {
            let enc = match b {
                Some(b) => tok.encode_pair(a, b)?,
                None => tok.encode(a)?,
            };
            if enc.len() <= self.max_tokens {
                seqs.push(enc);
                owner.push(i);
            } else if b.is_some() {
                return Err(crate::Error::Input(format!(
                    "text pair {i} has {} tokens; the model takes at most {}",
                    enc.len(),
                    self.max_tokens
                )));
            } else {
                let plain = tok.encode_plain(a)?;
                for range in crate::text::windows::windows(plain.len(), self.max_tokens - 2) {
                    seqs.push(plain.window(range.clone(), tok.cls_id(), tok.sep_id()));
                    owner.push(i);
                }
            }
        }
        let refs: Vec<&Encoded> = seqs.iter().collect();
        let probs = self.run_chunks(&refs, head.pooling.reads_first_position_only(), |_, batch, out| {
            probabilities(&head.forward(out, &batch.attention_mask, None)?)
        })?;
        // f64 sums: a million-character text has tens of thousands of windows.
        let mut sums = vec![(vec![0f64; self.labels.len()], 0usize); inputs.len()];
        for (p, &i) in probs.iter().zip(&owner) {
            sums[i].0.iter_mut().zip(p).for_each(|(s, v)| *s += *v as f64);
            sums[i].1 += 1;
        }
        Ok(sums
            .into_iter()
            .map(|(s, n)| {
                let avg: Vec<f32> = s.iter().map(|v| (v / n as f64) as f32).collect();
                Prediction::from_probs(&self.labels, &avg)
            })
            .collect())
    }
}
