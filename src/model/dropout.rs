//! Dropout that really drops while training and is the identity at inference.
//!
//! candle-transformers' BERT dropout is a no-op and candle's CPU random source cannot be seeded,
//! so masks come from our own seeded generator. A `DropoutRng` is made per training step from
//! `(seed, step)`: a run resumed at step N draws exactly the masks an uninterrupted run draws.

use std::sync::Mutex;

use candle_core::Tensor;
use rand::{rngs::StdRng, Rng, SeedableRng};

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
    fn mask(&self, n: usize, p: f32) -> Vec<f32> {
        let keep = 1.0 / (1.0 - p);
        let mut rng = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (0..n).map(|_| if rng.random::<f32>() < p { 0.0 } else { keep }).collect()
    }
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
