//! The CoNLL reader on arbitrary text, and the scheme checks training runs on what it reads.
#![no_main]
use bert_tasks::data::parse_conll;
use bert_tasks::text::scheme::Scheme;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(sentences) = parse_conll(text, Path::new("fuzz.conll")) {
            let tags: Vec<String> = sentences.iter().flat_map(|s| s.tags.iter().cloned()).collect();
            let scheme = Scheme::infer(&tags);
            for s in &sentences {
                if let Ok(parsed) = scheme.parse_all(&s.tags) {
                    let _ = bert_tasks::text::scheme::decode_spans(&parsed);
                }
            }
        }
    }
});
