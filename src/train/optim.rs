//! AdamW with decoupled weight decay, two learning-rate groups (encoder and head), linear
//! warm-up then linear decay, and global gradient-norm clipping. Our own (not candle-nn's) so that
//! its moments can be saved and restored for `--resume`.

use std::collections::HashMap;

use candle_core::{backprop::GradStore, DType, Tensor, Var};

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
        let mut sq = 0f32;
        for p in &self.params {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                sq += g.sqr()?.sum_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
            }
        }
        Ok(sq.sqrt())
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
            let g = (g * grad_scale)?;
            p.m = ((&p.m * b1)? + (&g * (1.0 - b1))?)?.detach();
            p.v = ((&p.v * b2)? + (g.sqr()? * (1.0 - b2))?)?.detach();
            let update = ((&p.m / bc1)? / ((&p.v / bc2)?.sqrt()? + self.eps)?)?;
            let lr = lr[p.group];
            let mut theta = p.var.as_tensor().detach();
            if p.decay && self.weight_decay > 0.0 {
                theta = (theta * (1.0 - lr * self.weight_decay))?;
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
