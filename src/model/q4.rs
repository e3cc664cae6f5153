//! Block-wise 4-bit weights for the q4 format (`quantize.rs` writes and reads the file).
//!
//! Each row is cut into blocks of [`BLOCK`] consecutive values; a block keeps one F16 scale
//! (`max |w| / 7`) and 32 signed 4-bit values `q ∈ [-8, 7]`, `w ≈ q · scale`. Two values share a
//! byte: column `2j` in the low nibble, `2j + 1` in the high one, each stored as `q + 8`. That is
//! the layout of ggml's `q4_0` blocks, laid out as two tensors (nibbles, scales) so that any
//! safetensors reader opens the file. Per-block rather than per-row scales because 4 bits leave
//! 15 levels: one outlier would otherwise flatten a whole 384- or 1536-wide row.

/// Values per scale.
pub const BLOCK: usize = 32;

/// Quantises a row-major `[rows, cols]` matrix (`cols` a multiple of [`BLOCK`]). Returns the packed
/// nibbles (`rows · cols / 2` bytes) and the scales (`rows · cols / BLOCK`), each scale already
/// rounded to the F16 it is stored as, so that what the loader rebuilds is what was rounded here.
///
/// Each block's scale is the one of [`CANDIDATES`] (fractions of `max |w| / 7`) whose rounding
/// has the least squared error, the search llama.cpp's k-quants make: a slightly smaller step
/// resolves the bulk of a block better than a step sized for its one largest value (clamped to
/// the grid's end, -8 or 7, instead). The plain `max |w| / 7` is among the candidates, so a
/// block is never rounded worse than by it.
pub fn quantize(w: &[f32], cols: usize) -> (Vec<u8>, Vec<half::f16>) {
    debug_assert!(cols.is_multiple_of(BLOCK) && w.len().is_multiple_of(cols));
    let mut packed = Vec::with_capacity(w.len() / 2);
    let mut scales = Vec::with_capacity(w.len() / BLOCK);
    for block in w.chunks_exact(BLOCK) {
        let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let error = |s: f32| block.iter().map(|&v| (v - round(v, s) as f32 * s).powi(2)).sum::<f32>();
        // Each candidate's error computed once (min_by on a closure would recompute it per
        // comparison); ties keep the first, 1.0.
        let (scale, _) = CANDIDATES
            .iter()
            .map(|f| half::f16::from_f32(max / 7.0 * f))
            .map(|s| (s, error(s.to_f32())))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("candidates");
        let s = scale.to_f32();
        let nibble = |v: f32| (round(v, s) + 8) as u8;
        packed.extend(block.chunks_exact(2).map(|p| nibble(p[0]) | (nibble(p[1]) << 4)));
        scales.push(scale);
    }
    (packed, scales)
}

/// Step sizes tried per block, as fractions of `max |w| / 7` (1.0 first: ties keep it). 7/8 is
/// ggml's q4_0 step (its largest value on -8).
const CANDIDATES: [f32; 11] = [1.0, 0.98, 0.96, 0.94, 0.92, 0.90, 0.88, 0.86, 0.84, 0.82, 0.80];

/// `v / s` rounded to the 4-bit grid `[-8, 7]`; a zero step (a block of zeros, or of values
/// below F16's smallest step) gives 0.
fn round(v: f32, s: f32) -> i32 {
    if s > 0.0 {
        (v / s).round().clamp(-8.0, 7.0) as i32
    } else {
        0
    }
}

/// The f32 matrix that [`quantize`]'s output stands for.
pub fn dequantize(packed: &[u8], scales: &[half::f16]) -> Vec<f32> {
    let mut w = Vec::with_capacity(packed.len() * 2);
    for (bytes, scale) in packed.chunks_exact(BLOCK / 2).zip(scales) {
        let s = scale.to_f32();
        for &b in bytes {
            w.push(((b & 0x0f) as i32 - 8) as f32 * s);
            w.push(((b >> 4) as i32 - 8) as f32 * s);
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_block_keeps_its_own_step_and_rounds_no_worse_than_max_over_7() {
        let cols = 64;
        // Two rows whose blocks differ in magnitude by 100×, one outlier, one zero block.
        let mut w: Vec<f32> = (0..2 * cols).map(|i| ((i * 37 % 101) as f32 - 50.0) * if i % cols < 32 { 0.001 } else { 0.1 }).collect();
        w[70] = 9.0;
        w[96..128].iter_mut().for_each(|v| *v = 0.0);
        let (packed, scales) = quantize(&w, cols);
        assert_eq!((packed.len(), scales.len()), (cols, 4));
        let back = dequantize(&packed, &scales);
        for (b, block) in w.chunks_exact(BLOCK).enumerate() {
            let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let step = scales[b].to_f32();
            assert!(step >= max / 7.0 * 0.79 && step <= max / 7.0 * 1.001, "scale of block {b}: {step} for max {max}");
            // The squared error is at most that of the plain max/7 step, whose error per value
            // is at most half a step.
            let plain = half::f16::from_f32(max / 7.0).to_f32();
            let ours: f32 = block.iter().enumerate().map(|(i, v)| (back[b * BLOCK + i] - v).powi(2)).sum();
            let reference: f32 = block.iter().map(|&v| (v - round(v, plain) as f32 * plain).powi(2)).sum();
            assert!(ours <= reference + 1e-12, "block {b}: {ours} > {reference}");
            assert!(block.iter().map(|&v| (v - round(v, plain) as f32 * plain).abs()).all(|e| e <= plain / 2.0 + 1e-6));
        }
        assert!(back[96..128].iter().all(|&v| v == 0.0), "a zero block stays zero");
        // The small block keeps its own resolution instead of the outlier's.
        assert!(scales[0].to_f32() < 0.01 && scales[2].to_f32() > 1.0);
    }

    #[test]
    fn nibbles_are_q_plus_8_low_first() {
        let mut w = vec![0f32; BLOCK];
        w[0] = -7.0; // q = -7 → 1
        w[1] = 7.0; // q = 7 → 15
        w[2] = 3.0; // q = 3 → 11
        let (packed, scales) = quantize(&w, BLOCK);
        assert_eq!(scales[0].to_f32(), 1.0);
        assert_eq!(packed[0], 1 | (15 << 4));
        assert_eq!(packed[1], 11 | (8 << 4));
        assert!(packed[2..].iter().all(|&b| b == 0x88));
    }
}
