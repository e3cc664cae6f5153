//! Inference kernels for the two element-wise functions that dominate after the matmuls
//! (`perf`, 1 × 512: scalar `expf` 13 %, scalar `erff` 10 %): softmax over a row (used by the
//! fused attention, src/model/fused.rs) and exact (erf) GELU, written as branch-free polynomials
//! that the compiler vectorises (AVX on x86, simd128 on wasm32). Accurate to a few f32 ulps, so parity with PyTorch holds (tests
//! below and tests/encoder_parity.rs). CPU + f32 only; anything else takes candle's kernels.
//! The backward kernels of training's fused ops (GELU, softmax, LayerNorm; wired up in
//! src/model/norm.rs) live here too, with the same vectorised exp/erf.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// The constants of [`exp`] and [`erf`] as one value, so that a slice kernel can read them once
/// through [`opaque`] before its loop.
#[derive(Clone, Copy)]
pub struct Constants {
    clamp: [f32; 2],
    magic: f32,
    log2_e: f32,
    ln2: [f32; 2],
    exp_poly: [f32; 6],
    exponent_bias: f32,
    one: f32,
    half: f32,
    frac_1_sqrt_2: f32,
    erf_p: f32,
    erf_poly: [f32; 5],
    erf28: [f32; 6],
}

const CONSTANTS: Constants = Constants {
    clamp: [-87.3, 88.7],
    magic: 12_582_912.0, // 1.5 · 2²³
    log2_e: std::f32::consts::LOG2_E,
    ln2: [0.693_359_4, 2.121_944_4e-4], // ln 2 = first − second, split for exact n·ln2
    exp_poly: [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5],
    exponent_bias: 127.0,
    one: 1.0,
    half: 0.5,
    frac_1_sqrt_2: std::f32::consts::FRAC_1_SQRT_2,
    erf_p: 0.327_591_1,
    erf_poly: [1.061_405_4, -1.453_152_1, 1.421_413_7, -0.284_496_74, 0.254_829_6],
    erf28: [0.070_523_08, 0.042_282_01, 0.009_270_527, 0.000_152_014_3, 0.000_276_567_2, 0.000_043_063_8],
};

/// [`CONSTANTS`] as values the optimiser cannot see, in wasm builds; called once per slice,
/// before the loop. A constant the compiler can see becomes a `v128.const` at each use inside
/// the vectorised loop, and V8 builds each one anew every iteration (a scalar move and two
/// shuffles; 24 of them per four GELUs). Opaque, they are splatted once before the loop and stay
/// in registers or on the stack: GELU 6.4 → 4.7 ms per 128-token text in Chromium (q8 MiniLM,
/// AMD EPYC, V8's profiler). Natively compilers keep vector constants in memory operands anyway.
#[inline(always)]
fn opaque() -> Constants {
    #[cfg(target_arch = "wasm32")]
    return core::hint::black_box(CONSTANTS);
    #[cfg(not(target_arch = "wasm32"))]
    CONSTANTS
}

/// e^x, Cephes' `expf` polynomial after range reduction x = n·ln2 + r (max rel. error ~2 ulp).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_with(x, &CONSTANTS)
}

#[inline(always)]
fn exp_with(x: f32, k: &Constants) -> f32 {
    let x = x.clamp(k.clamp[0], k.clamp[1]);
    // Round to nearest with the 1.5·2^23 trick (plain adds vectorise; `floor` is a libm call
    // without SSE4.1).
    let shifted = x * k.log2_e + k.magic;
    let n = shifted - k.magic;
    let r = x - n * k.ln2[0] + n * k.ln2[1];
    let c = &k.exp_poly;
    let p = ((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5];
    let y = p * r * r + r + k.one;
    // 2^n without a float → int conversion (Rust's saturating `as i32` does not vectorise): the
    // low mantissa bits of `shifted + 127` hold n + 127 ∈ [1, 255]; shifting them into the
    // exponent field drops everything above.
    y * f32::from_bits((shifted + k.exponent_bias).to_bits() << 23)
}

/// erf(x), Abramowitz & Stegun 7.1.26 (max abs. error 1.5e-7 in exact arithmetic; < 1e-6 in f32,
/// from cancellation in `1 - poly·e^(-x²)` near 0 — a GELU error below 1e-6·|x|).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    erf_with(x, &CONSTANTS)
}

#[inline(always)]
fn erf_with(x: f32, k: &Constants) -> f32 {
    let a = x.abs();
    let t = k.one / (k.one + k.erf_p * a);
    let c = &k.erf_poly;
    let poly = ((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t;
    let y = k.one - poly * exp_with(-a * a, k);
    y.copysign(x)
}

#[inline(always)]
fn gelu_with(x: f32, k: &Constants) -> f32 {
    k.half * x * (k.one + erf_no_exp(x * k.frac_1_sqrt_2, k))
}

/// erf(x) for GELU, Abramowitz & Stegun 7.1.28: `1 − 1 / (1 + a₁x + … + a₆x⁶)¹⁶` — a polynomial,
/// four squarings and one division, no exp: half the instructions of [`erf`] (7.1.26, whose
/// `e^(−x²)` alone is ~20). GELU in Chromium, q8 MiniLM 1 × 128, V8's profiler, AMD EPYC: 3.9 →
/// 1.8 ms per text. Max abs. error 3e-7 in exact arithmetic, 1.3e-6 in f32 (the base's rounding
/// raised to the 16th power); GELU's error is half that times |x|. Large |x| overflows the power
/// to ∞, which gives exactly ±1.
#[inline(always)]
fn erf_no_exp(x: f32, k: &Constants) -> f32 {
    let a = x.abs();
    let c = &k.erf28;
    let p = (((((c[5] * a + c[4]) * a + c[3]) * a + c[2]) * a + c[1]) * a + c[0]) * a + k.one;
    let p2 = p * p;
    let p4 = p2 * p2;
    let p8 = p4 * p4;
    let y = k.one - k.one / (p8 * p8);
    y.copysign(x)
}

pub(crate) struct Gelu;

pub(crate) fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout, name: &str) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{name}: needs a contiguous f32 tensor"),
    }
}

/// The same, writable (in-place ops; training only, which the wasm build leaves out).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn contiguous_f32_mut<'a>(s: &'a mut CpuStorage, l: &Layout, name: &str) -> candle_core::Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => candle_core::bail!("{name}: needs a contiguous f32 tensor"),
    }
}

/// Lanes of the reductions below: independent accumulators let the compiler keep them in one
/// vector register (a single running `f32` would force strict left-to-right order, i.e. scalar code).
const LANES: usize = 8;

/// Sum, in `LANES` interleaved partial sums.
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    tail.iter().chain(&acc).sum()
}

/// Dot product, in `LANES` interleaved partial sums.
#[inline(always)]
pub fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (cx, cy) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let tail: f32 = cx.remainder().iter().zip(cy.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in cx.zip(cy) {
        for ((s, &u), &v) in acc.iter_mut().zip(a).zip(b) {
            *s += u * v;
        }
    }
    tail + acc.iter().sum::<f32>()
}

/// `pub fn $name(args)` that runs `$body` compiled for AVX-512 or AVX2, whichever the CPU has.
/// x86-64 builds target the SSE2 baseline (4 lanes); with AVX2 the same loops vectorise 8 wide,
/// with AVX-512 16 wide (half the instructions again: native q8 at 1 × 128 and 8 × 128 tokens
/// 4–6 % faster on an AMD EPYC Zen 4, BENCHMARKS.md). Floating-point results are identical every
/// way (no FMA contraction: Rust does not fuse `a * b + c`; reductions keep [`LANES`] partial sums).
macro_rules! wide_simd {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? => $body:ident) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the CPU has these features (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(super) use wide_simd;

wide_simd! {
    /// `row ← softmax(row + bias)`.
    pub fn softmax_with_bias(row: &mut [f32], bias: &[f32]) => softmax_with_bias_body
}

wide_simd! {
    /// `row ← exp(row + bias − max(row + bias))`, returning the new row's sum: softmax without
    /// its last pass, for attention, which divides each query's d outputs by the sum instead of
    /// its t probabilities (fused.rs).
    pub fn exp_with_bias(row: &mut [f32], bias: &[f32]) -> f32 => exp_with_bias_body
}

wide_simd! {
    /// `x[i] ← GELU(x[i])` in place (the q8 FFN product's epilogue, on each thread's strip).
    pub fn gelu_in_place(x: &mut [f32]) => gelu_in_place_body
}

wide_simd! {
    /// `row ← LayerNorm(row) · γ + β` in place, in two passes as the training forward
    /// (`train_layer_norm.rs`): centre, then square. candle's kernel takes E[x²] − E[x]² in one
    /// pass, which cancels when the mean is large against the spread (test below). The sums run
    /// in [`LANES`] fixed partial sums, so AVX2 and the baseline give the same bits.
    pub fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) => layer_norm_row_body
}

#[inline(always)]
fn layer_norm_row_body(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    row.iter_mut().for_each(|v| *v -= mean);
    let rstd = 1.0 / (dot(row, row) / n + eps).sqrt();
    for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = *v * rstd * g + b;
    }
}

wide_simd! {
    /// `dx[i] = g[i] · GELU'(x[i])`, GELU'(x) = Φ(x) + x·φ(x) (exact, erf form).
    pub fn gelu_backward_slice(dx: &mut [f32], x: &[f32], g: &[f32]) => gelu_backward_body
}

wide_simd! {
    /// Softmax backward over one row: `dx = y ⊙ (g − Σ g ⊙ y)`.
    pub fn softmax_backward_row(dx: &mut [f32], y: &[f32], g: &[f32]) => softmax_backward_body
}

wide_simd! {
    /// Backward of `y = (x − μ) / σ` over one row (σ from `x` and `eps`):
    /// `dx = (g − mean(g) − y ⊙ mean(g ⊙ y)) / σ`.
    pub fn normalise_backward_row(dx: &mut [f32], x: &[f32], y: &[f32], g: &[f32], eps: f32) => normalise_backward_body
}

#[inline(always)]
fn gelu_backward_body(dx: &mut [f32], x: &[f32], g: &[f32]) {
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    for ((d, &v), &gv) in dx.iter_mut().zip(x).zip(g) {
        let cdf = 0.5 * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
        let pdf = FRAC_1_SQRT_2PI * exp(-0.5 * v * v); // training: native only
        *d = gv * (cdf + v * pdf);
    }
}

#[inline(always)]
fn softmax_backward_body(dx: &mut [f32], y: &[f32], g: &[f32]) {
    let d = dot(g, y);
    for ((o, &yv), &gv) in dx.iter_mut().zip(y).zip(g) {
        *o = yv * (gv - d);
    }
}

#[inline(always)]
fn normalise_backward_body(dx: &mut [f32], x: &[f32], y: &[f32], g: &[f32], eps: f32) {
    let n = x.len() as f32;
    let mean = sum(x) / n;
    // Two passes (centre, then square) as candle's kernel does: no cancellation for large means.
    dx.iter_mut().zip(x).for_each(|(d, &v)| *d = v - mean);
    let var = dot(dx, dx) / n;
    let rstd = 1.0 / (var + eps).sqrt();
    let (mg, mgy) = (sum(g) / n, dot(g, y) / n);
    for ((d, &yv), &gv) in dx.iter_mut().zip(y).zip(g) {
        *d = (gv - mg - yv * mgy) * rstd;
    }
}

/// Two vectorisable passes (bias and max, then exp and sum) and the division.
#[inline(always)]
fn softmax_with_bias_body(row: &mut [f32], bias: &[f32]) {
    let inv = 1.0 / exp_with_bias_body(row, bias);
    row.iter_mut().for_each(|v| *v *= inv);
}

/// The bias added and the max taken in one pass, then the exp and the sum in another, the sum in
/// the same order as [`sum`] (so the same bits as the three passes it replaces; tested): with
/// its own pass the sum was a chain of dependent adds (a tenth of softmax's samples, `perf
/// annotate`), which the exp's work now hides.
#[inline(always)]
fn exp_with_bias_body(row: &mut [f32], bias: &[f32]) -> f32 {
    let mut hi = [f32::NEG_INFINITY; LANES];
    let bias = &bias[..row.len()];
    let ((chunks, tail), (bias_chunks, bias_tail)) = (row.as_chunks_mut::<LANES>(), bias.as_chunks::<LANES>());
    for (c, b) in chunks.iter_mut().zip(bias_chunks) {
        for l in 0..LANES {
            c[l] += b[l];
            hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
        }
    }
    tail.iter_mut().zip(bias_tail).for_each(|(v, &b)| *v += b);
    // Comparisons, not `f32::max`, whose NaN rule makes it a call to `fmaxf` in wasm.
    let m = tail.iter().chain(&hi).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    let k = opaque();
    let mut acc = [0f32; LANES];
    let (blocks, rest) = row.as_chunks_mut::<BLOCK>();
    for b in blocks {
        exp_shifted_block(b, m, &k);
        for (i, &v) in b.iter().enumerate() {
            acc[i % LANES] += v;
        }
    }
    let (chunks, tail) = rest.as_chunks_mut::<LANES>();
    for c in chunks {
        for l in 0..LANES {
            c[l] = exp_with(c[l] - m, &k);
            acc[l] += c[l];
        }
    }
    tail.iter_mut().for_each(|v| *v = exp_with(*v - m, &k));
    tail.iter().chain(&acc).sum()
}

/// Values per step of the blocked exp below: four AVX2 registers natively. The exp is a chain of
/// ~20 dependent operations (~70 cycles), and with one register per iteration the core could not
/// overlap enough iterations to keep its pipes busy (`perf annotate`: the samples piled on the
/// chain's last steps). Written step by step over the block, the registers go through the chain
/// side by side: softmax 15 → 11 % of native q8 time at 1 × 512 (AMD EPYC).
/// Two registers in wasm, where two measured the same as one in Node 20 and V8 has half the
/// registers (a whole number of [`LANES`], for the sum beside it).
#[cfg(not(target_arch = "wasm32"))]
const BLOCK: usize = 32;
#[cfg(target_arch = "wasm32")]
const BLOCK: usize = 8;
const _: () = assert!(BLOCK.is_multiple_of(LANES));

/// [`exp_with`] of `v − m` for a block, one step over the whole block before the next (the same
/// operations in the same order per value, so the same bits; tested). A second copy of the
/// polynomial on purpose: one lane-generic version for both vectorised worse (softmax 7.1 → 11.4 %
/// of native q8 samples, BENCHMARKS.md).
#[inline(always)]
fn exp_shifted_block(v: &mut [f32; BLOCK], m: f32, k: &Constants) {
    let mut shifted = [0f32; BLOCK];
    let mut r = [0f32; BLOCK];
    for i in 0..BLOCK {
        let x = (v[i] - m).clamp(k.clamp[0], k.clamp[1]);
        shifted[i] = x * k.log2_e + k.magic;
        let n = shifted[i] - k.magic;
        r[i] = x - n * k.ln2[0] + n * k.ln2[1];
    }
    let c = &k.exp_poly;
    let mut p = [0f32; BLOCK];
    for i in 0..BLOCK {
        p[i] = c[0] * r[i] + c[1];
    }
    for &ci in &c[2..] {
        for i in 0..BLOCK {
            p[i] = p[i] * r[i] + ci;
        }
    }
    for i in 0..BLOCK {
        let y = p[i] * r[i] * r[i] + r[i] + k.one;
        v[i] = y * f32::from_bits((shifted[i] + k.exponent_bias).to_bits() << 23);
    }
}

#[inline(always)]
fn gelu_in_place_body(x: &mut [f32]) {
    let k = opaque();
    // A `for` loop, not `for_each`: with a closure LLVM left `Zip::fold` out of line, compiled for
    // the SSE2 baseline, so the AVX2 copy of this body ran 4 wide (10 % of native q8 time). In
    // place, one slice: nothing can alias, so it vectorises without a copy through the stack.
    // (Blocked as the softmax's exp, it measured the same: GELU is not latency-bound.)
    for v in x.iter_mut() {
        *v = gelu_with(*v, &k);
    }
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fast-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let mut out = contiguous_f32(s, l, self.name())?.to_vec();
        out.par_chunks_mut(4096).for_each(gelu_in_place);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

fn fast_path(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32 && x.is_contiguous()
}

/// Exact (erf) GELU (inference).
pub fn gelu_erf(x: &Tensor) -> candle_core::Result<Tensor> {
    if fast_path(x) {
        x.apply_op1_no_bwd(&Gelu)
    } else {
        x.gelu_erf()
    }
}

// Native only: the reference erf comes from libm, a native dev-dependency.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn exp_and_erf_are_accurate() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.04; // -80 .. 80
            let (a, b) = (exp(x), x.exp());
            assert!(((a - b) / b).abs() < 4e-7, "exp({x}): {a} vs {b}");
        }
        for i in -1000..=1000 {
            let x = i as f32 * 0.006;
            let want = libm::erff(x);
            assert!((erf(x) - want).abs() < 1e-6, "erf({x}): {} vs {want}", erf(x));
            // 3e-7 in exact arithmetic; f32 rounding of the base, raised to the 16th power,
            // makes it 1.3e-6 at worst (measured over this grid with f32 arithmetic).
            let got = erf_no_exp(x, &CONSTANTS);
            assert!((got - want).abs() < 1.5e-6, "erf_no_exp({x}): {got} vs {want}");
        }
        // Far out the 16th power overflows to infinity, which gives exactly ±1, as erf does in f32.
        for x in [4.0f32, 10.0, 1e10, f32::INFINITY] {
            assert_eq!((erf_no_exp(x, &CONSTANTS), erf_no_exp(-x, &CONSTANTS)), (1.0, -1.0), "erf_no_exp(±{x})");
        }
        assert!(erf_no_exp(f32::NAN, &CONSTANTS).is_nan());
    }

    #[test]
    fn blocked_softmax_equals_the_per_value_exp() {
        // 75 values: two whole blocks natively (more in wasm) and a remainder.
        let x: Vec<f32> = (0..75).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.13).collect();
        let mut row = x.clone();
        softmax_with_bias(&mut row, &[0.0; 75]);
        let m = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let e: Vec<f32> = x.iter().map(|&v| exp_with(v - m, &CONSTANTS)).collect();
        let inv = 1.0 / sum(&e);
        for i in 0..x.len() {
            assert_eq!(row[i].to_bits(), (e[i] * inv).to_bits(), "softmax value {i}");
        }
    }

    #[test]
    fn kernels_equal_candles() {
        let x = Tensor::randn(0f32, 3f32, (3, 5, 37), &Device::Cpu).unwrap();
        let bias = Tensor::randn(0f32, 3f32, 37, &Device::Cpu).unwrap();
        let (xs, bs) = (x.flatten_all().unwrap().to_vec1::<f32>().unwrap(), bias.to_vec1::<f32>().unwrap());
        let mut rows = xs.clone();
        rows.chunks_mut(37).for_each(|row| softmax_with_bias(row, &bs));
        let softmax = Tensor::from_vec(rows, x.shape(), &Device::Cpu).unwrap();
        let pairs = [
            (softmax, candle_nn::ops::softmax_last_dim(&x.broadcast_add(&bias).unwrap()).unwrap()),
            (gelu_erf(&x).unwrap(), x.gelu_erf().unwrap()),
        ];
        for (a, b) in pairs {
            let d = (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 2e-6, "max |Δ| {d}");
        }
    }

    #[test]
    fn layer_norm_row_is_exact_where_candles_cancels() {
        // A large mean (100) next to a small spread, against the f64 two-pass reference.
        let x = (Tensor::randn(0f32, 2f32, (4, 384), &Device::Cpu).unwrap() + 100.0).unwrap();
        let (g, b) = (Tensor::randn(1f32, 0.2f32, 384, &Device::Cpu).unwrap(), Tensor::randn(0f32, 0.5f32, 384, &Device::Cpu).unwrap());
        let (gs, bs) = (g.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
        let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want: Vec<f64> = xs.chunks(384).flat_map(|row| {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / 384.0;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 384.0;
            let (gs, bs) = (&gs, &bs);
            row.iter().enumerate().map(move |(i, &v)| (v as f64 - mean) / (var + 1e-12).sqrt() * gs[i] as f64 + bs[i] as f64)
        }).collect();
        let worst = |got: &[f32]| got.iter().zip(&want).map(|(&a, b)| (a as f64 - b).abs()).fold(0f64, f64::max);
        let mut rows = xs.clone();
        rows.chunks_mut(384).for_each(|row| layer_norm_row(row, &gs, &bs, 1e-12));
        // The inputs are random (unseeded), so the bound leaves room: f32 sums of 384 values near
        // 100 carry ~1e-5 of error into the mean (seen: 1.2e-5 once in CI).
        let ours = worst(&rows);
        assert!(ours < 5e-5, "ours: max |Δ| {ours}");
        let candle = candle_nn::ops::layer_norm(&x, &g, &b, 1e-12).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        eprintln!("max |Δ| against f64: ours {ours:e}, candle {:e}", worst(&candle));
        assert!(worst(&candle) > 1e-4 && worst(&candle) > 5.0 * ours, "candle's one-pass kernel no longer cancels ({}): compare against it instead", worst(&candle));
    }
}
