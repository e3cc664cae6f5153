//! Text in, token ids out, with character offsets kept end to end.

pub mod batch;
pub mod tokenizer;

pub use batch::Batch;
pub use tokenizer::{Encoded, TextTokenizer};
