//! bert-tasks: fine-tune BERT for classification, sequence tagging and relation extraction, and
//! run the fine-tuned models natively or in the browser (WebAssembly).
//!
//! Modules, one per concept:
//! - [`model`]: `config.json`, checkpoint weights, the encoder (real dropout, differentiable
//!   norms), pooling, and the heads (classify, tag + CRF, relate).
//! - [`text`]: tokenisation with character offsets, batching, tag schemes and spans, windows,
//!   relation spans and markers, UTF-16 offsets.
//! - [`tasks`]: [`tasks::Model`] — `classify`, `tag`, `relate` and their batch forms.
//! - [`data`], [`train`]: training data readers and the trainer (native only).
//! - [`encode`], [`checkpoint`], [`device`]: a loaded encoder, a model folder, CPU/CUDA.
//! - [`parallel`]: whole calls on the kernels' thread pool.
//! - `cli` (native) and `wasm` (wasm32): the two front ends.

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod encode;
pub mod error;
pub mod model;
pub mod parallel;
pub mod tasks;
pub mod text;
#[doc(hidden)]
pub mod testing;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use error::{Error, Result};
