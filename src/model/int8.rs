//! int8 linear layers for q8 models: the weights stay as stored (int8, one scale per output row),
//! each input row is quantised to int8 on the fly (symmetric, its own scale), and the products
//! are int8 · int8 → int32 dot products, scaled back to f32 with the bias added:
//!
//! `y[i][j] = bias[j] + sx[i] · sw[j] · Σ_k qx[i][k] · qw[j][k]`
//!
//! The weights are repacked once, at load, so that one SIMD register holds consecutive output
//! columns: `[k / 4][columns][4]` (four consecutive k of a column side by side). A kernel then
//! broadcasts four bytes of an input row and multiplies them with 16 (or 8, or 4) columns at
//! once, accumulating each column in its own i32 lane: no horizontal sums in the inner loop, no
//! packing of the activations. Kernels, chosen once per process by what the CPU or build has:
//! - x86-64 with AVX-512 VNNI: `vpdpbusd` (u8 × i8, four products summed into each i32 lane, no
//!   saturation). It wants one unsigned operand, so the activations are shifted by +128 and the
//!   kernel subtracts `128 · Σ_k qw[j][k]` (a per-column constant computed at load);
//! - x86-64 with AVX2: `vpmaddubsw` on |qx| and qw·sign(qx) (pairs of products cannot saturate
//!   with values in [-127, 127]), then `vpmaddwd` to i32;
//! - wasm relaxed SIMD (the relaxed builds): `i32x4.relaxed_dot_i8x16_i7x16_add_s`, whose second
//!   operand must have its top bit clear: the unsigned activations are split into two 7-bit-safe
//!   halves (two dot products), so resolution stays 8 bits and the integers equal the others';
//! - wasm SIMD128: both operands widened to i16, `i32x4.dot_i16x8_s` (two partial sums per column,
//!   added once per tile);
//! - anything else: plain Rust, also the reference the others are tested against.
//!
//! k is padded with zeros to a multiple of 4 and the columns to a multiple of [`COL_ALIGN`];
//! output columns are split into one strip per thread.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::fused::with_f32;

/// Columns are padded to a multiple of this (the widest register: 16 i32 lanes).
const COL_ALIGN: usize = 16;

fn padded_k(k: usize) -> usize {
    k.div_ceil(4) * 4
}

/// A linear layer with int8 weights.
pub struct Int8Linear {
    out_dim: usize,
    in_dim: usize,
    /// `out_dim` rounded up to [`COL_ALIGN`].
    cols: usize,
    /// `[padded_k / 4][cols][4]`, zeros in the padding.
    packed: Vec<i8>,
    /// Per output column (zero in the padding).
    scale: Vec<f32>,
    /// `Σ_k weight[j][k]`, for the unsigned-activation correction of the VNNI and relaxed-dot
    /// kernels.
    #[cfg_attr(not(any(target_arch = "x86_64", target_feature = "relaxed-simd")), allow(dead_code))]
    col_sum: Vec<i32>,
    bias: Vec<f32>,
}

impl Int8Linear {
    /// `q` row-major `[out_dim, in_dim]` as stored, `scale` `[out_dim]`, `bias` `[out_dim]`.
    pub fn new(q: &[i8], mut scale: Vec<f32>, mut bias: Vec<f32>, out_dim: usize, in_dim: usize) -> Self {
        let cols = out_dim.div_ceil(COL_ALIGN) * COL_ALIGN;
        let kp = padded_k(in_dim);
        let mut packed = vec![0i8; kp * cols];
        for (j, row) in q.chunks(in_dim).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                packed[((k / 4) * cols + j) * 4 + k % 4] = v;
            }
        }
        let mut col_sum: Vec<i32> = q.chunks(in_dim).map(|r| r.iter().map(|&v| v as i32).sum()).collect();
        col_sum.resize(cols, 0);
        scale.resize(cols, 0.0);
        bias.resize(cols, 0.0);
        Int8Linear { out_dim, in_dim, cols, packed, scale, col_sum, bias }
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// The f32 weight `[out_dim, in_dim]` (for devices without int8 kernels).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.out_dim * self.in_dim];
        for j in 0..self.out_dim {
            for k in 0..self.in_dim {
                w[j * self.in_dim + k] = self.packed[((k / 4) * self.cols + j) * 4 + k % 4] as f32 * self.scale[j];
            }
        }
        w
    }

    pub fn bias(&self) -> &[f32] {
        &self.bias[..self.out_dim]
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
        self.product_with(kernel(), qx, sx, m, out)
    }

    fn product_with(&self, kernel: Kernel, qx: &[i8], sx: &[f32], m: usize, out: &mut [f32]) {
        let threads = rayon::current_num_threads();
        let ptr = OutPtr(out.as_mut_ptr());
        let run = |j: usize, w: usize| {
            let p = Product { m, j, n: w, kp: padded_k(self.in_dim), cols: self.cols, out_dim: self.out_dim, a: qx, sa: sx, layer: self, c: ptr.get() };
            // SAFETY: each strip writes only its own columns `j..j + w` of `out`.
            unsafe { kernel(&p) }
        };
        if threads > 1 && m * self.out_dim * self.in_dim >= 1 << 16 {
            let strip = self.cols.div_ceil(threads).div_ceil(COL_ALIGN) * COL_ALIGN;
            (0..self.cols.div_ceil(strip)).into_par_iter().for_each(|s| run(s * strip, strip.min(self.cols - s * strip)));
        } else {
            run(0, self.cols);
        }
    }
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the strips write disjoint columns.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// One strip for a kernel: all `m` rows of `a` (`kp` wide) times packed columns `j..j + n`
/// (`n` a multiple of [`COL_ALIGN`]); results into `c` (`[m, out_dim]`), padding columns dropped.
struct Product<'a> {
    m: usize,
    j: usize,
    n: usize,
    kp: usize,
    cols: usize,
    out_dim: usize,
    a: &'a [i8],
    sa: &'a [f32],
    layer: &'a Int8Linear,
    c: *mut f32,
}

impl Product<'_> {
    /// Four bytes of row `i` at k-quad `q`, as one i32.
    #[inline(always)]
    unsafe fn quad(&self, i: usize, q: usize) -> i32 {
        (self.a.as_ptr().add(i * self.kp + q * 4) as *const i32).read_unaligned()
    }

    /// Packed weights of k-quad `q`, from column `j`.
    #[inline(always)]
    unsafe fn weights(&self, q: usize, j: usize) -> *const i8 {
        self.layer.packed.as_ptr().add((q * self.cols + j) * 4)
    }

    /// Writes results for row `i`, columns `j..j + dots.len()`, from their integer dot products.
    #[inline(always)]
    unsafe fn put(&self, i: usize, j: usize, dots: &[i32]) {
        let l = self.layer;
        for (t, &d) in dots.iter().enumerate() {
            let col = j + t;
            if col < self.out_dim {
                *self.c.add(i * self.out_dim + col) = l.bias[col] + self.sa[i] * l.scale[col] * d as f32;
            }
        }
    }
}

/// Per-row symmetric int8 of `x` `[rows, k]`, rows padded to a multiple of 4 with zeros.
///
/// Rounds half to even by adding and subtracting 1.5 · 2²³ (exact for |v| < 2²², and ours are
/// ≤ 127): two additions the compiler vectorises on every target, where `round` is a libm call
/// per value — 2.6 million calls per 128-token text in MiniLM — and `round_ties_even` one too on
/// x86-64 without SSE4.1. Only exact halves round differently from `round`, and every kernel
/// reads the same quantised rows.
fn quantize_rows(x: &[f32], rows: usize, k: usize) -> (Vec<i8>, Vec<f32>) {
    let kp = padded_k(k);
    let mut q = vec![0i8; rows * kp];
    let mut scales = vec![0f32; rows];
    for ((row, dst), s) in x.chunks(k).zip(q.chunks_mut(kp)).zip(&mut scales) {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        *s = if max > 0.0 { max / 127.0 } else { 1.0 };
        let inv = 1.0 / *s;
        const MAGIC: f32 = 12_582_912.0; // 1.5 · 2²³: the sum's ulp is 1
        for (d, v) in dst.iter_mut().zip(row) {
            *d = ((v * inv + MAGIC) - MAGIC) as i8;
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
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    if simd128::relaxed_dot_is_exact() {
        out.push(("relaxed-dot", simd128::relaxed));
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

unsafe fn portable(p: &Product) {
    let mut dots = vec![0i32; p.n];
    for i in 0..p.m {
        dots.fill(0);
        for q in 0..p.kp / 4 {
            let a = p.quad(i, q).to_le_bytes();
            let w = core::slice::from_raw_parts(p.weights(q, p.j), p.n * 4);
            for (d, col) in dots.iter_mut().zip(w.chunks_exact(4)) {
                *d += (0..4).map(|t| a[t] as i8 as i32 * col[t] as i32).sum::<i32>();
            }
        }
        p.put(i, p.j, &dots);
    }
}

/// Runs `tile::<R, C>(p, i, j)` over the strip: up to R rows by C registers of `width` columns
/// (R, C ≤ the given maxima, chosen per ISA so that the accumulators stay in registers), smaller
/// tiles at the edges. The strip's width is a multiple of `width` by [`COL_ALIGN`].
macro_rules! tiles {
    ($p:expr, $tile:ident, $width:expr, rows $rmax:tt, regs $cmax:tt) => {{
        let p = $p;
        let mut j = p.j;
        while j < p.j + p.n {
            let regs = ((p.j + p.n - j) / $width).min($cmax);
            let mut i = 0;
            while i < p.m {
                let rows = (p.m - i).min($rmax);
                tiles!(@go p, $tile, i, j, rows, regs, $rmax, $cmax);
                i += rows;
            }
            j += regs * $width;
        }
    }};
    (@go $p:ident, $tile:ident, $i:ident, $j:ident, $r:ident, $c:ident, 4, 4) => {
        match ($r, $c) {
            (4, 4) => $tile::<4, 4>($p, $i, $j), (4, 3) => $tile::<4, 3>($p, $i, $j),
            (4, 2) => $tile::<4, 2>($p, $i, $j), (4, _) => $tile::<4, 1>($p, $i, $j),
            (3, 4) => $tile::<3, 4>($p, $i, $j), (3, 3) => $tile::<3, 3>($p, $i, $j),
            (3, 2) => $tile::<3, 2>($p, $i, $j), (3, _) => $tile::<3, 1>($p, $i, $j),
            (2, 4) => $tile::<2, 4>($p, $i, $j), (2, 3) => $tile::<2, 3>($p, $i, $j),
            (2, 2) => $tile::<2, 2>($p, $i, $j), (2, _) => $tile::<2, 1>($p, $i, $j),
            (_, 4) => $tile::<1, 4>($p, $i, $j), (_, 3) => $tile::<1, 3>($p, $i, $j),
            (_, 2) => $tile::<1, 2>($p, $i, $j), (_, _) => $tile::<1, 1>($p, $i, $j),
        }
    };
    (@go $p:ident, $tile:ident, $i:ident, $j:ident, $r:ident, $c:ident, 2, 4) => {
        match ($r, $c) {
            (2, 4) => $tile::<2, 4>($p, $i, $j), (2, 3) => $tile::<2, 3>($p, $i, $j),
            (2, 2) => $tile::<2, 2>($p, $i, $j), (2, _) => $tile::<2, 1>($p, $i, $j),
            (_, 4) => $tile::<1, 4>($p, $i, $j), (_, 3) => $tile::<1, 3>($p, $i, $j),
            (_, 2) => $tile::<1, 2>($p, $i, $j), (_, _) => $tile::<1, 1>($p, $i, $j),
        }
    };
    (@go $p:ident, $tile:ident, $i:ident, $j:ident, $r:ident, $c:ident, 2, 2) => {
        match ($r, $c) {
            (2, 2) => $tile::<2, 2>($p, $i, $j), (2, _) => $tile::<2, 1>($p, $i, $j),
            (_, 2) => $tile::<1, 2>($p, $i, $j), (_, _) => $tile::<1, 1>($p, $i, $j),
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Product;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn vnni512(p: &Product) {
        tiles!(p, tile_vnni, 16, rows 4, regs 4); // 16 accumulators of 32 zmm
    }

    /// R rows × C·16 columns.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile_vnni<const R: usize, const C: usize>(p: &Product, i: usize, j: usize) {
        let shift = _mm512_set1_epi32(0x8080_8080u32 as i32);
        let mut acc = [[_mm512_setzero_si512(); C]; R];
        for q in 0..p.kp / 4 {
            let b = p.weights(q, j);
            let bv: [__m512i; C] = core::array::from_fn(|c| _mm512_loadu_si512(b.add(c * 64) as *const _));
            for r in 0..R {
                // a + 128 as unsigned bytes: the sign bit flipped.
                let a = _mm512_xor_si512(_mm512_set1_epi32(p.quad(i + r, q)), shift);
                for c in 0..C {
                    acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], a, bv[c]);
                }
            }
        }
        let mut dots = [0i32; 16];
        for r in 0..R {
            for c in 0..C {
                let col = j + c * 16;
                let fix = _mm512_slli_epi32(_mm512_loadu_si512(p.layer.col_sum.as_ptr().add(col) as *const _), 7);
                _mm512_storeu_si512(dots.as_mut_ptr() as *mut _, _mm512_sub_epi32(acc[r][c], fix));
                p.put(i + r, col, &dots);
            }
        }
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn avx2(p: &Product) {
        tiles!(p, tile_avx2, 8, rows 2, regs 4); // 8 accumulators of 16 ymm
    }

    /// R rows × C·8 columns.
    #[target_feature(enable = "avx2")]
    unsafe fn tile_avx2<const R: usize, const C: usize>(p: &Product, i: usize, j: usize) {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); C]; R];
        for q in 0..p.kp / 4 {
            let b = p.weights(q, j);
            let bv: [__m256i; C] = core::array::from_fn(|c| _mm256_loadu_si256(b.add(c * 32) as *const _));
            for r in 0..R {
                let a = _mm256_set1_epi32(p.quad(i + r, q));
                let abs = _mm256_sign_epi8(a, a);
                for c in 0..C {
                    let pairs = _mm256_maddubs_epi16(abs, _mm256_sign_epi8(bv[c], a));
                    acc[r][c] = _mm256_add_epi32(acc[r][c], _mm256_madd_epi16(pairs, ones));
                }
            }
        }
        let mut dots = [0i32; 8];
        for r in 0..R {
            for c in 0..C {
                _mm256_storeu_si256(dots.as_mut_ptr() as *mut _, acc[r][c]);
                p.put(i + r, j + c * 8, &dots);
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::Product;
    use core::arch::wasm32::*;

    pub unsafe fn kernel(p: &Product) {
        tiles!(p, tile, 4, rows 2, regs 2); // 8 accumulators (two per column group) of 16
    }

    /// R rows × C·4 columns. A 16-byte load holds 4 columns × 4 k; widened, each half is 2
    /// columns × 4 k, and `i32x4.dot_i16x8_s` against the row's 4 k (repeated) gives two partial
    /// sums per column, added at the end.
    #[inline(always)]
    unsafe fn tile<const R: usize, const C: usize>(p: &Product, i: usize, j: usize) {
        let mut lo = [[i32x4_splat(0); C]; R];
        let mut hi = [[i32x4_splat(0); C]; R];
        for q in 0..p.kp / 4 {
            let b = p.weights(q, j);
            let bv: [(v128, v128); C] = core::array::from_fn(|c| {
                let v = v128_load(b.add(c * 16) as *const v128);
                (i16x8_extend_low_i8x16(v), i16x8_extend_high_i8x16(v))
            });
            for r in 0..R {
                let a = i16x8_extend_low_i8x16(i32x4_splat(p.quad(i + r, q)));
                for c in 0..C {
                    lo[r][c] = i32x4_add(lo[r][c], i32x4_dot_i16x8(a, bv[c].0));
                    hi[r][c] = i32x4_add(hi[r][c], i32x4_dot_i16x8(a, bv[c].1));
                }
            }
        }
        let mut dots = [0i32; 4];
        for r in 0..R {
            for c in 0..C {
                let (l, h) = (lo[r][c], hi[r][c]);
                let sums = i32x4_add(i32x4_shuffle::<0, 2, 4, 6>(l, h), i32x4_shuffle::<1, 3, 5, 7>(l, h));
                v128_store(dots.as_mut_ptr() as *mut v128, sums);
                p.put(i + r, j + c * 4, &dots);
            }
        }
    }

    /// The relaxed-SIMD builds: `i32x4.relaxed_dot_i8x16_i7x16_add_s`, 16 products a step into
    /// four i32 lanes, no widening and no horizontal sums (V8 lowers it to `vpdpbusd` where the
    /// CPU has VNNI, else to `pmaddubsw` + `pmaddwd`). Its second operand must have the top bit
    /// clear, so the activations (as `a + 128`, unsigned, like the VNNI kernel's) are split in two
    /// 7-bit-safe halves, `a + 128 = 2·h + l` with `h ∈ [0, 127]` and `l ∈ {0, 1}`: two dot
    /// products instead of one, and the same integer result as every other kernel (8-bit
    /// activations, not 7). Pairs of products stay far from i16 saturation (2 · 127 · 127).
    /// Whether this engine's `relaxed_dot_i8x16_i7x16_add` gives the exact dot product on
    /// operands where the proposal defines it. Node 20's V8 (behind --experimental-wasm-relaxed-simd)
    /// returns twice the sum on an AVX-VNNI Xeon, while Chromium 156 is exact: checked once at run
    /// time, so an engine that gets it wrong runs the simd128 kernel instead of wrong numbers.
    #[cfg(target_feature = "relaxed-simd")]
    pub fn relaxed_dot_is_exact() -> bool {
        let w: [i8; 16] = core::array::from_fn(|i| (i as i8 - 8) * 15);
        let a: [u8; 16] = core::array::from_fn(|i| (i as u8 * 37) % 128);
        let acc = [1i32, -2, 3, -4];
        // SAFETY: 16-byte loads and stores of 16-byte arrays.
        let got: [i32; 4] = unsafe {
            let r = i32x4_relaxed_dot_i8x16_i7x16_add(
                v128_load(w.as_ptr() as *const v128),
                v128_load(a.as_ptr() as *const v128),
                v128_load(acc.as_ptr() as *const v128),
            );
            let mut out = [0i32; 4];
            v128_store(out.as_mut_ptr() as *mut v128, r);
            out
        };
        (0..4).all(|l| got[l] == acc[l] + (0..4).map(|k| w[4 * l + k] as i32 * a[4 * l + k] as i32).sum::<i32>())
    }

    #[cfg(target_feature = "relaxed-simd")]
    pub unsafe fn relaxed(p: &Product) {
        tiles!(p, tile_relaxed, 4, rows 2, regs 2); // 8 accumulators (h and l) of 16
    }

    #[cfg(target_feature = "relaxed-simd")]
    #[inline(always)]
    unsafe fn tile_relaxed<const R: usize, const C: usize>(p: &Product, i: usize, j: usize) {
        let mut hs = [[i32x4_splat(0); C]; R];
        let mut ls = [[i32x4_splat(0); C]; R];
        for q in 0..p.kp / 4 {
            let b = p.weights(q, j);
            let bv: [v128; C] = core::array::from_fn(|c| v128_load(b.add(c * 16) as *const v128));
            for r in 0..R {
                let u = (p.quad(i + r, q) as u32) ^ 0x8080_8080;
                let h = i32x4_splat(((u >> 1) & 0x7f7f_7f7f) as i32);
                let l = i32x4_splat((u & 0x0101_0101) as i32);
                for c in 0..C {
                    hs[r][c] = i32x4_relaxed_dot_i8x16_i7x16_add(bv[c], h, hs[r][c]);
                    ls[r][c] = i32x4_relaxed_dot_i8x16_i7x16_add(bv[c], l, ls[r][c]);
                }
            }
        }
        let mut dots = [0i32; 4];
        for r in 0..R {
            for c in 0..C {
                let col = j + c * 4;
                let fix = i32x4_shl(v128_load(p.layer.col_sum.as_ptr().add(col) as *const v128), 7);
                let sums = i32x4_sub(i32x4_add(i32x4_shl(hs[r][c], 1), ls[r][c]), fix);
                v128_store(dots.as_mut_ptr() as *mut v128, sums);
                p.put(i + r, col, &dots);
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
    /// (integer dot products), through the pool too, and the int8 product is close to the f32 one.
    #[test]
    fn kernels_equal_portable_and_approximate_f32() {
        for (m, n, k) in [(1, 1, 1), (3, 5, 70), (5, 9, 384), (17, 13, 203), (6, 100, 64), (128, 40, 1536)] {
            let (l, w) = layer(n, k, m as u32);
            let x = input(m, k);
            let (qx, sx) = quantize_rows(&x, m, k);
            let run = |kern: Kernel| {
                let mut c = vec![0f32; m * n];
                l.product_with(kern, &qx, &sx, m, &mut c);
                c
            };
            let slow = run(portable);
            for (name, kernel) in available() {
                assert_eq!(run(kernel), slow, "{m}x{n}x{k}: {name}");
            }
            let t = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap();
            let y: Vec<f32> = l.forward(&t).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(y, slow, "{m}x{n}x{k}: forward ({})", kernel_name());
            let mut worst = 0f32;
            for i in 0..m {
                for j in 0..n {
                    let exact: f32 = l.bias[j] + (0..k).map(|p| x[i * k + p] * w[j * k + p]).sum::<f32>();
                    let norm: f32 = (0..k).map(|p| x[i * k + p].abs()).sum::<f32>();
                    worst = worst.max((y[i * n + j] - exact).abs() / norm.max(1e-6));
                }
            }
            // Two roundings of at most half a step each (1/254 of each row's range): the error
            // per unit of |x|₁ stays well under 2 %.
            assert!(worst < 0.02, "{m}x{n}x{k}: relative error {worst}");
        }
    }

    #[test]
    fn dequantize_inverts_the_stored_rows() {
        let (l, w) = layer(7, 100, 3);
        let back = l.dequantize();
        let worst = back.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1.0 / 254.0 + 1e-6, "{worst}");
        assert_eq!(l.bias().len(), 7);
    }
}
