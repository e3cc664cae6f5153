//! Classify: one label per text or text pair, cross-entropy (or its weighted / focal forms) on
//! the pooled logits.

use candle_core::Tensor;

use super::{count_classes, label_index, sorted_unique, TaskData, TrainStep};
use crate::data::{check_labels, read_classify, ClassifyExample};
use crate::model::heads::TaskHead;
use crate::model::DropoutRng;
use crate::tasks::Model;
use crate::text::{Batch, Encoded};
use crate::train::loss::Loss;
use crate::train::prepare::classify_input;
use crate::train::TrainConfig;
use crate::{Error, Result};

pub struct ClassifyData {
    examples: Vec<ClassifyExample>,
    labels: Vec<String>,
}

impl ClassifyData {
    pub fn read(cfg: &TrainConfig) -> Result<Self> {
        let mut examples = read_classify(&cfg.train)?;
        // Labels come from the whole file: --limit-train picks examples, not labels.
        let labels = sorted_unique(examples.iter().map(|e| e.label.as_str()));
        if labels.len() < 2 {
            return Err(Error::Input(format!("{}: needs at least two labels, found {labels:?}", cfg.train.display())));
        }
        examples.truncate(cfg.limit_train.unwrap_or(examples.len()));
        Ok(ClassifyData { examples, labels })
    }
}

impl TaskData for ClassifyData {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn head(&self, cfg: &TrainConfig) -> TaskHead {
        TaskHead::Classify { pooling: cfg.pooling }
    }

    fn check_dev(&self, cfg: &TrainConfig, labels: &[String]) -> Result<()> {
        match &cfg.dev {
            Some(dev) => check_labels(dev, labels, read_classify(dev)?.iter().map(|e| (e.line, e.label.as_str()))),
            None => Ok(()),
        }
    }

    fn encode(self: Box<Self>, model: &Model, labels: &[String], cfg: &TrainConfig) -> Result<Box<dyn TrainStep>> {
        let tok = &model.encoder.tokenizer;
        let items = self
            .examples
            .iter()
            .map(|e| Ok((classify_input(tok, e, cfg.max_len)?, label_index(labels, &e.label))))
            .collect::<Result<_>>()?;
        Ok(Box::new(ClassifyStep { items }))
    }
}

pub struct ClassifyStep {
    items: Vec<(Encoded, u32)>,
}

impl TrainStep for ClassifyStep {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn tokens(&self, i: usize) -> usize {
        self.items[i].0.len()
    }

    fn classes(&self) -> Option<Vec<usize>> {
        Some(self.items.iter().map(|(_, l)| *l as usize).collect())
    }

    fn label_counts(&self, labels: usize) -> Vec<usize> {
        count_classes(self.items.iter().map(|(_, l)| *l), labels)
    }

    fn loss(&self, model: &Model, loss: &Loss, idx: &[usize], rng: &DropoutRng) -> Result<Tensor> {
        let encs: Vec<&Encoded> = idx.iter().map(|&i| &self.items[i].0).collect();
        let batch = Batch::pad(&encs, model.encoder.tokenizer.pad_id(), &model.encoder.device)?;
        let logits = model.classify_logits(&batch, Some(rng))?;
        let targets: Vec<u32> = idx.iter().map(|&i| self.items[i].1).collect();
        loss.forward(&logits, &targets, None)
    }
}
