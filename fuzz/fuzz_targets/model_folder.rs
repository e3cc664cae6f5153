//! The model-folder loader on arbitrary bytes: config.json, tokenizer.json and model.safetensors
//! (lengths of the first two in the input's first four bytes). Whatever loads must also run.
#![no_main]
use bert_tasks::checkpoint::Checkpoint;
use bert_tasks::tasks::Model;
use candle_core::Device;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let a = u16::from_le_bytes([data[0], data[1]]) as usize;
    let b = u16::from_le_bytes([data[2], data[3]]) as usize;
    let rest = &data[4..];
    if a + b > rest.len() {
        return;
    }
    let (config, rest) = rest.split_at(a);
    let (tokenizer, weights) = rest.split_at(b);
    let Ok(c) = Checkpoint::from_bytes(config, tokenizer, weights) else { return };
    // Refuse absurd sizes before building (a fuzzer can ask for a 2^40-row embedding).
    if c.config.hidden_size * c.config.vocab_size > 1 << 24 || c.config.num_hidden_layers > 4 {
        return;
    }
    if let Ok(m) = Model::from_checkpoint(c, &Device::Cpu) {
        let _ = m.classify("hello world", None);
        let _ = m.tag("hello 北京");
    }
});
