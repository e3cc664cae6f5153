use super::{log_softmax_row, slice, Head, Model, Span, TaggedToken, Tagging, WordTag};
use crate::text::scheme::decode_spans;
use crate::text::windows::{best_window, windows};
use crate::text::Encoded;
use crate::{Error, Result};

impl Model {
    /// Tags every sub-word token of `text` and decodes the spans. Texts longer than the model's
    /// positions are tagged in overlapping windows whose emission scores are merged (each token
    /// from the window where it has most context) before one decode over the whole text, so a
    /// decoder's constraints (CRF or softmax) hold across window borders too.
    pub fn tag(&self, text: &str) -> Result<Tagging> {
        Ok(self.tag_batch(&[text])?.remove(0))
    }

    pub fn tag_batch(&self, texts: &[&str]) -> Result<Vec<Tagging>> {
        let Head::Tag(head) = &self.head else { return Err(self.wrong_task("tag")) };
        let decoding = self.decoding.as_ref().ok_or_else(|| self.wrong_task("tag"))?;
        let tok = &self.encoder.tokenizer;
        let plains = texts.iter().map(|t| tok.encode_plain(t)).collect::<Result<Vec<_>>>()?;
        // Every window of every text goes through the encoder in shared batches.
        let mut seqs: Vec<Encoded> = Vec::new();
        let mut plan: Vec<Vec<std::ops::Range<usize>>> = Vec::new();
        for p in &plains {
            let ws = if p.is_empty() { Vec::new() } else { windows(p.len(), self.max_tokens - 2) };
            for r in &ws {
                seqs.push(p.window(r.clone(), tok.cls_id(), tok.sep_id()));
            }
            plan.push(ws);
        }
        let refs: Vec<&Encoded> = seqs.iter().collect();
        let emissions: Vec<Vec<Vec<f32>>> = self.run_chunks(&refs, false, |chunk, _, out| {
            let e: Vec<Vec<Vec<f32>>> = head.forward(&out.last_hidden_state, None)?.to_vec3()?;
            // Drop [CLS], [SEP] and padding.
            Ok(e.into_iter().zip(chunk).map(|(rows, s)| rows[1..s.len() - 1].to_vec()).collect())
        })?;
        let mut next = 0;
        let mut results = Vec::with_capacity(texts.len());
        for ((text, plain), ws) in texts.iter().zip(&plains).zip(&plan) {
            let window_rows = &emissions[next..next + ws.len()];
            next += ws.len();
            let best = best_window(plain.len(), ws);
            let rows: Vec<Vec<f32>> = (0..plain.len())
                .map(|t| window_rows[best[t]][t - ws[best[t]].start].clone())
                .collect();
            results.push(self.decode_tags(text, plain, &rows, head.crf.as_ref(), decoding)?);
        }
        Ok(results)
    }

    fn decode_tags(
        &self,
        text: &str,
        plain: &Encoded,
        emissions: &[Vec<f32>],
        crf: Option<&crate::model::heads::Crf>,
        decoding: &super::TagDecoding,
    ) -> Result<Tagging> {
        let (path, scores): (Vec<usize>, Vec<f32>) = match crf {
            Some(crf) => {
                let c = decoding.constraints.as_ref();
                let path = crf.decode(emissions, c);
                let marg = crf.marginals(emissions, c);
                let scores = path.iter().enumerate().map(|(t, &j)| marg[t][j]).collect();
                (path, scores)
            }
            None => {
                // Log-probabilities serve both decoders (argmax is the same on them) and stay
                // finite where a probability underflows; each token's score is its exp.
                let logs: Vec<Vec<f32>> = emissions.iter().map(|row| log_softmax_row(row)).collect();
                let argmax = || logs.iter().map(|p| (0..p.len()).fold(0, |b, j| if p[j] > p[b] { j } else { b })).collect();
                let path: Vec<usize> = match decoding.constraints.as_ref() {
                    Some(c) => crate::model::heads::crf::constrained_argmax(&logs, c).unwrap_or_else(argmax),
                    None => argmax(),
                };
                let scores = path.iter().zip(&logs).map(|(&j, p)| p[j].exp()).collect();
                (path, scores)
            }
        };
        let chars: Vec<char> = text.chars().collect();
        let tokens: Vec<TaggedToken> = path
            .iter()
            .zip(&scores)
            .zip(&plain.offsets)
            .map(|((&j, &score), &(start, end))| TaggedToken {
                text: slice(&chars, start, end),
                start,
                end,
                tag: self.labels[j].clone(),
                score,
            })
            .collect();
        let tags: Vec<_> = path.iter().map(|&j| decoding.tags[j].clone()).collect();
        let spans = decode_spans(&tags)
            .into_iter()
            .map(|s| {
                let (start, end) = (tokens[s.start].start, tokens[s.end - 1].end);
                let label = if s.kind.is_empty() { "word".to_string() } else { s.kind };
                Span { label, start, end, text: slice(&chars, start, end) }
            })
            .collect();
        Ok(Tagging { tokens, spans })
    }

    /// Tags pre-split words (CoNLL style): each word gets the tag of its first sub-word.
    pub fn tag_words(&self, words: &[&str]) -> Result<Vec<WordTag>> {
        Ok(self.tag_words_batch(&[words.to_vec()])?.remove(0))
    }

    pub fn tag_words_batch(&self, sentences: &[Vec<&str>]) -> Result<Vec<Vec<WordTag>>> {
        for words in sentences {
            if let Some(bad) = words.iter().position(|w| w.chars().any(char::is_whitespace) || w.is_empty()) {
                return Err(Error::Input(format!("word {bad} ({:?}) is empty or contains whitespace", words[bad])));
            }
        }
        let texts: Vec<String> = sentences.iter().map(|w| w.join(" ")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let taggings = self.tag_batch(&refs)?;
        Ok(sentences.iter().zip(&taggings).map(|(words, tagging)| first_piece_tags(words, tagging)).collect())
    }
}

fn first_piece_tags(words: &[&str], tagging: &Tagging) -> Vec<WordTag> {
    let mut at = 0;
    let mut next_token = 0;
    words
        .iter()
        .map(|w| {
            let (start, end) = (at, at + w.chars().count());
            at = end + 1;
            while next_token < tagging.tokens.len() && tagging.tokens[next_token].end <= start {
                next_token += 1;
            }
            match tagging.tokens.get(next_token) {
                Some(t) if t.start < end => WordTag { word: w.to_string(), tag: Some(t.tag.clone()), score: t.score },
                _ => WordTag { word: w.to_string(), tag: None, score: 0.0 },
            }
        })
        .collect()
}
