//! Relate: one label per (text, head span, tail span), cross-entropy on the relation logits of
//! the configured method (entity pooling, position embeddings or entity markers).

use candle_core::Tensor;

use super::{count_classes, label_index, sorted_unique, TaskData, TrainStep};
use crate::data::{check_labels, read_relate, RelateExample};
use crate::model::heads::relate::{default_markers, default_max_distance};
use crate::model::heads::TaskHead;
use crate::model::DropoutRng;
use crate::tasks::Model;
use crate::text::relation::RelationEncoding;
use crate::train::loss::Loss;
use crate::train::prepare::relate_input;
use crate::train::TrainConfig;
use crate::{Error, Result};

pub struct RelateData {
    examples: Vec<RelateExample>,
    labels: Vec<String>,
}

impl RelateData {
    pub fn read(cfg: &TrainConfig) -> Result<Self> {
        let mut examples = read_relate(&cfg.train)?;
        let labels = sorted_unique(examples.iter().map(|e| e.label.as_str()));
        if labels.len() < 2 {
            return Err(Error::Input(format!("{}: needs at least two labels, found {labels:?}", cfg.train.display())));
        }
        examples.truncate(cfg.limit_train.unwrap_or(examples.len()));
        Ok(RelateData { examples, labels })
    }
}

impl TaskData for RelateData {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn head(&self, cfg: &TrainConfig) -> TaskHead {
        TaskHead::Relate {
            method: cfg.method,
            use_cls: false,
            pooling: cfg.pooling,
            max_distance: default_max_distance(),
            markers: default_markers(),
        }
    }

    fn check_dev(&self, cfg: &TrainConfig, labels: &[String]) -> Result<()> {
        match &cfg.dev {
            Some(dev) => check_labels(dev, labels, read_relate(dev)?.iter().map(|e| (e.line, e.label.as_str()))),
            None => Ok(()),
        }
    }

    /// The model's token limit is `cfg.max_len` while this runs, so encodings fit it.
    fn encode(self: Box<Self>, model: &Model, labels: &[String], cfg: &TrainConfig) -> Result<Box<dyn TrainStep>> {
        let items = self
            .examples
            .iter()
            .map(|e| {
                let enc = relate_input(model, e).map_err(|x| Error::Input(format!("{}: {x}", cfg.train.display())))?;
                Ok((enc, label_index(labels, &e.label)))
            })
            .collect::<Result<_>>()?;
        Ok(Box::new(RelateStep { items }))
    }
}

pub struct RelateStep {
    items: Vec<(RelationEncoding, u32)>,
}

impl TrainStep for RelateStep {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn tokens(&self, i: usize) -> usize {
        self.items[i].0.encoded.len()
    }

    fn classes(&self) -> Option<Vec<usize>> {
        Some(self.items.iter().map(|(_, l)| *l as usize).collect())
    }

    fn label_counts(&self, labels: usize) -> Vec<usize> {
        count_classes(self.items.iter().map(|(_, l)| *l), labels)
    }

    fn loss(&self, model: &Model, loss: &Loss, idx: &[usize], rng: &DropoutRng) -> Result<Tensor> {
        let examples: Vec<RelationEncoding> = idx.iter().map(|&i| self.items[i].0.clone()).collect();
        let logits = model.relation_logits(&examples, Some(rng))?;
        let targets: Vec<u32> = idx.iter().map(|&i| self.items[i].1).collect();
        loss.forward(&logits, &targets, None)
    }
}
