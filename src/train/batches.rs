//! Cutting an epoch's visiting order into batches of similar lengths, so that a batch of short
//! sentences is padded to its own longest sentence instead of to a long neighbour's.
//!
//! The order is taken a window at a time (`window` batches' worth of examples); each window is
//! sorted by length and cut into batches, and then the batches of the whole epoch are shuffled so
//! that long and short batches alternate through the epoch (the loss does not drift with length
//! inside an epoch). Everything depends only on the epoch order and `(seed, epoch)`, so a resumed
//! run recomputes exactly the batches of an uninterrupted one. `window` ≤ 1 keeps the order as
//! it is (consecutive runs of `batch` examples).

use rand::{rngs::StdRng, Rng, SeedableRng};

pub fn epoch_batches(order: &[usize], tokens: impl Fn(usize) -> usize, batch: usize, window: usize, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
    let batch = batch.max(1);
    if window <= 1 {
        return order.chunks(batch).map(<[usize]>::to_vec).collect();
    }
    let mut batches: Vec<Vec<usize>> = Vec::with_capacity(order.len().div_ceil(batch));
    for span in order.chunks(batch * window) {
        let mut sorted = span.to_vec();
        // Stable: examples of equal length keep their shuffled order.
        sorted.sort_by_key(|&i| tokens(i));
        batches.extend(sorted.chunks(batch).map(<[usize]>::to_vec));
    }
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(epoch).wrapping_add(0xB0C4));
    for i in (1..batches.len()).rev() {
        batches.swap(i, rng.random_range(0..=i));
    }
    batches
}

/// Real and padded token counts of a batch (the padded count is what the encoder computes on).
pub fn batch_tokens(idx: &[usize], tokens: impl Fn(usize) -> usize) -> (usize, usize) {
    let lens: Vec<usize> = idx.iter().map(|&i| tokens(i)).collect();
    (lens.iter().sum(), lens.iter().max().copied().unwrap_or(0) * lens.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(n: usize) -> Vec<usize> {
        // Deterministic spread of lengths 3..=130.
        (0..n).map(|i| 3 + (i * 37 + i * i * 11) % 128).collect()
    }

    fn padded(batches: &[Vec<usize>], len: &[usize]) -> usize {
        batches.iter().map(|b| batch_tokens(b, |i| len[i]).1).sum()
    }

    #[test]
    fn every_example_once_and_the_batch_count_unchanged() {
        let len = lengths(1003);
        let order: Vec<usize> = (0..1003).rev().collect();
        let plain = epoch_batches(&order, |i| len[i], 16, 1, 7, 0);
        let bucketed = epoch_batches(&order, |i| len[i], 16, 50, 7, 0);
        assert_eq!(plain.len(), 1003usize.div_ceil(16));
        assert_eq!(bucketed.len(), plain.len());
        let mut seen: Vec<usize> = bucketed.concat();
        seen.sort();
        assert_eq!(seen, (0..1003).collect::<Vec<_>>());
        assert!(bucketed.iter().filter(|b| b.len() != 16).count() <= 1, "only one partial batch");
    }

    #[test]
    fn bucketing_cuts_padding() {
        let len = lengths(1600);
        let order: Vec<usize> = (0..1600).collect();
        let real: usize = len.iter().sum();
        let plain = padded(&epoch_batches(&order, |i| len[i], 16, 1, 7, 0), &len);
        let bucketed = padded(&epoch_batches(&order, |i| len[i], 16, 50, 7, 0), &len);
        assert!(plain as f64 > 1.5 * real as f64, "the test data should pad a lot unsorted: {plain} vs {real}");
        assert!((bucketed as f64) < 1.1 * real as f64, "bucketed padding {bucketed} vs real {real}");
    }

    #[test]
    fn deterministic_in_seed_and_epoch_and_lengths_mixed_through_the_epoch() {
        let len = lengths(3200);
        let order: Vec<usize> = (0..3200).collect();
        let a = epoch_batches(&order, |i| len[i], 16, 50, 7, 3);
        assert_eq!(a, epoch_batches(&order, |i| len[i], 16, 50, 7, 3));
        assert_ne!(a, epoch_batches(&order, |i| len[i], 16, 50, 7, 4));
        // Not sorted: the longest batch of the first half is far above the shortest of the second.
        let longest = |b: &[Vec<usize>]| b.iter().map(|x| len[x[0]]).max().unwrap();
        let (first, second) = a.split_at(a.len() / 2);
        assert!(longest(first) > 100 && longest(second) > 100);
    }
}
