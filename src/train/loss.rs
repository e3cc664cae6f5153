//! Classification losses over logits: cross-entropy, class re-weighted cross-entropy α(c), and
//! focal loss −α(c)(1−p)^γ log p. Written once; classify, relate and per-token tagging use them.

use candle_core::{DType, Tensor, D};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    Ce,
    Weighted,
    Focal,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Loss {
    pub kind: LossKind,
    /// α(c): class weights (weighted CE; optional for focal).
    pub alpha: Option<Vec<f32>>,
    pub gamma: f32,
}

/// Inverse-frequency class weights, normalised so that they average 1 over the examples:
/// α(c) = N / (C · n_c). Classes absent from the data get weight 0.
pub fn inverse_frequency(counts: &[usize]) -> Vec<f32> {
    let n: usize = counts.iter().sum();
    let c = counts.iter().filter(|&&k| k > 0).count().max(1);
    counts.iter().map(|&k| if k == 0 { 0.0 } else { n as f32 / (c as f32 * k as f32) }).collect()
}

impl Loss {
    /// Mean loss of `logits [n, C]` against `targets` (class ids); `mask` (optional, `[n]` of
    /// 0/1) leaves items out. Weighted CE is normalised by the total weight, as PyTorch's
    /// `CrossEntropyLoss(weight=…)` is; focal by the number of items.
    pub fn forward(&self, logits: &Tensor, targets: &[u32], mask: Option<&[f32]>) -> Result<Tensor> {
        let (n, c) = logits.dims2()?;
        if targets.len() != n {
            return Err(Error::Input(format!("{} targets for {n} rows", targets.len())));
        }
        if let Some(&bad) = targets.iter().find(|&&t| t as usize >= c) {
            return Err(Error::Input(format!("target class {bad} out of range 0..{c}")));
        }
        let dev = logits.device();
        let t = Tensor::new(targets, dev)?;
        let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?
            .gather(&t.unsqueeze(1)?, 1)?
            .squeeze(1)?;
        let ones = vec![1f32; n];
        let m = mask.unwrap_or(&ones);
        let alpha: Vec<f32> = match (&self.kind, &self.alpha) {
            (LossKind::Ce, _) | (LossKind::Focal, None) => m.to_vec(),
            (_, Some(a)) => targets.iter().zip(m).map(|(&t, &m)| a[t as usize] * m).collect(),
            (LossKind::Weighted, None) => return Err(Error::Input("weighted loss needs class weights".into())),
        };
        let w = Tensor::new(alpha.as_slice(), dev)?;
        let per_item = match self.kind {
            LossKind::Focal => {
                let p = logp.exp()?;
                let modulator = (1.0 - p)?.clamp(0.0, 1.0)?.powf(self.gamma as f64)?;
                (modulator * logp.neg()?)?
            }
            _ => logp.neg()?,
        };
        let total = (per_item * &w)?.sum_all()?;
        let norm = match self.kind {
            LossKind::Focal => m.iter().sum::<f32>(),
            _ => alpha.iter().sum::<f32>(),
        };
        Ok((total / norm.max(1e-12) as f64)?.to_dtype(DType::F32)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn logits() -> Tensor {
        Tensor::new(&[[2.0f32, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]], &Device::Cpu).unwrap()
    }

    fn log_p(row: &[f32], j: usize) -> f32 {
        let z: f32 = row.iter().map(|v| v.exp()).sum();
        (row[j].exp() / z).ln()
    }

    #[test]
    fn losses_match_their_formulas() {
        let rows = logits().to_vec2::<f32>().unwrap();
        let targets = [0u32, 2, 1];
        let lp: Vec<f32> = rows.iter().zip(&targets).map(|(r, &t)| log_p(r, t as usize)).collect();
        let get = |l: Loss, mask: Option<&[f32]>| l.forward(&logits(), &targets, mask).unwrap().to_scalar::<f32>().unwrap();

        let ce = get(Loss { kind: LossKind::Ce, alpha: None, gamma: 0.0 }, None);
        assert!((ce + lp.iter().sum::<f32>() / 3.0).abs() < 1e-5);

        let a = vec![1.0, 2.0, 0.5];
        let w = get(Loss { kind: LossKind::Weighted, alpha: Some(a.clone()), gamma: 0.0 }, None);
        let want = -(1.0 * lp[0] + 0.5 * lp[1] + 2.0 * lp[2]) / 3.5;
        assert!((w - want).abs() < 1e-5, "{w} vs {want}");

        let f = get(Loss { kind: LossKind::Focal, alpha: None, gamma: 2.0 }, None);
        let want = -lp.iter().map(|l| (1.0 - l.exp()).powi(2) * l).sum::<f32>() / 3.0;
        assert!((f - want).abs() < 1e-5, "{f} vs {want}");
        // γ = 0 is plain cross-entropy.
        let f0 = get(Loss { kind: LossKind::Focal, alpha: None, gamma: 0.0 }, None);
        assert!((f0 - ce).abs() < 1e-6);

        let masked = get(Loss { kind: LossKind::Ce, alpha: None, gamma: 0.0 }, Some(&[1.0, 0.0, 1.0]));
        assert!((masked + (lp[0] + lp[2]) / 2.0).abs() < 1e-5);
    }

    #[test]
    fn inverse_frequency_weights() {
        assert_eq!(inverse_frequency(&[30, 10, 0]), vec![40.0 / 60.0, 2.0, 0.0]);
    }
}
