//! Layer normalisation, softmax and GELU that train.
//!
//! candle-nn's fused `layer_norm` and `softmax_last_dim` kernels are fast but have no backward
//! pass: gradients stop at them without an error, which silently freezes everything below the
//! first LayerNorm. Training therefore runs the same fused kernels and attaches the analytic
//! gradient with a custom op ([`WithGradient`]): one fused pass forward and a few tensor ops
//! backward, instead of differentiating a chain of primitive ops (which cost ~2x the step).
//! On the CPU the backward itself is one fused, row-parallel pass per op as well
//! ([`fastmath`]'s `*_backward` kernels): each candle op in a chain allocates and sweeps the
//! whole tensor, and GELU's derivative alone was a dozen of them.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor, D};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::fastmath::{self, contiguous_f32};
use crate::Result;

/// `apply_op2(x, y)` returns `y` (the fused kernel's output for `x`, contiguous) and, in
/// backward, the gradient of the named function at `x`.
#[derive(Debug, Clone, Copy)]
enum WithGradient {
    /// `y = softmax(x)` over the last dimension: `dx = y ⊙ (g − Σ g ⊙ y)`.
    Softmax,
    /// `y = (x − μ) / σ` over the last dimension (no affine part):
    /// `dx = (g − mean(g) − y ⊙ mean(g ⊙ y)) / σ`.
    Normalise { eps: f64 },
    /// `y = GELU(x)` (erf form): `dx = g ⊙ (Φ(x) + x φ(x))`.
    Gelu,
}

impl CustomOp2 for WithGradient {
    fn name(&self) -> &'static str {
        match self {
            WithGradient::Softmax => "softmax-with-gradient",
            WithGradient::Normalise { .. } => "normalise-with-gradient",
            WithGradient::Gelu => "gelu-with-gradient",
        }
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, y: &CpuStorage, ly: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        Ok((y.try_clone(ly)?, ly.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        y: &candle_core::CudaStorage,
        ly: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        Ok((y.try_clone(ly)?, ly.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, y: &Tensor, g: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        if g.device().is_cpu() && g.dtype() == DType::F32 {
            let (x, g) = (x.contiguous()?, g.contiguous()?);
            let dx = match *self {
                WithGradient::Softmax => y.apply_op2_no_bwd(&g, &SoftmaxBackward)?,
                // The CPU trains LayerNorm through train_layer_norm.rs; this composed path (GPU)
                // reaches the CPU only in the tests.
                WithGradient::Normalise { .. } => normalise_backward(&x, y, &g, self)?,
                WithGradient::Gelu => x.apply_op2_no_bwd(&g, &GeluBackward)?,
            };
            return Ok((Some(dx), None));
        }
        let dx = match *self {
            WithGradient::Softmax => {
                let dot = (g * y)?.sum_keepdim(D::Minus1)?;
                (y * g.broadcast_sub(&dot)?)?
            }
            WithGradient::Normalise { .. } => normalise_backward(x, y, g, self)?,
            WithGradient::Gelu => {
                let cdf = ((x / 2f64.sqrt())?.erf()? + 1.0)? * 0.5;
                let pdf = ((x.sqr()? * -0.5)?.exp()? * 0.398_942_280_401_432_7)?;
                (g * (cdf? + (x * pdf)?)?)?
            }
        };
        Ok((Some(dx), None))
    }
}

/// `dx = (g − mean(g) − y ⊙ mean(g ⊙ y)) / σ` in tensor ops (any device).
fn normalise_backward(x: &Tensor, y: &Tensor, g: &Tensor, op: &WithGradient) -> candle_core::Result<Tensor> {
    let WithGradient::Normalise { eps } = *op else { candle_core::bail!("normalise_backward: not a normalisation") };
    let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let rstd = (centred.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    let gy = (g * y)?.mean_keepdim(D::Minus1)?;
    let inner = g.broadcast_sub(&g.mean_keepdim(D::Minus1)?)?.sub(&y.broadcast_mul(&gy)?)?;
    inner.broadcast_mul(&rstd)
}

/// The CPU backward kernels: row-parallel over the last dimension (GELU: element-wise).
struct SoftmaxBackward;
struct GeluBackward;

/// Rows of the last dimension handed to one rayon task at least (attention rows are short).
const MIN_ROWS: usize = 16;

fn last_dim(l: &Layout) -> usize {
    l.dims().last().copied().unwrap_or(1).max(1)
}

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "softmax-backward"
    }

    fn cpu_fwd(&self, ys: &CpuStorage, ly: &Layout, gs: &CpuStorage, lg: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, g) = (contiguous_f32(ys, ly, self.name())?, contiguous_f32(gs, lg, self.name())?);
        let n = last_dim(ly);
        let mut dx = vec![0f32; y.len()];
        dx.par_chunks_mut(n).zip(y.par_chunks(n)).zip(g.par_chunks(n)).with_min_len(MIN_ROWS).for_each(|((d, y), g)| {
            fastmath::softmax_backward_row(d, y, g);
        });
        Ok((CpuStorage::F32(dx), ly.shape().clone()))
    }
}

impl CustomOp2 for GeluBackward {
    fn name(&self) -> &'static str {
        "gelu-backward"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, lx: &Layout, gs: &CpuStorage, lg: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = (contiguous_f32(xs, lx, self.name())?, contiguous_f32(gs, lg, self.name())?);
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(4096).zip(x.par_chunks(4096)).zip(g.par_chunks(4096)).for_each(|((d, x), g)| {
            fastmath::gelu_backward_slice(d, x, g);
        });
        Ok((CpuStorage::F32(dx), lx.shape().clone()))
    }
}

/// A fused kernel's output `y` for input `x`, wired to `x` with the right gradient.
fn attach(x: &Tensor, y: Tensor, op: WithGradient) -> Result<Tensor> {
    if !x.track_op() {
        return Ok(y);
    }
    Ok(x.apply_op2(&y.contiguous()?, op)?)
}

pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
    /// 1s and 0s of the weight's shape: the fused kernel without its affine part (training).
    ones: Tensor,
    zeros: Tensor,
}

impl LayerNorm {
    /// `LayerNorm.weight` / `LayerNorm.bias` of a checkpoint (`vb` already at `…LayerNorm`).
    pub fn load(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<Self> {
        let weight = vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?;
        let ones = weight.ones_like()?.detach();
        let zeros = weight.zeros_like()?.detach();
        Ok(LayerNorm { weight, bias, eps, ones, zeros })
    }

    /// Runs `f(γ, β, ε)` on the f32 weights (CPU; for kernels that normalise rows themselves).
    pub fn with_affine<R>(&self, f: impl FnOnce(&[f32], &[f32], f32) -> R) -> candle_core::Result<R> {
        super::fused::with_f32(&self.weight, |g| super::fused::with_f32(&self.bias, |b| f(g, b, self.eps as f32)))?
    }

    pub fn forward(&self, x: &Tensor, differentiable: bool) -> Result<Tensor> {
        let x = if x.is_contiguous() { x.clone() } else { x.contiguous()? };
        if !differentiable {
            return Ok(candle_nn::ops::layer_norm(&x, &self.weight, &self.bias, self.eps as f32)?);
        }
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            return Ok(super::train_layer_norm::forward(&x, &self.weight, &self.bias, self.eps)?);
        }
        self.forward_composed(&x)
    }

    /// Training off the CPU: the fused normalisation with its gradient attached, then the
    /// affine part in plain ops.
    fn forward_composed(&self, x: &Tensor) -> Result<Tensor> {
        // Normalise with the fused kernel (gradient attached), then the affine part with plain
        // ops so that the weight and bias get their gradients from candle.
        let y = candle_nn::ops::layer_norm(&x.detach(), &self.ones, &self.zeros, self.eps as f32)?;
        let normed = attach(x, y, WithGradient::Normalise { eps: self.eps })?;
        Ok(normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)?)
    }

    /// The textbook composition of primitive ops (the reference the tests compare against).
    #[cfg(test)]
    fn forward_primitive(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        Ok(normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)?)
    }
}

/// Softmax over the last dimension; differentiable when asked.
pub fn softmax_last_dim(x: &Tensor, differentiable: bool) -> Result<Tensor> {
    let x = if x.is_contiguous() { x.clone() } else { x.contiguous()? };
    let y = candle_nn::ops::softmax_last_dim(&x.detach())?;
    if !differentiable {
        return Ok(y);
    }
    attach(&x, y, WithGradient::Softmax)
}

/// Exact (erf) GELU; differentiable when asked. On the CPU both directions are one fused
/// parallel pass (forward: the inference kernel; backward: [`GeluBackward`]).
pub fn gelu_erf(x: &Tensor, differentiable: bool) -> Result<Tensor> {
    if !(x.device().is_cpu() && x.dtype() == DType::F32) {
        return Ok(x.gelu_erf()?);
    }
    let x = if x.is_contiguous() { x.clone() } else { x.contiguous()? };
    let y = x.detach().apply_op1_no_bwd(&fastmath::Gelu)?;
    if !differentiable {
        return Ok(y);
    }
    attach(&x, y, WithGradient::Gelu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use std::collections::HashMap;

    fn ln() -> LayerNorm {
        let d = Device::Cpu;
        let map = HashMap::from([
            ("weight".to_string(), Tensor::new(&[1.5f32, 0.5, 2.0, 1.0], &d).unwrap()),
            ("bias".to_string(), Tensor::new(&[0.1f32, -0.2, 0.0, 0.3], &d).unwrap()),
        ]);
        LayerNorm::load(4, 1e-5, VarBuilder::from_tensors(map, DType::F32, &d)).unwrap()
    }

    #[test]
    fn both_paths_compute_the_same_values() {
        let x = Tensor::new(&[[1f32, 2., 4., -1.], [0.5, 0.5, 3., 2.]], &Device::Cpu).unwrap();
        let fused: Vec<Vec<f32>> = ln().forward(&x, false).unwrap().to_vec2().unwrap();
        let train: Vec<Vec<f32>> = ln().forward(&x, true).unwrap().to_vec2().unwrap();
        let plain: Vec<Vec<f32>> = ln().forward_primitive(&x).unwrap().to_vec2().unwrap();
        for ((a, b), c) in fused.iter().flatten().zip(train.iter().flatten()).zip(plain.iter().flatten()) {
            assert!((a - b).abs() < 1e-5 && (a - c).abs() < 1e-5);
        }
        let s1: Vec<Vec<f32>> = softmax_last_dim(&x, false).unwrap().to_vec2().unwrap();
        let s2: Vec<Vec<f32>> = softmax_last_dim(&x, true).unwrap().to_vec2().unwrap();
        for (a, b) in s1.iter().flatten().zip(s2.iter().flatten()) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    /// The attached gradients (the CPU's fused backward kernels) equal what candle derives from
    /// the primitive composition — LayerNorm → GELU → softmax — for the input and for
    /// LayerNorm's weight and bias, on a [2, 3, 8] batch.
    #[test]
    fn attached_gradients_equal_primitive_ones() {
        use candle_nn::VarMap;
        let d = Device::Cpu;
        let x = Var::rand(-2f32, 2f32, (2, 3, 8), &d).unwrap();
        let probe = Tensor::rand(-1f32, 1f32, (2, 3, 8), &d).unwrap();
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &d);
        let norm = LayerNorm::load(8, 1e-12, vb).unwrap();
        for v in map.all_vars() {
            v.set(&Tensor::rand(0.5f32, 1.5f32, 8, &d).unwrap()).unwrap();
        }
        // The CPU's fused LayerNorm op, and the composed path the GPU takes.
        for composed in [false, true] {
            let loss = |fast: bool| {
                let y = match (fast, composed) {
                    (true, false) => norm.forward(x.as_tensor(), true).unwrap(),
                    (true, true) => norm.forward_composed(x.as_tensor()).unwrap(),
                    (false, _) => norm.forward_primitive(x.as_tensor()).unwrap(),
                };
                let y = if fast { gelu_erf(&(y * 2.0).unwrap(), true).unwrap() } else { (y * 2.0).unwrap().gelu_erf().unwrap() };
                let p = if fast { softmax_last_dim(&y, true).unwrap() } else { candle_nn::ops::softmax(&y, D::Minus1).unwrap() };
                (p * &probe).unwrap().sum_all().unwrap()
            };
            let (fast, slow) = (loss(true).backward().unwrap(), loss(false).backward().unwrap());
            let mut tensors = vec![x.as_tensor().clone()];
            tensors.extend(map.all_vars().iter().map(|v| v.as_tensor().clone()));
            for t in &tensors {
                let a: Vec<f32> = fast.get(t).unwrap().flatten_all().unwrap().to_vec1().unwrap();
                let b: Vec<f32> = slow.get(t).unwrap().flatten_all().unwrap().to_vec1().unwrap();
                for (u, v) in a.iter().zip(&b) {
                    assert!((u - v).abs() < 1e-4, "{u} vs {v} (composed: {composed})");
                }
            }
        }
    }

    /// The reason this module exists: gradients must flow through both, and match finite
    /// differences.
    #[test]
    fn gradients_flow_and_match_finite_differences() {
        let x0 = [0.3f32, -1.2, 2.0, 0.7];
        let x = Var::new(&x0, &Device::Cpu).unwrap();
        let w = Tensor::new(&[0.2f32, -0.4, 0.9, 0.1], &Device::Cpu).unwrap();
        let f = |t: &Tensor| -> Tensor {
            let y = ln().forward(&t.unsqueeze(0).unwrap(), true).unwrap();
            let y = gelu_erf(&(y * 1.5).unwrap(), true).unwrap();
            let p = softmax_last_dim(&y, true).unwrap();
            (p.squeeze(0).unwrap() * &w).unwrap().sum_all().unwrap()
        };
        let grads = f(x.as_tensor()).backward().unwrap();
        let g: Vec<f32> = grads.get(x.as_tensor()).expect("gradient reaches the input").to_vec1().unwrap();
        let h = 1e-3f32;
        for i in 0..4 {
            let mut up = x0;
            up[i] += h;
            let mut down = x0;
            down[i] -= h;
            let fu = f(&Tensor::new(&up, &Device::Cpu).unwrap()).to_scalar::<f32>().unwrap();
            let fd = f(&Tensor::new(&down, &Device::Cpu).unwrap()).to_scalar::<f32>().unwrap();
            let numeric = (fu - fd) / (2.0 * h);
            assert!((g[i] - numeric).abs() < 2e-3, "d/dx{i}: {} vs {numeric}", g[i]);
        }
        // GELU's backward kernel on its own, across the range where its derivative bends.
        let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.1).collect();
        let xv = Var::new(xs.as_slice(), &Device::Cpu).unwrap();
        let g = gelu_erf(xv.as_tensor(), true).unwrap().sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = g.get(xv.as_tensor()).unwrap().to_vec1().unwrap();
        for (k, &v) in xs.iter().enumerate() {
            // candle's own GELU in f64 as the reference function.
            let at = |u: f32| Tensor::new(&[u as f64], &Device::Cpu).unwrap().gelu_erf().unwrap().to_vec1::<f64>().unwrap()[0];
            let numeric = (at(v + h) - at(v - h)) / (2.0 * h as f64);
            assert!((g[k] as f64 - numeric).abs() < 1e-3, "GELU'({v}): {} vs {numeric}", g[k]);
        }
        // The fused kernels drop gradients silently, which is why training must not use them.
        let fused = ln().forward(&x.as_tensor().unsqueeze(0).unwrap(), false).unwrap().sum_all().unwrap();
        assert!(fused.backward().unwrap().get(x.as_tensor()).is_none());
    }
}
