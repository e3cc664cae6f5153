//! The JavaScript API (wasm32 builds only), through wasm-bindgen.

use wasm_bindgen::prelude::*;

/// Runs once when the module is instantiated: routes Rust panics to `console.error` so that a
/// bug shows a readable message (the API itself returns errors instead of panicking).
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}
