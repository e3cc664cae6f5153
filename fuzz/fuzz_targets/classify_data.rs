//! The classification readers (TSV and JSON lines) on arbitrary text.
#![no_main]
use bert_tasks::data::parse_classify;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_classify(text, Path::new("fuzz.tsv"));
        let _ = parse_classify(text, Path::new("fuzz.jsonl"));
    }
});
