//! Evaluation metrics: accuracy, macro-F1 and per-class precision/recall/F1 for classify and
//! relate; exact-span precision/recall/F1 as seqeval computes it (micro average, default mode),
//! token accuracy and the count of invalid tag sequences for tag.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::text::scheme::{decode_spans, Constraints, Scheme};
use crate::Result;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassificationReport {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: BTreeMap<String, ClassMetrics>,
    /// `confusion[gold][predicted]`, in label order.
    pub confusion: Vec<Vec<usize>>,
    pub examples: usize,
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Macro-F1 averages over the classes that occur in gold or predictions (as scikit-learn does
/// with the labels present).
pub fn classification(labels: &[String], gold: &[usize], pred: &[usize]) -> ClassificationReport {
    let c = labels.len();
    let mut confusion = vec![vec![0usize; c]; c];
    for (&g, &p) in gold.iter().zip(pred) {
        confusion[g][p] += 1;
    }
    let mut per_class = BTreeMap::new();
    let mut f1s = Vec::new();
    for k in 0..c {
        let tp = confusion[k][k];
        let predicted: usize = (0..c).map(|g| confusion[g][k]).sum();
        let support: usize = confusion[k].iter().sum();
        let (p, r) = (ratio(tp, predicted), ratio(tp, support));
        if support + predicted > 0 {
            f1s.push(f1(p, r));
        }
        per_class.insert(labels[k].clone(), ClassMetrics { precision: p, recall: r, f1: f1(p, r), support });
    }
    let correct = (0..c).map(|k| confusion[k][k]).sum();
    ClassificationReport {
        accuracy: ratio(correct, gold.len()),
        macro_f1: if f1s.is_empty() { 0.0 } else { f1s.iter().sum::<f64>() / f1s.len() as f64 },
        per_class,
        confusion,
        examples: gold.len(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SpanReport {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub token_accuracy: f64,
    /// Predicted sentences that break the scheme's rules (e.g. `O I-PER`).
    pub invalid_sequences: usize,
    pub per_type: BTreeMap<String, ClassMetrics>,
    pub sentences: usize,
}

/// seqeval-style exact-span scores over sentences of tag strings.
pub fn spans(scheme: Scheme, labels: &[String], gold: &[Vec<String>], pred: &[Vec<String>]) -> Result<SpanReport> {
    let cons = Constraints::new(scheme, labels)?;
    // Validity is judged on predictions, which only use the model's labels.
    let index = |t: &str| labels.iter().position(|l| l == t);
    let (mut tp, mut n_pred, mut n_gold) = (0, 0, 0);
    let mut by_type: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let (mut correct_tokens, mut tokens, mut invalid) = (0, 0, 0);
    for (g, p) in gold.iter().zip(pred) {
        tokens += g.len();
        correct_tokens += g.iter().zip(p).filter(|(a, b)| a == b).count();
        let path: Option<Vec<usize>> = p.iter().map(|t| index(t)).collect();
        if path.is_none_or(|path| !cons.is_valid(&path)) {
            invalid += 1;
        }
        let parse = |seq: &[String]| -> Result<HashSet<(String, usize, usize)>> {
            let tags = scheme.parse_all(seq)?;
            Ok(decode_spans(&tags).into_iter().map(|s| (s.kind, s.start, s.end)).collect())
        };
        let (gs, ps) = (parse(g)?, parse(p)?);
        for s in &gs {
            by_type.entry(s.0.clone()).or_default().1 += 1;
        }
        for s in &ps {
            by_type.entry(s.0.clone()).or_default().2 += 1;
            if gs.contains(s) {
                by_type.entry(s.0.clone()).or_default().0 += 1;
            }
        }
        tp += gs.intersection(&ps).count();
        n_pred += ps.len();
        n_gold += gs.len();
    }
    let (p, r) = (ratio(tp, n_pred), ratio(tp, n_gold));
    let per_type = by_type
        .into_iter()
        .map(|(k, (tp, g, pr))| {
            let (p, r) = (ratio(tp, pr), ratio(tp, g));
            (if k.is_empty() { "word".into() } else { k }, ClassMetrics { precision: p, recall: r, f1: f1(p, r), support: g })
        })
        .collect();
    Ok(SpanReport {
        precision: p,
        recall: r,
        f1: f1(p, r),
        token_accuracy: ratio(correct_tokens, tokens),
        invalid_sequences: invalid,
        per_type,
        sentences: gold.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn classification_scores() {
        let labels = l("a b c");
        let r = classification(&labels, &[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0]);
        assert!((r.accuracy - 0.6).abs() < 1e-12);
        assert_eq!(r.per_class["b"], ClassMetrics { precision: 2.0 / 3.0, recall: 1.0, f1: 0.8, support: 2 });
        // a: p=1/2 r=1/2 f=1/2; b: 0.8; c: 0.
        assert!((r.macro_f1 - (0.5 + 0.8 + 0.0) / 3.0).abs() < 1e-12);
        assert_eq!(r.confusion[2][0], 1);
    }

    /// The same case as seqeval's README: precision 0.5, recall 0.5 (non-strict mode).
    #[test]
    fn span_scores_follow_seqeval() {
        let labels = l("O B-MISC I-MISC B-PER I-PER");
        let gold = vec![l("O O O B-MISC I-MISC I-MISC O"), l("B-PER I-PER O")];
        let pred = vec![l("O O B-MISC I-MISC I-MISC I-MISC O"), l("B-PER I-PER O")];
        let r = spans(Scheme::BIO, &labels, &gold, &pred).unwrap();
        assert!((r.f1 - 0.5).abs() < 1e-12, "{r:?}");
        assert_eq!(r.invalid_sequences, 0);
        let bad = vec![l("O I-MISC O O O O O"), l("B-PER I-MISC O")];
        assert_eq!(spans(Scheme::BIO, &labels, &gold, &bad).unwrap().invalid_sequences, 2);
    }
}
