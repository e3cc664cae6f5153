//! Turning a sequence of token states into one vector, with padding masked out.
//! Written once here for every head that pools (classify; relate's entity spans).

use candle_core::{DType, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// BERT's own pooler: [CLS] → dense → tanh.
    #[default]
    Pooler,
    /// The [CLS] state as is.
    Cls,
    /// Mean of the real tokens' states.
    Mean,
    /// Element-wise max over the real tokens' states.
    Max,
}

impl Pooling {
    /// Whether only the first position ([CLS]) is read, so that inference may run the last
    /// encoder layer on that position alone (`BertModel::forward_for_head`).
    pub fn reads_first_position_only(self) -> bool {
        matches!(self, Pooling::Pooler | Pooling::Cls)
    }
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pooler" => Ok(Pooling::Pooler),
            "cls" => Ok(Pooling::Cls),
            "mean" => Ok(Pooling::Mean),
            "max" => Ok(Pooling::Max),
            _ => Err(Error::Input(format!("unknown pooling {s:?} (pooler, cls, mean, max)"))),
        }
    }
}

/// `hidden [b, t, h]`, `mask [b, t]` (1 = count this token) → `[b, h]`; `pooler_output` is
/// the encoder's pooler result, used by `Pooling::Pooler`.
pub fn pool(pooling: Pooling, hidden: &Tensor, mask: &Tensor, pooler_output: Option<&Tensor>) -> Result<Tensor> {
    match pooling {
        Pooling::Pooler => match pooler_output {
            Some(p) => Ok(p.clone()),
            None => Err(Error::Weights("pooling \"pooler\" needs pooler.dense.* weights, which this checkpoint lacks".into())),
        },
        // contiguous: the head's matmul on CUDA needs it (batch > 1 makes this slice strided).
        Pooling::Cls => Ok(hidden.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?),
        Pooling::Mean => masked_mean(hidden, mask),
        Pooling::Max => masked_max(hidden, mask),
    }
}

/// Mean over positions where `mask` is 1. A row with no such position gives zeros.
pub fn masked_mean(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?;
    let sum = hidden.broadcast_mul(&m)?.sum(1)?;
    let count = m.sum(1)?.clamp(1.0, f64::INFINITY)?;
    Ok(sum.broadcast_div(&count)?)
}

/// Max over positions where `mask` is 1; masked positions can never win.
pub fn masked_max(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let keep = mask.to_dtype(DType::U8)?.unsqueeze(D::Minus1)?.broadcast_as(hidden.shape())?;
    let floor = Tensor::full(f32::MIN, hidden.shape(), hidden.device())?.to_dtype(hidden.dtype())?;
    Ok(keep.where_cond(hidden, &floor)?.max(1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn padding_never_counts() {
        let d = Device::Cpu;
        // Two rows; the second has one padded position holding a huge value.
        let h = Tensor::new(&[[[1f32, -2.], [3., 4.], [0., 0.]], [[-1., 5.], [2., -6.], [100., 100.]]], &d).unwrap();
        let m = Tensor::new(&[[1u32, 1, 0], [1, 1, 0]], &d).unwrap();
        assert_eq!(masked_mean(&h, &m).unwrap().to_vec2::<f32>().unwrap(), vec![vec![2., 1.], vec![0.5, -0.5]]);
        assert_eq!(masked_max(&h, &m).unwrap().to_vec2::<f32>().unwrap(), vec![vec![3., 4.], vec![2., 5.]]);
        let all_neg = Tensor::new(&[[[-3f32], [-1.], [0.]]], &d).unwrap();
        let m1 = Tensor::new(&[[1u32, 1, 0]], &d).unwrap();
        assert_eq!(masked_max(&all_neg, &m1).unwrap().to_vec2::<f32>().unwrap(), vec![vec![-1.]], "a padded 0 must not beat real negatives");
        assert_eq!(pool(Pooling::Cls, &h, &m, None).unwrap().to_vec2::<f32>().unwrap(), vec![vec![1., -2.], vec![-1., 5.]]);
        assert!(pool(Pooling::Pooler, &h, &m, None).is_err());
    }
}
