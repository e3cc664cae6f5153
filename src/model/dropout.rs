//! Dropout that really drops while training and is the identity at inference.
//!
//! candle-transformers' BERT dropout is a no-op and candle's CPU random source cannot be seeded,
//! so masks come from our own seeded generator. A `DropoutRng` is made per training step from
//! `(seed, step)`: a run resumed at step N draws exactly the masks an uninterrupted run draws.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;

use super::fastmath::contiguous_f32;
use super::fused::with_f32;

use crate::Result;

/// The random source of one training step. `None` in its place means inference.
pub struct DropoutRng(Mutex<StdRng>);

impl DropoutRng {
    pub fn new(seed: u64) -> Self {
        DropoutRng(Mutex::new(StdRng::seed_from_u64(seed)))
    }

    /// The generator of training step `step` of a run seeded with `seed`.
    pub fn for_step(seed: u64, step: u64) -> Self {
        // SplitMix64-style mixing so that neighbouring steps get unrelated streams.
        let mut z = seed ^ step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self::new(z ^ (z >> 31))
    }

    /// A seed for a device-side generator, drawn from this step's stream.
    fn next_seed(&self) -> u64 {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).random::<u64>()
    }

    /// A mask of `n` values, each `0` with probability `p` and `1/(1-p)` otherwise.
    ///
    /// One key is drawn from the step's stream per mask; element `i` is then a pure function of
    /// `(key, i)` (SplitMix64), so blocks are filled in parallel and the result does not depend on
    /// the thread count. (A sequential ChaCha stream of ~30 M values per MiniLM step took ~4 % of it.)
    fn mask(&self, n: usize, p: f32) -> Vec<f32> {
        let key = self.next_seed();
        let keep = 1.0 / (1.0 - p);
        // Drop when the top 24 bits, read as a fraction of 2^24, fall below p.
        let cut = (p as f64 * (1u64 << 24) as f64) as u32;
        let mut out = vec![0f32; n];
        out.par_chunks_mut(1 << 14).enumerate().for_each(|(block, chunk)| {
            let first = (block << 14) as u64;
            for (j, v) in chunk.iter_mut().enumerate() {
                let bits = (splitmix64(key.wrapping_add(first + j as u64)) >> 40) as u32;
                *v = if bits < cut { 0.0 } else { keep };
            }
        });
        out
    }
}

/// SplitMix64's output function: a well-mixed 64-bit value for each input.
#[inline(always)]
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `x ⊙ mask` with the gradient `g ⊙ mask` (candle's `mul` would also compute and accumulate a
/// gradient for the constant mask: two wasted passes over the tensor per dropout).
struct Masked(Vec<f32>);

impl CustomOp1 for Masked {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, self.name())?;
        if x.len() != self.0.len() {
            candle_core::bail!("dropout: mask of {} for a tensor of {}", self.0.len(), x.len());
        }
        Ok((CpuStorage::F32(times_mask(x, &self.0)), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dx = with_f32(g, |g| times_mask(g, &self.0))?;
        Ok(Some(Tensor::from_vec(dx, g.shape(), g.device())?))
    }
}

/// `x ⊙ mask`, in parallel blocks.
fn times_mask(x: &[f32], mask: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(1 << 14).zip(x.par_chunks(1 << 14)).zip(mask.par_chunks(1 << 14)).for_each(|((o, x), m)| {
        o.iter_mut().zip(x).zip(m).for_each(|((o, &x), &m)| *o = x * m);
    });
    out
}

#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    pub fn new(p: f64) -> Self {
        Dropout { p: p.clamp(0.0, 0.999) as f32 }
    }

    /// The CPU mask [`forward`](Self::forward) would multiply an `n`-element tensor by, drawn
    /// from the same stream in the same order; `None` at inference or without dropout. For fused
    /// ops that apply dropout inside (src/model/train_attention.rs).
    pub fn cpu_mask(&self, n: usize, train: Option<&DropoutRng>) -> Option<Vec<f32>> {
        train.filter(|_| self.p > 0.0).map(|rng| rng.mask(n, self.p))
    }

    /// Drops with probability `p` (and rescales the rest) when `train` is given; else returns `x`.
    pub fn forward(&self, x: &Tensor, train: Option<&DropoutRng>) -> Result<Tensor> {
        match train {
            Some(rng) if self.p > 0.0 && x.device().is_cpu() && x.dtype() == DType::F32 => {
                let mask = rng.mask(x.elem_count(), self.p);
                Ok(x.contiguous()?.apply_op1(Masked(mask))?)
            }
            Some(rng) if self.p > 0.0 && x.device().is_cpu() => {
                let mask = rng.mask(x.elem_count(), self.p);
                let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
                Ok(x.mul(&mask)?)
            }
            Some(rng) if self.p > 0.0 => {
                // On a GPU the mask is drawn there (copying CPU masks over cost more than the
                // whole step), from the device generator re-seeded from our stream: still
                // deterministic per (seed, step), so resuming stays exact on the same device.
                x.device().set_seed(rng.next_seed())?;
                let keep = Tensor::rand(0f32, 1f32, x.shape(), x.device())?.ge(self.p as f64)?;
                let mask = (keep.to_dtype(x.dtype())? * (1.0 / (1.0 - self.p as f64)))?;
                Ok(x.mul(&mask)?)
            }
            _ => Ok(x.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn identity_at_inference_and_drops_in_training() {
        let x = Tensor::ones((100, 100), candle_core::DType::F32, &Device::Cpu).unwrap();
        let d = Dropout::new(0.25);
        let same = d.forward(&x, None).unwrap();
        assert_eq!(same.sum_all().unwrap().to_scalar::<f32>().unwrap(), 10_000.0);

        let rng = DropoutRng::new(7);
        let y: Vec<f32> = d.forward(&x, Some(&rng)).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let zeros = y.iter().filter(|v| **v == 0.0).count() as f64 / y.len() as f64;
        assert!((zeros - 0.25).abs() < 0.02, "dropped fraction {zeros}");
        assert!(y.iter().all(|v| *v == 0.0 || (*v - 1.0 / 0.75).abs() < 1e-6), "kept values rescaled");
        let mean = y.iter().sum::<f32>() / y.len() as f32;
        assert!((mean - 1.0).abs() < 0.03, "expectation preserved, got {mean}");
    }

    /// The gradient is the mask: d(Σ w ⊙ dropout(x))/dx = w ⊙ mask, and y = x ⊙ mask.
    #[test]
    fn gradient_is_the_mask() {
        let x = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1., (3, 50), &Device::Cpu).unwrap()).unwrap();
        let w = Tensor::randn(0f32, 1., (3, 50), &Device::Cpu).unwrap();
        let y = Dropout::new(0.3).forward(&x, Some(&DropoutRng::new(1))).unwrap();
        let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let (xs, ys): (Vec<f32>, Vec<f32>) = (x.flatten_all().unwrap().to_vec1().unwrap(), y.flatten_all().unwrap().to_vec1().unwrap());
        let (ws, gs): (Vec<f32>, Vec<f32>) = (w.flatten_all().unwrap().to_vec1().unwrap(), grads.get(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap());
        for i in 0..xs.len() {
            let mask = if ys[i] == 0.0 { 0.0 } else { 1.0 / 0.7 };
            assert!((ys[i] - xs[i] * mask).abs() < 1e-6 && (gs[i] - ws[i] * mask).abs() < 1e-6, "element {i}");
        }
    }

    #[test]
    fn masks_are_reproducible_per_step() {
        let x = Tensor::ones(64, candle_core::DType::F32, &Device::Cpu).unwrap();
        let d = Dropout::new(0.5);
        let draw = |step| -> Vec<f32> {
            d.forward(&x, Some(&DropoutRng::for_step(42, step))).unwrap().to_vec1().unwrap()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
