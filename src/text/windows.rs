//! Overlapping windows over a long token sequence, and which window speaks for each token.

use std::ops::Range;

/// Windows of at most `size` tokens covering `0..len`, overlapping by a quarter of `size`, so
/// that every token is also seen with context on both sides.
pub fn windows(len: usize, size: usize) -> Vec<Range<usize>> {
    let size = size.max(1);
    if len <= size {
        return std::iter::once(0..len).collect();
    }
    let stride = (size - size / 4).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start + size < len {
        out.push(start..start + size);
        start += stride;
    }
    out.push(len - size..len);
    out
}

/// For each token, the window in which it sits farthest from an edge (it has the most context
/// there): its prediction is taken from that window.
pub fn best_window(len: usize, windows: &[Range<usize>]) -> Vec<usize> {
    (0..len)
        .map(|t| {
            windows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.contains(&t))
                // Most context wins; on a tie the earlier window.
                .max_by_key(|(w, r)| ((t - r.start).min(r.end - 1 - t), std::cmp::Reverse(*w)))
                .map_or(0, |(w, _)| w)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_everything_with_overlap() {
        assert_eq!(windows(5, 10), vec![0..5]);
        for (len, size) in [(100, 16), (17, 16), (1000, 510), (33, 8)] {
            let w = windows(len, size);
            assert_eq!(w.first().unwrap().start, 0);
            assert_eq!(w.last().unwrap().end, len);
            for pair in w.windows(2) {
                assert!(pair[1].start < pair[0].end, "{len}/{size}: windows overlap");
                assert!(pair[1].start > pair[0].start);
            }
            assert!(w.iter().all(|r| r.len() <= size));
            let best = best_window(len, &w);
            for (t, &b) in best.iter().enumerate() {
                assert!(w[b].contains(&t));
            }
        }
    }

    #[test]
    fn tokens_take_the_window_where_they_are_central() {
        let w = windows(20, 8); // 0..8, 6..14, 12..20
        let best = best_window(20, &w);
        assert_eq!(best[7], 1, "token 7 is at the edge of window 0 but inside window 1");
        assert_eq!(best[2], 0);
        assert_eq!(best[19], w.len() - 1);
    }
}
