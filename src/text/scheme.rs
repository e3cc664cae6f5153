//! Tagging schemes (BIO, BIOES, BMES): which tag sequences are valid, and how tags become spans.
//!
//! Span decoding follows seqeval's default (non-strict) mode, so that our F1 equals seqeval's:
//! a stray `I-X` (after `O` or another type) starts a new span instead of being dropped.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scheme {
    BIO,
    BIOES,
    /// Word segmentation: `B`egin, `M`iddle, `E`nd, `S`ingle-character word; no `O`, no types.
    BMES,
}

impl std::str::FromStr for Scheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "BIO" | "IOB2" => Ok(Scheme::BIO),
            "BIOES" | "IOBES" => Ok(Scheme::BIOES),
            "BMES" => Ok(Scheme::BMES),
            _ => Err(Error::Input(format!("unknown tag scheme {s:?} (BIO, BIOES or BMES)"))),
        }
    }
}

/// The role of a tag inside a span, whatever letter the scheme writes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Begin,
    Inside,
    End,
    Single,
    Outside,
}

/// A tag split into its role and entity type (`"B-PER"` → `(Begin, "PER")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub role: Role,
    pub kind: String,
}

impl Scheme {
    /// Guesses the scheme from label names: BMES for exactly B/M/E/S, BIOES when `E-`/`S-`
    /// tags exist, BIO otherwise.
    pub fn infer(labels: &[String]) -> Scheme {
        let plain: Vec<&str> = labels.iter().map(String::as_str).collect();
        if !plain.is_empty() && plain.iter().all(|l| matches!(*l, "B" | "M" | "E" | "S")) {
            Scheme::BMES
        } else if plain.iter().any(|l| l.starts_with("E-") || l.starts_with("S-")) {
            Scheme::BIOES
        } else {
            Scheme::BIO
        }
    }

    pub fn parse(self, label: &str) -> Result<Tag> {
        let bad = || Error::Config(format!("label {label:?} is not a {self:?} tag"));
        if self == Scheme::BMES {
            let role = match label {
                "B" => Role::Begin,
                "M" => Role::Inside,
                "E" => Role::End,
                "S" => Role::Single,
                _ => return Err(bad()),
            };
            return Ok(Tag { role, kind: String::new() });
        }
        if label == "O" {
            return Ok(Tag { role: Role::Outside, kind: String::new() });
        }
        let (prefix, kind) = label.split_once('-').ok_or_else(bad)?;
        let role = match (prefix, self) {
            ("B", _) => Role::Begin,
            ("I", _) => Role::Inside,
            ("E", Scheme::BIOES) => Role::End,
            ("S", Scheme::BIOES) => Role::Single,
            _ => return Err(bad()),
        };
        Ok(Tag { role, kind: kind.to_string() })
    }

    pub fn parse_all(self, labels: &[String]) -> Result<Vec<Tag>> {
        labels.iter().map(|l| self.parse(l)).collect()
    }

    /// The label this scheme writes for `role` in a span of `kind` (`(Begin, "PER")` → `"B-PER"`;
    /// BMES labels carry no type, and its inside letter is `M`).
    pub fn label(self, role: Role, kind: &str) -> String {
        let letter = match (self, role) {
            (_, Role::Outside) => return "O".into(),
            (Scheme::BMES, Role::Inside) => "M",
            (_, Role::Begin) => "B",
            (_, Role::Inside) => "I",
            (_, Role::End) => "E",
            (_, Role::Single) => "S",
        };
        if self == Scheme::BMES {
            letter.to_string()
        } else {
            format!("{letter}-{kind}")
        }
    }

    /// The spans of `tags` as seqeval reads them (a stray `I-X` opens a span), written back as
    /// a valid sequence of this scheme. A valid sequence comes back unchanged; an invalid one
    /// (e.g. `I-PER E-PER` at a sentence start, from a corpus split inside an entity) comes
    /// back as the valid sequence with the same spans (`B-PER E-PER`).
    pub fn canonical(self, tags: &[String]) -> Result<Vec<String>> {
        let parsed = self.parse_all(tags)?;
        // BMES has no outside tag: a character outside every span is a word of its own.
        let outside = if self == Scheme::BMES { "S" } else { "O" };
        let mut out = vec![outside.to_string(); tags.len()];
        for s in decode_spans(&parsed) {
            let len = s.end - s.start;
            for (i, slot) in out[s.start..s.end].iter_mut().enumerate() {
                let role = match (self, i, i + 1 == len) {
                    (Scheme::BIO, 0, _) => Role::Begin,
                    (Scheme::BIO, _, _) => Role::Inside,
                    (_, 0, true) => Role::Single,
                    (_, 0, false) => Role::Begin,
                    (_, _, true) => Role::End,
                    _ => Role::Inside,
                };
                *slot = self.label(role, &s.kind);
            }
        }
        Ok(out)
    }
}

/// Which starts, transitions and ends a scheme allows over a label set.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraints {
    pub start: Vec<bool>,
    /// `transition[from][to]`
    pub transition: Vec<Vec<bool>>,
    pub end: Vec<bool>,
}

impl Constraints {
    pub fn new(scheme: Scheme, labels: &[String]) -> Result<Self> {
        let tags = scheme.parse_all(labels)?;
        let opens = |t: &Tag| matches!(t.role, Role::Begin | Role::Inside);
        let continues = |t: &Tag| matches!(t.role, Role::Inside | Role::End);
        let transition = tags
            .iter()
            .map(|a| {
                tags.iter()
                    .map(|b| match scheme {
                        // BIO: I-X only inside an X span; anything else may follow anything.
                        Scheme::BIO => b.role != Role::Inside || (opens(a) && a.kind == b.kind),
                        // BIOES/BMES: an open span must continue with the same type, and only an
                        // open span may be continued.
                        _ => {
                            if opens(a) {
                                continues(b) && a.kind == b.kind
                            } else {
                                !continues(b)
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        let start = tags.iter().map(|t| !continues(t)).collect();
        let end = tags.iter().map(|t| scheme == Scheme::BIO || !opens(t)).collect();
        Ok(Constraints { start, transition, end })
    }

    /// True when the label-index sequence breaks none of the rules.
    pub fn is_valid(&self, path: &[usize]) -> bool {
        match (path.first(), path.last()) {
            (Some(&f), Some(&l)) => {
                self.start[f] && self.end[l] && path.windows(2).all(|w| self.transition[w[0]][w[1]])
            }
            _ => true,
        }
    }
}

/// A decoded span over positions `[start, end)` of a tag sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSpan {
    pub kind: String,
    pub start: usize,
    pub end: usize,
}

/// Spans of a tag sequence, as seqeval's `get_entities` finds them (BMES spans are words, with an
/// empty type).
pub fn decode_spans(tags: &[Tag]) -> Vec<TagSpan> {
    let mut spans = Vec::new();
    let mut open: Option<(usize, &str)> = None;
    let mut prev: Option<&Tag> = None;
    for (i, tag) in tags.iter().enumerate() {
        if let (Some((start, kind)), Some(p)) = (open, prev) {
            if ends_chunk(p, tag) {
                spans.push(TagSpan { kind: kind.to_string(), start, end: i });
                open = None;
            }
        }
        if starts_chunk(prev, tag) {
            open = Some((i, tag.kind.as_str()));
        }
        prev = Some(tag);
    }
    if let Some((start, kind)) = open {
        spans.push(TagSpan { kind: kind.to_string(), start, end: tags.len() });
    }
    spans
}

/// seqeval's `end_of_chunk(prev, cur)`.
fn ends_chunk(prev: &Tag, cur: &Tag) -> bool {
    use Role::*;
    match (prev.role, cur.role) {
        (End | Single, _) => true,
        (Begin | Inside, Begin | Single | Outside) => true,
        (Outside, _) => false,
        _ => prev.kind != cur.kind,
    }
}

/// seqeval's `start_of_chunk(prev, cur)`.
fn starts_chunk(prev: Option<&Tag>, cur: &Tag) -> bool {
    use Role::*;
    match cur.role {
        Begin | Single => true,
        Outside => false,
        Inside | End => match prev {
            None => true,
            Some(p) => matches!(p.role, End | Single | Outside) || p.kind != cur.kind,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Valid sequences are their own canonical form; invalid ones become the valid sequence with
    /// seqeval's spans, which the constraints then accept.
    #[test]
    fn canonical_repairs_only_invalid_sequences() {
        let v = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        for (scheme, seq) in [
            (Scheme::BIOES, "B-PER I-PER E-PER O S-LOC"),
            (Scheme::BIO, "B-PER I-PER O B-LOC"),
            (Scheme::BMES, "B M E S B E"),
        ] {
            assert_eq!(scheme.canonical(&v(seq)).unwrap(), v(seq), "{seq}");
        }
        for (scheme, bad, fixed) in [
            // MSRA's training split has a sentence that starts inside a name.
            (Scheme::BIOES, "I-PER E-PER B-PER E-PER", "B-PER E-PER B-PER E-PER"),
            (Scheme::BIOES, "B-PER O E-LOC", "S-PER O S-LOC"),
            (Scheme::BIOES, "B-PER I-ORG E-ORG", "S-PER B-ORG E-ORG"),
            (Scheme::BIO, "I-PER I-PER O I-LOC", "B-PER I-PER O B-LOC"),
            (Scheme::BMES, "M E B", "B E S"),
        ] {
            let got = scheme.canonical(&v(bad)).unwrap();
            assert_eq!(got, v(fixed), "{bad}");
            let labels: Vec<String> = {
                let mut l = got.clone();
                l.sort();
                l.dedup();
                l
            };
            let c = Constraints::new(scheme, &labels).unwrap();
            assert!(c.is_valid(&got.iter().map(|t| labels.iter().position(|l| l == t).unwrap()).collect::<Vec<_>>()));
        }
    }

    fn labels(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn spans(scheme: Scheme, seq: &str) -> Vec<(String, usize, usize)> {
        let tags = scheme.parse_all(&labels(seq)).unwrap();
        decode_spans(&tags).into_iter().map(|s| (s.kind, s.start, s.end)).collect()
    }

    #[test]
    fn bio_spans_follow_seqeval() {
        let s = |k: &str, a, b| (k.to_string(), a, b);
        assert_eq!(spans(Scheme::BIO, "B-PER I-PER O B-LOC"), vec![s("PER", 0, 2), s("LOC", 3, 4)]);
        // seqeval: a stray I- starts a span; a type change splits.
        assert_eq!(spans(Scheme::BIO, "O I-ORG I-ORG B-PER I-LOC"), vec![s("ORG", 1, 3), s("PER", 3, 4), s("LOC", 4, 5)]);
        assert_eq!(spans(Scheme::BIO, "B-PER B-PER"), vec![s("PER", 0, 1), s("PER", 1, 2)]);
    }

    #[test]
    fn bioes_and_bmes_spans() {
        let s = |k: &str, a, b| (k.to_string(), a, b);
        assert_eq!(spans(Scheme::BIOES, "B-ORG I-ORG E-ORG S-PER O"), vec![s("ORG", 0, 3), s("PER", 3, 4)]);
        assert_eq!(spans(Scheme::BMES, "B E S B M M E"), vec![s("", 0, 2), s("", 2, 3), s("", 3, 7)]);
    }

    #[test]
    fn constraints_forbid_what_each_scheme_forbids() {
        let l = labels("O B-PER I-PER B-ORG I-ORG");
        let c = Constraints::new(Scheme::BIO, &l).unwrap();
        assert!(c.is_valid(&[1, 2, 0, 3, 4]));
        assert!(!c.is_valid(&[1, 4]), "B-PER I-ORG");
        assert!(!c.is_valid(&[2]), "start with I-PER");
        assert!(!c.is_valid(&[0, 2]), "O I-PER");

        let b = labels("B M E S");
        let c = Constraints::new(Scheme::BMES, &b).unwrap();
        assert!(c.is_valid(&[0, 1, 2, 3]));
        assert!(!c.is_valid(&[0, 3]), "B S");
        assert!(!c.is_valid(&[2]), "start with E");
        assert!(!c.is_valid(&[3, 0]), "end with B");
        assert_eq!(c.transition[0], vec![false, true, true, false], "B -> M|E");
        assert_eq!(c.transition[2], vec![true, false, false, true], "E -> B|S");

        let e = labels("O B-X I-X E-X S-X");
        let c = Constraints::new(Scheme::BIOES, &e).unwrap();
        assert!(c.is_valid(&[1, 2, 3, 0, 4]));
        assert!(!c.is_valid(&[1, 0]), "B-X O");
        assert!(!c.is_valid(&[0, 3]), "O E-X");
    }

    #[test]
    fn labels_outside_the_scheme_are_errors() {
        assert!(Scheme::BIO.parse("E-PER").is_err());
        assert!(Scheme::BMES.parse("O").is_err());
        assert_eq!(Scheme::infer(&labels("B M E S")), Scheme::BMES);
        assert_eq!(Scheme::infer(&labels("O B-X E-X S-X")), Scheme::BIOES);
        assert_eq!(Scheme::infer(&labels("O B-X I-X")), Scheme::BIO);
    }
}
