//! Property tests (proptest): constrained Viterbi never emits a forbidden transition and equals
//! brute force; span decoding inverts span encoding for every valid sequence; token offsets
//! always lie on character boundaries of the input, for the real tokenizers too.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::HashMap;

use bert_tasks::model::heads::Crf;
use bert_tasks::tasks::Model;
use bert_tasks::testing::tiny_model;
use bert_tasks::text::scheme::{decode_spans, Constraints, Scheme};
use bert_tasks::text::utf16::Utf16Map;
use bert_tasks::text::TextTokenizer;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use proptest::prelude::*;

fn labels(scheme: Scheme) -> Vec<String> {
    let s = match scheme {
        Scheme::BIO => "O B-A I-A B-B I-B",
        Scheme::BIOES => "O B-A I-A E-A S-A",
        Scheme::BMES => "B M E S",
    };
    s.split(' ').map(String::from).collect()
}

fn schemes() -> impl Strategy<Value = Scheme> {
    prop_oneof![Just(Scheme::BIO), Just(Scheme::BIOES), Just(Scheme::BMES)]
}

/// A CRF with the given scores, as a checkpoint would hold it.
fn crf(n: usize, trans: &[f32], start: &[f32], end: &[f32]) -> Crf {
    let d = Device::Cpu;
    let map = HashMap::from([
        ("transitions".to_string(), Tensor::from_vec(trans.to_vec(), (n, n), &d).unwrap()),
        ("start_transitions".to_string(), Tensor::from_vec(start.to_vec(), n, &d).unwrap()),
        ("end_transitions".to_string(), Tensor::from_vec(end.to_vec(), n, &d).unwrap()),
    ]);
    Crf::load(VarBuilder::from_tensors(map, DType::F32, &d), n).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn constrained_viterbi_is_valid_and_equals_brute_force(
        scheme in schemes(),
        len in 1usize..=4,
        scores in prop::collection::vec(-5f32..5f32, 5 * 5 + 5 + 5 + 4 * 5),
    ) {
        let labels = labels(scheme);
        let n = labels.len();
        let cons = Constraints::new(scheme, &labels).unwrap();
        let (trans, rest) = scores.split_at(n * n);
        let (start, rest) = rest.split_at(n);
        let (end, rest) = rest.split_at(n);
        let em: Vec<Vec<f32>> = (0..len).map(|t| rest[t * n..t * n + n].to_vec()).collect();
        let c = crf(n, trans, start, end);
        let path = c.decode(&em, Some(&cons));
        prop_assert!(cons.is_valid(&path), "{scheme:?}: {path:?} breaks the scheme");
        // Brute force over every valid path.
        let score = |p: &[usize]| -> f32 {
            let mut v = start[p[0]] + end[p[len - 1]];
            for t in 0..len {
                v += em[t][p[t]];
                if t > 0 { v += trans[p[t - 1] * n + p[t]]; }
            }
            v
        };
        let mut best = f32::NEG_INFINITY;
        for code in 0..n.pow(len as u32) {
            let p: Vec<usize> = (0..len).map(|t| code / n.pow(t as u32) % n).collect();
            if cons.is_valid(&p) { best = best.max(score(&p)); }
        }
        prop_assert!((score(&path) - best).abs() < 1e-4, "viterbi {} vs brute force {best}", score(&path));
    }

    #[test]
    fn span_decoding_inverts_span_encoding(
        scheme in schemes(),
        pieces in prop::collection::vec((0usize..3, 1usize..4, 0usize..2), 0..8),
    ) {
        // A random layout: gaps (O, not in BMES) and spans of a type with a length.
        let mut tags: Vec<String> = Vec::new();
        let mut want = Vec::new();
        for (gap, len, kind) in pieces {
            if scheme != Scheme::BMES {
                tags.extend(std::iter::repeat_n("O".to_string(), gap));
            }
            let kind = if scheme == Scheme::BIO { ["A", "B"][kind] } else { "A" };
            let start = tags.len();
            for i in 0..len {
                let role = match (scheme, len, i) {
                    (Scheme::BIO, _, 0) => "B",
                    (Scheme::BIO, _, _) => "I",
                    (_, 1, _) => "S",
                    (_, _, 0) => "B",
                    (_, l, i) if i == l - 1 => "E",
                    (Scheme::BMES, _, _) => "M",
                    _ => "I",
                };
                tags.push(if scheme == Scheme::BMES { role.to_string() } else { format!("{role}-{kind}") });
            }
            want.push((if scheme == Scheme::BMES { String::new() } else { kind.to_string() }, start, tags.len()));
        }
        let all = labels(scheme);
        let cons = Constraints::new(scheme, &all).unwrap();
        let idx: Vec<usize> = tags.iter().map(|t| all.iter().position(|l| l == t).unwrap()).collect();
        prop_assert!(cons.is_valid(&idx), "encoding made an invalid sequence {tags:?}");
        let parsed = scheme.parse_all(&tags).unwrap();
        let got: Vec<(String, usize, usize)> = decode_spans(&parsed).into_iter().map(|s| (s.kind, s.start, s.end)).collect();
        prop_assert_eq!(got, want);
    }
}

/// Text that stresses offsets: ASCII, accents (which BERT's normaliser strips), CJK, emoji
/// (two UTF-16 units), combining marks, zero-width and control characters.
fn texts() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        "[a-zA-Z]{1,6}",
        Just(" ".to_string()),
        Just("Éé".to_string()),
        Just("北京".to_string()),
        Just("😀".to_string()),
        Just("e\u{301}".to_string()),
        Just("\u{200b}".to_string()),
        Just("\u{7}".to_string()),
        Just("ﬁ".to_string()),
        Just("İ".to_string()),
        Just(",.!".to_string()),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
}

fn check_offsets(text: &str, offsets: &[(usize, usize)]) -> Result<(), TestCaseError> {
    let n = text.chars().count();
    let map = Utf16Map::new(text);
    let units: Vec<u16> = text.encode_utf16().collect();
    let mut last_end = 0;
    for &(a, b) in offsets {
        prop_assert!(a < b && b <= n, "offsets ({a}, {b}) outside 0..{n} in {text:?}");
        prop_assert!(a >= last_end, "offsets overlap or go backwards in {text:?}");
        last_end = b;
        let (ua, ub) = (map.to_utf16(a), map.to_utf16(b));
        prop_assert!(String::from_utf16(&units[ua..ub]).is_ok(), "UTF-16 ({ua}, {ub}) splits a surrogate pair in {text:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn offsets_lie_on_character_boundaries(text in texts()) {
        for name in ["all-minilm-l6-v2", "m3e-small"] {
            let tok = tokenizer(name);
            let enc = tok.encode(&text).unwrap();
            let real: Vec<(usize, usize)> = enc.offsets.iter().zip(&enc.sequence_ids).filter(|(_, s)| s.is_some()).map(|(o, _)| *o).collect();
            // Several word pieces may share one character (e.g. a ligature): merge equal spans.
            let mut merged: Vec<(usize, usize)> = Vec::new();
            for o in real {
                if merged.last() != Some(&o) { merged.push(o); }
            }
            check_offsets(&text, &merged)?;
        }
        // And through the tagging API (windows, spans).
        let r = tagger().tag(&text).unwrap();
        let offs: Vec<(usize, usize)> = r.tokens.iter().map(|t| (t.start, t.end)).collect();
        check_offsets(&text, &offs)?;
        for s in &r.spans {
            prop_assert!(s.start < s.end && s.end <= text.chars().count());
        }
    }
}

fn tokenizer(name: &str) -> &'static TextTokenizer {
    use std::sync::OnceLock;
    static CACHE: OnceLock<HashMap<&'static str, TextTokenizer>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        ["all-minilm-l6-v2", "m3e-small"]
            .into_iter()
            .map(|n| (n, TextTokenizer::from_file(common::model_dir(n).join("tokenizer.json")).unwrap()))
            .collect()
    });
    &all[name]
}

fn tagger() -> &'static Model {
    use std::sync::OnceLock;
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| {
        let (c, t, w) = tiny_model(serde_json::json!({"task": "tag", "decoder": "crf", "scheme": "BIO"}), &["O", "B-LOC", "I-LOC"], 4);
        let mut m = Model::from_bytes(&c, &t, &w, &Device::Cpu).unwrap();
        m.set_max_tokens(8).unwrap(); // force windows even on short texts
        m
    })
}
