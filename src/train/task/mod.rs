//! Each task's part of training, behind two small traits (the way burn's `Learner` takes a
//! `TrainStep` per task): [`TaskData`] reads and checks the files and fixes the label set before
//! the model exists; [`TrainStep`] holds the encoded examples and computes a batch's loss. The
//! trainer (`super::trainer`) owns everything they share: parameters, the loop, the optimizer,
//! checkpoints and evaluation.

mod classify;
mod relate;
mod tag;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::loss::Loss;
use super::trainer::TrainConfig;
use crate::model::heads::TaskHead;
use crate::model::DropoutRng;
use crate::tasks::Model;
use crate::{Error, Result};

/// What a run trains (`--task`); saved in each checkpoint's state as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Classify,
    Tag,
    Relate,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Classify => "classify",
            Task::Tag => "tag",
            Task::Relate => "relate",
        }
    }

    /// Reads this task's training file (and, where the label set depends on it, the dev file).
    pub fn read(self, cfg: &TrainConfig) -> Result<Box<dyn TaskData>> {
        Ok(match self {
            Task::Classify => Box::new(classify::ClassifyData::read(cfg)?),
            Task::Tag => Box::new(tag::TagData::read(cfg)?),
            Task::Relate => Box::new(relate::RelateData::read(cfg)?),
        })
    }
}

impl std::str::FromStr for Task {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "classify" => Ok(Task::Classify),
            "tag" => Ok(Task::Tag),
            "relate" => Ok(Task::Relate),
            t => Err(Error::Input(format!("unknown task {t:?} (classify, tag, relate)"))),
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A task's data before the model exists: checked examples, their labels and the head to build.
pub trait TaskData {
    /// The label set found in the data, in output-row order.
    fn labels(&self) -> &[String];
    /// The head this run puts on the encoder (tag: with the scheme found in the data).
    fn head(&self, cfg: &TrainConfig) -> TaskHead;
    /// Checks the dev file against the final label set (which a resumed run takes from its
    /// checkpoint) so that a bad label fails now, not after the first epoch.
    fn check_dev(&self, cfg: &TrainConfig, labels: &[String]) -> Result<()>;
    /// Tokenises the examples with the model's tokenizer (cut or split at `cfg.max_len`).
    fn encode(self: Box<Self>, model: &Model, labels: &[String], cfg: &TrainConfig) -> Result<Box<dyn TrainStep>>;
}

/// A task's encoded training items and its loss.
#[allow(clippy::len_without_is_empty)] // a count for sampling; an empty data file is refused when read (`data::non_empty`)
pub trait TrainStep: Send {
    /// Training items (a tag sentence longer than `--max-len` counts once per piece).
    fn len(&self) -> usize;
    /// Real tokens of item `i`, [CLS] and [SEP] included (length bucketing, tokens/s).
    fn tokens(&self, i: usize) -> usize;
    /// Each item's class, for class-balanced re-sampling; `None` where items have no single
    /// class (tag), which then samples instances only.
    fn classes(&self) -> Option<Vec<usize>>;
    /// How often each label occurs (items, or tokens for tag): the counts behind `--class-weights auto`.
    fn label_counts(&self, labels: usize) -> Vec<usize>;
    /// The loss of the batch `idx`, dropout drawn from `rng`.
    fn loss(&self, model: &Model, loss: &Loss, idx: &[usize], rng: &DropoutRng) -> Result<Tensor>;
}

/// The distinct labels of an iterator, sorted.
fn sorted_unique<'a>(it: impl Iterator<Item = &'a str>) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> = it.collect();
    set.into_iter().map(String::from).collect()
}

/// The index of `label` in `labels` (0 where absent: the readers checked every label already).
fn label_index(labels: &[String], label: &str) -> u32 {
    labels.iter().position(|l| l == label).unwrap_or(0) as u32
}

/// Counts of single-label items (classify, relate).
fn count_classes(classes: impl Iterator<Item = u32>, labels: usize) -> Vec<usize> {
    let mut counts = vec![0usize; labels];
    for c in classes {
        counts[c as usize] += 1;
    }
    counts
}
