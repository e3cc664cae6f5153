//! AdamW with decoupled weight decay, two learning-rate groups (encoder and head), linear
//! warm-up then linear decay, and global gradient-norm clipping. Our own (not candle-nn's) so that
//! its moments can be saved and restored for `--resume`.

use std::collections::HashMap;

use candle_core::{backprop::GradStore, CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor, Var};
use rayon::prelude::*;

use crate::model::fastmath::{contiguous_f32, contiguous_f32_mut};

use crate::Result;

pub struct Param {
    pub name: String,
    pub var: Var,
    /// 0 = encoder, 1 = head (its own learning rate).
    pub group: usize,
    /// Biases and LayerNorm weights are not decayed (the usual BERT recipe).
    pub decay: bool,
    m: Tensor,
    v: Tensor,
}

pub struct AdamW {
    pub params: Vec<Param>,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub step: usize,
}

#[derive(Clone, Copy)]
struct Hyper {
    b1: f64,
    b2: f64,
    bc1: f64,
    bc2: f64,
    eps: f64,
    lr: f64,
    decay: f64,
    scale: f64,
}

/// Elements per parallel job of the CPU passes (fixed, so that sums are taken in the same order
/// on every run and `--resume` stays bit-for-bit).
const CHUNK: usize = 1 << 14;

/// The AdamW update of one CPU parameter, in place in candle's own buffers and on the thread
/// pool: `m` and `v` from the gradient, then the parameter from both moments (same arithmetic
/// as the tensor path). Before, each step copied gradient, moments and parameter out of their
/// tensors and back on one thread: 173 ms of an 858 ms step on 16 cores.
fn update_cpu(p: &Param, g: &Tensor, h: Hyper) -> Result<()> {
    let g = if g.is_contiguous() { g.clone() } else { g.contiguous()? };
    let (b1, b2, scale) = (h.b1 as f32, h.b2 as f32, h.scale as f32);
    let (bc1, bc2, eps, lr, keep) = (h.bc1 as f32, h.bc2 as f32, h.eps as f32, h.lr as f32, (1.0 - h.decay) as f32);
    p.m.inplace_op2(&g, &Moment { decay: b1, square: false, scale })?;
    p.v.inplace_op2(&g, &Moment { decay: b2, square: true, scale })?;
    p.var.as_tensor().inplace_op3(&p.m, &p.v, &Step { bc1, bc2, eps, lr, keep })?;
    Ok(())
}

/// `m ← β·m + (1 − β)·(s·g)`, or with `(s·g)²` for the second moment.
struct Moment {
    decay: f32,
    square: bool,
    scale: f32,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let m = contiguous_f32_mut(s1, l1, "AdamW moment")?;
        let g = contiguous_f32(s2, l2, "AdamW gradient")?;
        let Moment { decay, square, scale } = *self;
        m.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(m, g)| {
            for (m, &g) in m.iter_mut().zip(g) {
                let gi = g * scale;
                *m = *m * decay + if square { gi * gi } else { gi } * (1.0 - decay);
            }
        });
        Ok(())
    }
}

/// `θ ← keep·θ − lr·(m / bc1) / (√(v / bc2) + ε)`.
struct Step {
    bc1: f32,
    bc2: f32,
    eps: f32,
    lr: f32,
    keep: f32,
}

impl InplaceOp3 for Step {
    fn name(&self) -> &'static str {
        "adamw-step"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> candle_core::Result<()> {
        let theta = contiguous_f32_mut(s1, l1, "AdamW parameter")?;
        let (m, v) = (contiguous_f32(s2, l2, "AdamW first moment")?, contiguous_f32(s3, l3, "AdamW second moment")?);
        let Step { bc1, bc2, eps, lr, keep } = *self;
        theta.par_chunks_mut(CHUNK).zip(m.par_chunks(CHUNK)).zip(v.par_chunks(CHUNK)).for_each(|((t, m), v)| {
            for ((t, &m), &v) in t.iter_mut().zip(m).zip(v) {
                let update = (m / bc1) / ((v / bc2).sqrt() + eps);
                *t = *t * keep - update * lr;
            }
        });
        Ok(())
    }
}

/// Σ x² of a CPU f32 tensor in f64, on the pool, in a fixed order (chunk sums added in sequence).
fn sum_squares_cpu(g: &Tensor) -> Result<f64> {
    let g = if g.is_contiguous() { g.clone() } else { g.contiguous()? };
    let (storage, layout) = g.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        return Err(crate::Error::Input("AdamW: expected a CPU gradient".into()));
    };
    let x = contiguous_f32(cpu, layout, "AdamW gradient")?;
    let parts: Vec<f64> = x.par_chunks(CHUNK).map(|c| c.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>()).collect();
    Ok(parts.into_iter().sum())
}

/// Linear warm-up over `warmup` steps to the peak, then linear decay to 0 at `total`.
pub fn schedule(step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        (step + 1) as f64 / warmup as f64
    } else if total <= warmup {
        1.0
    } else {
        ((total - step) as f64 / (total - warmup) as f64).max(0.0)
    }
}

impl AdamW {
    pub fn new(vars: Vec<(String, Var, usize)>, weight_decay: f64) -> Result<Self> {
        let params = vars
            .into_iter()
            .map(|(name, var, group)| {
                let decay = !(name.ends_with(".bias") || name.contains("LayerNorm"));
                let m = var.as_tensor().zeros_like()?;
                let v = var.as_tensor().zeros_like()?;
                Ok(Param { name, var, group, decay, m, v })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW { params, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, step: 0 })
    }

    /// Global L2 norm of the gradients.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f32> {
        let mut sq = 0f64;
        for p in &self.params {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                sq += if g.device().is_cpu() && g.dtype() == DType::F32 {
                    // One parallel pass over the gradient instead of three tensor ops.
                    sum_squares_cpu(g)?
                } else {
                    g.sqr()?.sum_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64
                };
            }
        }
        Ok(sq.sqrt() as f32)
    }

    /// Clips the gradients to the global norm `max_norm`, then one update with learning rates
    /// `lr[group]`. On a CUDA device this is two kernel launches for all parameters
    /// (`adamw_cuda.rs`; `BERT_TASKS_CUDA_ADAMW=ops` selects the tensor-op path, for comparison).
    pub fn clip_and_step(&mut self, grads: &GradStore, lr: [f64; 2], max_norm: f64) -> Result<()> {
        #[cfg(feature = "cuda")]
        if self.fused_cuda_applies() {
            return self.step_cuda(grads, lr, max_norm);
        }
        let norm = self.grad_norm(grads)? as f64;
        let scale = if norm > max_norm { max_norm / (norm + 1e-6) } else { 1.0 };
        self.step(grads, lr, scale)
    }

    #[cfg(feature = "cuda")]
    fn fused_cuda_applies(&self) -> bool {
        std::env::var("BERT_TASKS_CUDA_ADAMW").as_deref() != Ok("ops")
            && !self.params.is_empty()
            && self.params.iter().all(|p| p.var.device().is_cuda() && p.var.dtype() == DType::F32)
    }

    #[cfg(feature = "cuda")]
    fn step_cuda(&mut self, grads: &GradStore, lr: [f64; 2], max_norm: f64) -> Result<()> {
        use super::adamw_cuda::{clip_and_step, Hyper, Update};
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        let h = Hyper {
            b1: b1 as f32,
            b2: b2 as f32,
            bc1: (1.0 - b1.powi(t)) as f32,
            bc2: (1.0 - b2.powi(t)) as f32,
            eps: self.eps as f32,
            max_norm,
        };
        let updates: Vec<Update> = self
            .params
            .iter()
            .filter_map(|p| {
                let grad = grads.get(p.var.as_tensor())?;
                let lr = lr[p.group];
                let decay = if p.decay { lr * self.weight_decay } else { 0.0 };
                Some(Update { param: p.var.as_tensor(), m: &p.m, v: &p.v, grad, lr: lr as f32, keep: (1.0 - decay) as f32 })
            })
            .collect();
        clip_and_step(self.params[0].var.device(), &updates, &h)
    }

    /// One update with learning rates `lr[group]`; gradients are scaled by `grad_scale`
    /// (clipping).
    pub fn step(&mut self, grads: &GradStore, lr: [f64; 2], grad_scale: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for p in &mut self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else { continue };
            let lr = lr[p.group];
            let decay = if p.decay { lr * self.weight_decay } else { 0.0 };
            if g.device().is_cpu() && g.dtype() == DType::F32 {
                // CPU: one fused pass per parameter (a dozen tensor ops, each a full pass
                // with a fresh allocation, cost ~10x more).
                let h = Hyper { b1, b2, bc1, bc2, eps: self.eps, lr, decay, scale: grad_scale };
                update_cpu(p, g, h)?;
                continue;
            }
            let g = (g * grad_scale)?;
            p.m = ((&p.m * b1)? + (&g * (1.0 - b1))?)?.detach();
            p.v = ((&p.v * b2)? + (g.sqr()? * (1.0 - b2))?)?.detach();
            let update = ((&p.m / bc1)? / ((&p.v / bc2)?.sqrt()? + self.eps)?)?;
            let mut theta = p.var.as_tensor().detach();
            if decay > 0.0 {
                theta = (theta * (1.0 - decay))?;
            }
            p.var.set(&(theta - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// Moments by name (`m.<param>`, `v.<param>`), for a checkpoint.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for p in &self.params {
            out.insert(format!("m.{}", p.name), p.m.clone());
            out.insert(format!("v.{}", p.name), p.v.clone());
        }
        out
    }

    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: usize) -> Result<()> {
        for p in &mut self.params {
            for (key, slot) in [(format!("m.{}", p.name), &mut p.m), (format!("v.{}", p.name), &mut p.v)] {
                let t = tensors.get(&key).ok_or_else(|| {
                    crate::Error::Weights(format!("optimizer state has no {key}"))
                })?;
                *slot = t.to_device(p.var.device())?;
            }
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_warms_up_then_decays() {
        assert_eq!(schedule(0, 4, 10), 0.25);
        assert_eq!(schedule(3, 4, 10), 1.0);
        assert_eq!(schedule(4, 4, 10), 1.0);
        assert!((schedule(7, 4, 10) - 0.5).abs() < 1e-12);
        assert_eq!(schedule(10, 4, 10), 0.0);
    }

    /// The fused CPU update and the tensor-op update (used on GPUs) give the same parameters.
    #[test]
    fn cpu_and_tensor_paths_agree() {
        let d = Device::Cpu;
        let run = |fused: bool| -> Vec<f32> {
            let w = Var::new(&[0.5f32, -1.5, 2.0, 0.1], &d).unwrap();
            let mut opt = AdamW::new(vec![("l.weight".into(), w.clone(), 0)], 0.01).unwrap();
            for _ in 0..3 {
                let loss = (w.as_tensor().sqr().unwrap().sum_all().unwrap() * 3.0).unwrap();
                let grads = loss.backward().unwrap();
                if fused {
                    opt.step(&grads, [0.05, 0.05], 0.5).unwrap();
                } else {
                    // The generic path, as a non-CPU device would take it.
                    opt.step += 1;
                    let t = opt.step as i32;
                    let (bc1, bc2) = (1.0 - 0.9f64.powi(t), 1.0 - 0.999f64.powi(t));
                    let p = &mut opt.params[0];
                    let g = (grads.get(p.var.as_tensor()).unwrap() * 0.5).unwrap();
                    p.m = ((&p.m * 0.9).unwrap() + (&g * 0.1).unwrap()).unwrap();
                    p.v = ((&p.v * 0.999).unwrap() + (g.sqr().unwrap() * 0.001).unwrap()).unwrap();
                    let up = ((&p.m / bc1).unwrap() / ((&p.v / bc2).unwrap().sqrt().unwrap() + 1e-8).unwrap()).unwrap();
                    let theta = (p.var.as_tensor().detach() * (1.0 - 0.05 * 0.01)).unwrap();
                    p.var.set(&(theta - (up * 0.05).unwrap()).unwrap()).unwrap();
                }
            }
            w.as_tensor().to_vec1().unwrap()
        };
        for (a, b) in run(true).iter().zip(run(false)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    /// One step on f(x) = Σ x²: Adam's first step moves each weight by lr·sign(grad), and
    /// decoupled decay shrinks weights but not biases.
    #[test]
    fn first_step_matches_adam() {
        let w = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let b = Var::new(&[3.0f32], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![("l.weight".into(), w.clone(), 0), ("l.bias".into(), b.clone(), 1)], 0.1).unwrap();
        let loss = (w.as_tensor().sqr().unwrap().sum_all().unwrap() + b.as_tensor().sqr().unwrap().sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        opt.step(&grads, [0.1, 0.01], 1.0).unwrap();
        let w1 = w.as_tensor().to_vec1::<f32>().unwrap();
        assert!((w1[0] - (1.0 * (1.0 - 0.01) - 0.1)).abs() < 1e-5, "{w1:?}");
        assert!((w1[1] - (-2.0 * (1.0 - 0.01) + 0.1)).abs() < 1e-5);
        assert!((b.as_tensor().to_vec1::<f32>().unwrap()[0] - (3.0 - 0.01)).abs() < 1e-5, "bias: no decay, head lr");
    }
}
