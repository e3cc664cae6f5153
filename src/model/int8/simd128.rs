//! The wasm int8 kernels: SIMD128 (`i32x4.dot_i16x8_s` on operands widened once) and relaxed
//! SIMD (`i32x4.relaxed_dot_i8x16_i7x16_add_s`, or its two steps where the engine splits it).

// A tile's loops index its accumulator grid `acc[row][register]` by row and register, the
// layout of the tile itself.
#![allow(clippy::needless_range_loop)]

#[cfg(target_feature = "relaxed-simd")]
use super::PANEL_STEP;
use super::{Product, GROUP, PAIRS};
use core::arch::wasm32::*;

/// Columns per widened panel: 2 registers of 4, in tiles of 4 rows: 8 accumulators, 2 weight
/// registers, 4 broadcasts and the dot's temporary fit the 15 xmm registers V8 allocates on
/// x86-64. (3 × 3 needs 16: Node 20 spilled an accumulator to the stack every step.)
const WIDE: usize = GROUP;
const ROWS: usize = 4;

/// [`Product::put`] for one register of four columns, from the register: the same operations
/// in the same order (so the same bits), without the store to the stack and the reload.
#[inline(always)]
unsafe fn put4(p: &Product, i: usize, j: usize, dots: v128) {
    if j + 4 > p.out_dim {
        let mut d = [0i32; 4];
        v128_store(d.as_mut_ptr() as *mut v128, dots);
        return p.put(i, j, &d);
    }
    let l = p.layer;
    let load = |v: &[f32]| v128_load(v.as_ptr().add(j) as *const v128);
    let d = i32x4_sub(dots, i32x4_mul(i32x4_splat(p.za[i]), v128_load(l.col_sum.as_ptr().add(j) as *const v128)));
    let sw = f32x4_mul(f32x4_splat(p.sa[i]), load(&l.scale));
    v128_store(p.c.add(i * p.out_dim + j) as *mut v128, f32x4_add(load(&l.bias), f32x4_mul(sw, f32x4_convert_i32x4(d))));
}

/// `i32x4.dot_i16x8_s` wants 16-bit operands, and widening them inside the inner loop (two
/// extends per weight register, one per broadcast, plus a horizontal sum per tile) cost as
/// many instructions as the products (`bench/js/profile.mjs`: 62 of 75 ms per 128-token text
/// in Node 20, the same for every tile shape). So both operands are widened once: the row
/// block's activations per strip, and each panel of 8 weight columns into `[k / 2][8][2]`
/// (two consecutive k of a column side by side), reused by every row tile. One dot then gives
/// each of 4 columns its next two products, and the inner loop is a load per weight register,
/// a broadcast per row and a dot + add per accumulator.
pub unsafe fn kernel(p: &Product) {
    let a16: Vec<i16> = p.a[..p.m * p.kp].iter().map(|&v| v as i16).collect();
    let mut panel = vec![0i16; p.kp * WIDE];
    let mut j = p.j;
    while j < p.j + p.n {
        let regs = ((p.j + p.n - j) / 4).min(WIDE / 4);
        if PAIRS {
            // Packed as `[k / 2][8][2]` already (strips are whole groups): a sign extension.
            let group = core::slice::from_raw_parts(p.group(j), p.kp * GROUP);
            panel.iter_mut().zip(group).for_each(|(w, &v)| *w = v as i16);
        } else {
            widen_panel(p, j, regs, &mut panel);
        }
        let mut i = 0;
        while i < p.m {
            let rows = (p.m - i).min(ROWS);
            tiles!(@go p, tile, i, j, rows, regs, 4, 2, &a16, &panel);
            i += rows;
        }
        j += regs * 4;
    }
}

/// Columns `j..j + 4 · regs` of the packed weights (i8, four k of a column side by side) into
/// `panel` as `[k / 2][4 · regs][2]` i16. A 16-byte load holds 4 columns × 4 k; widened, its halves hold
/// columns 0–1 and 2–3, and the even / odd 32-bit lanes of the two are k 0–1 / k 2–3 of all four.
#[inline(always)]
unsafe fn widen_panel(p: &Product, j: usize, regs: usize, panel: &mut [i16]) {
    let w = regs * 4;
    let out = panel.as_mut_ptr();
    for q in 0..p.kp / 4 {
        for c in 0..regs {
            let v = v128_load(p.weights(q, j + c * 4) as *const v128);
            let (lo, hi) = (i16x8_extend_low_i8x16(v), i16x8_extend_high_i8x16(v));
            v128_store(out.add((2 * q * w + c * 4) * 2) as *mut v128, i32x4_shuffle::<0, 2, 4, 6>(lo, hi));
            v128_store(out.add(((2 * q + 1) * w + c * 4) * 2) as *mut v128, i32x4_shuffle::<1, 3, 5, 7>(lo, hi));
        }
    }
}

/// R rows × C·4 columns: rows `i..` of the widened activations `a` against the widened panel
/// `b` of columns `j..` (C registers wide).
#[inline(always)]
unsafe fn tile<const R: usize, const C: usize>(p: &Product, i: usize, j: usize, a: &[i16], b: &[i16]) {
    let (a, b) = (a.as_ptr().add(i * p.kp), b.as_ptr());
    let mut acc = [[i32x4_splat(0); C]; R];
    for kk in 0..p.kp / 2 {
        let bv: [v128; C] = core::array::from_fn(|c| v128_load(b.add((kk * C + c) * 8) as *const v128));
        for r in 0..R {
            let av = v128_load32_splat(a.add(r * p.kp + kk * 2) as *const u32);
            for c in 0..C {
                acc[r][c] = i32x4_add(acc[r][c], i32x4_dot_i16x8(av, bv[c]));
            }
        }
    }
    for r in 0..R {
        for c in 0..C {
            put4(p, i + r, j + c * 4, acc[r][c]);
        }
    }
}

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

/// Whether this engine lowers the accumulating relaxed dot as two steps through 16 bits
/// (`pmaddubsw`, then `pmaddwd` by ones: x86-64 without VNNI), where [`relaxed_pairs`] runs
/// the same two multiplies in fewer instructions. Told from what it does outside the range
/// the proposal defines, which differs by lowering and needs no timing: 255 · 127 four times
/// is 129 540 with `vpdpbusd` (VNNI: one instruction, the faster kernel there), −508 where
/// the bytes are signed (ARM's `sdot`, AVX-VNNI-INT8), and 2 · 32 767 when each pair
/// saturates in 16 bits first.
#[cfg(target_feature = "relaxed-simd")]
pub fn relaxed_dot_is_two_steps() -> bool {
    let (w, a) = (core::hint::black_box(i8x16_splat(127)), core::hint::black_box(u8x16_splat(255)));
    let r = i32x4_relaxed_dot_i8x16_i7x16_add(w, a, i32x4_splat(0));
    i32x4_extract_lane::<0>(r) == 2 * i16::MAX as i32
}

/// The relaxed-SIMD builds: `i32x4.relaxed_dot_i8x16_i7x16_add_s`, 16 products a step into
/// four i32 lanes, no widening and no horizontal sums. Its second operand must have the top
/// bit clear: the activations, in [0, 127] by construction.
#[cfg(target_feature = "relaxed-simd")]
pub unsafe fn relaxed(p: &Product) {
    tiles!(p, tile_relaxed, 4, rows 3, regs 3); // 9 accumulators, 3 weight registers, 1 broadcast: 13 of the 15 xmm V8 allocates on x86-64
}

/// The relaxed builds where the engine lowers the relaxed dot in two steps
/// ([`relaxed_dot_is_two_steps`]): the 16-bit pair sums (`i16x8.relaxed_dot_i8x16_i7x16_s`,
/// one `pmaddubsw`; u7 · i8 pairs cannot saturate), widened by a dot with a register of ones
/// (`pmaddwd`) and added: three instructions per 16 products, where V8's lowering of the
/// accumulating dot takes five (it rebuilds its vector of ones each time). Chromium 156,
/// AMD EPYC (Zen 3), q8 1 × 128 on one thread, V8's profiler: the kernel 51–52 → 40–41 ms
/// per text. 4 rows × 2 registers (8 accumulators) measured 1–2 ms faster than 2 × 4 or
/// 3 × 3.
#[cfg(target_feature = "relaxed-simd")]
pub unsafe fn relaxed_pairs(p: &Product) {
    tiles!(p, tile_relaxed_pairs, 4, rows 4, regs 2);
}

#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn tile_relaxed_pairs<const R: usize, const C: usize>(p: &Product, i: usize, j: usize) {
    // Through `black_box`, so that the ones reach the loop as a value in a register: as a
    // constant, V8 13 (Node 24) rebuilds the vector before every `pmaddwd` — a load to a
    // general register, a move and a shuffle, three instructions per 16 products.
    let ones = core::hint::black_box(i16x8_splat(1));
    tile_with::<R, C>(p, i, j, move |w, a, acc| i32x4_add(acc, i32x4_dot_i16x8(i16x8_relaxed_dot_i8x16_i7x16(w, a), ones)));
}

#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn tile_relaxed<const R: usize, const C: usize>(p: &Product, i: usize, j: usize) {
    tile_with::<R, C>(p, i, j, |w, a, acc| i32x4_relaxed_dot_i8x16_i7x16_add(w, a, acc));
}

/// R rows × C·4 columns of the packed weights, `step(weights, activations, acc)` adding 16
/// products (four k of four columns) into each column's i32 lane.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn tile_with<const R: usize, const C: usize>(p: &Product, i: usize, j: usize, step: impl Fn(v128, v128, v128) -> v128) {
    let mut acc = [[i32x4_splat(0); C]; R];
    let b = p.panel_starts::<C>(j, 4);
    for q in 0..p.kp / 4 {
        let bv: [v128; C] = core::array::from_fn(|c| v128_load(b[c].add(q * PANEL_STEP) as *const v128));
        for r in 0..R {
            let a = p.quad_splat(i + r, q);
            for c in 0..C {
                acc[r][c] = step(bv[c], a, acc[r][c]);
            }
        }
    }
    for r in 0..R {
        for c in 0..C {
            put4(p, i + r, j + c * 4, acc[r][c]);
        }
    }
}
