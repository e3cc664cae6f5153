//! The relation JSON-lines reader on arbitrary text.
#![no_main]
use bert_tasks::data::parse_relate;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_relate(text, Path::new("fuzz.jsonl"));
    }
});
