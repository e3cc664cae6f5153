//! Preparing a relation example: check the head and tail spans, find their tokens, insert entity
//! markers, and crop very long texts to a window that keeps both entities.

use serde::{Deserialize, Serialize};

use super::{Encoded, TextTokenizer};
use crate::{Error, Result};

/// A span of the caller's text in characters (Unicode scalar values), end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharSpan {
    pub start: usize,
    pub end: usize,
}

/// A relation example as the encoder sees it.
#[derive(Debug, Clone)]
pub struct RelationEncoding {
    /// `[CLS] … [SEP]`, markers included when asked for.
    pub encoded: Encoded,
    /// Token ranges `[start, end)` of the head and tail spans in `encoded`.
    pub head: (usize, usize),
    pub tail: (usize, usize),
    /// Positions of the `[E1]` and `[E2]` markers (entity_markers only).
    pub markers: Option<(usize, usize)>,
}

fn check_span(name: &str, span: CharSpan, chars: usize) -> Result<()> {
    if span.start > span.end {
        return Err(Error::Input(format!("{name} span {}..{} is reversed (start > end)", span.start, span.end)));
    }
    if span.start == span.end {
        return Err(Error::Input(format!("{name} span {}..{} is empty", span.start, span.end)));
    }
    if span.end > chars {
        return Err(Error::Input(format!(
            "{name} span {}..{} is outside the text ({chars} characters)",
            span.start, span.end
        )));
    }
    Ok(())
}

/// Tokens `[first, last+1)` whose characters overlap `span`.
fn token_range(name: &str, span: CharSpan, plain: &Encoded) -> Result<(usize, usize)> {
    let hits: Vec<usize> = plain
        .offsets
        .iter()
        .enumerate()
        .filter(|(_, &(s, e))| s < span.end && e > span.start)
        .map(|(i, _)| i)
        .collect();
    match (hits.first(), hits.last()) {
        (Some(&a), Some(&b)) => Ok((a, b + 1)),
        _ => Err(Error::Input(format!("{name} span {}..{} covers no token (only spaces?)", span.start, span.end))),
    }
}

/// Builds the encoder input for `text` with `head` and `tail`. `markers` are the ids of
/// `[E1] [/E1] [E2] [/E2]` when the method inserts them. Texts longer than `max_tokens` are
/// cropped to a window around both entities; entities too far apart for one window are an error.
pub fn encode_relation(
    tokenizer: &TextTokenizer,
    text: &str,
    head: CharSpan,
    tail: CharSpan,
    markers: Option<[u32; 4]>,
    max_tokens: usize,
) -> Result<RelationEncoding> {
    let chars = text.chars().count();
    check_span("head", head, chars)?;
    check_span("tail", tail, chars)?;
    if head.start < tail.end && tail.start < head.end {
        return Err(Error::Input(format!(
            "head span {}..{} and tail span {}..{} overlap",
            head.start, head.end, tail.start, tail.end
        )));
    }
    let plain = tokenizer.encode_plain(text)?;
    let (mut hs, mut he) = token_range("head", head, &plain)?;
    let (mut ts, mut te) = token_range("tail", tail, &plain)?;
    if hs < te && ts < he {
        return Err(Error::Input(format!(
            "head span {}..{} and tail span {}..{} share a token; mark whole words",
            head.start, head.end, tail.start, tail.end
        )));
    }
    // Crop to a window that keeps both entities, centred on them.
    let extra = 2 + if markers.is_some() { 4 } else { 0 };
    let budget = max_tokens.saturating_sub(extra);
    let n = plain.len();
    let mut from = 0;
    let mut to = n;
    if n > budget {
        let (lo, hi) = (hs.min(ts), he.max(te));
        if hi - lo > budget {
            return Err(Error::Input(format!(
                "head and tail are {} tokens apart, more than the model's {max_tokens} positions allow",
                hi - lo
            )));
        }
        from = lo.saturating_sub((budget - (hi - lo)) / 2).min(n - budget);
        to = from + budget;
        hs -= from;
        he -= from;
        ts -= from;
        te -= from;
    }

    let mut out = Encoded::default();
    out.push_special(tokenizer.cls_id(), "[CLS]");
    let (mut head_range, mut tail_range, mut marker_pos) = ((0, 0), (0, 0), (0, 0));
    for (k, i) in (from..to).enumerate() {
        if let Some(m) = markers {
            if k == hs {
                marker_pos.0 = out.len();
                out.push_special(m[0], "[E1]");
            }
            if k == ts {
                marker_pos.1 = out.len();
                out.push_special(m[2], "[E2]");
            }
        }
        if k == hs {
            head_range.0 = out.len();
        }
        if k == ts {
            tail_range.0 = out.len();
        }
        out.push_from(&plain, i);
        if k + 1 == he {
            head_range.1 = out.len();
        }
        if k + 1 == te {
            tail_range.1 = out.len();
        }
        if let Some(m) = markers {
            if k + 1 == he {
                out.push_special(m[1], "[/E1]");
            }
            if k + 1 == te {
                out.push_special(m[3], "[/E2]");
            }
        }
    }
    out.push_special(tokenizer.sep_id(), "[SEP]");
    Ok(RelationEncoding { encoded: out, head: head_range, tail: tail_range, markers: markers.map(|_| marker_pos) })
}

/// Relative distance of every position to a token range, clipped to ±`max` and shifted to
/// `0..=2*max` (0 inside the range, negative before it, positive after it).
pub fn distances(len: usize, range: (usize, usize), max: usize) -> Vec<u32> {
    let max = max as i64;
    (0..len as i64)
        .map(|i| {
            let d = if i < range.0 as i64 {
                i - range.0 as i64
            } else if i >= range.1 as i64 {
                i - (range.1 as i64 - 1)
            } else {
                0
            };
            (d.clamp(-max, max) + max) as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_zero_inside_and_clipped_outside() {
        assert_eq!(distances(8, (3, 5), 2), vec![0, 0, 1, 2, 2, 3, 4, 4]);
    }
}
