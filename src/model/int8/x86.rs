//! The x86-64 int8 kernels: AVX-512 VNNI (`vpdpbusd`) and AVX2 (`vpmaddubsw` + `vpmaddwd`).

// A tile's loops index its accumulator grid `acc[row][register]` by row and register, the
// layout of the tile itself.
#![allow(clippy::needless_range_loop)]

use super::{Product, PANEL_STEP};
use std::arch::x86_64::*;

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn vnni512(p: &Product) {
    tiles!(p, tile_vnni, 16, rows 4, regs 4); // 16 accumulators of 32 zmm
}

/// R rows × C·16 columns.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_vnni<const R: usize, const C: usize>(p: &Product, i: usize, j: usize) {
    let mut acc = [[_mm512_setzero_si512(); C]; R];
    let b = p.panel_starts::<C>(j, 16);
    for q in 0..p.kp / 4 {
        let bv: [__m512i; C] = core::array::from_fn(|c| _mm512_loadu_si512(b[c].add(q * PANEL_STEP) as *const _));
        for r in 0..R {
            let a = _mm512_set1_epi32(p.quad(i + r, q));
            for c in 0..C {
                acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], a, bv[c]);
            }
        }
    }
    let mut dots = [0i32; 16];
    for r in 0..R {
        for c in 0..C {
            _mm512_storeu_si512(dots.as_mut_ptr() as *mut _, acc[r][c]);
            p.put(i + r, j + c * 16, &dots);
        }
    }
}

#[target_feature(enable = "avx2")]
pub unsafe fn avx2(p: &Product) {
    // 4 rows × 2 registers: 8 accumulators, 2 weight registers, `ones`, a broadcast and a
    // temporary. Native q8 tag, one thread, AMD EPYC (Zen 3), against the 2 × 4 tile it
    // replaced: 8 × 128 tokens 217–228 → 196–200 ms, 1 × 128 28.5–29.6 → 25.7 ms. Both issue the
    // same multiplies and loads per step and neither spills (`perf annotate`); the taller tile
    // streams each weight panel half as often. 4 × 3 spilled an accumulator (a store and a
    // reload every step) and was slower than 2 × 4; 3 × 3 in between, 5 × 2 the same as
    // 4 × 2 within noise.
    tiles!(p, tile_avx2, 8, rows 4, regs 2);
}

/// R rows × C·8 columns.
#[target_feature(enable = "avx2")]
unsafe fn tile_avx2<const R: usize, const C: usize>(p: &Product, i: usize, j: usize) {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); C]; R];
    let b = p.panel_starts::<C>(j, 8);
    for q in 0..p.kp / 4 {
        let bv: [__m256i; C] = core::array::from_fn(|c| _mm256_loadu_si256(b[c].add(q * PANEL_STEP) as *const _));
        for r in 0..R {
            let a = _mm256_set1_epi32(p.quad(i + r, q));
            for c in 0..C {
                let pairs = _mm256_maddubs_epi16(a, bv[c]);
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
