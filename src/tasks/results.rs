//! What the task APIs return. These serialise to the JSON that `bert-tasks predict` prints and
//! that the JavaScript API hands back.

use serde::ser::{Serialize, SerializeMap, Serializer};

/// Probabilities by label, in label order; serialises as `{ "label": p, … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores(pub Vec<(String, f32)>);

impl Serialize for Scores {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (label, p) in &self.0 {
            map.serialize_entry(label, p)?;
        }
        map.end()
    }
}

/// A classify or relate result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    pub label: String,
    pub score: f32,
    pub scores: Scores,
}

impl Prediction {
    pub fn from_probs(labels: &[String], probs: &[f32]) -> Self {
        let best = probs
            .iter()
            .enumerate()
            .fold(0, |best, (i, p)| if *p > probs[best] { i } else { best });
        Prediction {
            label: labels[best].clone(),
            score: probs[best],
            scores: Scores(labels.iter().cloned().zip(probs.iter().copied()).collect()),
        }
    }
}

/// One sub-word token with its tag. `start`/`end` are character offsets into the input;
/// `text` is the input's characters there (not the word piece).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaggedToken {
    pub text: String,
    pub start: usize,
    pub end: usize,
    pub tag: String,
    pub score: f32,
}

/// An entity (or, for word segmentation, a word) decoded from the tags.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Span {
    pub label: String,
    pub start: usize,
    pub end: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Tagging {
    pub tokens: Vec<TaggedToken>,
    pub spans: Vec<Span>,
}

/// One pre-split word (CoNLL style) with the tag of its first sub-word.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WordTag {
    pub word: String,
    /// `None` when the word produced no token at all (e.g. only control characters).
    pub tag: Option<String>,
    pub score: f32,
}
