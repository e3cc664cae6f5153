//! One error type for the whole crate. Every variant carries a message that names what went wrong
//! (the file, the tensor, the field), because a model in a web page must never panic: callers get
//! a `Result` they can show to a person.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not valid or describes something we do not support.
    #[error("config: {0}")]
    Config(String),
    /// The weights are missing a tensor, have the wrong shape, or cannot be decoded.
    #[error("weights: {0}")]
    Weights(String),
    /// `tokenizer.json` cannot be loaded or the text cannot be tokenised.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The caller's input is not acceptable (e.g. a span outside the text).
    #[error("invalid input: {0}")]
    Input(String),
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Tensor(String),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Tensor(clean(e))
    }
}

/// An error's message without the backtrace candle appends when `RUST_BACKTRACE` is set: the
/// message is for a person (and the browser console), the backtrace is noise there.
pub fn clean(e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    match text.find("\n   0: ") {
        Some(i) => text[..i].trim_end().to_string(),
        None => text,
    }
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }
}
