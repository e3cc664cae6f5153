//! The training loop: fine-tune a base encoder plus a fresh task head on labelled data, evaluate
//! on dev each epoch, keep the best model in the output folder, checkpoint atomically, resume
//! exactly where a killed run stopped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::batches::{batch_tokens, epoch_batches};
use super::checkpoint::{atomic_write, write_model, CheckpointDir};
use super::evaluate::{evaluate_file, Evaluation};
use super::loss::{inverse_frequency, Loss, LossKind};
use super::optim::{schedule, AdamW};
use super::report::{confusion_svg, curve_svg};
use super::sampler::{Sampler, Sampling};
use super::task::{Task, TrainStep};
use crate::checkpoint::Checkpoint;
use crate::model::heads::{Decoder, RelateMethod, TaskHead};
use crate::model::autocast::Precision;
use crate::model::{DropoutRng, Pooling};
use crate::tasks::Model;
use crate::text::scheme::Scheme;
use crate::{Error, Result};

/// Everything that defines a training run (saved with each checkpoint; `--resume` reuses it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub task: Task,
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
    /// Length bucketing: sort each window of this many batches by length (0 or 1: off, the
    /// sampler's order as is). Absent in checkpoints from before bucketing, which resume unbucketed.
    #[serde(default)]
    pub bucket_window: usize,
    /// `bf16`: the encoder's matrix products in bf16 on a GPU (autocast-style; f32 weights and
    /// optimizer state). Absent in older checkpoints: f32.
    #[serde(default)]
    pub precision: Precision,
    /// Stop after this many optimizer steps in this process (testing crash/resume).
    #[serde(skip)]
    pub stop_after: Option<usize>,
}

impl TrainConfig {
    /// A run with the defaults of `bert-tasks train` (a test in `cli::train` keeps the two equal);
    /// callers override fields with struct-update syntax.
    pub fn new(task: Task, base: PathBuf, train: PathBuf, out: PathBuf) -> Self {
        TrainConfig {
            task,
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
            bucket_window: 50,
            precision: Precision::F32,
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
    /// Real tokens trained on so far, and what the padded batches computed on.
    #[serde(default)]
    pub tokens: u64,
    #[serde(default)]
    pub padded_tokens: u64,
}

impl TrainState {
    fn fresh(cfg: &TrainConfig, labels: &[String]) -> Self {
        TrainState {
            global_step: 0,
            epoch: 0,
            batch_in_epoch: 0,
            losses: vec![],
            evals: vec![],
            best: None,
            config: cfg.clone(),
            labels: labels.to_vec(),
            tokens: 0,
            padded_tokens: 0,
        }
    }
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
    /// Real tokens of all steps of the run ([CLS]/[SEP] included, padding not).
    pub tokens: u64,
    /// Tokens the padded batches computed on (tokens / padded_tokens is the useful fraction).
    pub padded_tokens: u64,
    /// Real tokens per second of this process's optimizer steps (evaluation excluded).
    pub tokens_per_second: f64,
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

/// The latest checkpoint of `out` and its state, if there is one.
fn find_resume(out: &Path) -> Result<Option<Resume>> {
    let Some(dir) = CheckpointDir::new(out).latest()? else {
        eprintln!("[train] --resume: no checkpoint in {}, starting fresh", out.display());
        return Ok(None);
    };
    let p = dir.join("state.json");
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| Error::Input(format!("{}: {e}", p.display())))?;
    Ok(Some(Resume { dir, state }))
}

/// Fills `varmap` with the trainable parameters: the base encoder under `bert.` (a fresh run;
/// the head's tensors are created when the model is built), or everything from a checkpoint.
fn load_parameters(varmap: &VarMap, base: &Checkpoint, resume_from: Option<&Path>, device: &Device) -> Result<()> {
    if base.weights.is_quantized() {
        return Err(Error::Input(format!(
            "{}: a q8/q4 export (quantised weights) cannot be trained; start from the f32/f16 model it was exported from",
            base.weights.source()
        )));
    }
    let mut data = varmap.data().lock().map_err(|_| Error::Input("var map poisoned".into()))?;
    let loaded: HashMap<String, Tensor> = match resume_from {
        Some(dir) => crate::model::Weights::from_dir(dir)?.into_tensors()?,
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
            data.insert(name, Var::from_tensor(&t.to_dtype(DType::F32)?.to_device(device)?)?);
        }
    }
    Ok(())
}

/// AdamW over every trainable tensor in name order (deterministic): group 0 the encoder
/// (`--lr`), group 1 the head (`--head-lr`).
fn optimizer(varmap: &VarMap, weight_decay: f64) -> Result<AdamW> {
    let mut vars: Vec<(String, Var)> = varmap.data().lock().expect("var map").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let groups = vars.into_iter().map(|(n, v)| {
        let g = usize::from(!n.starts_with("bert."));
        (n, v, g)
    });
    AdamW::new(groups.collect(), weight_decay)
}


pub struct Trainer {
    pub cfg: TrainConfig,
    pub model: Model,
    varmap: VarMap,
    config_json: serde_json::Value,
    tokenizer_bytes: Vec<u8>,
    data: Box<dyn TrainStep>,
    loss: Loss,
    sampler: Sampler,
    opt: AdamW,
    state: TrainState,
    device: Device,
}

/// A saved run to continue: its checkpoint folder and state.
struct Resume {
    dir: PathBuf,
    state: TrainState,
}

impl Trainer {
    /// Sets up a fresh run, or — when `out/checkpoints/latest` exists and `resume` is set —
    /// continues the run saved there (its saved configuration wins).
    pub fn new(mut cfg: TrainConfig, resume: bool) -> Result<Self> {
        let resumed = if resume { find_resume(&cfg.out)? } else { None };
        if let Some(r) = &resumed {
            let stop_after = cfg.stop_after;
            cfg = r.state.config.clone();
            cfg.stop_after = stop_after;
        }
        if cfg.batch_size == 0 || cfg.max_len < 8 || cfg.epochs == 0 {
            return Err(Error::Input("batch size and epochs must be positive and max-len at least 8".into()));
        }
        let device = crate::device::select(&cfg.device)?;
        if cfg.precision == Precision::Bf16 && device.is_cpu() {
            return Err(Error::Input("--precision bf16 is for training on a GPU (--device cuda); on the CPU it would only add casts".into()));
        }
        crate::model::autocast::set(cfg.precision);
        let base = Checkpoint::load(&cfg.base)?;
        cfg.max_len = cfg.max_len.min(base.config.max_position_embeddings);

        // The task's data fixes the labels (a resumed run keeps its own) and the head.
        let data = cfg.task.read(&cfg)?;
        let labels = resumed.as_ref().map_or_else(|| data.labels().to_vec(), |r| r.state.labels.clone());
        let head = data.head(&cfg);
        if let TaskHead::Tag { scheme, .. } = &head {
            cfg.scheme = *scheme;
        }
        data.check_dev(&cfg, &labels)?;

        let base_json: serde_json::Value = serde_json::from_str(&base.config.to_json()?).map_err(|e| Error::Config(e.to_string()))?;
        let config_json = model_config(&base_json, &labels, &head);
        let varmap = VarMap::new();
        load_parameters(&varmap, &base, resumed.as_ref().map(|r| r.dir.as_path()), &device)?;
        let mut bert_cfg = base.config.clone();
        bert_cfg.id2label = Some(labels.iter().cloned().enumerate().collect());
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let mut model = Model::build(bert_cfg, base.tokenizer, head.clone(), vb, Some("bert"), &device)?;
        if resumed.is_none() {
            init_head(&varmap, cfg.seed)?;
        }
        if matches!(head, TaskHead::Classify { pooling: Pooling::Pooler }) && model.encoder.bert.pooler.is_none() {
            return Err(Error::Weights("pooling \"pooler\" needs pooler.dense.* in the base model; use --pooling cls|mean|max".into()));
        }
        // Training sequences are cut to --max-len; evaluation and the saved model use every position.
        model.set_max_tokens(cfg.max_len)?;
        let data = data.encode(&model, &labels, &cfg)?;
        model.set_max_tokens(model.encoder.config.max_position_embeddings)?;

        let counts = data.label_counts(labels.len());
        let sampler = match (data.classes(), cfg.sampling) {
            (None, Sampling::Instance) => Sampler::new(Sampling::Instance, 1.0, &vec![0; data.len()], 1),
            (None, _) => {
                return Err(Error::Input("re-sampling by class applies to classify and relate; for tag use --loss weighted|focal".into()))
            }
            (Some(classes), s) => Sampler::new(s, cfg.q, &classes, labels.len()),
        };
        let alpha = match (&cfg.class_weights, cfg.loss) {
            (Some(spec), _) => Some(parse_weights(spec, &counts)?),
            (None, LossKind::Weighted) => Some(inverse_frequency(&counts)),
            _ => None,
        };
        let loss = Loss { kind: cfg.loss, alpha, gamma: cfg.gamma };

        let mut opt = optimizer(&varmap, cfg.weight_decay)?;
        let state = match resumed {
            Some(r) => {
                let p = r.dir.join("optimizer.safetensors");
                let t = candle_core::safetensors::load(&p, &device).map_err(|e| Error::Weights(format!("{}: {}", p.display(), crate::error::clean(&e))))?;
                opt.load_state(&t, r.state.global_step)?;
                eprintln!("[train] resuming from {} (step {}, epoch {})", r.dir.display(), r.state.global_step, r.state.epoch + 1);
                r.state
            }
            None => TrainState::fresh(&cfg, &labels),
        };
        let tokenizer_bytes = {
            let p = cfg.base.join("tokenizer.json");
            std::fs::read(&p).map_err(|e| Error::io(&p, e))?
        };
        Ok(Trainer { cfg, model, varmap, config_json, tokenizer_bytes, data, loss, sampler, opt, state, device })
    }

    pub fn examples(&self) -> usize {
        self.data.len()
    }

    fn batches_per_epoch(&self) -> usize {
        self.data.len().div_ceil(self.cfg.batch_size)
    }

    /// The batches of `epoch`: the sampler's order, length-bucketed (`--bucket-window`).
    fn epoch_batches(&self, epoch: usize) -> Vec<Vec<usize>> {
        let order = self.sampler.epoch_order(self.cfg.seed, epoch as u64);
        epoch_batches(&order, |i| self.data.tokens(i), self.cfg.batch_size, self.cfg.bucket_window, self.cfg.seed, epoch as u64)
    }

    /// Loss of one batch of item indices, with dropout drawn from `rng`.
    fn batch_loss(&self, idx: &[usize], rng: &DropoutRng) -> Result<Tensor> {
        self.data.loss(&self.model, &self.loss, idx, rng)
    }

    /// One optimizer step on the batch `idx`: forward, backward, clipping, AdamW. Returns the
    /// loss, or `Err(loss)` (nothing updated) when it is not finite. `phases` (when given) gets
    /// the seconds spent in forward, backward and the optimizer (the device is synchronised
    /// between them, so only pass it when timing). Runs on the kernels' pool
    /// (`parallel::in_pool`): the backward's and the optimizer's parallel kernels then start
    /// without waking the caller.
    fn step(&mut self, idx: &[usize], warmup: usize, total: usize, phases: Option<&mut [f64; 3]>) -> Result<std::result::Result<f32, f32>> {
        crate::parallel::in_pool(|| self.step_here(idx, warmup, total, phases))
    }

    fn step_here(&mut self, idx: &[usize], warmup: usize, total: usize, phases: Option<&mut [f64; 3]>) -> Result<std::result::Result<f32, f32>> {
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
        let f = schedule(self.state.global_step, warmup, total);
        self.opt.clip_and_step(&grads, [self.cfg.lr * f, self.cfg.head_lr * f], self.cfg.max_grad_norm)?;
        if let Some(p) = phases {
            self.device.synchronize()?;
            let t3 = std::time::Instant::now();
            *p = [(t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64(), (t3 - t2).as_secs_f64()];
        }
        Ok(Ok(value))
    }

    /// Times `n` optimizer steps on the first batches of the epoch order (the benchmark's
    /// training step: the same code as `run`, without checkpoints or evaluation). Seconds per
    /// step, each split into [forward, backward, optimizer], and the loss of each step.
    pub fn time_steps(&mut self, n: usize) -> Result<Vec<([f64; 3], f32)>> {
        let batches = self.epoch_batches(0);
        let total = self.total_steps().max(n);
        let mut times = Vec::with_capacity(n);
        for k in 0..n {
            let idx = batches[k % batches.len()].clone();
            let mut phases = [0.0; 3];
            let loss = self.step(&idx, 0, total, Some(&mut phases))?.map_err(|v| Error::Input(format!("the loss became {v} while timing")))?;
            times.push((phases, loss));
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
        // Throughput of this process's optimizer steps (evaluation and checkpoints excluded).
        let (mut steps_here, mut tokens_here, mut step_secs) = (0usize, 0usize, 0f64);
        while self.state.epoch < self.cfg.epochs {
            let epoch = self.state.epoch;
            let batches = self.epoch_batches(epoch);
            let bar = progress_bar(show_progress, per_epoch, self.state.batch_in_epoch, epoch, self.cfg.epochs);
            while self.state.batch_in_epoch < per_epoch {
                if self.cfg.stop_after.is_some_and(|n| steps_here >= n) {
                    bar.abandon();
                    return Err(Error::Input(format!("stopped after {steps_here} steps as asked (--stop-after)")));
                }
                let idx = &batches[self.state.batch_in_epoch];
                let step_started = std::time::Instant::now();
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
                step_secs += step_started.elapsed().as_secs_f64();
                let (real, padded) = batch_tokens(idx, |i| self.data.tokens(i));
                self.state.tokens += real as u64;
                self.state.padded_tokens += padded as u64;
                tokens_here += real;
                self.state.losses.push(value);
                self.state.global_step += 1;
                self.state.batch_in_epoch += 1;
                steps_here += 1;
                let tokens_per_s = tokens_here as f64 / step_secs.max(1e-9);
                bar.set_message(format!("loss {value:.4} {tokens_per_s:.0} tok/s"));
                bar.inc(1);
                if show_progress && bar.is_hidden() && self.state.batch_in_epoch.is_multiple_of((per_epoch / 10).max(1)) {
                    // No terminal (a log file): a plain line every tenth of an epoch instead.
                    eprintln!(
                        "[train] epoch {}/{} step {}/{} loss {value:.4} ({:.2} steps/s, {tokens_per_s:.0} tokens/s)",
                        epoch + 1,
                        self.cfg.epochs,
                        self.state.batch_in_epoch,
                        per_epoch,
                        steps_here as f64 / step_secs.max(1e-9)
                    );
                }
                if self.cfg.save_every > 0 && self.state.global_step.is_multiple_of(self.cfg.save_every) && self.state.batch_in_epoch < per_epoch {
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
        let seconds = started.elapsed().as_secs_f64();
        let summary = TrainSummary {
            steps: self.state.global_step,
            seconds,
            best_metric: self.state.best.map(|b| b.0),
            best_step: self.state.best.map(|b| b.1),
            final_eval: self.state.evals.last().map(|e| e.report.clone()),
            labels: self.state.labels.clone(),
            examples: self.data.len(),
            tokens: self.state.tokens,
            padded_tokens: self.state.padded_tokens,
            tokens_per_second: tokens_here as f64 / step_secs.max(1e-9),
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
        let name = if self.cfg.task == Task::Tag { "span F1" } else { "macro-F1" };
        atomic_write(&out.join("curve.svg"), curve_svg(&self.state.losses, &evals, name).as_bytes())
    }

    /// Names of the parameters that get no gradient from one training batch: a check that the
    /// whole network trains (a non-differentiable kernel would silently freeze what lies below).
    pub fn parameters_without_gradient(&self) -> Result<Vec<String>> {
        let n = self.data.len().min(self.cfg.batch_size);
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
