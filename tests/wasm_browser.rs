//! wasm API in a real browser: `wasm-pack test --headless --chrome -- --test wasm_browser`.
#![cfg(target_arch = "wasm32")]

mod wasm_shared;

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn tag_offsets_are_utf16() {
    wasm_shared::tag_offsets_are_utf16();
}

#[wasm_bindgen_test]
fn errors_are_errors_and_the_model_survives() {
    wasm_shared::errors_are_errors_and_the_model_survives();
}

#[wasm_bindgen_test]
fn batches_equal_single_calls() {
    wasm_shared::batches_equal_single_calls();
}
