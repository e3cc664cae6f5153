//! A linear layer that trains, on the CPU, as one op with a hand-written backward.
//!
//! Why: candle-nn's `Linear` on a `[b, t, in]` input broadcasts the weight to `[b, out, in]` and
//! runs `b` batched matmuls of `t` rows each. Its backward then produces `b` copies of the weight
//! gradient and sums them over the batch (a strided, single-threaded reduction), and the bias'
//! broadcast add is undone by a second such reduction: together ~10 % of a MiniLM training step
//! (16 × 128, 2 AMD cores) went to those sums, plus small-gemm overhead. Here the input is seen
//! as one `[rows, in]` matrix, and
//!
//! ```text
//! y = x Wᵀ + b      dx = dy W      dW = dyᵀ x      db = Σ_rows dy
//! ```
//!
//! are three full-size gemm calls on the pool (bias inside the forward gemm, as in inference)
//! and a row-parallel column sum. Tested against candle's derivative of `Linear` and against
//! finite differences (below).

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::fastmath::contiguous_f32;
use super::fused::{parallelism, product, with_f32};

/// The op: `apply_op3(x, weight, bias)` with `x` `[..., in]`, `weight` `[out, in]`, `bias` `[out]`.
struct TrainingLinear;

/// `x Wᵀ + b` with gradients to all three (CPU, f32).
pub fn forward(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let (out_dim, in_dim) = weight.dims2()?;
    if x.dims().last() != Some(&in_dim) || bias.dims() != [out_dim] {
        candle_core::bail!("linear: input {:?}, weight {:?} and bias {:?} do not fit together", x.dims(), weight.dims(), bias.dims());
    }
    x.apply_op3(weight, bias, TrainingLinear)
}

impl CustomOp3 for TrainingLinear {
    fn name(&self) -> &'static str {
        "training-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage, lx: &Layout,
        ws: &CpuStorage, lw: &Layout,
        bs: &CpuStorage, lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w, b) = (contiguous_f32(xs, lx, self.name())?, contiguous_f32(ws, lw, self.name())?, contiguous_f32(bs, lb, self.name())?);
        let (out_dim, in_dim) = lw.shape().dims2()?;
        let rows = x.len() / in_dim.max(1);
        let mut out = Vec::with_capacity(rows * out_dim);
        (0..rows).for_each(|_| out.extend_from_slice(b));
        unsafe {
            // out += x · Wᵀ (Wᵀ through strides)
            product(rows, out_dim, in_dim, out.as_mut_ptr(), out_dim, x.as_ptr(), in_dim, 1, w.as_ptr(), 1, in_dim, 1.0, true, parallelism());
        }
        let mut shape = lx.shape().dims().to_vec();
        *shape.last_mut().unwrap() = out_dim;
        Ok((CpuStorage::F32(out), shape.into()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, _y: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (out_dim, in_dim) = w.dims2()?;
        let rows = x.elem_count() / in_dim.max(1);
        let (mut dx, mut dw) = (vec![0f32; rows * in_dim], vec![0f32; out_dim * in_dim]);
        let db = with_f32(x, |x| with_f32(w, |w| with_f32(grad, |g| {
            unsafe {
                // dx = dy · W
                product(rows, in_dim, out_dim, dx.as_mut_ptr(), in_dim, g.as_ptr(), out_dim, 1, w.as_ptr(), in_dim, 1, 1.0, false, parallelism());
                // dW = dyᵀ · x
                product(out_dim, in_dim, rows, dw.as_mut_ptr(), in_dim, g.as_ptr(), 1, out_dim, x.as_ptr(), in_dim, 1, 1.0, false, parallelism());
            }
            column_sums(g, out_dim)
        })))???;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, (out_dim, in_dim), dev)?),
            Some(Tensor::from_vec(db, out_dim, dev)?),
        ))
    }
}

/// Σ over rows of a row-major `[rows, cols]` matrix: blocks of rows summed in parallel, then
/// the blocks' sums added in order (not with rayon's `reduce`, whose tree follows work stealing:
/// the sum would change by an ulp from run to run, and `--resume` would not be bit for bit).
fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    let add = |mut acc: Vec<f32>, row: &[f32]| {
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
        acc
    };
    let blocks: Vec<Vec<f32>> = m.par_chunks(cols * 64).map(|block| block.chunks(cols).fold(vec![0f32; cols], add)).collect();
    blocks.iter().fold(vec![0f32; cols], |a, b| add(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    fn vars() -> (Var, Var, Var, Tensor) {
        let dev = Device::Cpu;
        // 3 × 70 rows: more than one block of the column sum.
        let var = |shape: &[usize]| Var::from_tensor(&Tensor::randn(0f32, 1., shape, &dev).unwrap()).unwrap();
        (var(&[3, 70, 5]), var(&[4, 5]), var(&[4]), Tensor::randn(0f32, 1., (3, 70, 4), &dev).unwrap())
    }

    #[test]
    fn forward_and_gradients_equal_candles_linear() {
        let (x, w, b, weights) = vars();
        let got = forward(&x, &w, &b).unwrap();
        let want = candle_nn::Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone())).forward(&x).unwrap();
        assert!(max_diff(&got, &want) < 1e-5);
        let got_grads = (got * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let want_grads = (want * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [("x", &x), ("weight", &w), ("bias", &b)] {
            let (g, e) = (got_grads.get(v).unwrap(), want_grads.get(v).unwrap());
            assert!(max_diff(g, e) < 1e-4, "d{name} |Δ| {}", max_diff(g, e));
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (x, w, b, weights) = vars();
        let args = [x.as_tensor().clone(), w.as_tensor().clone(), b.as_tensor().clone()];
        let loss = |a: &[Tensor; 3]| -> f64 {
            (forward(&a[0], &a[1], &a[2]).unwrap() * &weights).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64
        };
        let grads = (forward(&x, &w, &b).unwrap() * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let eps = 1e-2f32;
        for (which, v) in [&x, &w, &b].into_iter().enumerate() {
            let analytic: Vec<f32> = grads.get(v).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let base: Vec<f32> = v.flatten_all().unwrap().to_vec1().unwrap();
            for i in (0..base.len()).step_by(7) {
                let shifted = |delta: f32| {
                    let mut moved = base.clone();
                    moved[i] += delta;
                    let mut a = args.clone();
                    a[which] = Tensor::from_vec(moved, v.shape(), &Device::Cpu).unwrap();
                    loss(&a)
                };
                let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * eps as f64);
                let a = analytic[i] as f64;
                assert!((numeric - a).abs() < 2e-2 * (1.0 + a.abs()), "arg {which} element {i}: analytic {a}, numeric {numeric}");
            }
        }
    }

    #[test]
    fn misfitting_shapes_are_errors() {
        let (x, w, b, _) = vars();
        assert!(forward(&x, &w.t().unwrap(), &b).is_err());
        assert!(forward(&x, &w, &w).is_err());
    }
}
