//! The training loop: fine-tune a base encoder plus a fresh task head on labelled data, evaluate
//! on dev each epoch, keep the best model in the output folder, checkpoint atomically, resume
//! exactly where a killed run stopped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::checkpoint::{atomic_write, write_model, CheckpointDir};
use super::evaluate::{evaluate_file, Evaluation};
use super::loss::{inverse_frequency, Loss, LossKind};
use super::optim::{schedule, AdamW};
use super::prepare::{classify_input, relate_input, tag_items, tag_label_set, TagItem};
use super::report::{confusion_svg, curve_svg};
use super::sampler::{Sampler, Sampling};
use crate::checkpoint::Checkpoint;
use crate::data::{check_labels, read_classify, read_conll, read_relate};
use crate::model::heads::{Decoder, RelateMethod, TaskHead};
use crate::model::{DropoutRng, Pooling};
use crate::tasks::Model;
use crate::text::relation::RelationEncoding;
use crate::text::scheme::{Constraints, Scheme};
use crate::text::{Batch, Encoded};
use crate::{Error, Result};

/// Everything that defines a training run (saved with each checkpoint; `--resume` reuses it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub task: String,
    pub base: PathBuf,
    pub train: PathBuf,
    pub dev: Option<PathBuf>,
    pub out: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub head_lr: f64,
    pub max_len: usize,
    pub seed: u64,
    pub warmup: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub pooling: Pooling,
    pub decoder: Decoder,
    pub scheme: Option<Scheme>,
    pub constrained: bool,
    pub method: RelateMethod,
    pub loss: LossKind,
    /// `auto` (inverse frequency) or comma-separated weights in label order.
    pub class_weights: Option<String>,
    pub gamma: f32,
    pub sampling: Sampling,
    pub q: f64,
    /// Checkpoint every this many steps (and at each epoch's end).
    pub save_every: usize,
    pub limit_train: Option<usize>,
    pub limit_dev: Option<usize>,
    pub device: String,
    /// Stop after this many optimizer steps in this process (testing crash/resume).
    #[serde(skip)]
    pub stop_after: Option<usize>,
}

impl TrainConfig {
    /// A run with the defaults of `bert-tasks train` (a test in `cli::train` keeps the two equal);
    /// callers override fields with struct-update syntax.
    pub fn new(task: &str, base: PathBuf, train: PathBuf, out: PathBuf) -> Self {
        TrainConfig {
            task: task.into(),
            base,
            train,
            dev: None,
            out,
            epochs: 3,
            batch_size: 16,
            lr: 5e-5,
            head_lr: 1e-3,
            max_len: 128,
            seed: 42,
            warmup: 0.1,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
            pooling: Pooling::Pooler,
            decoder: Decoder::Softmax,
            scheme: None,
            constrained: true,
            method: RelateMethod::EntityMarkers,
            loss: LossKind::Ce,
            class_weights: None,
            gamma: 2.0,
            sampling: Sampling::Instance,
            q: 0.5,
            save_every: 200,
            limit_train: None,
            limit_dev: None,
            device: "cpu".into(),
            stop_after: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalPoint {
    pub epoch: usize,
    pub step: usize,
    pub metric: f64,
    pub report: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    pub global_step: usize,
    pub epoch: usize,
    pub batch_in_epoch: usize,
    pub losses: Vec<f32>,
    pub evals: Vec<EvalPoint>,
    pub best: Option<(f64, usize)>,
    pub config: TrainConfig,
    pub labels: Vec<String>,
}

/// What a finished run returns (also written to `metrics.json`).
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub steps: usize,
    pub seconds: f64,
    pub best_metric: Option<f64>,
    pub best_step: Option<usize>,
    pub final_eval: Option<serde_json::Value>,
    pub labels: Vec<String>,
    pub examples: usize,
}

enum Items {
    Classify(Vec<(Encoded, u32)>),
    Tag(Vec<TagItem>),
    Relate(Vec<(RelationEncoding, u32)>),
}

impl Items {
    fn len(&self) -> usize {
        match self {
            Items::Classify(v) => v.len(),
            Items::Tag(v) => v.len(),
            Items::Relate(v) => v.len(),
        }
    }
}

fn sorted_unique<'a>(it: impl Iterator<Item = &'a str>) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> = it.collect();
    set.into_iter().map(String::from).collect()
}

fn task_head(cfg: &TrainConfig) -> Result<TaskHead> {
    Ok(match cfg.task.as_str() {
        "classify" => TaskHead::Classify { pooling: cfg.pooling },
        "tag" => TaskHead::Tag { decoder: cfg.decoder, scheme: cfg.scheme, constrained: cfg.constrained },
        "relate" => TaskHead::Relate {
            method: cfg.method,
            use_cls: false,
            pooling: cfg.pooling,
            max_distance: crate::model::heads::relate::default_max_distance(),
            markers: crate::model::heads::relate::default_markers(),
        },
        t => return Err(Error::Input(format!("unknown task {t:?} (classify, tag, relate)"))),
    })
}

/// The model's config.json: the base config plus labels, the head and `architectures` that
/// let PyTorch load classify and tag-softmax models with `from_pretrained`.
fn model_config(base: &serde_json::Value, labels: &[String], head: &TaskHead) -> serde_json::Value {
    let mut c = base.clone();
    c["id2label"] = labels.iter().enumerate().map(|(i, l)| (i.to_string(), serde_json::json!(l))).collect();
    c["label2id"] = labels.iter().enumerate().map(|(i, l)| (l.clone(), serde_json::json!(i))).collect();
    let arch = match head {
        TaskHead::Classify { pooling: Pooling::Pooler } => "BertForSequenceClassification",
        TaskHead::Tag { decoder: Decoder::Softmax, .. } => "BertForTokenClassification",
        _ => "BertModel",
    };
    c["architectures"] = serde_json::json!([arch]);
    c["task_head"] = serde_json::to_value(head).unwrap_or_default();
    c
}

/// Seeded initial values for the head's tensors (candle's own initialisers draw from an
/// unseeded source): linear weights and embeddings N(0, 0.02) as BERT does, biases 0, CRF
/// scores U(−0.1, 0.1) as pytorch-crf does.
fn init_head(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| Error::Input("var map poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().filter(|n| !n.starts_with("bert.")).collect();
    names.sort();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x4845_4144);
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let vals: Vec<f32> = if name.starts_with("crf.") {
            (0..n).map(|_| rng.random_range(-0.1f32..0.1)).collect()
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            (0..n)
                .map(|_| {
                    // Box-Muller
                    let (u1, u2): (f32, f32) = (rng.random::<f32>().max(1e-12), rng.random());
                    0.02 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
                })
                .collect()
        };
        var.set(&Tensor::from_vec(vals, var.shape(), var.device())?)?;
    }
    Ok(())
}

fn var_tensors(varmap: &VarMap) -> HashMap<String, Tensor> {
    let data = varmap.data().lock().expect("var map");
    data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
}

fn parse_weights(spec: &str, counts: &[usize]) -> Result<Vec<f32>> {
    if spec == "auto" {
        return Ok(inverse_frequency(counts));
    }
    let w: Vec<f32> = spec
        .split(',')
        .map(|s| s.trim().parse::<f32>().map_err(|_| Error::Input(format!("bad class weight {s:?}"))))
        .collect::<Result<_>>()?;
    if w.len() != counts.len() {
        return Err(Error::Input(format!("{} class weights for {} labels", w.len(), counts.len())));
    }
    Ok(w)
}

pub struct Trainer {
    pub cfg: TrainConfig,
    pub model: Model,
    varmap: VarMap,
    config_json: serde_json::Value,
    tokenizer_bytes: Vec<u8>,
    items: Items,
    loss: Loss,
    sampler: Sampler,
    opt: AdamW,
    state: TrainState,
    device: Device,
}

impl Trainer {
    /// Sets up a fresh run, or — when `out/checkpoints/latest` exists and `resume` is set —
    /// continues the run saved there (its saved configuration wins).
    pub fn new(mut cfg: TrainConfig, resume: bool) -> Result<Self> {
        let ckpts = CheckpointDir::new(&cfg.out);
        let resume_from = if resume { ckpts.latest()? } else { None };
        if resume && resume_from.is_none() {
            eprintln!("[train] --resume: no checkpoint in {}, starting fresh", cfg.out.display());
        }
        let saved_state: Option<TrainState> = match &resume_from {
            Some(dir) => {
                let p = dir.join("state.json");
                let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
                let st: TrainState = serde_json::from_str(&text).map_err(|e| Error::Input(format!("{}: {e}", p.display())))?;
                let stop_after = cfg.stop_after;
                cfg = st.config.clone();
                cfg.stop_after = stop_after;
                Some(st)
            }
            None => None,
        };
        if cfg.batch_size == 0 || cfg.max_len < 8 || cfg.epochs == 0 {
            return Err(Error::Input("batch size and epochs must be positive and max-len at least 8".into()));
        }
        let device = crate::device::select(&cfg.device)?;
        let base = Checkpoint::load(&cfg.base)?;
        let max_len = cfg.max_len.min(base.config.max_position_embeddings);
        cfg.max_len = max_len;

        // Labels and the head.
        let mut head = task_head(&cfg)?;
        let (labels, train_data) = match cfg.task.as_str() {
            // Labels come from the whole training file: --limit-train picks a subset of the
            // examples, not of the label set.
            "classify" => {
                let mut d = read_classify(&cfg.train)?;
                let labels = sorted_unique(d.iter().map(|e| e.label.as_str()));
                d.truncate(cfg.limit_train.unwrap_or(d.len()));
                (labels, Raw::Classify(d))
            }
            "relate" => {
                let mut d = read_relate(&cfg.train)?;
                let labels = sorted_unique(d.iter().map(|e| e.label.as_str()));
                d.truncate(cfg.limit_train.unwrap_or(d.len()));
                (labels, Raw::Relate(d))
            }
            _ => {
                let mut d = read_conll(&cfg.train)?;
                let all: Vec<String> = d.iter().flat_map(|e| e.tags.iter().cloned()).collect();
                d.truncate(cfg.limit_train.unwrap_or(d.len()));
                let scheme = cfg.scheme.unwrap_or_else(|| Scheme::infer(&sorted_unique(all.iter().map(String::as_str))));
                cfg.scheme = Some(scheme);
                head = task_head(&cfg)?;
                for ex in &d {
                    for (k, t) in ex.tags.iter().enumerate() {
                        scheme.parse(t).map_err(|_| {
                            Error::Input(format!("{}:{}: tag {t:?} is not a {scheme:?} tag", cfg.train.display(), ex.line + k))
                        })?;
                    }
                }
                // Labels from train and dev together: a tag rare enough to be missing from a
                // training subset still gets an output row (it is then simply never predicted).
                let mut all = all;
                if let Some(dev) = &cfg.dev {
                    for ex in read_conll(dev)? {
                        for (k, t) in ex.tags.iter().enumerate() {
                            scheme.parse(t).map_err(|_| {
                                Error::Input(format!("{}:{}: tag {t:?} is not a {scheme:?} tag", dev.display(), ex.line + k))
                            })?;
                        }
                        all.extend(ex.tags);
                    }
                }
                let labels = tag_label_set(scheme, all.into_iter())?;
                let cons = Constraints::new(scheme, &labels)?;
                for ex in &d {
                    let path: Vec<usize> = ex.tags.iter().map(|t| labels.iter().position(|l| l == t).unwrap_or(0)).collect();
                    if !cons.is_valid(&path) {
                        return Err(Error::Input(format!(
                            "{}:{}: the tag sequence {} is invalid under {scheme:?}",
                            cfg.train.display(),
                            ex.line,
                            ex.tags.join(" ")
                        )));
                    }
                }
                (labels, Raw::Tag(d))
            }
        };
        let labels = match &saved_state {
            Some(st) => st.labels.clone(),
            None => labels,
        };
        if labels.len() < 2 && cfg.task != "tag" {
            return Err(Error::Input(format!("{}: needs at least two labels, found {labels:?}", cfg.train.display())));
        }
        if let Some(dev) = &cfg.dev {
            match cfg.task.as_str() {
                "classify" => check_labels(dev, &labels, read_classify(dev)?.iter().map(|e| (e.line, e.label.as_str())))?,
                "relate" => check_labels(dev, &labels, read_relate(dev)?.iter().map(|e| (e.line, e.label.as_str())))?,
                _ => {}
            }
        }

        // Parameters: the base encoder under `bert.`, or everything from the checkpoint.
        let base_json: serde_json::Value = serde_json::from_str(&base.config.to_json()?).map_err(|e| Error::Config(e.to_string()))?;
        let config_json = model_config(&base_json, &labels, &head);
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().map_err(|_| Error::Input("var map poisoned".into()))?;
            let loaded: HashMap<String, Tensor> = match &resume_from {
                Some(dir) => crate::model::Weights::from_dir(dir)?.into_tensors(),
                None => {
                    let prefix = base.weights.encoder_prefix();
                    let names: Vec<String> = base.weights.names().map(String::from).collect();
                    names
                        .into_iter()
                        .filter_map(|n| {
                            let t = base.weights.get(&n)?.clone();
                            match prefix {
                                Some(p) => n.strip_prefix(&format!("{p}.")).map(|inner| (format!("bert.{inner}"), t)),
                                None => Some((format!("bert.{n}"), t)),
                            }
                        })
                        .collect()
                }
            };
            for (name, t) in loaded {
                if t.dtype().is_float() {
                    data.insert(name, Var::from_tensor(&t.to_dtype(DType::F32)?.to_device(&device)?)?);
                }
            }
        }
        let mut bert_cfg = base.config.clone();
        bert_cfg.id2label = Some(labels.iter().cloned().enumerate().collect());
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let mut model = Model::build(bert_cfg, base.tokenizer, head.clone(), vb, Some("bert"), &device)?;
        model.set_max_tokens(max_len)?;
        if resume_from.is_none() {
            init_head(&varmap, cfg.seed)?;
        }
        if matches!(head, TaskHead::Classify { pooling: Pooling::Pooler }) && model.encoder.bert.pooler.is_none() {
            return Err(Error::Weights("pooling \"pooler\" needs pooler.dense.* in the base model; use --pooling cls|mean|max".into()));
        }

        // Training items, class counts, loss and sampler.
        let tok = &model.encoder.tokenizer;
        let items = match train_data {
            Raw::Classify(d) => Items::Classify(
                d.iter()
                    .map(|e| Ok((classify_input(tok, e, max_len)?, labels.iter().position(|l| *l == e.label).unwrap_or(0) as u32)))
                    .collect::<Result<_>>()?,
            ),
            Raw::Relate(d) => Items::Relate(
                d.iter()
                    .map(|e| {
                        let enc = relate_input(&model, e).map_err(|x| Error::Input(format!("{}: {x}", cfg.train.display())))?;
                        Ok((enc, labels.iter().position(|l| *l == e.label).unwrap_or(0) as u32))
                    })
                    .collect::<Result<_>>()?,
            ),
            Raw::Tag(d) => {
                let scheme = cfg.scheme.unwrap_or(Scheme::BIO);
                let mut v = Vec::new();
                for e in &d {
                    v.extend(tag_items(tok, scheme, &labels, e, max_len).map_err(|x| Error::Input(format!("{}: {x}", cfg.train.display())))?);
                }
                Items::Tag(v)
            }
        };
        // Training sequences are cut to --max-len; evaluation and the saved model use every position.
        model.set_max_tokens(model.encoder.config.max_position_embeddings)?;
        let mut counts = vec![0usize; labels.len()];
        let classes: Vec<usize> = match &items {
            Items::Classify(v) => v.iter().map(|(_, l)| *l as usize).collect(),
            Items::Relate(v) => v.iter().map(|(_, l)| *l as usize).collect(),
            Items::Tag(v) => {
                for it in v {
                    for &l in &it.labels {
                        counts[l as usize] += 1;
                    }
                }
                vec![0; v.len()]
            }
        };
        if !matches!(items, Items::Tag(_)) {
            for &c in &classes {
                counts[c] += 1;
            }
        }
        let sampler = match (&items, cfg.sampling) {
            (Items::Tag(_), s) if s != Sampling::Instance => {
                return Err(Error::Input("re-sampling by class applies to classify and relate; for tag use --loss weighted|focal".into()))
            }
            (Items::Tag(_), _) => Sampler::new(Sampling::Instance, 1.0, &classes, 1),
            _ => Sampler::new(cfg.sampling, cfg.q, &classes, labels.len()),
        };
        let alpha = match (&cfg.class_weights, cfg.loss) {
            (Some(spec), _) => Some(parse_weights(spec, &counts)?),
            (None, LossKind::Weighted) => Some(inverse_frequency(&counts)),
            _ => None,
        };
        let loss = Loss { kind: cfg.loss, alpha, gamma: cfg.gamma };

        // Optimizer over every trainable tensor, in name order (deterministic).
        let mut vars: Vec<(String, Var)> = varmap.data().lock().expect("var map").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let groups = vars.into_iter().map(|(n, v)| {
            let g = usize::from(!n.starts_with("bert."));
            (n, v, g)
        });
        let mut opt = AdamW::new(groups.collect(), cfg.weight_decay)?;
        let state = match (saved_state, &resume_from) {
            (Some(st), Some(dir)) => {
                let p = dir.join("optimizer.safetensors");
                let t = candle_core::safetensors::load(&p, &device).map_err(|e| Error::Weights(format!("{}: {}", p.display(), crate::error::clean(&e))))?;
                opt.load_state(&t, st.global_step)?;
                eprintln!("[train] resuming from {} (step {}, epoch {})", dir.display(), st.global_step, st.epoch + 1);
                st
            }
            _ => TrainState {
                global_step: 0,
                epoch: 0,
                batch_in_epoch: 0,
                losses: vec![],
                evals: vec![],
                best: None,
                config: cfg.clone(),
                labels: labels.clone(),
            },
        };
        let tokenizer_bytes = {
            let p = cfg.base.join("tokenizer.json");
            std::fs::read(&p).map_err(|e| Error::io(&p, e))?
        };
        Ok(Trainer { cfg, model, varmap, config_json, tokenizer_bytes, items, loss, sampler, opt, state, device })
    }

    pub fn examples(&self) -> usize {
        self.items.len()
    }

    fn batches_per_epoch(&self) -> usize {
        self.items.len().div_ceil(self.cfg.batch_size)
    }

    /// Loss of one batch of item indices, with dropout drawn from `rng`.
    fn batch_loss(&self, idx: &[usize], rng: &DropoutRng) -> Result<Tensor> {
        let pad = self.model.encoder.tokenizer.pad_id();
        match &self.items {
            Items::Classify(v) => {
                let encs: Vec<&Encoded> = idx.iter().map(|&i| &v[i].0).collect();
                let batch = Batch::pad(&encs, pad, &self.device)?;
                let logits = self.model.classify_logits(&batch, Some(rng))?;
                let targets: Vec<u32> = idx.iter().map(|&i| v[i].1).collect();
                self.loss.forward(&logits, &targets, None)
            }
            Items::Relate(v) => {
                let ex: Vec<RelationEncoding> = idx.iter().map(|&i| v[i].0.clone()).collect();
                let logits = self.model.relation_logits(&ex, Some(rng))?;
                let targets: Vec<u32> = idx.iter().map(|&i| v[i].1).collect();
                self.loss.forward(&logits, &targets, None)
            }
            Items::Tag(v) => {
                let encs: Vec<&Encoded> = idx.iter().map(|&i| &v[i].encoded).collect();
                let batch = Batch::pad(&encs, pad, &self.device)?;
                let em = self.model.tag_emissions(&batch, Some(rng))?; // [b, T, L]
                let (b, t, l) = em.dims3()?;
                // Token-level targets at positions 1..=len-2 (between [CLS] and [SEP]).
                let mut targets = vec![0u32; b * t];
                let mut mask = vec![0f32; b * t];
                for (row, &i) in idx.iter().enumerate() {
                    for (k, &lab) in v[i].labels.iter().enumerate() {
                        targets[row * t + 1 + k] = lab;
                        mask[row * t + 1 + k] = 1.0;
                    }
                }
                let token_loss = |loss: &Loss| loss.forward(&em.reshape((b * t, l))?, &targets, Some(&mask));
                let crf = match &self.model.head {
                    crate::tasks::Head::Tag(h) => h.crf.as_ref(),
                    _ => None,
                };
                match crf {
                    None => token_loss(&self.loss),
                    Some(crf) => {
                        let content = em.narrow(1, 1, t - 2)?;
                        let tags: Vec<Vec<u32>> = idx.iter().map(|&i| v[i].labels.clone()).collect();
                        let lengths: Vec<usize> = tags.iter().map(|x| x.len()).collect();
                        let nll = crf.nll(&content, &tags, &lengths)?;
                        // With --loss weighted|focal the CRF keeps its NLL and the emissions
                        // also get the re-weighted token loss (the transitions stay unweighted).
                        match self.loss.kind {
                            LossKind::Ce => Ok(nll),
                            _ => Ok((nll + token_loss(&self.loss)?)?),
                        }
                    }
                }
            }
        }
    }

    /// One optimizer step on the batch `idx`: forward, backward, clipping, AdamW. Returns the
    /// loss, or `Err(loss)` (nothing updated) when it is not finite. `phases` (when given) gets
    /// the seconds spent in forward, backward and the optimizer (the device is synchronised
    /// between them, so only pass it when timing).
    fn step(&mut self, idx: &[usize], warmup: usize, total: usize, phases: Option<&mut [f64; 3]>) -> Result<std::result::Result<f32, f32>> {
        let t0 = std::time::Instant::now();
        let rng = DropoutRng::for_step(self.cfg.seed, self.state.global_step as u64);
        let loss = self.batch_loss(idx, &rng)?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Ok(Err(value));
        }
        let t1 = std::time::Instant::now();
        let grads = loss.backward()?;
        if phases.is_some() {
            self.device.synchronize()?;
        }
        let t2 = std::time::Instant::now();
        let norm = self.opt.grad_norm(&grads)? as f64;
        let scale = if norm > self.cfg.max_grad_norm { self.cfg.max_grad_norm / (norm + 1e-6) } else { 1.0 };
        let f = schedule(self.state.global_step, warmup, total);
        self.opt.step(&grads, [self.cfg.lr * f, self.cfg.head_lr * f], scale)?;
        if let Some(p) = phases {
            self.device.synchronize()?;
            let t3 = std::time::Instant::now();
            *p = [(t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64(), (t3 - t2).as_secs_f64()];
        }
        Ok(Ok(value))
    }

    /// Times `n` optimizer steps on the first batches of the epoch order (the benchmark's
    /// training step: the same code as `run`, without checkpoints or evaluation). Seconds per
    /// step, each split into [forward, backward, optimizer].
    pub fn time_steps(&mut self, n: usize) -> Result<Vec<[f64; 3]>> {
        let order = self.sampler.epoch_order(self.cfg.seed, 0);
        let per_epoch = self.batches_per_epoch();
        let total = self.total_steps().max(n);
        let mut times = Vec::with_capacity(n);
        for k in 0..n {
            let b = k % per_epoch;
            let idx = order[b * self.cfg.batch_size..((b + 1) * self.cfg.batch_size).min(order.len())].to_vec();
            let mut phases = [0.0; 3];
            self.step(&idx, 0, total, Some(&mut phases))?.map_err(|v| Error::Input(format!("the loss became {v} while timing")))?;
            times.push(phases);
            self.state.global_step += 1;
        }
        Ok(times)
    }

    fn total_steps(&self) -> usize {
        self.cfg.epochs * self.batches_per_epoch()
    }

    /// Runs (or continues) training to the end; returns the summary.
    pub fn run(&mut self, show_progress: bool) -> Result<TrainSummary> {
        let started = std::time::Instant::now();
        let per_epoch = self.batches_per_epoch();
        let total = self.total_steps();
        let warmup = ((self.cfg.warmup * total as f64).round() as usize).min(total);
        let ckpts = CheckpointDir::new(&self.cfg.out);
        std::fs::create_dir_all(&self.cfg.out).map_err(|e| Error::io(&self.cfg.out, e))?;
        let mut steps_here = 0;
        while self.state.epoch < self.cfg.epochs {
            let epoch = self.state.epoch;
            let order = self.sampler.epoch_order(self.cfg.seed, epoch as u64);
            let bar = progress_bar(show_progress, per_epoch, self.state.batch_in_epoch, epoch, self.cfg.epochs);
            while self.state.batch_in_epoch < per_epoch {
                if self.cfg.stop_after.is_some_and(|n| steps_here >= n) {
                    bar.abandon();
                    return Err(Error::Input(format!("stopped after {steps_here} steps as asked (--stop-after)")));
                }
                let b = self.state.batch_in_epoch;
                let idx = &order[b * self.cfg.batch_size..((b + 1) * self.cfg.batch_size).min(order.len())];
                let value = match self.step(idx, warmup, total, None)? {
                    Ok(v) => v,
                    Err(value) => {
                        bar.abandon();
                        let last = ckpts.latest()?.map(|p| p.display().to_string()).unwrap_or_else(|| "none yet".into());
                        return Err(Error::Input(format!(
                            "the loss became {value} at step {}; stopping (lower --lr?). Last good checkpoint: {last}",
                            self.state.global_step
                        )));
                    }
                };
                self.state.losses.push(value);
                self.state.global_step += 1;
                self.state.batch_in_epoch += 1;
                steps_here += 1;
                bar.set_message(format!("loss {value:.4}"));
                bar.inc(1);
                if show_progress && bar.is_hidden() && (self.state.batch_in_epoch % (per_epoch / 10).max(1) == 0) {
                    // No terminal (a log file): a plain line every tenth of an epoch instead.
                    let secs = started.elapsed().as_secs_f64();
                    eprintln!(
                        "[train] epoch {}/{} step {}/{} loss {value:.4} ({:.2} steps/s)",
                        epoch + 1,
                        self.cfg.epochs,
                        self.state.batch_in_epoch,
                        per_epoch,
                        steps_here as f64 / secs.max(1e-9)
                    );
                }
                if self.cfg.save_every > 0 && self.state.global_step % self.cfg.save_every == 0 && self.state.batch_in_epoch < per_epoch {
                    self.save_checkpoint(&ckpts)?;
                }
            }
            bar.finish();
            self.state.epoch += 1;
            self.state.batch_in_epoch = 0;
            self.evaluate_and_keep_best(epoch)?;
            self.save_checkpoint(&ckpts)?;
        }
        if self.state.best.is_none() {
            // No dev set: the final model is the output.
            write_model(&self.cfg.out, &var_tensors(&self.varmap), &self.config_json, &self.tokenizer_bytes)?;
        }
        let summary = TrainSummary {
            steps: self.state.global_step,
            seconds: started.elapsed().as_secs_f64(),
            best_metric: self.state.best.map(|b| b.0),
            best_step: self.state.best.map(|b| b.1),
            final_eval: self.state.evals.last().map(|e| e.report.clone()),
            labels: self.state.labels.clone(),
            examples: self.items.len(),
        };
        self.write_report(&summary)?;
        Ok(summary)
    }

    fn evaluate_and_keep_best(&mut self, epoch: usize) -> Result<()> {
        let Some(dev) = self.cfg.dev.clone() else { return Ok(()) };
        let eval: Evaluation = evaluate_file(&self.model, &dev, self.cfg.limit_dev)?;
        let metric = eval.primary();
        eprintln!("[train] epoch {}: dev {} = {metric:.4}", epoch + 1, eval.primary_name());
        let report = serde_json::to_value(&eval).map_err(|e| Error::Input(e.to_string()))?;
        self.state.evals.push(EvalPoint { epoch, step: self.state.global_step, metric, report });
        if self.state.best.is_none_or(|(b, _)| metric > b) {
            self.state.best = Some((metric, self.state.global_step));
            write_model(&self.cfg.out, &var_tensors(&self.varmap), &self.config_json, &self.tokenizer_bytes)?;
            atomic_write(&self.cfg.out.join("confusion.svg"), confusion_svg(&self.state.labels, eval.confusion()).as_bytes())?;
        }
        Ok(())
    }

    fn save_checkpoint(&self, ckpts: &CheckpointDir) -> Result<()> {
        let tensors = var_tensors(&self.varmap);
        let state = serde_json::to_vec(&self.state).map_err(|e| Error::Input(e.to_string()))?;
        ckpts.save(self.state.global_step, |dir| {
            write_model(dir, &tensors, &self.config_json, &self.tokenizer_bytes)?;
            crate::model::weights::save_safetensors(&self.opt.state_tensors(), DType::F32, &dir.join("optimizer.safetensors"))?;
            crash_point(self.state.global_step);
            atomic_write(&dir.join("state.json"), &state)
        })?;
        Ok(())
    }

    fn write_report(&self, summary: &TrainSummary) -> Result<()> {
        let out = &self.cfg.out;
        let metrics = serde_json::json!({
            "summary": summary,
            "evals": self.state.evals,
            "config": self.cfg,
        });
        atomic_write(&out.join("metrics.json"), serde_json::to_string_pretty(&metrics).unwrap_or_default().as_bytes())?;
        let evals: Vec<(usize, f64)> = self.state.evals.iter().map(|e| (e.step, e.metric)).collect();
        let name = if self.cfg.task == "tag" { "span F1" } else { "macro-F1" };
        atomic_write(&out.join("curve.svg"), curve_svg(&self.state.losses, &evals, name).as_bytes())
    }

    /// Names of the parameters that get no gradient from one training batch: a check that the
    /// whole network trains (a non-differentiable kernel would silently freeze what lies below).
    pub fn parameters_without_gradient(&self) -> Result<Vec<String>> {
        let n = self.items.len().min(self.cfg.batch_size);
        let idx: Vec<usize> = (0..n).collect();
        let grads = self.batch_loss(&idx, &DropoutRng::for_step(self.cfg.seed, 0))?.backward()?;
        Ok(self
            .opt
            .params
            .iter()
            .filter(|p| grads.get(p.var.as_tensor()).is_none_or(|g| g.abs().and_then(|a| a.sum_all()).and_then(|s| s.to_scalar::<f32>()).map_or(true, |v| v == 0.0)))
            .map(|p| p.name.clone())
            .collect())
    }

    /// Parameters as tensors (for tests and export).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        var_tensors(&self.varmap)
    }

    pub fn state(&self) -> &TrainState {
        &self.state
    }

    pub fn out_dir(&self) -> &Path {
        &self.cfg.out
    }
}

enum Raw {
    Classify(Vec<crate::data::ClassifyExample>),
    Tag(Vec<crate::data::TagExample>),
    Relate(Vec<crate::data::RelateExample>),
}

/// Fault injection for the crash-safety test: `BERT_TASKS_CRASH_IN_CHECKPOINT=<step>` aborts the
/// process halfway through writing that step's checkpoint (weights written, state not yet).
fn crash_point(step: usize) {
    if std::env::var("BERT_TASKS_CRASH_IN_CHECKPOINT").is_ok_and(|v| v.trim() == step.to_string()) {
        eprintln!("[train] BERT_TASKS_CRASH_IN_CHECKPOINT={step}: aborting mid-checkpoint");
        std::process::abort();
    }
}

fn progress_bar(show: bool, len: usize, pos: usize, epoch: usize, epochs: usize) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
    bar.set_position(pos as u64);
    bar
}
