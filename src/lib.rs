//! bert-tasks: fine-tune BERT for classification, sequence tagging and relation extraction, and
//! run the fine-tuned models natively or in the browser (WebAssembly).
//!
//! Modules, one per concept:
//! - [`model`]: `config.json`, checkpoint weights, the encoder (with real dropout).
//! - [`text`]: tokenisation with character offsets, batching.
//! - [`encode`]: a loaded encoder folder ready to embed text.

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod encode;
pub mod error;
pub mod model;
pub mod tasks;
pub mod text;
#[doc(hidden)]
pub mod testing;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use error::{Error, Result};
