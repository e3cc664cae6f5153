//! Training and evaluation data: readers for the three task formats. Every error names the file
//! and the line, because a data file is usually fixed by hand.
//!
//! - classify: TSV `label<TAB>text` or `label<TAB>text_a<TAB>text_b`, or JSON lines
//!   `{"text", "text_pair"?, "label"}` (files ending in `.jsonl`/`.json`);
//! - tag: CoNLL, `token tag` per line (extra middle columns ignored), blank line between
//!   sentences, `-DOCSTART-` lines skipped;
//! - relate: JSON lines `{"text", "head": {"start","end"}, "tail": {"start","end"}, "label"}`.

use std::path::Path;

use serde::Deserialize;

use crate::text::relation::CharSpan;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct ClassifyExample {
    pub text: String,
    pub text_pair: Option<String>,
    pub label: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagExample {
    pub words: Vec<String>,
    pub tags: Vec<String>,
    /// Line of the sentence's first token.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RelateExample {
    pub text: String,
    pub head: CharSpan,
    pub tail: CharSpan,
    pub label: String,
    #[serde(skip)]
    pub line: usize,
}

fn read(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text))
}

fn at(path: &Path, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::Input(format!("{}:{line}: {msg}", path.display()))
}

fn non_empty<T>(path: &Path, v: Vec<T>) -> Result<Vec<T>> {
    if v.is_empty() {
        Err(Error::Input(format!("{}: no examples in this file", path.display())))
    } else {
        Ok(v)
    }
}

fn is_json_lines(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("jsonl" | "json" | "ndjson"))
}

pub fn read_classify(path: &Path) -> Result<Vec<ClassifyExample>> {
    parse_classify(&read(path)?, path)
}

/// Parses classification data held in memory; `path` names it in errors and picks JSON lines
/// (`.jsonl`/`.json`/`.ndjson`) or TSV.
pub fn parse_classify(text: &str, path: &Path) -> Result<Vec<ClassifyExample>> {
    let mut out = Vec::new();
    let mut columns = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() {
            continue;
        }
        if is_json_lines(path) {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct J {
                text: String,
                #[serde(default)]
                text_pair: Option<String>,
                label: serde_json::Value,
            }
            let j: J = serde_json::from_str(raw).map_err(|e| at(path, line, e))?;
            let label = match j.label {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                other => return Err(at(path, line, format!("label must be a string or number, got {other}"))),
            };
            out.push(ClassifyExample { text: j.text, text_pair: j.text_pair, label, line });
            continue;
        }
        let cols: Vec<&str> = raw.split('\t').collect();
        if !(2..=3).contains(&cols.len()) {
            return Err(at(path, line, format!("expected label<TAB>text or label<TAB>text_a<TAB>text_b, found {} column(s)", cols.len())));
        }
        match columns {
            None => columns = Some(cols.len()),
            Some(n) if n != cols.len() => {
                return Err(at(path, line, format!("{} columns here, but {n} on the first line", cols.len())))
            }
            _ => {}
        }
        if cols[0].trim().is_empty() {
            return Err(at(path, line, "empty label"));
        }
        out.push(ClassifyExample {
            label: cols[0].trim().to_string(),
            text: cols[1].to_string(),
            text_pair: cols.get(2).map(|s| s.to_string()),
            line,
        });
    }
    non_empty(path, out)
}

pub fn read_conll(path: &Path) -> Result<Vec<TagExample>> {
    parse_conll(&read(path)?, path)
}

/// Parses CoNLL data held in memory (`path` names it in errors).
pub fn parse_conll(text: &str, path: &Path) -> Result<Vec<TagExample>> {
    let mut out = Vec::new();
    let mut cur = TagExample { words: vec![], tags: vec![], line: 0 };
    let flush = |cur: &mut TagExample, out: &mut Vec<TagExample>| {
        if !cur.words.is_empty() {
            out.push(std::mem::replace(cur, TagExample { words: vec![], tags: vec![], line: 0 }));
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() {
            flush(&mut cur, &mut out);
            continue;
        }
        if raw.starts_with("-DOCSTART-") {
            continue;
        }
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.len() < 2 {
            return Err(at(path, line, format!("expected `token tag`, found {raw:?}")));
        }
        if cur.words.is_empty() {
            cur.line = line;
        }
        cur.words.push(fields[0].to_string());
        cur.tags.push(fields[fields.len() - 1].to_string());
    }
    flush(&mut cur, &mut out);
    non_empty(path, out)
}

pub fn read_relate(path: &Path) -> Result<Vec<RelateExample>> {
    parse_relate(&read(path)?, path)
}

/// Parses relation JSON lines held in memory (`path` names it in errors).
pub fn parse_relate(text: &str, path: &Path) -> Result<Vec<RelateExample>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let mut ex: RelateExample = serde_json::from_str(raw).map_err(|e| at(path, i + 1, e))?;
        ex.line = i + 1;
        out.push(ex);
    }
    non_empty(path, out)
}

/// Checks that every label of a file is one the model knows (e.g. dev labels against train's).
pub fn check_labels<'a>(path: &Path, known: &[String], labels: impl Iterator<Item = (usize, &'a str)>) -> Result<()> {
    for (line, l) in labels {
        if !known.iter().any(|k| k == l) {
            return Err(at(path, line, format!("unknown label {l:?} (the model knows {})", known.join(", "))));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, body: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bt-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn reads_tsv_pairs_and_json_lines() {
        let p = file("a.tsv", "pos\tgood film\nneg\tbad\r\n\n");
        let v = read_classify(&p).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[1].label.as_str(), v[1].text.as_str(), v[1].line), ("neg", "bad", 2));
        let p = file("b.tsv", "SUPPORTS\tclaim\tevidence\n");
        assert_eq!(read_classify(&p).unwrap()[0].text_pair.as_deref(), Some("evidence"));
        let p = file("c.jsonl", "{\"text\": \"x\", \"label\": 1}\n");
        assert_eq!(read_classify(&p).unwrap()[0].label, "1");
    }

    #[test]
    fn errors_name_file_and_line() {
        let p = file("mixed.tsv", "pos\ta\nneg\tb\tc\n");
        let e = read_classify(&p).unwrap_err().to_string();
        assert!(e.contains("mixed.tsv:2") && e.contains("3 columns"), "{e}");
        let p = file("one.tsv", "pos\ta\njust-text\n");
        assert!(read_classify(&p).unwrap_err().to_string().contains("one.tsv:2"));
        let p = file("bad.conll", "EU B-ORG\nrejects\n");
        assert!(read_conll(&p).unwrap_err().to_string().contains("bad.conll:2"));
        let p = file("empty.conll", "\n\n");
        assert!(read_conll(&p).unwrap_err().to_string().contains("no examples"));
        let p = file("r.jsonl", "{\"text\": \"a b\", \"head\": {\"start\": 0, \"end\": 1}}\n");
        assert!(read_relate(&p).unwrap_err().to_string().contains("r.jsonl:1"));
        let e = check_labels(&p, &["a".into()], [(7, "b")].into_iter()).unwrap_err().to_string();
        assert!(e.contains("r.jsonl:7") && e.contains("\"b\""), "{e}");
    }

    #[test]
    fn conll_sentences_and_lines() {
        let p = file("s.conll", "-DOCSTART- O\n\nEU NNP B-ORG\nrejects VBZ O\r\n\nGerman B-MISC\n");
        let v = read_conll(&p).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].words, vec!["EU", "rejects"]);
        assert_eq!(v[0].tags, vec!["B-ORG", "O"]);
        assert_eq!((v[0].line, v[1].line), (3, 6));
    }
}
