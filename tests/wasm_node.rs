//! wasm API in Node: `wasm-pack test --node -- --test wasm_node`.
#![cfg(target_arch = "wasm32")]

mod wasm_shared;

wasm_tests!();

/// The 1,000,000-character row of the bad-input table (Node only; see `empty_and_huge_texts`).
#[wasm_bindgen_test::wasm_bindgen_test]
fn a_million_characters() {
    wasm_shared::empty_and_huge_texts(&[1_000_000]);
}
