//! wasm API in a real browser: `wasm-pack test --headless --chrome -- --test wasm_browser`.
#![cfg(target_arch = "wasm32")]

mod wasm_shared;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

wasm_tests!();
