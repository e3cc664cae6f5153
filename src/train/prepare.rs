//! Turning labelled examples into what the model trains on: token ids with one label per token
//! (tag), truncated pairs (classify), marker/position layouts (relate).

use crate::data::{ClassifyExample, RelateExample, TagExample};
use crate::tasks::Model;
use crate::text::relation::RelationEncoding;
use crate::text::scheme::{Role, Scheme};
use crate::text::{Encoded, TextTokenizer};
use crate::{Error, Result};

/// Encodes a classification example, cutting the longer text first when it does not fit
/// `max_len` (training only; inference windows long single texts instead).
pub fn classify_input(tok: &TextTokenizer, ex: &ClassifyExample, max_len: usize) -> Result<Encoded> {
    let full = match &ex.text_pair {
        Some(b) => tok.encode_pair(&ex.text, b)?,
        None => tok.encode(&ex.text)?,
    };
    if full.len() <= max_len {
        return Ok(full);
    }
    let a = tok.encode_plain(&ex.text)?;
    let Some(b_text) = &ex.text_pair else {
        return Ok(a.window(0..max_len - 2, tok.cls_id(), tok.sep_id()));
    };
    let b = tok.encode_plain(b_text)?;
    let (mut la, mut lb) = (a.len(), b.len());
    while la + lb + 3 > max_len {
        if la >= lb { la -= 1 } else { lb -= 1 }
    }
    let mut out = a.window(0..la, tok.cls_id(), tok.sep_id());
    for i in 0..lb {
        out.push_from(&b, i);
        *out.type_ids.last_mut().unwrap() = 1;
    }
    out.push_special(tok.sep_id(), "[SEP]");
    *out.type_ids.last_mut().unwrap() = 1;
    Ok(out)
}

/// The labels of a word's `k` sub-word pieces given the word's tag, so that every token has a
/// label that keeps the sequence valid: `B-X` → `B-X I-X…`, `S-X` → `B-X I-X… E-X`,
/// `E-X` → `I-X… E-X` (BIOES; BMES likewise with M), `I-X`/`O` repeat.
pub fn piece_tags(scheme: Scheme, tag: &str, k: usize) -> Result<Vec<String>> {
    let t = scheme.parse(tag)?;
    if k <= 1 {
        return Ok(vec![tag.to_string(); k]);
    }
    let name = |role: Role| scheme.label(role, &t.kind);
    let inside = name(Role::Inside);
    Ok(match (scheme, t.role) {
        (_, Role::Outside) => vec!["O".into(); k],
        (_, Role::Inside) => vec![inside; k],
        (_, Role::Begin) => std::iter::once(tag.to_string()).chain(std::iter::repeat_n(inside, k - 1)).collect(),
        (Scheme::BIO, _) => unreachable!("BIO has no E/S"),
        (_, Role::End) => std::iter::repeat_n(inside, k - 1).chain(std::iter::once(tag.to_string())).collect(),
        (_, Role::Single) => std::iter::once(name(Role::Begin))
            .chain(std::iter::repeat_n(inside, k - 2))
            .chain(std::iter::once(name(Role::End)))
            .collect(),
    })
}

/// One tagging training item: tokens with a label index each (between [CLS] and [SEP]).
pub struct TagItem {
    pub encoded: Encoded,
    pub labels: Vec<u32>,
}

/// Tokenises a CoNLL sentence and labels every sub-word; sentences longer than `max_len` tokens
/// become several items (never truncated).
pub fn tag_items(tok: &TextTokenizer, scheme: Scheme, labels: &[String], ex: &TagExample, max_len: usize) -> Result<Vec<TagItem>> {
    let text = ex.words.join(" ");
    let plain = tok.encode_plain(&text)?;
    // Which word each token belongs to.
    let mut starts = Vec::with_capacity(ex.words.len());
    let mut at = 0;
    for w in &ex.words {
        starts.push(at);
        at += w.chars().count() + 1;
    }
    let word_of: Vec<usize> = plain.offsets.iter().map(|&(s, _)| starts.partition_point(|&w| w <= s) - 1).collect();
    let mut token_labels = Vec::with_capacity(plain.len());
    let mut i = 0;
    while i < plain.len() {
        let w = word_of[i];
        let k = word_of[i..].iter().take_while(|&&x| x == w).count();
        for t in piece_tags(scheme, &ex.tags[w], k)? {
            let id = labels.iter().position(|l| *l == t).ok_or_else(|| {
                Error::Input(format!("line {}: tag {t:?} (from {:?}) is not among the labels", ex.line, ex.tags[w]))
            })?;
            token_labels.push(id as u32);
        }
        i += k;
    }
    let size = max_len - 2;
    Ok((0..plain.len())
        .step_by(size.max(1))
        .map(|from| {
            let to = (from + size).min(plain.len());
            TagItem { encoded: plain.window(from..to, tok.cls_id(), tok.sep_id()), labels: token_labels[from..to].to_vec() }
        })
        .collect())
}

/// The labels a set of tags needs under a scheme (sub-word expansion can need `I-X`/`E-X` tags
/// the data never shows), ordered `O` first, then by type, then by role.
pub fn tag_label_set(scheme: Scheme, tags: impl Iterator<Item = String>) -> Result<Vec<String>> {
    let mut set = std::collections::BTreeSet::new();
    for t in tags {
        for k in [1, 2, 3] {
            for p in piece_tags(scheme, &t, k)? {
                set.insert(p);
            }
        }
    }
    let order = |l: &String| -> (u8, String, u8) {
        let t = scheme.parse(l).expect("parsed above");
        let role = match t.role {
            Role::Outside => 0,
            Role::Begin => 1,
            Role::Inside => 2,
            Role::End => 3,
            Role::Single => 4,
        };
        (u8::from(t.role != Role::Outside), t.kind, role)
    };
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort_by_key(order);
    Ok(v)
}

pub fn relate_input(model: &Model, ex: &RelateExample) -> Result<RelationEncoding> {
    model
        .encode_relation(&ex.text, ex.head, ex.tail)
        .map_err(|e| Error::Input(format!("line {}: {e}", ex.line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_word_pieces_keep_sequences_valid() {
        let p = |s, t, k| piece_tags(s, t, k).unwrap().join(" ");
        assert_eq!(p(Scheme::BIO, "B-PER", 3), "B-PER I-PER I-PER");
        assert_eq!(p(Scheme::BIO, "O", 2), "O O");
        assert_eq!(p(Scheme::BIOES, "S-LOC", 3), "B-LOC I-LOC E-LOC");
        assert_eq!(p(Scheme::BIOES, "E-LOC", 2), "I-LOC E-LOC");
        assert_eq!(p(Scheme::BMES, "S", 2), "B E");
        assert_eq!(p(Scheme::BMES, "B", 3), "B M M");
        assert_eq!(p(Scheme::BIO, "I-PER", 1), "I-PER");
    }

    #[test]
    fn label_sets_are_ordered_and_complete() {
        let v = tag_label_set(Scheme::BIO, ["B-PER", "O", "B-LOC"].map(String::from).into_iter()).unwrap();
        assert_eq!(v, vec!["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]);
        let v = tag_label_set(Scheme::BMES, ["S", "B", "E"].map(String::from).into_iter()).unwrap();
        assert_eq!(v, vec!["B", "M", "E", "S"]);
    }
}
