//! Offsets for JavaScript: JS strings index UTF-16 code units, Rust results index characters.
//! Converted at the wasm boundary so that `text.slice(start, end) === span.text` in JS.

use crate::{Error, Result};

/// Character offset → UTF-16 offset (and back) for one text.
pub struct Utf16Map {
    /// `units[i]` = UTF-16 units before character `i` (one entry past the end).
    units: Vec<usize>,
}

impl Utf16Map {
    pub fn new(text: &str) -> Self {
        let mut units = Vec::with_capacity(text.len() + 1);
        let mut at = 0;
        units.push(0);
        for c in text.chars() {
            at += c.len_utf16();
            units.push(at);
        }
        Utf16Map { units }
    }

    /// UTF-16 offset of character offset `chars` (clamped to the end).
    pub fn to_utf16(&self, chars: usize) -> usize {
        self.units[chars.min(self.units.len() - 1)]
    }

    /// Character offset of UTF-16 offset `units`; an offset inside a surrogate pair (the middle
    /// of an emoji, say) or past the end is an error naming it.
    pub fn to_chars(&self, units: usize, what: &str) -> Result<usize> {
        match self.units.binary_search(&units) {
            Ok(i) => Ok(i),
            Err(i) if i >= self.units.len() => Err(Error::Input(format!(
                "{what} {units} is past the end of the text ({} UTF-16 units)",
                self.units.last().copied().unwrap_or(0)
            ))),
            Err(_) => Err(Error::Input(format!("{what} {units} is not on a character boundary (inside a surrogate pair)"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_and_cjk_offsets() {
        let text = "a😡好b";
        let m = Utf16Map::new(text);
        assert_eq!((0..=4).map(|c| m.to_utf16(c)).collect::<Vec<_>>(), vec![0, 1, 3, 4, 5]);
        assert_eq!(m.to_chars(3, "start").unwrap(), 2);
        assert!(m.to_chars(2, "start").unwrap_err().to_string().contains("character boundary"));
        assert!(m.to_chars(9, "end").unwrap_err().to_string().contains("past the end"));
    }
}
