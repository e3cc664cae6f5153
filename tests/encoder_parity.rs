//! The encoder on the real pretrained weights agrees with Hugging Face transformers (PyTorch):
//! fixtures from tests/reference/make_fixtures.py, tolerance 1e-4.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use bert_tasks::encode::TextEncoder;
use candle_core::Device;
use common::*;

const TOLERANCE: f32 = 1e-4;

fn check_model(name: &str) {
    let fx = fixture(&format!("encoder-{name}.json"));
    let encoder = TextEncoder::load(model_dir(name), &Device::Cpu).unwrap();
    let dims: Vec<usize> = fx["dims"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let sentences = fx["sentences"].as_array().unwrap();
    let texts: Vec<&str> = sentences.iter().map(|s| s["text"].as_str().unwrap()).collect();
    // All sentences in one padded batch: padding must not change any sentence's vectors.
    let out = encoder.embed(&texts).unwrap();
    let mut worst = 0f32;
    for (s, e) in sentences.iter().zip(&out) {
        let ids: Vec<u32> = s["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(e.encoded.ids, ids, "tokenisation of {:?}", s["text"]);
        for (t, want) in s["hidden_slice"].as_array().unwrap().iter().enumerate() {
            let got: Vec<f32> = dims.iter().map(|&d| e.last_hidden_state[t][d]).collect();
            worst = worst.max(max_abs_diff(&got, &floats(want)));
        }
        let norms: Vec<f32> =
            e.last_hidden_state.iter().map(|row| row.iter().map(|v| v * v).sum::<f32>().sqrt()).collect();
        worst = worst.max(max_abs_diff(&norms, &floats(&s["hidden_norm"])));
        let pooled = e.pooler_output.as_ref().expect("both models have a pooler");
        let got: Vec<f32> = dims.iter().map(|&d| pooled[d]).collect();
        worst = worst.max(max_abs_diff(&got, &floats(&s["pooled_slice"])));
        let norm = pooled.iter().map(|v| v * v).sum::<f32>().sqrt();
        worst = worst.max((norm - s["pooled_norm"].as_f64().unwrap() as f32).abs());
    }
    eprintln!("{name}: max |ours - transformers| = {worst:.2e}");
    assert!(worst <= TOLERANCE, "{name}: max difference {worst} > {TOLERANCE}");
}

#[test]
fn english_all_minilm_matches_transformers() {
    check_model("all-minilm-l6-v2");
}

#[test]
fn chinese_m3e_small_matches_transformers() {
    check_model("m3e-small");
}

/// Our own encoder (which adds dropout and extra-embedding hooks) must keep computing exactly
/// what candle-transformers' `BertModel` computes on the same weights.
#[test]
fn agrees_with_candle_transformers_bert() {
    use candle_transformers::models::bert as reference;
    let dir = model_dir("all-minilm-l6-v2");
    let ours = TextEncoder::load(&dir, &Device::Cpu).unwrap();
    let cfg: reference::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let vb = unsafe {
        candle_nn::VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], candle_core::DType::F32, &Device::Cpu)
            .unwrap()
    };
    let theirs = reference::BertModel::load(vb, &cfg).unwrap();
    let text = "Candle and transformers should agree on every token.";
    let e = &ours.embed(&[text]).unwrap()[0];
    let ids = candle_core::Tensor::new(e.encoded.ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let types = ids.zeros_like().unwrap();
    let h: Vec<Vec<f32>> = theirs.forward(&ids, &types, None).unwrap().squeeze(0).unwrap().to_vec2().unwrap();
    let worst = h.iter().zip(&e.last_hidden_state).map(|(a, b)| max_abs_diff(a, b)).fold(0.0, f32::max);
    assert!(worst < 1e-5, "max difference {worst}");
}
