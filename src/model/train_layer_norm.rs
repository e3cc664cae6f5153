//! LayerNorm with its affine part, training on the CPU as one op with a hand-written backward.
//!
//! Why: composed as `normalise(x) · γ + β` with broadcasting, candle's backward spends two
//! strided single-threaded reductions over all rows (for dγ and dβ), two extra sweeps for the
//! broadcast product and sum, and a zeroed buffer plus an add per edge of the graph. Here, per
//! row (rows in parallel blocks):
//!
//! ```text
//! x̂ = (x − μ) / σ      y = x̂ ⊙ γ + β
//! dx = normalise′(g ⊙ γ)      dγ = Σ_rows g ⊙ x̂      dβ = Σ_rows g
//! ```
//!
//! with `normalise′` the row kernel the plain normalisation already uses (fastmath.rs). `x̂` is
//! kept from the forward for the backward. Tested against the primitive composition and finite
//! differences in norm.rs.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::fastmath::{self, contiguous_f32};
use super::fused::with_f32;

/// Rows per parallel block: enough work per task, partial dγ/dβ sums stay few.
const BLOCK_ROWS: usize = 32;

/// The op: `apply_op3(x, γ, β)`, normalising over the last dimension.
struct TrainingLayerNorm {
    eps: f32,
    /// `x̂` of the forward.
    normed: Mutex<Vec<f32>>,
}

/// `LayerNorm(x) · γ + β` over the last dimension, with gradients to all three (CPU, f32).
pub(super) fn forward(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let n = x.dims().last().copied().unwrap_or(0);
    if n == 0 || gamma.dims() != [n] || beta.dims() != [n] {
        candle_core::bail!("layer norm: input {:?}, weight {:?} and bias {:?} do not fit together", x.dims(), gamma.dims(), beta.dims());
    }
    x.contiguous()?.apply_op3(gamma, beta, TrainingLayerNorm { eps: eps as f32, normed: Mutex::new(Vec::new()) })
}

impl CustomOp3 for TrainingLayerNorm {
    fn name(&self) -> &'static str {
        "training-layer-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage, lx: &Layout,
        gs: &CpuStorage, lg: &Layout,
        bs: &CpuStorage, lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, gamma, beta) = (contiguous_f32(xs, lx, self.name())?, contiguous_f32(gs, lg, self.name())?, contiguous_f32(bs, lb, self.name())?);
        let n = gamma.len();
        let (mut out, mut normed) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        out.par_chunks_mut(n).zip(normed.par_chunks_mut(n)).zip(x.par_chunks(n)).with_min_len(BLOCK_ROWS).for_each(|((y, xh), x)| {
            // Two passes (centre, then square): no cancellation for large means (candle's kernel is
            // one pass, E[x²] − E[x]²).
            let mean = fastmath::sum(x) / n as f32;
            xh.iter_mut().zip(x).for_each(|(c, &v)| *c = v - mean);
            let rstd = 1.0 / (fastmath::dot(xh, xh) / n as f32 + self.eps).sqrt();
            for (((o, c), &g), &b) in y.iter_mut().zip(xh.iter_mut()).zip(gamma).zip(beta) {
                *c *= rstd;
                *o = *c * g + b;
            }
        });
        *self.normed.lock().unwrap_or_else(|e| e.into_inner()) = normed;
        Ok((CpuStorage::F32(out), lx.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, gamma: &Tensor, _beta: &Tensor, _y: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let normed = std::mem::take(&mut *self.normed.lock().unwrap_or_else(|e| e.into_inner()));
        if normed.len() != x.elem_count() {
            candle_core::bail!("training-layer-norm: backward without a forward (or run twice)");
        }
        let n = gamma.elem_count();
        let mut dx = vec![0f32; x.elem_count()];
        let (dgamma, dbeta) = with_f32(x, |x| with_f32(gamma, |gamma| with_f32(grad, |g| {
            dx.par_chunks_mut(n * BLOCK_ROWS)
                .zip(x.par_chunks(n * BLOCK_ROWS))
                .zip(normed.par_chunks(n * BLOCK_ROWS).zip(g.par_chunks(n * BLOCK_ROWS)))
                .map(|((dx, x), (xh, g))| {
                    let (mut dgamma, mut dbeta, mut scaled) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
                    for (((dx, x), xh), g) in dx.chunks_mut(n).zip(x.chunks(n)).zip(xh.chunks(n)).zip(g.chunks(n)) {
                        for i in 0..n {
                            scaled[i] = g[i] * gamma[i];
                            dgamma[i] += g[i] * xh[i];
                            dbeta[i] += g[i];
                        }
                        fastmath::normalise_backward_row(dx, x, xh, &scaled, self.eps);
                    }
                    (dgamma, dbeta)
                })
                // Blocks' sums collected in order and added in order: rayon's `reduce` adds them
                // in a tree shaped by work stealing, which made the sums (and `--resume`) differ
                // by an ulp from run to run.
                .collect::<Vec<_>>()
                .into_iter()
                .fold((vec![0f32; n], vec![0f32; n]), |(mut a, mut b), (c, d)| {
                    a.iter_mut().zip(&c).for_each(|(a, c)| *a += c);
                    b.iter_mut().zip(&d).for_each(|(b, d)| *b += d);
                    (a, b)
                })
        })))???;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dgamma, n, dev)?),
            Some(Tensor::from_vec(dbeta, n, dev)?),
        ))
    }
}
