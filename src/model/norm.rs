//! Layer normalisation and softmax that train.
//!
//! candle-nn's fused `layer_norm` and `softmax_last_dim` kernels are fast but have no backward
//! pass: gradients stop at them without an error, which silently freezes everything below the
//! first LayerNorm. Inference keeps the fused kernels; training (`differentiable`) composes the
//! same maths from primitive tensor ops, which candle differentiates.

use candle_core::{Tensor, D};
use candle_nn::VarBuilder;

use crate::Result;

pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// `LayerNorm.weight` / `LayerNorm.bias` of a checkpoint (`vb` already at `…LayerNorm`).
    pub fn load(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<Self> {
        let weight = vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?;
        Ok(LayerNorm { weight, bias, eps })
    }

    pub fn forward(&self, x: &Tensor, differentiable: bool) -> Result<Tensor> {
        if !differentiable && x.is_contiguous() {
            return Ok(candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps as f32)?);
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        Ok(normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)?)
    }
}

/// Softmax over the last dimension; differentiable when asked.
pub fn softmax_last_dim(x: &Tensor, differentiable: bool) -> Result<Tensor> {
    if differentiable {
        Ok(candle_nn::ops::softmax(x, D::Minus1)?)
    } else {
        Ok(candle_nn::ops::softmax_last_dim(x)?)
    }
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
        let plain: Vec<Vec<f32>> = ln().forward(&x, true).unwrap().to_vec2().unwrap();
        for (a, b) in fused.iter().flatten().zip(plain.iter().flatten()) {
            assert!((a - b).abs() < 1e-5);
        }
        let s1: Vec<Vec<f32>> = softmax_last_dim(&x, false).unwrap().to_vec2().unwrap();
        let s2: Vec<Vec<f32>> = softmax_last_dim(&x, true).unwrap().to_vec2().unwrap();
        for (a, b) in s1.iter().flatten().zip(s2.iter().flatten()) {
            assert!((a - b).abs() < 1e-6);
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
