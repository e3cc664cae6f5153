//! Layer normalisation and softmax that train.
//!
//! candle-nn's fused `layer_norm` and `softmax_last_dim` kernels are fast but have no backward
//! pass: gradients stop at them without an error, which silently freezes everything below the
//! first LayerNorm. Training therefore runs the same fused kernels and attaches the analytic
//! gradient with a custom op ([`WithGradient`]): one fused pass forward and a few tensor ops
//! backward, instead of differentiating a chain of primitive ops (which cost ~2x the step).

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor, D};
use candle_nn::VarBuilder;

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
}

impl CustomOp2 for WithGradient {
    fn name(&self) -> &'static str {
        match self {
            WithGradient::Softmax => "softmax-with-gradient",
            WithGradient::Normalise { .. } => "normalise-with-gradient",
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
        let dx = match *self {
            WithGradient::Softmax => {
                let dot = (g * y)?.sum_keepdim(D::Minus1)?;
                (y * g.broadcast_sub(&dot)?)?
            }
            WithGradient::Normalise { eps } => {
                let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
                let rstd = (centred.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
                let gy = (g * y)?.mean_keepdim(D::Minus1)?;
                let inner = g.broadcast_sub(&g.mean_keepdim(D::Minus1)?)?.sub(&y.broadcast_mul(&gy)?)?;
                inner.broadcast_mul(&rstd)?
            }
        };
        Ok((Some(dx), None))
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

    pub fn forward(&self, x: &Tensor, differentiable: bool) -> Result<Tensor> {
        let x = if x.is_contiguous() { x.clone() } else { x.contiguous()? };
        if !differentiable {
            return Ok(candle_nn::ops::layer_norm(&x, &self.weight, &self.bias, self.eps as f32)?);
        }
        // Normalise with the fused kernel (gradient attached), then the affine part with plain
        // ops so that the weight and bias get their gradients from candle.
        let y = candle_nn::ops::layer_norm(&x.detach(), &self.ones, &self.zeros, self.eps as f32)?;
        let normed = attach(&x, y, WithGradient::Normalise { eps: self.eps })?;
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

    /// The attached gradients equal what candle derives from the primitive composition, for
    /// the input and for LayerNorm's weight and bias, on a [2, 3, 8] batch.
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
        let loss = |fast: bool| {
            let y = if fast { norm.forward(x.as_tensor(), true).unwrap() } else { norm.forward_primitive(x.as_tensor()).unwrap() };
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
                assert!((u - v).abs() < 1e-4, "{u} vs {v}");
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
        // The fused kernels drop gradients silently, which is why training must not use them.
        let fused = ln().forward(&x.as_tensor().unsqueeze(0).unwrap(), false).unwrap().sum_all().unwrap();
        assert!(fused.backward().unwrap().get(x.as_tensor()).is_none());
    }
}
