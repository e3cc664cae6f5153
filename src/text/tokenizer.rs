//! A BERT WordPiece tokenizer loaded from `tokenizer.json` (the `tokenizers` crate), giving ids,
//! segment ids and the character offsets of every token into the caller's text.

use std::path::Path;

use tokenizers::{EncodeInput, Tokenizer};

use crate::{Error, Result};

/// One tokenised input: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Encoded {
    pub ids: Vec<u32>,
    /// 0 for [CLS], the first text and its [SEP]; 1 for the second text and its [SEP].
    pub type_ids: Vec<u32>,
    /// `(start, end)` in characters (Unicode scalar values) into the text the token came from;
    /// `(0, 0)` for special tokens.
    pub offsets: Vec<(usize, usize)>,
    /// Which input text a token came from (0 or 1); `None` for special tokens.
    pub sequence_ids: Vec<Option<usize>>,
    pub tokens: Vec<String>,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Appends a special token (segment 0, no offsets, no sequence).
    pub fn push_special(&mut self, id: u32, token: &str) {
        self.ids.push(id);
        self.type_ids.push(0);
        self.offsets.push((0, 0));
        self.sequence_ids.push(None);
        self.tokens.push(token.to_string());
    }

    /// Appends token `i` of `other`, keeping its offsets.
    pub fn push_from(&mut self, other: &Encoded, i: usize) {
        self.ids.push(other.ids[i]);
        self.type_ids.push(other.type_ids[i]);
        self.offsets.push(other.offsets[i]);
        self.sequence_ids.push(other.sequence_ids[i]);
        self.tokens.push(other.tokens[i].clone());
    }

    /// `[CLS] tokens[range] [SEP]` of an encoding made without special tokens.
    pub fn window(&self, range: std::ops::Range<usize>, cls: u32, sep: u32) -> Encoded {
        let mut out = Encoded::default();
        out.push_special(cls, "[CLS]");
        for i in range {
            out.push_from(self, i);
        }
        out.push_special(sep, "[SEP]");
        out
    }
}

/// Parts of a tokenizer.json that the tokenizers crate would `expect()` on rather than reject.
fn reject_known_panics(v: &serde_json::Value) -> std::result::Result<(), String> {
    match v {
        serde_json::Value::Object(map) => {
            match map.get("type").and_then(|t| t.as_str()) {
                Some("Precompiled") => {
                    serde_json::from_value::<tokenizers::normalizers::Precompiled>(v.clone())
                        .map_err(|e| format!("bad Precompiled normalizer: {e}"))?;
                }
                Some("TemplateProcessing") => check_template(map)?,
                _ => {}
            }
            map.values().try_for_each(reject_known_panics)
        }
        serde_json::Value::Array(items) => items.iter().try_for_each(reject_known_panics),
        _ => Ok(()),
    }
}

/// A TemplateProcessing post-processor must define every special token its templates use (with
/// as many tokens as ids), and the single-text template cannot use sequence B: tokenizers indexes
/// both without checking and panics at encoding time.
fn check_template(map: &serde_json::Map<String, serde_json::Value>) -> std::result::Result<(), String> {
    let specials = map.get("special_tokens").and_then(|s| s.as_object());
    for (name, template) in [("single", map.get("single")), ("pair", map.get("pair"))] {
        for piece in template.and_then(|t| t.as_array()).into_iter().flatten() {
            if let Some(id) = piece.pointer("/SpecialToken/id").and_then(|i| i.as_str()) {
                let tok = specials.and_then(|s| s.get(id)).ok_or_else(|| {
                    format!("post_processor: the {name} template uses special token {id:?}, which special_tokens does not define")
                })?;
                let ids = tok.get("ids").and_then(|x| x.as_array()).map_or(0, Vec::len);
                let tokens = tok.get("tokens").and_then(|x| x.as_array()).map_or(0, Vec::len);
                if ids != tokens {
                    return Err(format!("post_processor: special token {id:?} has {ids} ids but {tokens} tokens"));
                }
            }
            if name == "single" && piece.pointer("/Sequence/id").and_then(|i| i.as_str()) == Some("B") {
                return Err("post_processor: the single template uses sequence B".into());
            }
        }
    }
    Ok(())
}

pub struct TextTokenizer {
    inner: Tokenizer,
}

impl TextTokenizer {
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self> {
        // The tokenizers crate panics (`expect`) on some malformed files instead of returning an
        // error — found by fuzzing (fuzz/): a syntax error inside `decoder`, an undecodable
        // `Precompiled` normaliser. A panic in wasm kills the page's model, so check first.
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::Tokenizer(format!("{source}: not valid JSON: {e}")))?;
        reject_known_panics(&value).map_err(|m| Error::Tokenizer(format!("{source}: {m}")))?;
        let inner = Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer(format!("{source}: {e}")))?;
        Self::new(inner, source)
    }

    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    fn new(mut inner: Tokenizer, source: &str) -> Result<Self> {
        // Some shipped tokenizer.json files (all-MiniLM-L6-v2) switch on truncation at 128 and
        // fixed padding to 128: we window long texts ourselves and pad per batch, so turn both off.
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(format!("{source}: {e}")))?;
        inner.with_padding(None);
        for special in ["[CLS]", "[SEP]", "[PAD]"] {
            if inner.token_to_id(special).is_none() {
                return Err(Error::Tokenizer(format!("{source}: the vocabulary has no {special} token")));
            }
        }
        Ok(Self { inner })
    }

    /// `[CLS] text [SEP]`
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        self.encode_input(text.into())
    }

    /// `[CLS] a [SEP] b [SEP]` with segment ids 0/1.
    pub fn encode_pair(&self, a: &str, b: &str) -> Result<Encoded> {
        self.encode_input((a, b).into())
    }

    /// The text's tokens alone, without [CLS]/[SEP] (for windowing and marker insertion).
    pub fn encode_plain(&self, text: &str) -> Result<Encoded> {
        self.encode_with(text.into(), false)
    }

    fn encode_input(&self, input: EncodeInput) -> Result<Encoded> {
        self.encode_with(input, true)
    }

    fn encode_with(&self, input: EncodeInput, special: bool) -> Result<Encoded> {
        let enc = self
            .inner
            .encode_char_offsets(input, special)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Encoded {
            ids: enc.get_ids().to_vec(),
            type_ids: enc.get_type_ids().to_vec(),
            offsets: enc.get_offsets().to_vec(),
            sequence_ids: enc.get_sequence_ids(),
            tokens: enc.get_tokens().to_vec(),
        })
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn cls_id(&self) -> u32 {
        self.inner.token_to_id("[CLS]").unwrap_or(0)
    }

    pub fn sep_id(&self) -> u32 {
        self.inner.token_to_id("[SEP]").unwrap_or(0)
    }

    pub fn pad_id(&self) -> u32 {
        self.inner.token_to_id("[PAD]").unwrap_or(0)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}
