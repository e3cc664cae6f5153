//! config.json parsing on arbitrary text.
#![no_main]
use bert_tasks::model::BertConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = BertConfig::from_json(text, "config.json") {
            let _ = c.labels();
            let _ = c.to_json();
        }
    }
});
