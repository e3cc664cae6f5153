//! Evaluating a model on a labelled file (dev during training, `bert-tasks eval` after).

use std::path::Path;

use serde::Serialize;

use super::metrics::{classification, spans, ClassificationReport, SpanReport};
use crate::data::{check_labels, read_classify, read_conll, read_relate, TagExample};
use crate::tasks::Model;
use crate::text::scheme::Scheme;
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Evaluation {
    Classes(ClassificationReport),
    Spans {
        #[serde(flatten)]
        report: SpanReport,
        /// `confusion[gold][predicted]` over word tags, in label order.
        confusion: Vec<Vec<usize>>,
    },
}

impl Evaluation {
    /// The number training selects the best checkpoint by: macro-F1 (classify, relate) or
    /// exact-span F1 (tag).
    pub fn primary(&self) -> f64 {
        match self {
            Evaluation::Classes(r) => r.macro_f1,
            Evaluation::Spans { report, .. } => report.f1,
        }
    }

    pub fn primary_name(&self) -> &'static str {
        match self {
            Evaluation::Classes(_) => "macro_f1",
            Evaluation::Spans { .. } => "span_f1",
        }
    }

    pub fn confusion(&self) -> &[Vec<usize>] {
        match self {
            Evaluation::Classes(r) => &r.confusion,
            Evaluation::Spans { confusion, .. } => confusion,
        }
    }
}

/// Reads `path` in the format of the model's task and scores the model on it. `limit` keeps
/// the first examples only.
pub fn evaluate_file(model: &Model, path: &Path, limit: Option<usize>) -> Result<Evaluation> {
    let cut = |n: usize| limit.unwrap_or(n).min(n);
    match model.task.task_name() {
        "classify" => {
            let mut data = read_classify(path)?;
            data.truncate(cut(data.len()));
            check_labels(path, &model.labels, data.iter().map(|e| (e.line, e.label.as_str())))?;
            let inputs: Vec<(&str, Option<&str>)> = data.iter().map(|e| (e.text.as_str(), e.text_pair.as_deref())).collect();
            let preds = model.classify_batch(&inputs)?;
            score_classes(model, data.iter().map(|e| e.label.as_str()), preds.iter().map(|p| p.label.as_str()))
        }
        "relate" => {
            let mut data = read_relate(path)?;
            data.truncate(cut(data.len()));
            check_labels(path, &model.labels, data.iter().map(|e| (e.line, e.label.as_str())))?;
            let inputs: Vec<_> = data.iter().map(|e| (e.text.as_str(), e.head, e.tail)).collect();
            let preds = model
                .relate_batch(&inputs)
                .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
            score_classes(model, data.iter().map(|e| e.label.as_str()), preds.iter().map(|p| p.label.as_str()))
        }
        _ => {
            let mut data = read_conll(path)?;
            data.truncate(cut(data.len()));
            evaluate_tags(model, path, &data)
        }
    }
}

fn score_classes<'a>(model: &Model, gold: impl Iterator<Item = &'a str>, pred: impl Iterator<Item = &'a str>) -> Result<Evaluation> {
    let idx = |l: &str| model.labels.iter().position(|k| k == l).unwrap_or(0);
    let g: Vec<usize> = gold.map(idx).collect();
    let p: Vec<usize> = pred.map(idx).collect();
    Ok(Evaluation::Classes(classification(&model.labels, &g, &p)))
}

pub fn evaluate_tags(model: &Model, path: &Path, data: &[TagExample]) -> Result<Evaluation> {
    let scheme = model.scheme().unwrap_or(Scheme::BIO);
    // A gold tag the model never learned (a rare POS tag, say) counts as a span it misses, as
    // in seqeval; it must still be a tag of the scheme.
    let mut unseen = std::collections::BTreeSet::new();
    for ex in data {
        for (k, t) in ex.tags.iter().enumerate() {
            scheme.parse(t).map_err(|_| {
                Error::Input(format!("{}:{}: tag {t:?} is not a {scheme:?} tag", path.display(), ex.line + k))
            })?;
            if !model.labels.contains(t) {
                unseen.insert(t.clone());
            }
        }
    }
    if !unseen.is_empty() {
        eprintln!(
            "[eval] {}: {} tag(s) the model never saw in training, scored as misses: {}",
            path.display(),
            unseen.len(),
            unseen.into_iter().collect::<Vec<_>>().join(" ")
        );
    }
    // Words the tokenizer drops entirely get the scheme's neutral tag.
    let neutral = if scheme == Scheme::BMES { "S" } else { "O" };
    // Batches of sentences of similar length, results put back in file order: in file order a
    // batch of 32 was padded to its longest sentence (People's Daily's test split runs from 1 to
    // 769 characters), most of the work spent on padding.
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.sort_by_key(|&i| data[i].words.iter().map(|w| w.chars().count() + 1).sum::<usize>());
    let mut pred = vec![Vec::new(); data.len()];
    for chunk in order.chunks(32) {
        let sentences: Vec<Vec<&str>> = chunk.iter().map(|&i| data[i].words.iter().map(String::as_str).collect()).collect();
        for (&i, words) in chunk.iter().zip(model.tag_words_batch(&sentences)?) {
            pred[i] = words.into_iter().map(|w| w.tag.unwrap_or_else(|| neutral.to_string())).collect::<Vec<_>>();
        }
    }
    let gold: Vec<Vec<String>> = data.iter().map(|e| e.tags.clone()).collect();
    let report = spans(scheme, &model.labels, &gold, &pred)?;
    let n = model.labels.len();
    let mut confusion = vec![vec![0usize; n]; n];
    let idx = |t: &str| model.labels.iter().position(|l| l == t);
    for (g, p) in gold.iter().zip(&pred) {
        for (a, b) in g.iter().zip(p) {
            if let (Some(i), Some(j)) = (idx(a), idx(b)) {
                confusion[i][j] += 1;
            }
        }
    }
    Ok(Evaluation::Spans { report, confusion })
}
