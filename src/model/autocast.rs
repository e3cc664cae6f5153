//! Mixed precision for training on a GPU, the way `torch.autocast(dtype=torch.bfloat16)` does
//! it: the encoder's matrix products (linear layers and both attention products) run in bf16,
//! everything else (softmax, LayerNorm, GELU, the loss), the weights and the optimizer state stay
//! f32. The casts are ordinary differentiable ops, so gradients reach the f32 weights.
//!
//! Process-wide, like autocast's thread-local state: the trainer sets it once from
//! `--precision`. It never applies on the CPU (where bf16 products are not faster), so inference
//! and CPU training are unaffected.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(crate::Error::Input(format!("unknown precision {other:?} (use f32 or bf16)"))),
        }
    }
}

static BF16_PRODUCTS: AtomicBool = AtomicBool::new(false);

pub fn set(precision: Precision) {
    BF16_PRODUCTS.store(precision == Precision::Bf16, Ordering::Relaxed);
}

/// `a · b`, in bf16 when autocast is on and the operands are off the CPU; the result is f32.
pub fn matmul(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    if BF16_PRODUCTS.load(Ordering::Relaxed) && !a.device().is_cpu() && a.dtype() == DType::F32 {
        return a.to_dtype(DType::BF16)?.matmul(&b.to_dtype(DType::BF16)?)?.to_dtype(DType::F32);
    }
    a.matmul(b)
}

/// `x Wᵀ + b` off the CPU with the input seen as one `[rows, in]` matrix: one product forward,
/// one per gradient backward. candle-nn's `Linear` broadcasts the weight over the batch instead,
/// whose backward materialises a weight gradient per batch row and sums them.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let in_dim = weight.dim(1)?;
    let mut dims = x.dims().to_vec();
    let rows = x.elem_count() / in_dim.max(1);
    let y = matmul(&x.reshape((rows, in_dim))?, &weight.t()?)?;
    let y = match bias {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    *dims.last_mut().unwrap() = weight.dim(0)?;
    y.reshape(dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module, Var};

    /// The 2-D formulation gives candle-nn's values and gradients (f32, CPU: autocast is off there).
    #[test]
    fn linear_equals_candle_nn() {
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (2, 3, 4), &d).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1., (5, 4), &d).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 1., 5, &d).unwrap()).unwrap();
        let ours = linear(x.as_tensor(), w.as_tensor(), Some(b.as_tensor())).unwrap();
        let theirs = candle_nn::Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone())).forward(x.as_tensor()).unwrap();
        let diff = |a: &Tensor, b: &Tensor| a.sub(b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(ours.dims(), &[2, 3, 5]);
        assert!(diff(&ours, &theirs) < 1e-5);
        let weights = Tensor::randn(0f32, 1., (2, 3, 5), &d).unwrap();
        let g1 = (ours * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (theirs * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w, &b] {
            assert!(diff(g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap()) < 1e-5);
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert!("fp8".parse::<Precision>().unwrap_err().to_string().contains("fp8"));
    }
}
