//! int8 linear layers for q8 models: the weights stay as stored (int8, one scale per output row),
//! each input row is quantised on the fly to 7-bit unsigned integers with its own scale and zero
//! point, and the products are u7 · i8 → i32 dot products, scaled back to f32 with the bias added:
//!
//! `y[i][j] = bias[j] + sx[i] · sw[j] · (Σ_k ux[i][k] · qw[j][k] − zx[i] · Σ_k qw[j][k])`
//!
//! Why 7-bit unsigned activations: wasm's only one-instruction int8 dot,
//! `i32x4.relaxed_dot_i8x16_i7x16_add_s`, wants its second operand in [0, 127] (V8 lowers it to
//! `vpdpbusd` where the CPU has VNNI, else `pmaddubsw` + `pmaddwd`). With 8-bit activations it
//! took two of them per 16 products (the byte split in two 7-bit halves) and the int8 product was
//! no faster than our f32 one in Chromium (`perf` of the page: the kernel 60 of 78 ms at 1 × 128);
//! with one it is 2.6× faster. The range is asymmetric (`[min, max]` of the row, zero included),
//! so the 127 steps cover what the row holds: GELU outputs (≥ −0.17, the FFN's second matrix)
//! keep the resolution symmetric 8 bits gave them, and LayerNorm outputs, whose outliers sit on
//! one side, lose less than a bit (accuracy against f32 in the README). Every kernel computes the
//! same integers, so native, Node and Chromium agree exactly.
//!
//! The weights are repacked once, at load, so that one SIMD register holds consecutive output
//! columns: `[columns / 16][k / 4][16][4]` (four consecutive k of a column side by side, panels
//! of 16 columns each contiguous over k, so each k-quad of a panel is one 64-byte cache line).
//! Panel-major because a tile walks one panel down all of k: in `[k / 4][columns][4]` its steps
//! were a row of the whole matrix apart (1.5–6 KB), which maps them onto 2–8 of L1's 64 sets, so
//! a panel of 96–384 lines could not stay in L1 and came from L2 at every tile. A kernel then
//! broadcasts four bytes of an input row and multiplies them with 16 (or 8, or 4) columns at
//! once, accumulating each column in its own i32 lane: no horizontal sums in the inner loop, no
//! packing of the activations. Kernels, chosen once per process by what the CPU or build has:
//! - x86-64 with AVX-512 VNNI (`x86.rs`): `vpdpbusd` (u8 × i8, four products summed into each
//!   i32 lane);
//! - x86-64 with AVX2: `vpmaddubsw` (u8 × i8 pairs: 2 · 127 · 128 cannot saturate i16), then
//!   `vpmaddwd` to i32;
//! - wasm relaxed SIMD (the relaxed builds; `simd128.rs`): `i32x4.relaxed_dot_i8x16_i7x16_add_s`
//!   where the engine makes it one instruction (VNNI), else its two steps written out (16-bit
//!   pair sums with `i16x8.relaxed_dot_i8x16_i7x16_s`, widened by a dot with ones), which V8
//!   lowers in fewer instructions than its own two-step sequence;
//! - wasm SIMD128: both operands widened to i16 once (the weights a panel of 8 columns at a
//!   time, reused by every row tile), then `i32x4.dot_i16x8_s` + add; the builds without relaxed
//!   SIMD pack the weights in k-pairs for it instead of quads ([`PAIRS`]);
//! - anything else: plain Rust (`portable`, below), also the reference the others are tested
//!   against (`tests.rs`).
//!
//! k is padded with zeros to a multiple of 4 and the columns to a multiple of [`COL_ALIGN`].
//! Each product is split into one strip per thread: of rows where every thread gets at least
//! [`MIN_ROWS_PER_STRIP`] (each strip quantising its own rows) or the product ends in a per-row
//! epilogue, else of columns (one [CLS] row, short texts).

use core::mem::MaybeUninit;

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::fused::with_f32;

/// Activations are quantised to `[0, ACT_MAX]`.
const ACT_MAX: i32 = 127;

/// Fewest rows per thread for which [`Int8Linear::forward_then`] splits by rows, not columns.
const MIN_ROWS_PER_STRIP: usize = 16;

/// Columns per panel of the packed weights: one k-quad of a panel is a 64-byte cache line.
const PANEL: usize = 16;

/// Bytes from one k-quad of a packed panel to the next (for the kernels that read k-quads).
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
const PANEL_STEP: usize = PANEL * 4;

/// Columns are padded to a multiple of this (the widest register: 16 i32 lanes; a whole panel).
const COL_ALIGN: usize = PANEL;

/// Whether this build packs the weights in k-pairs (`[cols / 8][k / 2][8][2]`) instead of
/// k-quads: wasm SIMD128 without relaxed SIMD (Node 20, browsers without it), whose kernel
/// widens each group of 8 columns to i16 for `i32x4.dot_i16x8_s`, which wants two consecutive k
/// of a column side by side. Packed that way already, the widening is a plain sign extension of
/// a contiguous block; from quads it took a shuffle per register too.
const PAIRS: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128", not(target_feature = "relaxed-simd")));

/// Columns per group of the k-pair packing: two 4-lane registers, the SIMD128 tile's width.
const GROUP: usize = 8;
const _: () = assert!(COL_ALIGN.is_multiple_of(GROUP));

fn padded_k(k: usize) -> usize {
    k.div_ceil(4) * 4
}

/// Where weight `[j][k]` sits in [`Int8Linear::packed`] (`kp` = [`padded_k`]).
#[inline(always)]
fn packed_index(kp: usize, j: usize, k: usize) -> usize {
    index_in(PAIRS, kp, j, k)
}

/// The shape of a packing, `(width, step)`: `[cols / width][kp / step][width][step]`, `step`
/// consecutive k of a column side by side, each group of `width` columns contiguous down k.
/// k-quads in panels of [`PANEL`], or k-pairs in groups of [`GROUP`] where `pairs` ([`PAIRS`]).
#[inline(always)]
fn packing(pairs: bool) -> (usize, usize) {
    if pairs {
        (GROUP, 2)
    } else {
        (PANEL, 4)
    }
}

/// [`packed_index`] in either packing, for the tests of both on any target.
#[inline(always)]
fn index_in(pairs: bool, kp: usize, j: usize, k: usize) -> usize {
    let (width, step) = packing(pairs);
    ((j / width * kp + k) / step * width + j % width) * step + k % step
}

/// A linear layer with int8 weights.
pub struct Int8Linear {
    out_dim: usize,
    in_dim: usize,
    /// `out_dim` rounded up to [`COL_ALIGN`].
    cols: usize,
    /// `[cols / PANEL][padded_k / 4][PANEL][4]` ([`packed_index`]; `[cols / 8][padded_k / 2][8][2]`
    /// where [`PAIRS`]), zeros in the padding.
    packed: Vec<i8>,
    /// Per output column (zero in the padding).
    scale: Vec<f32>,
    /// `Σ_k weight[j][k]`: times a row's zero point, what its offset added to the dot products.
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
                packed[packed_index(kp, j, k)] = v;
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

    /// Layers with the same input side by side, as one layer of `Σ out_dim` outputs (Q, K and V:
    /// the input is quantised once and the pool woken once for all three).
    pub fn stack(parts: &[&Int8Linear]) -> Self {
        let in_dim = parts.first().map_or(0, |l| l.in_dim);
        assert!(parts.iter().all(|l| l.in_dim == in_dim), "stacked int8 layers must share their input size");
        let (mut q, mut scale, mut bias) = (Vec::new(), Vec::new(), Vec::new());
        for l in parts {
            for j in 0..l.out_dim {
                q.extend((0..in_dim).map(|k| l.stored(j, k)));
            }
            scale.extend_from_slice(&l.scale[..l.out_dim]);
            bias.extend_from_slice(l.bias());
        }
        let out_dim = scale.len();
        Int8Linear::new(&q, scale, bias, out_dim, in_dim)
    }

    /// The f32 weight `[out_dim, in_dim]` (for devices without int8 kernels).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.out_dim * self.in_dim];
        for j in 0..self.out_dim {
            for k in 0..self.in_dim {
                w[j * self.in_dim + k] = self.stored(j, k) as f32 * self.scale[j];
            }
        }
        w
    }

    /// The int8 weight `[j][k]` as stored (before packing).
    fn stored(&self, j: usize, k: usize) -> i8 {
        self.packed[packed_index(padded_k(self.in_dim), j, k)]
    }

    pub fn bias(&self) -> &[f32] {
        &self.bias[..self.out_dim]
    }

    /// `x @ Wᵀ + b` for a CPU f32 `x` `[..., in_dim]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_then(x, None)
    }

    /// `GELU(x @ Wᵀ + b)` (erf form): applied to each thread's strip as soon as it is computed,
    /// while it is still in cache, instead of in a pass (and a wake of the pool) of its own.
    pub fn forward_gelu(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_then(x, Some(super::fastmath::gelu_in_place))
    }

    /// `x @ Wᵀ + b`, then `epilogue(i, row)` on each whole output row `i` (residual add and
    /// LayerNorm, which need all of a row's columns). The product is split into strips of rows,
    /// one per thread, so each thread finishes its rows inside the same parallel region: on wasm
    /// threads every region costs a wake-up of the pool (Chromium, q8 1 × 128 on 2 threads).
    /// Each strip quantises its own rows too, in parallel, instead of the caller quantising all
    /// of them before the region.
    pub fn forward_rows(&self, x: &Tensor, epilogue: &(dyn Fn(usize, &mut [f32]) + Sync)) -> candle_core::Result<Tensor> {
        let rows = self.check_input(x)?;
        let (k, kp) = (self.in_dim, padded_k(self.in_dim));
        let write = |out: &mut [MaybeUninit<f32>]| {
            let ptr = OutPtr(out.as_mut_ptr().cast());
            with_f32(x, |x| {
                let run = |i: usize, h: usize| {
                    let qx = QuantRows::new(&x[i * k..(i + h) * k], h, k);
                    // SAFETY: rows `i..i + h` of `out`, which only this strip touches.
                    let c = unsafe { ptr.get().add(i * self.out_dim) };
                    let p = Product { m: h, j: 0, n: self.cols, kp, out_dim: self.out_dim, a: &qx.q, sa: &qx.scale, za: &qx.zero, layer: self, c };
                    unsafe { kernel()(&p) }
                    for r in 0..h {
                        // SAFETY: row r of the strip, which the kernel has just written.
                        epilogue(i + r, unsafe { core::slice::from_raw_parts_mut(c.add(r * self.out_dim), self.out_dim) });
                    }
                };
                match self.row_strip(rows) {
                    Some(strip) => (0..rows.div_ceil(strip)).into_par_iter().for_each(|s| run(s * strip, strip.min(rows - s * strip))),
                    None => run(0, rows),
                }
            })
        };
        // SAFETY: the row strips cover all rows and each writes every element of its rows (see
        // `Product::put`).
        unsafe { self.written_output(rows, x.dims(), write) }
    }

    /// An output `[rows, out_dim]` that `write` fills, uninitialised until then (zeroing it first
    /// was 2–3 % of native q8 time, `perf`, AMD EPYC), as a tensor of the input's leading `dims`.
    ///
    /// # Safety
    /// `write` must initialise every element of the slice it is given whenever it returns `Ok`.
    unsafe fn written_output(&self, rows: usize, dims: &[usize], write: impl FnOnce(&mut [MaybeUninit<f32>]) -> candle_core::Result<()>) -> candle_core::Result<Tensor> {
        let n = rows * self.out_dim;
        let mut out = Vec::with_capacity(n);
        write(&mut out.spare_capacity_mut()[..n])?;
        // SAFETY: `write` initialised all `n` elements (the caller's contract).
        unsafe { out.set_len(n) };
        self.shaped(out, dims)
    }

    /// Rows per thread when `rows` input rows are worth splitting over the pool; `None` for one
    /// thread or a product too small to pay for waking it.
    fn row_strip(&self, rows: usize) -> Option<usize> {
        let threads = rayon::current_num_threads();
        (threads > 1 && rows >= 2 && rows * self.out_dim * self.in_dim >= 1 << 16).then(|| rows.div_ceil(threads))
    }

    /// The number of input rows, or an error naming the mismatch.
    fn check_input(&self, x: &Tensor) -> candle_core::Result<usize> {
        let dims = x.dims();
        if dims.last() != Some(&self.in_dim) {
            candle_core::bail!("int8 linear: input {dims:?}, weight expects {} features", self.in_dim);
        }
        Ok(x.elem_count() / self.in_dim.max(1))
    }

    /// `out` `[rows, out_dim]` as a tensor of the input's leading dimensions.
    fn shaped(&self, out: Vec<f32>, dims: &[usize]) -> candle_core::Result<Tensor> {
        let mut shape = dims.to_vec();
        *shape.last_mut().unwrap() = self.out_dim;
        Tensor::from_vec(out, shape, &Device::Cpu)
    }

    /// Strips of rows (each quantising its own, [`Self::forward_rows`]) where there are enough
    /// rows for every thread to get whole tiles; otherwise the rows are quantised once and the
    /// columns split (a single [CLS] row, short texts).
    fn forward_then(&self, x: &Tensor, epilogue: Option<fn(&mut [f32])>) -> candle_core::Result<Tensor> {
        let rows = self.check_input(x)?;
        if self.row_strip(rows).is_some_and(|strip| strip >= MIN_ROWS_PER_STRIP) {
            return self.forward_rows(x, &|_, row| {
                if let Some(f) = epilogue {
                    f(row)
                }
            });
        }
        let qx = with_f32(x, |x| QuantRows::new(x, rows, self.in_dim))?;
        // SAFETY: the product writes every element of its output (see `Product::put`).
        unsafe {
            self.written_output(rows, x.dims(), |out| {
                self.product_with(kernel(), &qx, rows, out, epilogue);
                Ok(())
            })
        }
    }

    /// `out[i][j] = bias[j] + sx[i] · scale[j] · (ux[i] · weight[j] − zx[i] · col_sum[j])`,
    /// column strips over the pool, `epilogue` applied to each row of each strip. Every element
    /// of `out` (`[m, out_dim]`) is written, so it need not be initialised.
    fn product_with(&self, kernel: Kernel, qx: &QuantRows, m: usize, out: &mut [MaybeUninit<f32>], epilogue: Option<fn(&mut [f32])>) {
        assert_eq!(out.len(), m * self.out_dim, "int8 product: output of the wrong size");
        let threads = rayon::current_num_threads();
        let ptr = OutPtr(out.as_mut_ptr().cast());
        let run = |j: usize, w: usize| {
            let p = Product { m, j, n: w, kp: padded_k(self.in_dim), out_dim: self.out_dim, a: &qx.q, sa: &qx.scale, za: &qx.zero, layer: self, c: ptr.get() };
            // SAFETY: each strip writes only its own columns `j..j + w` of `out`.
            unsafe { kernel(&p) }
            let (end, c) = ((j + w).min(self.out_dim), ptr.get());
            if let (Some(f), true) = (epilogue, j < end) {
                for i in 0..m {
                    // SAFETY: row i's columns of this strip, which only this strip touches and
                    // the kernel has just written.
                    f(unsafe { core::slice::from_raw_parts_mut(c.add(i * self.out_dim + j), end - j) });
                }
            }
        };
        if threads > 1 && m * self.out_dim * self.in_dim >= 1 << 16 {
            let strip = self.cols.div_ceil(threads).div_ceil(COL_ALIGN) * COL_ALIGN;
            (0..self.cols.div_ceil(strip)).into_par_iter().for_each(|s| run(s * strip, strip.min(self.cols - s * strip)));
        } else {
            run(0, self.cols);
        }
    }
}

impl Int8Linear {
    /// [`Self::product_with`] (column strips, no epilogue) into a buffer filled with NaN first,
    /// for the kernel checks and tests: an element a kernel leaves unwritten stays NaN and fails
    /// their comparisons.
    fn product_nan_filled(&self, kernel: Kernel, qx: &QuantRows, m: usize) -> Vec<f32> {
        let mut out = vec![MaybeUninit::new(f32::NAN); m * self.out_dim];
        self.product_with(kernel, qx, m, &mut out, None);
        // SAFETY: every element was initialised (NaN) before the product.
        out.into_iter().map(|v| unsafe { v.assume_init() }).collect()
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
    out_dim: usize,
    a: &'a [u8],
    sa: &'a [f32],
    za: &'a [i32],
    layer: &'a Int8Linear,
    c: *mut f32,
}

impl Product<'_> {
    /// Four bytes of row `i` at k-quad `q`, as one i32.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn quad(&self, i: usize, q: usize) -> i32 {
        (self.a.as_ptr().add(i * self.kp + q * 4) as *const i32).read_unaligned()
    }

    /// Packed weights of k-quad `q`, from column `j` to the end of its panel (at most
    /// `PANEL - j % PANEL` columns); k-quad `q + 1` of the same columns is `PANEL_STEP` bytes on.
    #[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
    #[inline(always)]
    unsafe fn weights(&self, q: usize, j: usize) -> *const i8 {
        self.layer.packed.as_ptr().add(packed_index(self.kp, j, 4 * q))
    }

    /// The packed weights of the group of columns that starts at `j` (a multiple of the
    /// packing's width, [`packing`]), all of k: `[kp / step][width][step]`.
    #[inline(always)]
    unsafe fn group(&self, j: usize) -> *const i8 {
        self.layer.packed.as_ptr().add(packed_index(self.kp, j, 0))
    }

    /// [`Self::weights`] at k-quad 0 for each of `C` registers of `width` columns from `j` (each
    /// within one panel, as `width` divides [`PANEL`]), for a tile to step down k.
    #[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    #[inline(always)]
    unsafe fn panel_starts<const C: usize>(&self, j: usize, width: usize) -> [*const i8; C] {
        core::array::from_fn(|c| self.weights(0, j + c * width))
    }

    /// Four bytes of row `i` at k-quad `q`, in every 32-bit lane (one load, no shuffle).
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    #[inline(always)]
    unsafe fn quad_splat(&self, i: usize, q: usize) -> core::arch::wasm32::v128 {
        core::arch::wasm32::v128_load32_splat(self.a.as_ptr().add(i * self.kp + q * 4) as *const u32)
    }

    /// Writes results for row `i`, columns `j..j + dots.len()`, from their integer dot products.
    /// Written over equal-length slices with no branch inside, so that it vectorises in each
    /// kernel's target features: as a scalar loop with a bounds test per column it was half of
    /// the AVX-512 VNNI kernel's time (`perf`, native q8 1 × 512). The output may be
    /// uninitialised: the kernels tile all `m` rows and all padded columns of their strip, and
    /// this writes each one below `out_dim`, so every element gets written exactly once.
    #[inline(always)]
    unsafe fn put(&self, i: usize, j: usize, dots: &[i32]) {
        let l = self.layer;
        let (s, z) = (self.sa[i], self.za[i]);
        let n = dots.len().min(self.out_dim.saturating_sub(j));
        let out = core::slice::from_raw_parts_mut(self.c.add(i * self.out_dim + j).cast::<MaybeUninit<f32>>(), n);
        let cols = l.bias[j..j + n].iter().zip(&l.scale[j..j + n]).zip(&l.col_sum[j..j + n]);
        for ((o, &d), ((&b, &w), &cs)) in out.iter_mut().zip(&dots[..n]).zip(cols) {
            o.write(b + s * w * (d - z * cs) as f32);
        }
    }
}

/// Activations quantised per row: `x[i][k] ≈ scale[i] · (q[i][k] − zero[i])`, `q` in [0, 127].
struct QuantRows {
    /// `[rows, padded_k]`, zeros in the padding (whose weights are zero too).
    q: Vec<u8>,
    scale: Vec<f32>,
    zero: Vec<i32>,
}

impl QuantRows {
    /// Each row's range `[min, max]`, widened to hold 0 (so the zero point is an integer in
    /// [0, 127] and zero is exact), in 127 steps.
    ///
    /// Written so that the compiler vectorises both passes on every target (`perf`, native q8 at
    /// 1 × 128: this was 13 % of the time as a scalar fold with saturating `as` casts): min and max
    /// in 16 independent lanes, and the rounding by adding 1.5 · 2²³ + zero (the sum's ulp is 1, so
    /// it rounds half to even; exact for |v| < 2²², ours are ≤ 127), after which the integer sits
    /// in the low mantissa bits of the sum — read with integer ops, no float → int conversion
    /// (Rust's saturating `as` is a clamp and a NaN check per value, `round` a libm call).
    fn new(x: &[f32], rows: usize, k: usize) -> Self {
        let kp = padded_k(k);
        let mut q = vec![0u8; rows * kp];
        let mut scale = vec![1f32; rows];
        let mut zero = vec![0i32; rows];
        quantize_rows(x, k, &mut q, &mut scale, &mut zero);
        QuantRows { q, scale, zero }
    }
}

super::fastmath::wide_simd! {
    /// The body of [`QuantRows::new`], compiled for AVX2 where the CPU has it: the SSE2 baseline
    /// has no 32-bit min / max, so the clamp took three instructions per four values and the pass
    /// was 3.5 % of native q8 time (`perf`, AMD EPYC).
    fn quantize_rows(x: &[f32], k: usize, q: &mut [u8], scale: &mut [f32], zero: &mut [i32]) => quantize_rows_body
}

#[inline(always)]
fn quantize_rows_body(x: &[f32], k: usize, q: &mut [u8], scale: &mut [f32], zero: &mut [i32]) {
    let kp = padded_k(k);
    for (((row, dst), s), z) in x.chunks(k).zip(q.chunks_mut(kp)).zip(scale).zip(zero) {
        let (lo, hi) = min_max(row);
        let range = hi - lo;
        if range > 0.0 {
            *s = range / ACT_MAX as f32;
        }
        let inv = 1.0 / *s;
        const MAGIC: f32 = 12_582_912.0; // 1.5 · 2²³
        const MAGIC_BITS: i32 = 0x4B40_0000; // its bit pattern: MAGIC + n has bits MAGIC_BITS + n
        *z = ((-lo * inv + MAGIC).to_bits() as i32 - MAGIC_BITS).clamp(0, ACT_MAX);
        let shifted = MAGIC + *z as f32;
        for (d, v) in dst.iter_mut().zip(row) {
            *d = ((v * inv + shifted).to_bits() as i32 - MAGIC_BITS).clamp(0, ACT_MAX) as u8;
        }
    }
}

/// (min(row ∪ {0}), max(row ∪ {0})), NaNs ignored, in 16 independent lanes.
#[inline(always)]
fn min_max(row: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([0f32; 16], [0f32; 16]);
    let chunks = row.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for ((l, h), &v) in lo.iter_mut().zip(&mut hi).zip(c) {
            *l = if v < *l { v } else { *l };
            *h = if v > *h { v } else { *h };
        }
    }
    // Comparisons, not `f32::min`/`max`: their NaN rule makes them a call to `fminf`/`fmaxf` in
    // wasm (1.2 % of q8 tag time in Node 20 with softmax's `max`, V8's profiler).
    let lo = lo.iter().chain(tail).fold(0f32, |m, &v| if v < m { v } else { m });
    let hi = hi.iter().chain(tail).fold(0f32, |m, &v| if v > m { v } else { m });
    (lo, hi)
}

type Kernel = unsafe fn(&Product);

/// The kernels this CPU / build can run, fastest first.
#[allow(clippy::vec_init_then_push)] // which pushes exist depends on the target
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
        let mut relaxed: [(&'static str, Kernel); 2] = [("relaxed-dot", simd128::relaxed), ("relaxed-pairs", simd128::relaxed_pairs)];
        if simd128::relaxed_dot_is_two_steps() {
            relaxed.reverse();
        }
        out.extend(relaxed);
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    out.push(("simd128", simd128::kernel));
    out.push(("portable", portable));
    out
}

/// The fastest kernel here, detected once: the first of [`available`].
///
/// The order is fixed by what the build and the CPU have, never by timing. In relaxed-SIMD builds
/// what the relaxed dot costs depends on how the engine lowers it: one `vpdpbusd` where V8 sees
/// VNNI (Intel Xeon: q8 at 0.58 × transformers.js against 0.97 × for simd128), five instructions
/// where it does not, and then the pair kernel goes first (`simd128::relaxed_dot_is_two_steps`
/// tells the two apart from the dot's result; Chromium 156, AMD EPYC without VNNI, the kernel 51
/// → 40 ms per 128-token text, measured in the whole model with V8's profiler). An earlier
/// version timed the candidates at the first int8 call; those few calls ran V8's baseline code
/// while the optimising tier compiled in the background (1.4–19 ms for the same product), so it
/// measured the compiler, not the kernels — and an isolated 48 × 384 × 384 product once timed all
/// three formulations alike, which the whole model does not.
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

/// Deterministic int8 weights in [−127, 127] (a multiplicative hash per index), for the kernel
/// check.
fn synthetic_weights(n: usize, k: usize) -> Vec<i8> {
    (0..n * k).map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 as i8).map(|v| v.max(-127)).collect()
}

/// Every kernel this CPU or engine has against the plain-Rust one, on shapes that hit every tile
/// edge and padding: the integer products must be equal, so the outputs are bit for bit. Returns
/// the kernels checked, fastest (the one in use) first. Run by the unit tests natively and, through
/// the wasm API's `int8KernelCheck`, by the JS tests inside each engine (the relaxed-SIMD kernel
/// exists only there).
pub fn check_kernels() -> Result<Vec<&'static str>, String> {
    let mut names = Vec::new();
    for (m, n, k) in [(1, 1, 1), (3, 5, 70), (5, 9, 384), (7, 21, 36), (17, 13, 203), (6, 100, 64), (128, 40, 1536)] {
        let layer = Int8Linear::new(&synthetic_weights(n, k), (0..n).map(|j| 0.01 + j as f32 * 1e-3).collect(), vec![0.5; n], n, k);
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919 % 1013) as f32 / 506.0 - 1.3) * if i % 97 == 0 { 8.0 } else { 1.0 }).collect();
        let qx = QuantRows::new(&x, m, k);
        let run = |kernel: Kernel| layer.product_nan_filled(kernel, &qx, m);
        let want = run(portable);
        if let Some(at) = want.iter().position(|v| v.is_nan()) {
            return Err(format!("the portable int8 kernel left output {at} unwritten at {m}x{n}x{k}"));
        }
        names.clear();
        for (name, kernel) in available() {
            let got = run(kernel);
            if let Some(at) = got.iter().zip(&want).position(|(a, b)| a.to_bits() != b.to_bits()) {
                return Err(format!("int8 kernel {name} differs from the portable one at {m}x{n}x{k}, output {at}: {} vs {}", got[at], want[at]));
            }
            names.push(name);
        }
    }
    Ok(names)
}

unsafe fn portable(p: &Product) {
    let (width, step) = packing(PAIRS);
    let mut dots = vec![0i32; p.n];
    for i in 0..p.m {
        dots.fill(0);
        let a = &p.a[i * p.kp..(i + 1) * p.kp];
        for (g, dots) in dots.chunks_mut(width).enumerate() {
            let w = core::slice::from_raw_parts(p.group(p.j + g * width), p.kp * width);
            for (xs, w) in a.chunks_exact(step).zip(w.chunks_exact(step * width)) {
                for (d, col) in dots.iter_mut().zip(w.chunks_exact(step)) {
                    *d += xs.iter().zip(col).map(|(&x, &v)| x as i32 * v as i32).sum::<i32>();
                }
            }
        }
        p.put(i, p.j, &dots);
    }
}

/// Runs `tile::<R, C>(p, i, j)` over the strip: up to R rows by C registers of `width` columns
/// (R, C ≤ the given maxima, chosen per ISA so that the accumulators stay in registers), smaller
/// tiles at the edges. The strip's width is a multiple of `width` by [`COL_ALIGN`]. `@go` alone
/// dispatches one tile (extra arguments at the end are passed on).
#[allow(unused_macros)] // targets without any SIMD kernel (the portable one does not tile)
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
    (@go $p:ident, $tile:ident, $i:ident, $j:ident, $r:ident, $c:ident, 3, 3 $(, $x:expr)*) => {
        match ($r, $c) {
            (3, 3) => $tile::<3, 3>($p, $i, $j $(, $x)*), (3, 2) => $tile::<3, 2>($p, $i, $j $(, $x)*), (3, _) => $tile::<3, 1>($p, $i, $j $(, $x)*),
            (2, 3) => $tile::<2, 3>($p, $i, $j $(, $x)*), (2, 2) => $tile::<2, 2>($p, $i, $j $(, $x)*), (2, _) => $tile::<2, 1>($p, $i, $j $(, $x)*),
            (_, 3) => $tile::<1, 3>($p, $i, $j $(, $x)*), (_, 2) => $tile::<1, 2>($p, $i, $j $(, $x)*), (_, _) => $tile::<1, 1>($p, $i, $j $(, $x)*),
        }
    };
    (@go $p:ident, $tile:ident, $i:ident, $j:ident, $r:ident, $c:ident, 4, 2 $(, $x:expr)*) => {
        match ($r, $c) {
            (4, 2) => $tile::<4, 2>($p, $i, $j $(, $x)*), (4, _) => $tile::<4, 1>($p, $i, $j $(, $x)*),
            (3, 2) => $tile::<3, 2>($p, $i, $j $(, $x)*), (3, _) => $tile::<3, 1>($p, $i, $j $(, $x)*),
            (2, 2) => $tile::<2, 2>($p, $i, $j $(, $x)*), (2, _) => $tile::<2, 1>($p, $i, $j $(, $x)*),
            (_, 2) => $tile::<1, 2>($p, $i, $j $(, $x)*), (_, _) => $tile::<1, 1>($p, $i, $j $(, $x)*),
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;

#[cfg(test)]
mod tests;
