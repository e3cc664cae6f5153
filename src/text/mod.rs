//! Text in, token ids out, with character offsets kept end to end.

pub mod batch;
pub mod relation;
pub mod scheme;
pub mod tokenizer;
pub mod utf16;
pub mod windows;

pub use batch::Batch;
pub use tokenizer::{Encoded, TextTokenizer};
