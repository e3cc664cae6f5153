//! Tag: a label per sub-word token. Softmax heads train on token cross-entropy; CRF heads on
//! the sequence NLL (plus the re-weighted token loss with `--loss weighted|focal`).

use candle_core::Tensor;

use super::{TaskData, TrainStep};
use crate::data::{read_conll, TagExample};
use crate::model::heads::TaskHead;
use crate::model::DropoutRng;
use crate::tasks::{Head, Model};
use crate::text::scheme::Scheme;
use crate::text::{Batch, Encoded};
use crate::train::loss::{Loss, LossKind};
use crate::train::prepare::{tag_items, tag_label_set, TagItem};
use crate::train::TrainConfig;
use crate::{Error, Result};

pub struct TagData {
    examples: Vec<TagExample>,
    labels: Vec<String>,
    scheme: Scheme,
}

/// Every tag of `examples` must be a tag of `scheme`; the error names file and line.
fn check_scheme(path: &std::path::Path, scheme: Scheme, examples: &[TagExample]) -> Result<()> {
    for ex in examples {
        for (k, t) in ex.tags.iter().enumerate() {
            scheme
                .parse(t)
                .map_err(|_| Error::Input(format!("{}:{}: tag {t:?} is not a {scheme:?} tag", path.display(), ex.line + k)))?;
        }
    }
    Ok(())
}

/// Training sentences whose tag sequence the scheme forbids (MSRA's full training split has
/// one that starts inside a name, `I-PER E-PER B-PER …`: the corpus was split inside an entity)
/// are rewritten into the valid sequence with the spans seqeval reads from them, with a warning
/// naming each. Refusing the whole file for one such sentence helps nobody, and a CRF cannot
/// score a gold path its constraints forbid.
fn repair_sequences(path: &std::path::Path, scheme: Scheme, examples: &mut [TagExample]) -> Result<usize> {
    let mut repaired = 0;
    for ex in examples.iter_mut() {
        let fixed = scheme.canonical(&ex.tags)?;
        if fixed != ex.tags {
            repaired += 1;
            if repaired <= 3 {
                let (from, to) = first_difference(&ex.tags, &fixed);
                eprintln!(
                    "[data] {}:{}: tag sequence invalid under {scheme:?} ({from} …); trained as seqeval reads it ({to} …)",
                    path.display(),
                    ex.line
                );
            }
            ex.tags = fixed;
        }
    }
    if repaired > 3 {
        eprintln!("[data] {}: {repaired} sentences repaired in all", path.display());
    }
    Ok(repaired)
}

/// A few tags from the first position where the two sequences differ, for the warning.
fn first_difference(a: &[String], b: &[String]) -> (String, String) {
    let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
    let show = |s: &[String]| s[at..(at + 4).min(s.len())].join(" ");
    (show(a), show(b))
}

impl TagData {
    pub fn read(cfg: &TrainConfig) -> Result<Self> {
        let mut examples = read_conll(&cfg.train)?;
        let mut tags: Vec<String> = examples.iter().flat_map(|e| e.tags.iter().cloned()).collect();
        examples.truncate(cfg.limit_train.unwrap_or(examples.len()));
        let scheme = cfg.scheme.unwrap_or_else(|| {
            let distinct: std::collections::BTreeSet<&str> = tags.iter().map(String::as_str).collect();
            Scheme::infer(&distinct.into_iter().map(String::from).collect::<Vec<_>>())
        });
        check_scheme(&cfg.train, scheme, &examples)?;
        // Every training sequence is valid under the scheme from here on; a repair may write a
        // tag the file never had (`S-PER` for a lone `I-PER`), so the label set sees them too.
        if repair_sequences(&cfg.train, scheme, &mut examples)? > 0 {
            tags.extend(examples.iter().flat_map(|e| e.tags.iter().cloned()));
        }
        // Labels from train and dev together: a tag rare enough to be missing from a training
        // subset still gets an output row (it is then simply never predicted).
        if let Some(dev) = &cfg.dev {
            let dev_examples = read_conll(dev)?;
            check_scheme(dev, scheme, &dev_examples)?;
            tags.extend(dev_examples.into_iter().flat_map(|e| e.tags));
        }
        let labels = tag_label_set(scheme, tags.into_iter())?;
        Ok(TagData { examples, labels, scheme })
    }
}

impl TaskData for TagData {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn head(&self, cfg: &TrainConfig) -> TaskHead {
        TaskHead::Tag { decoder: cfg.decoder, scheme: Some(self.scheme), constrained: cfg.constrained }
    }

    /// The dev tags were checked with the training file (they are part of the label set).
    fn check_dev(&self, _cfg: &TrainConfig, _labels: &[String]) -> Result<()> {
        Ok(())
    }

    fn encode(self: Box<Self>, model: &Model, labels: &[String], cfg: &TrainConfig) -> Result<Box<dyn TrainStep>> {
        let tok = &model.encoder.tokenizer;
        let mut items = Vec::new();
        for e in &self.examples {
            items.extend(
                tag_items(tok, self.scheme, labels, e, cfg.max_len).map_err(|x| Error::Input(format!("{}: {x}", cfg.train.display())))?,
            );
        }
        Ok(Box::new(TagStep { items }))
    }
}

pub struct TagStep {
    items: Vec<TagItem>,
}

impl TrainStep for TagStep {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn tokens(&self, i: usize) -> usize {
        self.items[i].encoded.len()
    }

    fn classes(&self) -> Option<Vec<usize>> {
        None
    }

    fn label_counts(&self, labels: usize) -> Vec<usize> {
        let mut counts = vec![0usize; labels];
        for &l in self.items.iter().flat_map(|it| &it.labels) {
            counts[l as usize] += 1;
        }
        counts
    }

    fn loss(&self, model: &Model, loss: &Loss, idx: &[usize], rng: &DropoutRng) -> Result<Tensor> {
        let encs: Vec<&Encoded> = idx.iter().map(|&i| &self.items[i].encoded).collect();
        let batch = Batch::pad(&encs, model.encoder.tokenizer.pad_id(), &model.encoder.device)?;
        let em = model.tag_emissions(&batch, Some(rng))?; // [b, T, L]
        let (b, t, l) = em.dims3()?;
        // Token-level targets at positions 1..=len-2 (between [CLS] and [SEP]).
        let mut targets = vec![0u32; b * t];
        let mut mask = vec![0f32; b * t];
        for (row, &i) in idx.iter().enumerate() {
            for (k, &lab) in self.items[i].labels.iter().enumerate() {
                targets[row * t + 1 + k] = lab;
                mask[row * t + 1 + k] = 1.0;
            }
        }
        let token_loss = || loss.forward(&em.reshape((b * t, l))?, &targets, Some(&mask));
        let Head::Tag(head) = &model.head else { return Err(Error::Input("tag training needs a tag head".into())) };
        let Some(crf) = head.crf.as_ref() else { return token_loss() };
        let content = em.narrow(1, 1, t - 2)?;
        let tags: Vec<Vec<u32>> = idx.iter().map(|&i| self.items[i].labels.clone()).collect();
        let lengths: Vec<usize> = tags.iter().map(|x| x.len()).collect();
        let nll = crf.nll(&content, &tags, &lengths)?;
        // With --loss weighted|focal the CRF keeps its NLL and the emissions also get the
        // re-weighted token loss (the transitions stay unweighted).
        match loss.kind {
            LossKind::Ce => Ok(nll),
            _ => Ok((nll + token_loss()?)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_training_sentences_are_repaired_and_counted() {
        let ex = |tags: &str, line| TagExample {
            words: tags.split(' ').map(|_| "字".to_string()).collect(),
            tags: tags.split(' ').map(String::from).collect(),
            line,
        };
        let mut examples = vec![ex("B-PER E-PER O", 1), ex("I-PER E-PER O S-LOC", 5), ex("O O", 10)];
        let n = repair_sequences(std::path::Path::new("train.conll"), Scheme::BIOES, &mut examples).unwrap();
        assert_eq!(n, 1);
        assert_eq!(examples[0].tags, ["B-PER", "E-PER", "O"], "valid sentences are untouched");
        assert_eq!(examples[1].tags, ["B-PER", "E-PER", "O", "S-LOC"]);
    }

    /// A repair can write a tag the file never had (a lone `I-LOC` becomes `S-LOC`): the label
    /// set must hold it, or the sentence would train on the wrong label.
    #[test]
    fn repaired_tags_are_in_the_label_set() {
        let dir = std::env::temp_dir().join(format!("bert-tasks-repair-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let train = dir.join("train.conll");
        std::fs::write(&train, "北 B-LOC\n京 E-LOC\n\n在 O\n京 I-LOC\n").unwrap();
        let cfg = TrainConfig::new(crate::train::Task::Tag, dir.clone(), train, dir.clone());
        let data = TagData::read(&cfg).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(data.examples[1].tags, ["O", "S-LOC"]);
        assert!(data.labels.iter().any(|l| l == "S-LOC"), "{:?}", data.labels);
    }
}
