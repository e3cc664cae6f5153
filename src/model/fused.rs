//! Fused CPU inference kernels for the two blocks that hold nearly all of the encoder's time:
//! a linear layer (bias fused into the matmul) and self-attention (one pass per head).
//!
//! Why not candle's ops: on wasm32 candle always runs its matmul single-threaded (its thread
//! count comes from the environment, which wasm does not have), so with wasm threads only our own
//! kernels can use the pool; and candle's attention makes five full passes over the
//! `[heads, t, t]` scores plus three transposing copies of Q/K/V. Here each head reads Q, K and V
//! straight out of the linear layers' `[b, t, hidden]` output through strides, computes its
//! `[t, t]` scores (scaled) into a per-thread buffer, adds the mask and exponentiates in two passes,
//! multiplies by V and divides by each row's sum, and writes
//! its slice of the `[b, t, hidden]` result: no transposes, heads in parallel (rayon; the wasm
//! thread pool in the threaded builds). The matmuls go through `gemm` like candle's natively, and
//! through our wasm kernels (src/model/wasm_gemm.rs) where they are faster: attention's in every
//! wasm build, the linear layers' in the relaxed-SIMD ones.
//!
//! f32 CPU tensors only; callers fall back to candle's ops otherwise and in training (these have
//! no gradient). Parity with candle's ops is tested below and against PyTorch in
//! tests/encoder_parity.rs.

use candle_core::{DType, Storage, Tensor};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

use super::fastmath::exp_with_bias;

/// Whether `t` can take the fused kernels.
pub fn applies(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// Runs `f` on the f32 data of a contiguous CPU tensor.
pub(super) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(candle_core::CpuStorage::F32(v)), Some((a, b))) => Ok(f(&v[a..b])),
        _ => candle_core::bail!("fused kernels need an f32 CPU tensor, got {:?} on {:?}", t.dtype(), t.device()),
    }
}

/// All of the pool's threads for a matmul big enough to split ([`product`] cuts it into one
/// strip per thread).
pub(super) fn parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `x @ weightᵀ + bias` for `x` `[..., in]`, `weight` `[out, in]` (PyTorch's layout, read
/// transposed through strides), `bias` `[out]`: the bias is written first and the product
/// accumulated onto it.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let (out_dim, in_dim) = weight.dims2()?;
    let dims = x.dims();
    let Some(&last) = dims.last() else { candle_core::bail!("linear: scalar input") };
    if last != in_dim {
        candle_core::bail!("linear: input has {last} features, weight expects {in_dim}");
    }
    let rows = x.elem_count() / in_dim.max(1);
    let mut shape = dims.to_vec();
    *shape.last_mut().unwrap() = out_dim;
    if !cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) && rows <= columns_max_rows() {
        let out = with_f32(x, |x| {
            with_f32(weight, |w| match bias {
                Some(b) => with_f32(b, |b| linear_by_columns(rows, out_dim, in_dim, x, w, Some(b))),
                None => Ok(linear_by_columns(rows, out_dim, in_dim, x, w, None)),
            })
        })???;
        return Tensor::from_vec(out, shape, x.device());
    }
    let mut out = vec![0f32; rows * out_dim];
    if let Some(bias) = bias {
        with_f32(bias, |b| out.chunks_mut(out_dim).for_each(|row| row.copy_from_slice(b)))?;
    }
    with_f32(x, |x| {
        with_f32(weight, |w| unsafe {
            matmul_abt(rows, out_dim, in_dim, x.as_ptr(), in_dim, w.as_ptr(), in_dim, out.as_mut_ptr(), out_dim, 1.0, bias.is_some(), true)
        })
    })??;
    Tensor::from_vec(out, shape, x.device())
}

/// Up to how many rows [`linear`] takes [`linear_by_columns`]: twice the rows of gemm's f32
/// micro-kernel (its MR — 64 with AVX-512, 16 with AVX2, 12 in wasm SIMD128). Measured: native
/// tag, AVX-512 (Zen 4), 1 × 16 and 1 × 128 faster (below), 1 × 512 and 8 × 128 5–15 % slower
/// through it (also in blocks of 64–256 rows: gemm's orientation packs W once for many rows,
/// and the transposes come on top); Node 20's SIMD128 build, f32 tag, per-call ratios against
/// gemm's orientation 0.80 at 16 tokens, 0.84 at 24, 0.89 at 32, about 1 from 64 up. Not on
/// other targets (aarch64 gemm packs the right operand past 2 · MR rows; not measured).
fn columns_max_rows() -> usize {
    #[cfg(target_arch = "x86_64")]
    return if std::arch::is_x86_feature_detected!("avx512f") { 128 } else { 32 };
    #[cfg(target_arch = "wasm32")]
    return 24;
    #[allow(unreachable_code)]
    0
}

/// `x · Wᵀ + bias` (`x` `[rows, k]`, `W` `[out_dim, k]`) computed column-major, then transposed
/// into the row-major result. gemm wants a column-major destination: given the row-major one,
/// it computes the transpose `W · xᵀ`, which makes the weight matrix its left operand, read
/// across rows — and then copies all of W into its packed layout, element by element, on
/// every call (`perf`, native f32 tag, one thread, AMD EPYC Zen 4: that copy was 64 % of a
/// 16-token text and 28 % of a 128-token one). Asked for the column-major result, gemm takes
/// `x` as the left operand and reads W in place, each column of `Wᵀ` contiguous; transposing
/// `x` and the `rows · out_dim` result costs far less. Native f32 tag,
/// one thread, Zen 4: 1 × 16 18.6–18.9 → 9.5–10.4 ms, 1 × 128 48–54 → 39–44 ms. Strips of
/// columns over the pool, as [`product`].
fn linear_by_columns(rows: usize, out_dim: usize, k: usize, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    // x column-major too: gemm copies a row-major left operand into its panels value by value
    // (5.3 % of 1 × 128, `perf`), and reads a column-major one in place; the transpose is cheaper.
    let mut xt = Vec::with_capacity(rows * k);
    // SAFETY: `x` is `[rows][k]`, i.e. `k` columns of `rows` values column-major; `xt` holds
    // `k` rows of `rows`, each written by the transpose before `set_len`.
    unsafe {
        transpose_into(x, k, rows, xt.as_mut_ptr(), rows);
        xt.set_len(rows * k);
    }
    // Not zeroed first (these buffers): that was 2–3 % of 1 × 128 in `memset`.
    let mut out = Vec::with_capacity(rows * out_dim);
    let dst = SendPtr(out.as_mut_ptr());
    let strip = |j: usize, width: usize| {
        #[allow(clippy::redundant_locals)] // moves the whole `SendPtr` into the closure, not its raw (non-Send) field
        let dst = dst;
        let mut cols: Vec<f32> = match bias {
            Some(b) => b[j..j + width].iter().flat_map(|&v| core::iter::repeat_n(v, rows)).collect(),
            None => vec![0.0; rows * width],
        };
        // SAFETY: `cols` is `[width][rows]`, `xt` `[k][rows]`, and columns `j..j + width` of `Wᵀ`
        // are rows `j..j + width` of `w` `[out_dim][k]`.
        unsafe {
            let w = w.as_ptr().add(j * k);
            gemm(rows, width, k, cols.as_mut_ptr(), rows as isize, 1, true, xt.as_ptr(), rows as isize, 1, w, k as isize, 1, 1.0, 1.0, false, false, false, Parallelism::None);
        }
        // SAFETY: columns `j..j + width` of `out` `[rows][out_dim]`, which only this strip writes.
        unsafe { transpose_into(&cols, rows, width, dst.0.add(j), out_dim) };
    };
    let threads = rayon::current_num_threads();
    if worth_splitting(threads, rows * out_dim * k) {
        in_strips(out_dim, threads, 16, strip);
    } else {
        strip(0, out_dim);
    }
    // SAFETY: the strips cover every column and each transpose writes every row of its columns.
    unsafe { out.set_len(rows * out_dim) };
    out
}

/// `out[i · ld + j] = cols[j · rows + i]`: the column-major `[width][rows]` `cols` into rows of
/// `out` (`rows` rows, `ld ≥ width` apart).
///
/// # Safety
/// `out` must address `rows` rows of `ld ≥ width` elements.
unsafe fn transpose_into(cols: &[f32], rows: usize, width: usize, out: *mut f32, ld: usize) {
    assert!(cols.len() >= rows * width, "transpose: {} values for {rows} × {width}", cols.len());
    #[cfg(target_arch = "x86_64")]
    let (full_rows, full_cols) = if std::arch::is_x86_feature_detected!("avx") {
        let (full_rows, full_cols) = (rows / 8 * 8, width / 8 * 8);
        // SAFETY: the CPU has AVX; the blocks lie inside `cols` (asserted above) and `out` (the
        // caller's contract).
        transpose_blocks(cols.as_ptr(), rows, full_rows, full_cols, out, ld);
        (full_rows, full_cols)
    } else {
        (0, 0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (full_rows, full_cols) = (0, 0);
    // Whatever the blocks left: the rows past the last whole block of every column, and every
    // row of the columns past the last whole block (all of it without AVX).
    for j in 0..width {
        let from = if j < full_cols { full_rows } else { 0 };
        for i in from..rows {
            *out.add(i * ld + j) = cols[j * rows + i];
        }
    }
}

/// The whole 8 × 8 blocks of [`transpose_into`]: rows `0..full_rows` of columns `0..full_cols`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_blocks(cols: *const f32, rows: usize, full_rows: usize, full_cols: usize, out: *mut f32, ld: usize) {
    for j in (0..full_cols).step_by(8) {
        for i in (0..full_rows).step_by(8) {
            transpose_8x8(cols.add(j * rows + i), rows, out.add(i * ld + j), ld);
        }
    }
}

/// One 8 × 8 block: eight columns of `src` (`src_ld` apart) into eight rows of `dst` (`dst_ld`
/// apart), in registers: 24 shuffles instead of 64 scalar loads and stores through the stack,
/// which is what the compiler made of the plain loop (transposes 5.9 → 1.9 % of native tag
/// 1 × 128, `perf`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn transpose_8x8(src: *const f32, src_ld: usize, dst: *mut f32, dst_ld: usize) {
    use std::arch::x86_64::*;
    let r: [__m256; 8] = core::array::from_fn(|c| _mm256_loadu_ps(src.add(c * src_ld)));
    // Pairs, then quads, then halves across the two 128-bit lanes.
    let t: [__m256; 8] = [
        _mm256_unpacklo_ps(r[0], r[1]), _mm256_unpackhi_ps(r[0], r[1]),
        _mm256_unpacklo_ps(r[2], r[3]), _mm256_unpackhi_ps(r[2], r[3]),
        _mm256_unpacklo_ps(r[4], r[5]), _mm256_unpackhi_ps(r[4], r[5]),
        _mm256_unpacklo_ps(r[6], r[7]), _mm256_unpackhi_ps(r[6], r[7]),
    ];
    let u: [__m256; 8] = [
        _mm256_shuffle_ps::<0x44>(t[0], t[2]), _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        _mm256_shuffle_ps::<0x44>(t[1], t[3]), _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
        _mm256_shuffle_ps::<0x44>(t[4], t[6]), _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
        _mm256_shuffle_ps::<0x44>(t[5], t[7]), _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
    ];
    for q in 0..4 {
        _mm256_storeu_ps(dst.add(q * dst_ld), _mm256_permute2f128_ps::<0x20>(u[q], u[q + 4]));
        _mm256_storeu_ps(dst.add((q + 4) * dst_ld), _mm256_permute2f128_ps::<0x31>(u[q], u[q + 4]));
    }
}

/// `c = alpha · a · bᵀ (+ c if accumulate)` for row-major `a` `[m, k]` and `b` `[n, k]` with the
/// given row strides: the product of every layer here (`x·Wᵀ`, `q·kᵀ`). `parallel` splits it
/// over the pool's threads.
///
/// # Safety
/// The pointers must address matrices of those shapes and strides.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul_abt(
    m: usize, n: usize, k: usize,
    a: *const f32, lda: usize,
    b: *const f32, ldb: usize,
    c: *mut f32, ldc: usize,
    alpha: f32, accumulate: bool, parallel: bool,
) {
    // Wasm: one column strip per thread, a multiple of the relaxed kernel's 3 columns, each a
    // single-threaded matmul (natively `product` cuts the same strips): gemm's own fine-grained
    // split wakes the pool many times per product, and waking a worker on wasm (atomic
    // wait/notify) is slow: Node, 1×128 on 2 threads, 103 → 65–73 ms.
    let threads = if parallel { rayon::current_num_threads() } else { 1 };
    if cfg!(target_arch = "wasm32") && worth_splitting(threads, m * n * k) {
        let (a, b, c) = (SendPtr(a as *mut f32), SendPtr(b as *mut f32), SendPtr(c));
        in_strips(n, threads, 3, |j, w| {
            let (a, b, c) = (a, b, c);
            matmul_abt_single(m, w, k, a.0, lda, b.0.add(j * ldb), ldb, c.0.add(j), ldc, alpha, accumulate, Parallelism::None);
        });
    } else {
        let split = if parallel && !cfg!(target_arch = "wasm32") { parallelism() } else { Parallelism::None };
        matmul_abt_single(m, n, k, a, lda, b, ldb, c, ldc, alpha, accumulate, split);
    }
}

/// [`matmul_abt`] on the calling thread (or, natively, in strips over the pool as `split` says): the
/// relaxed-SIMD kernel where the build has it, gemm otherwise.
///
/// # Safety
/// As [`matmul_abt`].
#[allow(clippy::too_many_arguments)]
unsafe fn matmul_abt_single(
    m: usize, n: usize, k: usize,
    a: *const f32, lda: usize,
    b: *const f32, ldb: usize,
    c: *mut f32, ldc: usize,
    alpha: f32, accumulate: bool, split: Parallelism,
) {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        let _ = split;
        super::wasm_gemm::matmul_abt(m, n, k, a, lda, b, ldb, c, ldc, alpha, accumulate)
    }
    // rhs[p][j] = b[j][p]
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    product(m, n, k, c, ldc, a, lda, 1, b, 1, ldb, alpha, accumulate, split)
}

/// `dst = alpha · lhs · rhs (+ dst if accumulate)` for `[m, k]` · `[k, n]` matrices given by row and column
/// strides (a transpose is just swapped strides), split over the pool as `split` says.
///
/// # Safety
/// The pointers must address matrices of those shapes and strides.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn product(
    m: usize, n: usize, k: usize,
    dst: *mut f32, dst_rs: usize,
    lhs: *const f32, lhs_rs: usize, lhs_cs: usize,
    rhs: *const f32, rhs_rs: usize, rhs_cs: usize,
    alpha: f32, accumulate: bool, split: Parallelism,
) {
    // One strip of the longer side per thread, each a single-threaded gemm, rather than gemm's
    // own split: that wakes the pool for many small pieces and, with its AVX-512 kernels, cost
    // 1×16 inference on 2 threads 11 → 17 ms; strips made the training step 5–13 % faster and
    // 1×128 inference 34 → 24 ms (Intel Xeon, 2 threads; BENCHMARKS.md, optimisation log).
    // Each output element still sums over k in gemm's order, so results do not depend on it.
    let threads = match split { Parallelism::Rayon(t) => t, _ => 1 };
    if worth_splitting(threads, m * n * k) {
        let by_rows = m >= n;
        let (d, l, r) = (SendPtr(dst), SendPtr(lhs as *mut f32), SendPtr(rhs as *mut f32));
        in_strips(if by_rows { m } else { n }, threads, 16, |at, w| {
            let (d, l, r) = (d, l, r);
            if by_rows {
                product(w, n, k, d.0.add(at * dst_rs), dst_rs, l.0.add(at * lhs_rs), lhs_rs, lhs_cs, r.0, rhs_rs, rhs_cs, alpha, accumulate, Parallelism::None)
            } else {
                product(m, w, k, d.0.add(at), dst_rs, l.0, lhs_rs, lhs_cs, r.0.add(at * rhs_cs), rhs_rs, rhs_cs, alpha, accumulate, Parallelism::None)
            }
        });
        return;
    }
    gemm(
        m, n, k,
        dst, 1, dst_rs as isize, accumulate,
        lhs, lhs_cs as isize, lhs_rs as isize,
        rhs, rhs_cs as isize, rhs_rs as isize,
        if accumulate { 1.0 } else { 0.0 }, alpha, false, false, false,
        split,
    )
}

/// Whether a product of `work` multiply-adds is worth cutting into strips over `threads` threads
/// (below it, waking the pool costs more than it saves): the one rule for every split here.
fn worth_splitting(threads: usize, work: usize) -> bool {
    threads > 1 && work >= 1 << 16
}

/// Calls `f(start, width)` in parallel for `0..len` cut into one strip per thread, each width a
/// multiple of `align` but the last (the split both `matmul_abt` on wasm and `product` use).
fn in_strips(len: usize, threads: usize, align: usize, f: impl Fn(usize, usize) + Send + Sync) {
    let strip = len.div_ceil(threads).div_ceil(align) * align;
    (0..len.div_ceil(strip)).into_par_iter().for_each(|s| f(s * strip, strip.min(len - s * strip)));
}

/// A raw pointer that may cross threads: each head writes a disjoint set of columns.
#[derive(Clone, Copy)]
pub(super) struct SendPtr(pub(super) *mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Multi-head self-attention for `q` `[b, n, heads·head_dim]`, `k`, `v` `[b, t, heads·head_dim]`
/// (heads side by side, as the linear layers produce them; n ≤ t: the queries of the first n
/// positions, all t in an ordinary layer) and an additive key bias `mask_bias` `[b, t]` (0 or a
/// large negative number): `softmax(q kᵀ / √d + bias) v` per head, returned as
/// `[b, n, heads·head_dim]`.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask_bias: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (b, n, hidden) = q.dims3()?;
    let t = k.dim(1)?;
    if k.dims() != v.dims() || k.dims() != [b, t, hidden] || n > t {
        candle_core::bail!("attention: q {:?}, k {:?}, v {:?} do not fit together", q.dims(), k.dims(), v.dims());
    }
    let out = with_f32(q, |q| {
        with_f32(k, |k| {
            with_f32(v, |v| {
                with_f32(mask_bias, |bias| {
                    let (queries, keys) = (Rows { t: n, stride: hidden, per_sequence: n }, Rows { t, stride: hidden, per_sequence: t });
                    attend([q, k, v], queries, keys, (b, hidden), bias, heads)
                })
            })
        })
    })?????;
    Tensor::from_vec(out, (b, n, hidden), q.device())
}

/// [`attention`] for Q, K and V side by side in one `[b, t, 3·hidden]` tensor, as the stacked
/// int8 projection produces them (read through strides, no copies), for the queries of the
/// first `queries` positions of each sequence (`t` for all): `[b, queries, hidden]`.
pub fn attention_stacked(qkv: &Tensor, mask_bias: &Tensor, heads: usize, queries: usize) -> candle_core::Result<Tensor> {
    let (b, t, three) = qkv.dims3()?;
    if three % 3 != 0 || queries > t {
        candle_core::bail!("attention: stacked q, k, v {:?}: last dimension is not a multiple of 3, or fewer than {queries} rows", qkv.dims());
    }
    let hidden = three / 3;
    // Every sequence holds t rows of Q, of which the first `queries` are read.
    let (q_rows, keys) = (Rows { t: queries, stride: three, per_sequence: t }, Rows { t, stride: three, per_sequence: t });
    let out = with_f32(qkv, |x| with_f32(mask_bias, |bias| attend([x, &x[hidden..], &x[2 * hidden..]], q_rows, keys, (b, hidden), bias, heads)))???;
    Tensor::from_vec(out, (b, queries, hidden), qkv.device())
}

/// The kernel of both: row `i` of head `h` of Q starts at
/// `q[(batch · queries.per_sequence + i) · queries.stride + h · d]`, and likewise for K and V
/// with `keys`.
fn attend(
    [q, k, v]: [&[f32]; 3],
    queries: Rows,
    keys: Rows,
    (b, hidden): (usize, usize),
    bias: &[f32],
    heads: usize,
) -> candle_core::Result<Vec<f32>> {
    let t = keys.t;
    if bias.len() != b * t || heads == 0 || hidden % heads != 0 {
        candle_core::bail!("attention: [{b}, {t}, {hidden}] with a mask of {} values and {heads} heads do not fit together", bias.len());
    }
    let d = hidden / heads;
    let scale = 1.0 / (d as f32).sqrt();
    let n = queries.t;
    let mut out = vec![0f32; b * n * hidden];
    let dst = SendPtr(out.as_mut_ptr());
    (0..b * heads).into_par_iter().for_each_init(
        || [Vec::new(), Vec::new(), Vec::new(), Vec::new()],
        |[scores, sums, kt, vp], job| {
            let (batch, head) = (job / heads, job % heads);
            let qa = batch * queries.per_sequence * queries.stride + head * d;
            let ka = batch * keys.per_sequence * keys.stride + head * d;
            #[allow(clippy::redundant_locals)] // the whole `SendPtr`, as above
            let dst = dst;
            // SAFETY: this head's columns of this batch's rows of `out`, which only this job writes.
            unsafe {
                let out = dst.0.add(batch * n * hidden + head * d);
                head_attention(d, queries, keys, [&q[qa..], &k[ka..], &v[ka..]], scale, &bias[batch * t..(batch + 1) * t], out, hidden, [scores, sums, kt, vp])
            }
        },
    );
    Ok(out)
}

/// `t` rows, `stride` values apart, of the `per_sequence` rows each sequence holds.
#[derive(Clone, Copy)]
struct Rows {
    t: usize,
    stride: usize,
    per_sequence: usize,
}

/// Query rows per block of the wasm builds' [`head_attention`].
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
const QUERY_BLOCK: usize = 16;

/// One head of `d` columns: `out[i][c] = Σ_j softmax_j(scale · q_i · k_j + bias_j) · v[j][c]`
/// for the `queries.t` query rows against the `keys.t` key rows (`out` rows `ldo` apart). The
/// softmax's exps go into the second product undivided and each query's d outputs are divided by
/// its sum afterwards: one pass over the `[t, t]` scores fewer, and the sum taken in the exp's
/// pass (native q8 tag at 1 × 512, one thread, AMD EPYC Zen 4, `perf`: softmax 14.5 → 10.8 % of
/// samples). Natively both products go through gemm. The wasm builds use
/// [`super::wasm_gemm::matmul_ab`] for both, broadcasts along rows of the right operand: Q times
/// Kᵀ packed per head into `[d, ld]` (`kt`), then P times V packed per head into `[t, d]` (`vp`).
/// (Dot products along rows cost as much in horizontal sums as in products at MiniLM's head size
/// 32, and gemm packs both operands of these small products first.) V packed because its rows
/// sit a stacked Q|K|V row apart (4.6 KB in MiniLM), which maps all of a head's rows onto 8 of
/// L1's 64 sets, so every query pair re-read them from L2: Node 20 q8 tag, one thread, AMD EPYC
/// Zen 4, both builds in one process, calls interleaved: 1 × 128 −1.7 to −1.9 %, 1 × 512 −2.1
/// to −2.9 % (classify 1 × 128 unchanged).
/// The queries go in blocks of [`QUERY_BLOCK`] rows through all three passes (scores, exps,
/// P·V), so the scratch is 16 rows of scores, not `[t, t]` (1 MB per thread at 512 tokens);
/// the same speed within noise.
///
/// # Safety
/// `out` must address `queries.t` rows of `d` values, `ldo` apart.
#[allow(clippy::too_many_arguments)]
unsafe fn head_attention(
    d: usize,
    queries: Rows,
    keys: Rows,
    [q, k, v]: [&[f32]; 3],
    scale: f32,
    key_bias: &[f32],
    out: *mut f32,
    ldo: usize,
    [scores, sums, kt, vp]: [&mut Vec<f32>; 4],
) {
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let _ = (&kt, &vp);
    let (n, t) = (queries.t, keys.t);
    // scores[i][j] = scale · Σ_c q[i][c] k[j][c], rows `ld` apart.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use super::wasm_gemm::{matmul_ab, AB_COLS};
        // Kᵀ's rows padded with zeros to whole blocks, so that every column goes through the
        // block kernel; the padding's scores are never read.
        let ld = t.div_ceil(AB_COLS) * AB_COLS;
        kt.resize(d * ld, 0.0);
        for (p, row) in kt.chunks_mut(ld).enumerate() {
            for (j, x) in row[..t].iter_mut().enumerate() {
                *x = k[j * keys.stride + p];
            }
            row[t..].fill(0.0);
        }
        vp.clear();
        for j in 0..t {
            vp.extend_from_slice(&v[j * keys.stride..j * keys.stride + d]);
        }
        scores.resize(QUERY_BLOCK.min(n) * ld, 0.0);
        for i0 in (0..n).step_by(QUERY_BLOCK) {
            let rows = QUERY_BLOCK.min(n - i0);
            matmul_ab(rows, ld, d, q.as_ptr().add(i0 * queries.stride), queries.stride, kt.as_ptr(), ld, scores.as_mut_ptr(), ld, scale);
            sums.clear();
            sums.extend(scores.chunks_mut(ld).take(rows).map(|row| exp_with_bias(&mut row[..t], key_bias)));
            let out = out.add(i0 * ldo);
            matmul_ab(rows, d, t, scores.as_ptr(), ld, vp.as_ptr(), d, out, ldo, 1.0);
            divide_rows(out, ldo, d, sums);
        }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        scores.resize(n * t, 0.0);
        matmul_abt(n, t, d, q.as_ptr(), queries.stride, k.as_ptr(), keys.stride, scores.as_mut_ptr(), t, scale, false, false);
        sums.clear();
        sums.extend(scores.chunks_mut(t).map(|row| exp_with_bias(row, key_bias)));
        // out[i][c] = Σ_j e[i][j] v[j][c]
        gemm(n, d, t, out, 1, ldo as isize, false, scores.as_ptr(), 1, t as isize, v.as_ptr(), 1, keys.stride as isize, 0.0, 1.0, false, false, false, Parallelism::None);
        divide_rows(out, ldo, d, sums);
    }
}

/// The softmax's division, on each query's d outputs instead of its t probabilities.
unsafe fn divide_rows(out: *mut f32, ldo: usize, d: usize, sums: &[f32]) {
    for (i, &s) in sums.iter().enumerate() {
        let inv = 1.0 / s;
        core::slice::from_raw_parts_mut(out.add(i * ldo), d).iter_mut().for_each(|o| *o *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    /// Both ways through `linear` (column-major up to `columns_max_rows()` rows, gemm's own
    /// orientation above), on one thread and in column strips over three, with and without a
    /// bias, against candle's matmul.
    #[test]
    fn linear_equals_candle() {
        let dev = Device::Cpu;
        let pools = [1, 3].map(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap());
        for rows in [0, 1, 14, columns_max_rows(), columns_max_rows() + 1, 150] {
            for out_dim in [40, 203] {
                let x = Tensor::randn(0f32, 1., (1, rows, 24), &dev).unwrap();
                let w = Tensor::randn(0f32, 1., (out_dim, 24), &dev).unwrap();
                let b = Tensor::randn(0f32, 1., out_dim, &dev).unwrap();
                let product = x.broadcast_matmul(&w.t().unwrap()).unwrap();
                let with_bias = product.broadcast_add(&b).unwrap();
                for pool in &pools {
                    let (run, threads) = (|bias| pool.install(|| linear(&x, &w, bias)).unwrap(), pool.current_num_threads());
                    if rows == 0 {
                        assert_eq!(run(Some(&b)).dims(), [1, 0, out_dim]);
                        continue;
                    }
                    assert!(max_diff(&run(Some(&b)), &with_bias) < 1e-4, "{rows} × {out_dim}, {threads} threads, bias");
                    assert!(max_diff(&run(None), &product) < 1e-4, "{rows} × {out_dim}, {threads} threads");
                }
            }
        }
        let (x, b) = (Tensor::randn(0f32, 1., (2, 7, 24), &dev).unwrap(), Tensor::randn(0f32, 1., 40, &dev).unwrap());
        assert!(linear(&x, &b.reshape((40, 1)).unwrap(), None).is_err());
    }

    /// Strips over the pool give the same bits as one gemm call, for row and column strips,
    /// both operand layouts, accumulation, and lengths that are not a multiple of the strip.
    #[test]
    fn product_in_strips_equals_one_call() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let mut seed = 7u32;
        let mut random = |n: usize| -> Vec<f32> {
            (0..n).map(|_| { seed = seed.wrapping_mul(1664525).wrapping_add(1013904223); (seed >> 8) as f32 / (1 << 24) as f32 - 0.5 }).collect()
        };
        for (m, n, k) in [(130, 40, 33), (20, 203, 64), (67, 67, 50)] {
            let (lhs, rhs, start) = (random(m * k), random(k * n), random(m * n));
            for (lhs_rs, lhs_cs, rhs_rs, rhs_cs) in [(k, 1, n, 1), (1, m, 1, k)] {
                for accumulate in [false, true] {
                    let run = |split| {
                        let mut dst = start.clone();
                        pool.install(|| unsafe {
                            product(m, n, k, dst.as_mut_ptr(), n, lhs.as_ptr(), lhs_rs, lhs_cs, rhs.as_ptr(), rhs_rs, rhs_cs, 0.5, accumulate, split)
                        });
                        dst
                    };
                    assert_eq!(run(Parallelism::Rayon(3)), run(Parallelism::None), "{m}×{n}×{k}, accumulate {accumulate}");
                }
            }
        }
    }

    #[test]
    fn attention_equals_candle() {
        let dev = Device::Cpu;
        let (b, t, heads, d) = (2, 9, 3, 8);
        let [q, k, v] = [0, 1, 2].map(|_| Tensor::randn(0f32, 1., (b, t, heads * d), &dev).unwrap());
        // The second sequence has 4 padded keys.
        let mask = Tensor::from_vec(
            (0..b * t).map(|i| if i >= t + 5 { f32::MIN } else { 0.0 }).collect::<Vec<_>>(),
            (b, t),
            &dev,
        )
        .unwrap();
        let split = |x: &Tensor| x.reshape((b, t, heads, d)).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
        let (qh, kh, vh) = (split(&q), split(&k), split(&v));
        let scores = (qh.matmul(&kh.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
        let scores = scores.broadcast_add(&mask.reshape((b, 1, 1, t)).unwrap()).unwrap();
        let probs = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
        let want = probs.matmul(&vh).unwrap().transpose(1, 2).unwrap().reshape((b, t, heads * d)).unwrap();
        let got = attention(&q, &k, &v, &mask, heads).unwrap();
        assert!(max_diff(&got, &want) < 1e-5, "max |Δ| {}", max_diff(&got, &want));
        assert!(attention(&q, &k, &v, &mask, 5).is_err());
        // Q, K and V side by side in one tensor (the stacked int8 projection) give the same bits.
        let qkv = Tensor::cat(&[&q, &k, &v], 2).unwrap();
        let stacked: Vec<f32> = attention_stacked(&qkv, &mask, heads, t).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(stacked, got.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        assert!(attention_stacked(&q.narrow(2, 0, 23).unwrap(), &mask, heads, t).is_err());
        // The queries of the first positions only (the [CLS]-only last layer): the same rows.
        for n in [1, 4] {
            let want = got.narrow(1, 0, n).unwrap();
            let first = attention(&q.narrow(1, 0, n).unwrap(), &k, &v, &mask, heads).unwrap();
            assert!(max_diff(&first, &want) < 1e-6, "first {n}: max |Δ| {}", max_diff(&first, &want));
            let first = attention_stacked(&qkv, &mask, heads, n).unwrap();
            assert!(max_diff(&first, &want) < 1e-6, "stacked, first {n}: max |Δ| {}", max_diff(&first, &want));
        }
        assert!(attention_stacked(&qkv, &mask, heads, t + 1).is_err());
        assert!(attention(&k, &q.narrow(1, 0, 4).unwrap(), &v, &mask, heads).is_err());
    }
}
