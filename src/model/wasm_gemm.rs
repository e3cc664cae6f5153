//! The wasm SIMD matmul kernels: `C = α·A·Bᵀ (+ C)` (linear layers, [`matmul_abt`]) with
//! relaxed SIMD's fused multiply-add (`f32x4.relaxed_madd`), in the builds compiled with
//! `+relaxed-simd` (browsers that have it; see scripts/build-pkg.sh), and `C = α·A·B`
//! (attention, [`matmul_ab`]) in every wasm build, fused where relaxed SIMD is there.
//!
//! Why our own kernel: gemm's simd128 kernel has to multiply and add separately (plain simd128
//! has no FMA), so the inner loop issues twice the arithmetic instructions; engines lower
//! `relaxed_madd` to one FMA on x86-64 with FMA and on ARM64. In a linear layer both operands
//! are contiguous along the summed dimension (`x·Wᵀ` with PyTorch's `[out, in]` weights), so
//! [`matmul_abt`] is a block of dot products: no packing. 3×3 blocks: nine accumulators plus six
//! loaded vectors fit the 16 SIMD registers of x86-64. Attention's sums are short (the head
//! size), where horizontal sums would cost as much as the products: [`matmul_ab`] broadcasts, and
//! needs no packing either, which makes it faster than gemm also without FMA (Node 20's
//! profiler, q8 MiniLM, all shapes: attention 3.1 → 2.4 s of samples).
//!
//! "Relaxed" means an engine may round the product before adding (no FMA) — results then equal
//! the plain-SIMD ones; either way they agree with PyTorch within the parity tests' tolerance.

// BLAS-style signatures (sizes, then each matrix's pointer and stride), and tile loops that
// index the accumulator grid `acc[row][register]` as the tile is laid out.
#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::wasm32::*;

#[cfg(target_feature = "relaxed-simd")]
const MR: usize = 3;
#[cfg(target_feature = "relaxed-simd")]
const NR: usize = 3;

/// `a · b + c`: one fused multiply-add where the build has relaxed SIMD, else two instructions.
#[inline(always)]
fn madd(a: v128, b: v128, c: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    return f32x4_relaxed_madd(a, b, c);
    #[cfg(not(target_feature = "relaxed-simd"))]
    f32x4_add(f32x4_mul(a, b), c)
}

/// `c[i·ldc + j] = alpha · Σ_p a[i·lda + p] · b[j·ldb + p] (+ c[i·ldc + j] if accumulate)`
/// for i < m, j < n, p < k.
///
/// # Safety
/// The pointers must address the strided matrices described (reads of `a`, `b`; writes of `c`).
#[cfg(target_feature = "relaxed-simd")]
pub unsafe fn matmul_abt(
    m: usize, n: usize, k: usize,
    a: *const f32, lda: usize,
    b: *const f32, ldb: usize,
    c: *mut f32, ldc: usize,
    alpha: f32, accumulate: bool,
) {
    // Columns outermost: the NR rows of B stay in L1 while all of A streams past (A, at most a
    // few hundred KB for these shapes, stays in L2).
    for j in (0..n).step_by(NR) {
        let nr = NR.min(n - j);
        for i in (0..m).step_by(MR) {
            let mr = MR.min(m - i);
            let (a, b, c) = (a.add(i * lda), b.add(j * ldb), c.add(i * ldc + j));
            macro_rules! go {
                ($($r:literal, $c:literal);*) => {
                    match (mr, nr) {
                        $(($r, $c) => block::<$r, $c>(k, a, lda, b, ldb, c, ldc, alpha, accumulate),)*
                        _ => unreachable!(),
                    }
                };
            }
            go!(1, 1; 1, 2; 1, 3; 2, 1; 2, 2; 2, 3; 3, 1; 3, 2; 3, 3);
        }
    }
}

#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn block<const R: usize, const C: usize>(
    k: usize,
    a: *const f32, lda: usize,
    b: *const f32, ldb: usize,
    c: *mut f32, ldc: usize,
    alpha: f32, accumulate: bool,
) {
    let mut acc = [[f32x4_splat(0.0); C]; R];
    let mut p = 0;
    while p + 4 <= k {
        let av: [v128; R] = core::array::from_fn(|r| v128_load(a.add(r * lda + p) as *const v128));
        let bv: [v128; C] = core::array::from_fn(|q| v128_load(b.add(q * ldb + p) as *const v128));
        for r in 0..R {
            for q in 0..C {
                acc[r][q] = f32x4_relaxed_madd(av[r], bv[q], acc[r][q]);
            }
        }
        p += 4;
    }
    for r in 0..R {
        for q in 0..C {
            let v = acc[r][q];
            let mut s = (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
                + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v));
            for t in p..k {
                s += *a.add(r * lda + t) * *b.add(q * ldb + t);
            }
            let out = c.add(r * ldc + q);
            *out = if accumulate { *out + alpha * s } else { alpha * s };
        }
    }
}

/// Columns per block of [`matmul_ab`]: four registers.
pub const AB_COLS: usize = 16;

/// `c[i·ldc + j] = alpha · Σ_p a[i·lda + p] · b[p·ldb + j]` for i < m, j < n, p < k (`c`
/// overwritten): `b` read along its rows, so each step is a broadcast of one `a` value times
/// four loaded vectors of `b`, and results leave as whole vectors — no horizontal sums. For
/// attention, where [`matmul_abt`]'s dot products are short (k = head size, 32 in MiniLM) its
/// nine horizontal sums per block cost as much as the products, and P·V needed V transposed.
/// Blocks of 2 rows × 16 columns: eight accumulators, four vectors of `b` and a broadcast, 13 of
/// V8's 15 xmm registers. Columns past the last whole block are summed one at a time.
///
/// # Safety
/// The pointers must address the strided matrices described (reads of `a`, `b`; writes of `c`).
pub unsafe fn matmul_ab(
    m: usize, n: usize, k: usize,
    a: *const f32, lda: usize,
    b: *const f32, ldb: usize,
    c: *mut f32, ldc: usize,
    alpha: f32,
) {
    let whole = n / AB_COLS * AB_COLS;
    for j in (0..whole).step_by(AB_COLS) {
        let mut i = 0;
        while i + 2 <= m {
            row_block::<2>(k, a.add(i * lda), lda, b.add(j), ldb, c.add(i * ldc + j), ldc, alpha);
            i += 2;
        }
        if i < m {
            row_block::<1>(k, a.add(i * lda), lda, b.add(j), ldb, c.add(i * ldc + j), ldc, alpha);
        }
    }
    for i in 0..m {
        for j in whole..n {
            let s: f32 = (0..k).map(|p| *a.add(i * lda + p) * *b.add(p * ldb + j)).sum();
            *c.add(i * ldc + j) = alpha * s;
        }
    }
}

#[inline(always)]
unsafe fn row_block<const R: usize>(
    k: usize,
    a: *const f32, lda: usize,
    b: *const f32, ldb: usize,
    c: *mut f32, ldc: usize,
    alpha: f32,
) {
    const C: usize = AB_COLS / 4;
    let mut acc = [[f32x4_splat(0.0); C]; R];
    for p in 0..k {
        let bv: [v128; C] = core::array::from_fn(|q| v128_load(b.add(p * ldb + q * 4) as *const v128));
        for r in 0..R {
            let av = v128_load32_splat(a.add(r * lda + p) as *const u32);
            for q in 0..C {
                acc[r][q] = madd(av, bv[q], acc[r][q]);
            }
        }
    }
    let scale = f32x4_splat(alpha);
    for r in 0..R {
        for q in 0..C {
            v128_store(c.add(r * ldc + q * 4) as *mut v128, f32x4_mul(acc[r][q], scale));
        }
    }
}
