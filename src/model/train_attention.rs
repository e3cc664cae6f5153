//! Self-attention that trains, on the CPU, as one fused op with an analytic backward.
//!
//! Why: candle's composition (split heads, `q·kᵀ`, scale, mask, softmax, dropout, `p·v`, merge
//! heads) is ~5 % of a training step's FLOPs but took 1.0–1.2 s of a 3.6 s MiniLM step (batch
//! 16 × 128, 2 AMD cores): thousands of tiny batched gemm calls, transposing copies of Q, K and V
//! forward and back, and a full sweep of the `[b, heads, t, t]` scores per element-wise op and per
//! derivative of each. Here every (sequence, head) pair is one job on the pool, as in the
//! inference kernel (src/model/fused.rs): Q, K and V are read in place from the linear layers'
//! `[b, t, hidden]` output through strides, and the backward is written out by hand:
//!
//! ```text
//! S = scale · Q Kᵀ + bias    P = softmax(S)    P' = P ⊙ M (dropout)    O = P' V
//! dV = P'ᵀ dO    dP = (dO Vᵀ) ⊙ M    dS = P ⊙ (dP − rowsum(dP ⊙ P))
//! dQ = scale · dS K    dK = scale · dSᵀ Q
//! ```
//!
//! The forward keeps `P` (one `[t, t]` block per job, what candle's graph kept several copies
//! of); the dropout mask is drawn by [`Dropout`] from the step's generator in the same order and
//! layout as before, so runs and `--resume` stay deterministic. Tested against candle's own
//! derivative of the composition and against finite differences (below).

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::fastmath::{contiguous_f32, softmax_backward_row, softmax_with_bias};
use super::fused::{product, with_f32, SendPtr};

/// The op: `apply_op3(q, k, v)` with the key bias and dropout mask held here (no gradient flows
/// to them), and the forward's softmax kept for the backward.
pub struct TrainingAttention {
    heads: usize,
    /// `[b, t]` additive key bias (0 or the most negative f32).
    mask_bias: Vec<f32>,
    /// `[b, heads, t, t]` dropout multipliers (0 or 1/(1−p)); `None` without dropout.
    dropout: Option<Vec<f32>>,
    /// `[b, heads, t, t]` softmax of the forward.
    probs: Mutex<Vec<f32>>,
}

impl TrainingAttention {
    /// `softmax(q kᵀ/√d + bias) ⊙ mask · v` per head for `q`, `k`, `v` `[b, t, heads·d]`, with
    /// the gradient to all three. `dropout`, when given, has `b·heads·t·t` values.
    pub fn forward(q: &Tensor, k: &Tensor, v: &Tensor, mask_bias: &Tensor, heads: usize, dropout: Option<Vec<f32>>) -> candle_core::Result<Tensor> {
        let (b, t, hidden) = q.dims3()?;
        if k.dims() != q.dims() || v.dims() != q.dims() || mask_bias.elem_count() != b * t || heads == 0 || hidden % heads != 0 {
            candle_core::bail!(
                "attention: q {:?}, k {:?}, v {:?}, mask {:?}, {heads} heads do not fit together",
                q.dims(), k.dims(), v.dims(), mask_bias.dims()
            );
        }
        if dropout.as_ref().is_some_and(|m| m.len() != b * heads * t * t) {
            candle_core::bail!("attention: dropout mask has the wrong size");
        }
        let mask_bias = with_f32(mask_bias, |m| m.to_vec())?;
        let op = TrainingAttention { heads, mask_bias, dropout, probs: Mutex::new(Vec::new()) };
        let [q, k, v] = [q, k, v].map(|x| x.contiguous());
        q?.apply_op3(&k?, &v?, op)
    }

    fn shape(&self, l: &Layout) -> candle_core::Result<(usize, usize, usize, usize)> {
        let (b, t, hidden) = l.shape().dims3()?;
        Ok((b, t, hidden, hidden / self.heads))
    }
}

impl CustomOp3 for TrainingAttention {
    fn name(&self) -> &'static str {
        "training-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage, lq: &Layout,
        ks: &CpuStorage, lk: &Layout,
        vs: &CpuStorage, lv: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, t, hidden, d) = self.shape(lq)?;
        let (q, k, v) = (contiguous_f32(qs, lq, self.name())?, contiguous_f32(ks, lk, self.name())?, contiguous_f32(vs, lv, self.name())?);
        let scale = 1.0 / (d as f32).sqrt();
        let heads = self.heads;
        let mut out = vec![0f32; b * t * hidden];
        let mut probs = vec![0f32; b * heads * t * t];
        let (dst, saved) = (SendPtr(out.as_mut_ptr()), SendPtr(probs.as_mut_ptr()));
        (0..b * heads).into_par_iter().for_each_init(
            || vec![0f32; if self.dropout.is_some() { t * t } else { 0 }],
            |dropped, job| {
                let (dst, saved) = (dst, saved);
                let (batch, head) = (job / heads, job % heads);
                let at = batch * t * hidden + head * d;
                let key_bias = &self.mask_bias[batch * t..(batch + 1) * t];
                // Disjoint per job: this job's [t, t] block of the saved softmax.
                let p = unsafe { std::slice::from_raw_parts_mut(saved.0.add(job * t * t), t * t) };
                unsafe {
                    // S = scale · Q Kᵀ (Kᵀ through strides)
                    product(t, t, d, p.as_mut_ptr(), t, q[at..].as_ptr(), hidden, 1, k[at..].as_ptr(), 1, hidden, scale, false, Parallelism::None);
                }
                p.chunks_mut(t).for_each(|row| softmax_with_bias(row, key_bias));
                let p_used: &[f32] = match &self.dropout {
                    Some(mask) => {
                        let m = &mask[job * t * t..(job + 1) * t * t];
                        dropped.iter_mut().zip(p.iter()).zip(m).for_each(|((o, &pv), &mv)| *o = pv * mv);
                        dropped
                    }
                    None => p,
                };
                unsafe {
                    // O = P' V, into this head's columns of [b, t, hidden].
                    product(t, d, t, dst.0.add(at), hidden, p_used.as_ptr(), t, 1, v[at..].as_ptr(), hidden, 1, 1.0, false, Parallelism::None);
                }
            },
        );
        *self.probs.lock().unwrap_or_else(|e| e.into_inner()) = probs;
        Ok((CpuStorage::F32(out), lq.shape().clone()))
    }

    fn bwd(&self, q: &Tensor, k: &Tensor, v: &Tensor, _out: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, t, hidden) = q.dims3()?;
        let heads = self.heads;
        let d = hidden / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let probs = std::mem::take(&mut *self.probs.lock().unwrap_or_else(|e| e.into_inner()));
        if probs.len() != b * heads * t * t {
            candle_core::bail!("training-attention: backward without a forward (or run twice)");
        }
        let (mut dq, mut dk, mut dv) = (vec![0f32; b * t * hidden], vec![0f32; b * t * hidden], vec![0f32; b * t * hidden]);
        let (dq_ptr, dk_ptr, dv_ptr) = (SendPtr(dq.as_mut_ptr()), SendPtr(dk.as_mut_ptr()), SendPtr(dv.as_mut_ptr()));
        with_f32(q, |q| with_f32(k, |k| with_f32(v, |v| with_f32(grad, |g| {
            (0..b * heads).into_par_iter().for_each_init(
                || (vec![0f32; t * t], vec![0f32; t * t]),
                |(work, dp), job| {
                    let (dq_ptr, dk_ptr, dv_ptr) = (dq_ptr, dk_ptr, dv_ptr);
                    let at = (job / heads) * t * hidden + (job % heads) * d;
                    let p = &probs[job * t * t..(job + 1) * t * t];
                    let mask = self.dropout.as_ref().map(|m| &m[job * t * t..(job + 1) * t * t]);
                    let p_used: &[f32] = match mask {
                        Some(m) => {
                            work.iter_mut().zip(p).zip(m).for_each(|((o, &pv), &mv)| *o = pv * mv);
                            work
                        }
                        None => p,
                    };
                    unsafe {
                        // dV = P'ᵀ dO
                        product(t, d, t, dv_ptr.0.add(at), hidden, p_used.as_ptr(), 1, t, g[at..].as_ptr(), hidden, 1, 1.0, false, Parallelism::None);
                        // dP' = dO Vᵀ
                        product(t, t, d, dp.as_mut_ptr(), t, g[at..].as_ptr(), hidden, 1, v[at..].as_ptr(), 1, hidden, 1.0, false, Parallelism::None);
                    }
                    if let Some(m) = mask {
                        dp.iter_mut().zip(m).for_each(|(x, &mv)| *x *= mv);
                    }
                    // dS = P ⊙ (dP − rowsum(dP ⊙ P)), into `work` (P' is no longer needed).
                    work.chunks_mut(t).zip(p.chunks(t)).zip(dp.chunks(t)).for_each(|((ds, p), dp)| softmax_backward_row(ds, p, dp));
                    unsafe {
                        // dQ = scale · dS K;  dK = scale · dSᵀ Q
                        product(t, d, t, dq_ptr.0.add(at), hidden, work.as_ptr(), t, 1, k[at..].as_ptr(), hidden, 1, scale, false, Parallelism::None);
                        product(t, d, t, dk_ptr.0.add(at), hidden, work.as_ptr(), 1, t, q[at..].as_ptr(), hidden, 1, scale, false, Parallelism::None);
                    }
                },
            )
        }))))????;
        let dev = q.device();
        let wrap = |x: Vec<f32>| Tensor::from_vec(x, (b, t, hidden), dev).map(Some);
        Ok((wrap(dq)?, wrap(dk)?, wrap(dv)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    /// The textbook composition candle differentiates.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor, heads: usize, mask: Option<&Tensor>) -> Tensor {
        let (b, t, hidden) = q.dims3().unwrap();
        let d = hidden / heads;
        let split = |x: &Tensor| x.reshape((b, t, heads, d)).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
        let scores = (split(q).matmul(&split(k).t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
        let scores = scores.broadcast_add(&bias.reshape((b, 1, 1, t)).unwrap()).unwrap();
        let mut probs = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
        if let Some(m) = mask {
            probs = probs.mul(m).unwrap();
        }
        probs.matmul(&split(v)).unwrap().transpose(1, 2).unwrap().reshape((b, t, hidden)).unwrap()
    }

    struct Case {
        q: Var,
        k: Var,
        v: Var,
        bias: Tensor,
        mask: Vec<f32>,
        weights: Tensor,
        heads: usize,
    }

    fn case() -> Case {
        let dev = Device::Cpu;
        let (b, t, heads, d) = (2, 7, 3, 4);
        let var = || Var::from_tensor(&Tensor::randn(0f32, 1., (b, t, heads * d), &dev).unwrap()).unwrap();
        // The second sequence has 3 padded keys.
        let bias = (0..b * t).map(|i| if i >= t + 4 { f32::MIN } else { 0.0 }).collect::<Vec<_>>();
        let mask = (0..b * heads * t * t).map(|i| if (i * 7919) % 10 < 2 { 0.0 } else { 1.25 }).collect();
        Case {
            q: var(),
            k: var(),
            v: var(),
            bias: Tensor::from_vec(bias, (b, t), &dev).unwrap(),
            mask,
            weights: Tensor::randn(0f32, 1., (b, t, heads * d), &dev).unwrap(),
            heads,
        }
    }

    #[test]
    fn forward_and_gradients_equal_candles() {
        let c = case();
        let (b, t, _) = c.q.dims3().unwrap();
        for with_dropout in [false, true] {
            let dropout = with_dropout.then(|| c.mask.clone());
            let mask_t = with_dropout.then(|| Tensor::from_vec(c.mask.clone(), (b, c.heads, t, t), &Device::Cpu).unwrap());
            let got = TrainingAttention::forward(&c.q, &c.k, &c.v, &c.bias, c.heads, dropout).unwrap();
            let want = reference(&c.q, &c.k, &c.v, &c.bias, c.heads, mask_t.as_ref());
            assert!(max_diff(&got, &want) < 1e-5, "forward |Δ| {}", max_diff(&got, &want));

            let got_grads = (got * &c.weights).unwrap().sum_all().unwrap().backward().unwrap();
            let want_grads = (want * &c.weights).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, x) in [("q", &c.q), ("k", &c.k), ("v", &c.v)] {
                let (g, w) = (got_grads.get(x).unwrap(), want_grads.get(x).unwrap());
                assert!(max_diff(g, w) < 1e-5, "d{name} (dropout {with_dropout}) |Δ| {}", max_diff(g, w));
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let c = case();
        let loss = |q: &Tensor, k: &Tensor, v: &Tensor| -> f64 {
            let out = TrainingAttention::forward(q, k, v, &c.bias, c.heads, Some(c.mask.clone())).unwrap();
            (out * &c.weights).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64
        };
        let out = TrainingAttention::forward(&c.q, &c.k, &c.v, &c.bias, c.heads, Some(c.mask.clone())).unwrap();
        let grads = (out * &c.weights).unwrap().sum_all().unwrap().backward().unwrap();
        let eps = 1e-2f32;
        for which in 0..3 {
            let x = [&c.q, &c.k, &c.v][which];
            let analytic: Vec<f32> = grads.get(x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let base: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
            for i in (0..base.len()).step_by(13) {
                let shifted = |delta: f32| {
                    let mut moved = base.clone();
                    moved[i] += delta;
                    let moved = Tensor::from_vec(moved, x.shape(), &Device::Cpu).unwrap();
                    let mut args = [c.q.as_tensor().clone(), c.k.as_tensor().clone(), c.v.as_tensor().clone()];
                    args[which] = moved;
                    loss(&args[0], &args[1], &args[2])
                };
                let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * eps as f64);
                let a = analytic[i] as f64;
                assert!((numeric - a).abs() < 2e-2 * (1.0 + a.abs()), "arg {which} element {i}: analytic {a}, numeric {numeric}");
            }
        }
    }

    #[test]
    fn misfitting_shapes_are_errors() {
        let c = case();
        assert!(TrainingAttention::forward(&c.q, &c.k, &c.v, &c.bias, 5, None).is_err());
        assert!(TrainingAttention::forward(&c.q, &c.k, &c.v, &c.bias, c.heads, Some(vec![1.0; 3])).is_err());
    }
}
