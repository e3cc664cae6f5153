//! int8 linear layers for q8 models: the weights stay as stored (int8, one scale per output row),
//! each input row is quantised to int8 on the fly (symmetric, its own scale), and the products
//! are int8 · int8 → int32 dot products, scaled back to f32 with the bias added:
//!
//! `y[i][j] = bias[j] + sx[i] · sw[j] · Σ_k qx[i][k] · qw[j][k]`
//!
//! Kernels, chosen once per process by what the CPU or build has:
//! - x86-64 with AVX-512 VNNI: `vpdpbusd` (u8 × i8, four products summed into each i32 lane, no
//!   saturation). It wants one unsigned operand, so the activations are shifted by +128 and the
//!   kernel subtracts `128 · Σ_k qw[j][k]` (a per-row constant computed at load);
//! - x86-64 with AVX2: `vpmaddubsw` on |qx| and qw·sign(qx) (pairs of products cannot saturate
//!   with values in [-127, 127]), then `vpmaddwd` to i32;
//! - wasm SIMD128: both operands widened to i16, `i32x4.dot_i16x8_s`. The relaxed-SIMD
//!   `i32x4.relaxed_dot_i8x16_i7x16_add_s` is not used: its second operand must fit 7 bits
//!   (engines lower it to `pmaddubsw`, which treats it as unsigned), which would halve the
//!   weights' or the activations' resolution;
//! - anything else: plain Rust.
//!
//! Both operands are contiguous along k (PyTorch's `[out, in]` layout), so every kernel is a
//! block of dot products with no packing; k is padded with zeros to [`K_ALIGN`] once (weights at
//! load, activations as they are quantised). Output columns are split into one strip per thread.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::fused::with_f32;

/// k is padded to a multiple of this (the widest kernel's step, 64 bytes).
const K_ALIGN: usize = 64;

/// A linear layer with int8 weights.
pub struct Int8Linear {
    out_dim: usize,
    in_dim: usize,
    /// `[out_dim, padded_k]`, zero-padded rows.
    weight: Vec<i8>,
    /// Per output row.
    scale: Vec<f32>,
    /// `Σ_k weight[j][k]`, for the VNNI kernel's unsigned-activation correction.
    row_sum: Vec<i32>,
    bias: Vec<f32>,
}

fn padded(k: usize) -> usize {
    k.div_ceil(K_ALIGN) * K_ALIGN
}

impl Int8Linear {
    /// `q` row-major `[out_dim, in_dim]` as stored, `scale` `[out_dim]`, `bias` `[out_dim]`.
    pub fn new(q: &[i8], scale: Vec<f32>, bias: Vec<f32>, out_dim: usize, in_dim: usize) -> Self {
        let kp = padded(in_dim);
        let mut weight = vec![0i8; out_dim * kp];
        for (dst, src) in weight.chunks_mut(kp).zip(q.chunks(in_dim)) {
            dst[..in_dim].copy_from_slice(src);
        }
        let row_sum = q.chunks(in_dim).map(|r| r.iter().map(|&v| v as i32).sum()).collect();
        Int8Linear { out_dim, in_dim, weight, scale, row_sum, bias }
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// The f32 weight `[out_dim, in_dim]` (for devices without int8 kernels).
    pub fn dequantize(&self) -> Vec<f32> {
        let kp = padded(self.in_dim);
        self.weight
            .chunks(kp)
            .zip(&self.scale)
            .flat_map(|(row, s)| row[..self.in_dim].iter().map(move |&v| v as f32 * s))
            .collect()
    }

    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// `x @ Wᵀ + b` for a CPU f32 `x` `[..., in_dim]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims();
        if dims.last() != Some(&self.in_dim) {
            candle_core::bail!("int8 linear: input {dims:?}, weight expects {} features", self.in_dim);
        }
        let rows = x.elem_count() / self.in_dim.max(1);
        let (qx, sx) = with_f32(x, |x| quantize_rows(x, rows, self.in_dim))?;
        let mut out = vec![0f32; rows * self.out_dim];
        self.product(&qx, &sx, rows, &mut out);
        let mut shape = dims.to_vec();
        *shape.last_mut().unwrap() = self.out_dim;
        Tensor::from_vec(out, shape, &Device::Cpu)
    }

    /// `out[i][j] = bias[j] + sx[i] · scale[j] · qx[i] · weight[j]`, column strips over the pool.
    fn product(&self, qx: &[i8], sx: &[f32], m: usize, out: &mut [f32]) {
        let n = self.out_dim;
        let threads = rayon::current_num_threads();
        let kernel = kernel();
        let run = |j: usize, w: usize, out: OutPtr| {
            let p = Product { m, n: w, kp: padded(self.in_dim), a: qx, sa: sx, b: &self.weight[j * padded(self.in_dim)..], sb: &self.scale[j..], row_sum: &self.row_sum[j..], bias: &self.bias[j..], c: out.0.wrapping_add(j), ldc: n };
            // SAFETY: each strip writes its own columns `j..j + w` of `out` (rows of `n`).
            unsafe { kernel(&p) }
        };
        let ptr = OutPtr(out.as_mut_ptr());
        if threads > 1 && m * n * self.in_dim >= 1 << 16 {
            let strip = n.div_ceil(threads).div_ceil(4) * 4;
            (0..n.div_ceil(strip)).into_par_iter().for_each(|s| {
                let j = s * strip;
                run(j, strip.min(n - j), ptr);
            });
        } else {
            run(0, n, ptr);
        }
    }
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the strips write disjoint columns.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// One product for a kernel: `m` rows of `a`, `n` rows of `b` (both `kp` wide), results into
/// `c` with row stride `ldc`.
struct Product<'a> {
    m: usize,
    n: usize,
    kp: usize,
    a: &'a [i8],
    sa: &'a [f32],
    b: &'a [i8],
    sb: &'a [f32],
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    row_sum: &'a [i32],
    bias: &'a [f32],
    c: *mut f32,
    ldc: usize,
}

impl Product<'_> {
    /// Writes one result from its integer dot product.
    #[inline(always)]
    unsafe fn put(&self, i: usize, j: usize, dot: i32) {
        *self.c.add(i * self.ldc + j) = self.bias[j] + self.sa[i] * self.sb[j] * dot as f32;
    }
}

/// Per-row symmetric int8 of `x` `[rows, k]`, rows padded to [`K_ALIGN`] with zeros.
fn quantize_rows(x: &[f32], rows: usize, k: usize) -> (Vec<i8>, Vec<f32>) {
    let kp = padded(k);
    let mut q = vec![0i8; rows * kp];
    let mut scales = vec![0f32; rows];
    for ((row, dst), s) in x.chunks(k).zip(q.chunks_mut(kp)).zip(&mut scales) {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        *s = if max > 0.0 { max / 127.0 } else { 1.0 };
        let inv = 1.0 / *s;
        for (d, v) in dst.iter_mut().zip(row) {
            *d = (v * inv).round() as i8;
        }
    }
    (q, scales)
}

type Kernel = unsafe fn(&Product);

/// The kernels this CPU / build can run, fastest first.
fn available() -> Vec<(&'static str, Kernel)> {
    let mut out: Vec<(&'static str, Kernel)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512vnni") && std::is_x86_feature_detected!("avx512bw") {
            out.push(("avx512-vnni", x86::vnni512));
        }
        if std::is_x86_feature_detected!("avx2") {
            out.push(("avx2", x86::avx2));
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    out.push(("simd128", simd128::kernel));
    out.push(("portable", portable));
    out
}

/// The fastest kernel here, detected once.
fn best() -> (&'static str, Kernel) {
    static PICK: std::sync::OnceLock<(&'static str, Kernel)> = std::sync::OnceLock::new();
    *PICK.get_or_init(|| available()[0])
}

fn kernel() -> Kernel {
    best().1
}

/// Which kernel [`Int8Linear`] uses here (for benchmarks and `info`).
pub fn kernel_name() -> &'static str {
    best().0
}

/// Plain Rust (also the reference the SIMD kernels are tested against).
unsafe fn portable(p: &Product) {
    for i in 0..p.m {
        let a = &p.a[i * p.kp..(i + 1) * p.kp];
        for j in 0..p.n {
            let b = &p.b[j * p.kp..(j + 1) * p.kp];
            let dot: i32 = a.iter().zip(b).map(|(&x, &w)| x as i32 * w as i32).sum();
            p.put(i, j, dot);
        }
    }
}

/// Runs `block::<R, C>` over the whole product in R×C tiles, with the smaller tiles at the edges.
macro_rules! tiles {
    ($p:expr, $block:ident, $R:tt, $C:tt) => {{
        let p = $p;
        let mut j = 0;
        while j < p.n {
            let nc = ($C as usize).min(p.n - j);
            let mut i = 0;
            while i < p.m {
                let nr = ($R as usize).min(p.m - i);
                tiles!(@dispatch p, $block, i, j, nr, nc, $R, $C);
                i += nr;
            }
            j += nc;
        }
    }};
    (@dispatch $p:ident, $block:ident, $i:ident, $j:ident, $nr:ident, $nc:ident, 4, 4) => {
        match ($nr, $nc) {
            (4, 4) => $block::<4, 4>($p, $i, $j), (4, 3) => $block::<4, 3>($p, $i, $j),
            (4, 2) => $block::<4, 2>($p, $i, $j), (4, 1) => $block::<4, 1>($p, $i, $j),
            (3, 4) => $block::<3, 4>($p, $i, $j), (3, 3) => $block::<3, 3>($p, $i, $j),
            (3, 2) => $block::<3, 2>($p, $i, $j), (3, 1) => $block::<3, 1>($p, $i, $j),
            (2, 4) => $block::<2, 4>($p, $i, $j), (2, 3) => $block::<2, 3>($p, $i, $j),
            (2, 2) => $block::<2, 2>($p, $i, $j), (2, 1) => $block::<2, 1>($p, $i, $j),
            (1, 4) => $block::<1, 4>($p, $i, $j), (1, 3) => $block::<1, 3>($p, $i, $j),
            (1, 2) => $block::<1, 2>($p, $i, $j), _ => $block::<1, 1>($p, $i, $j),
        }
    };
    (@dispatch $p:ident, $block:ident, $i:ident, $j:ident, $nr:ident, $nc:ident, 2, 4) => {
        match ($nr, $nc) {
            (2, 4) => $block::<2, 4>($p, $i, $j), (2, 3) => $block::<2, 3>($p, $i, $j),
            (2, 2) => $block::<2, 2>($p, $i, $j), (2, 1) => $block::<2, 1>($p, $i, $j),
            (1, 4) => $block::<1, 4>($p, $i, $j), (1, 3) => $block::<1, 3>($p, $i, $j),
            (1, 2) => $block::<1, 2>($p, $i, $j), _ => $block::<1, 1>($p, $i, $j),
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Product;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn vnni512(p: &Product) {
        tiles!(p, block_vnni, 4, 4);
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn block_vnni<const R: usize, const C: usize>(p: &Product, i: usize, j: usize) {
        let shift = _mm512_set1_epi8(-128);
        let mut acc = [[_mm512_setzero_si512(); C]; R];
        let (a, b) = (p.a.as_ptr().add(i * p.kp), p.b.as_ptr().add(j * p.kp));
        let mut k = 0;
        while k < p.kp {
            // a + 128 as unsigned: flipping the sign bit.
            let av: [__m512i; R] = core::array::from_fn(|r| _mm512_xor_si512(_mm512_loadu_si512(a.add(r * p.kp + k) as *const _), shift));
            for q in 0..C {
                let bv = _mm512_loadu_si512(b.add(q * p.kp + k) as *const _);
                for r in 0..R {
                    acc[r][q] = _mm512_dpbusd_epi32(acc[r][q], av[r], bv);
                }
            }
            k += 64;
        }
        for r in 0..R {
            for q in 0..C {
                let dot = _mm512_reduce_add_epi32(acc[r][q]) - 128 * p.row_sum[j + q];
                p.put(i + r, j + q, dot);
            }
        }
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn avx2(p: &Product) {
        tiles!(p, block_avx2, 2, 4);
    }

    #[target_feature(enable = "avx2")]
    unsafe fn block_avx2<const R: usize, const C: usize>(p: &Product, i: usize, j: usize) {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); C]; R];
        let (a, b) = (p.a.as_ptr().add(i * p.kp), p.b.as_ptr().add(j * p.kp));
        let mut k = 0;
        while k < p.kp {
            let av: [__m256i; R] = core::array::from_fn(|r| _mm256_loadu_si256(a.add(r * p.kp + k) as *const _));
            let abs: [__m256i; R] = core::array::from_fn(|r| _mm256_sign_epi8(av[r], av[r]));
            for q in 0..C {
                let bv = _mm256_loadu_si256(b.add(q * p.kp + k) as *const _);
                for r in 0..R {
                    let pairs = _mm256_maddubs_epi16(abs[r], _mm256_sign_epi8(bv, av[r]));
                    acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(pairs, ones));
                }
            }
            k += 32;
        }
        for r in 0..R {
            for q in 0..C {
                let v = acc[r][q];
                let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
                p.put(i + r, j + q, _mm_cvtsi128_si32(s));
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::Product;
    use core::arch::wasm32::*;

    pub unsafe fn kernel(p: &Product) {
        tiles!(p, block, 2, 4);
    }

    #[inline(always)]
    unsafe fn block<const R: usize, const C: usize>(p: &Product, i: usize, j: usize) {
        let mut acc = [[i32x4_splat(0); C]; R];
        let (a, b) = (p.a.as_ptr().add(i * p.kp), p.b.as_ptr().add(j * p.kp));
        let mut k = 0;
        while k < p.kp {
            let av: [v128; R] = core::array::from_fn(|r| v128_load(a.add(r * p.kp + k) as *const v128));
            let (lo, hi): ([v128; R], [v128; R]) = (
                core::array::from_fn(|r| i16x8_extend_low_i8x16(av[r])),
                core::array::from_fn(|r| i16x8_extend_high_i8x16(av[r])),
            );
            for q in 0..C {
                let bv = v128_load(b.add(q * p.kp + k) as *const v128);
                let (bl, bh) = (i16x8_extend_low_i8x16(bv), i16x8_extend_high_i8x16(bv));
                for r in 0..R {
                    acc[r][q] = i32x4_add(acc[r][q], i32x4_add(i32x4_dot_i16x8(lo[r], bl), i32x4_dot_i16x8(hi[r], bh)));
                }
            }
            k += 16;
        }
        for r in 0..R {
            for q in 0..C {
                let v = acc[r][q];
                let dot = i32x4_extract_lane::<0>(v) + i32x4_extract_lane::<1>(v) + i32x4_extract_lane::<2>(v) + i32x4_extract_lane::<3>(v);
                p.put(i + r, j + q, dot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(out: usize, inp: usize, seed: u32) -> (Int8Linear, Vec<f32>) {
        let w: Vec<f32> = (0..out * inp).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 2001) as f32 / 1000.0 - 1.0).collect();
        let (q, s) = crate::model::quantize::quantize_rows(&w, out, inp);
        let bias: Vec<f32> = (0..out).map(|j| j as f32 * 0.01 - 0.3).collect();
        (Int8Linear::new(&q, s, bias, out, inp), w)
    }

    fn input(rows: usize, k: usize) -> Vec<f32> {
        (0..rows * k).map(|i| ((i * 7919 % 1013) as f32 / 506.0 - 1.0) * if i % 97 == 0 { 8.0 } else { 1.0 }).collect()
    }

    /// Every tile shape and padding: every kernel this CPU has equals the plain-Rust one exactly
    /// (integer dot products), and the int8 product is close to the f32 one.
    #[test]
    fn kernel_equals_portable_and_approximates_f32() {
        for (m, n, k) in [(1, 1, 1), (3, 5, 70), (5, 9, 384), (17, 13, 200), (128, 40, 1536)] {
            let (l, w) = layer(n, k, m as u32);
            let x = input(m, k);
            let (qx, sx) = quantize_rows(&x, m, k);
            let mut pooled = vec![0f32; m * n];
            l.product(&qx, &sx, m, &mut pooled);
            let run = |kern: Kernel| {
                let mut c = vec![0f32; m * n];
                let p = Product { m, n, kp: padded(k), a: &qx, sa: &sx, b: &l.weight, sb: &l.scale, row_sum: &l.row_sum, bias: &l.bias, c: c.as_mut_ptr(), ldc: n };
                unsafe { kern(&p) };
                c
            };
            let slow = run(portable);
            assert_eq!(pooled, slow, "{m}x{n}x{k} through the pool ({})", kernel_name());
            for (name, kernel) in available() {
                assert_eq!(run(kernel), slow, "{m}x{n}x{k}: {name}");
            }
            let t = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap();
            let y: Vec<f32> = l.forward(&t).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let mut worst = 0f32;
            for i in 0..m {
                for j in 0..n {
                    let exact: f32 = l.bias[j] + (0..k).map(|p| x[i * k + p] * w[j * k + p]).sum::<f32>();
                    let norm: f32 = (0..k).map(|p| x[i * k + p].abs()).sum::<f32>();
                    worst = worst.max((y[i * n + j] - exact).abs() / norm.max(1e-6));
                }
            }
            // Two roundings of at most half a step each (1/254 of the row's range): the error per
            // unit of |x|₁ stays well under 2 %.
            assert!(worst < 0.02, "{m}x{n}x{k}: relative error {worst}");
        }
    }

    #[test]
    fn dequantize_inverts_the_stored_rows() {
        let (l, w) = layer(7, 100, 3);
        let back = l.dequantize();
        let worst = back.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1.0 / 254.0 + 1e-6, "{worst}");
    }
}
