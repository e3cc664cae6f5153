//! The network: configuration, checkpoint weights, the BERT encoder and what runs on top of it.

pub mod autocast;
pub mod config;
pub mod dropout;
pub mod encoder;
pub mod fastmath;
pub mod fused;
pub mod int8;
mod train_attention;
mod train_layer_norm;
mod train_linear;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm_gemm;
pub mod q4;
pub mod quantize;
pub mod weights;

pub use config::BertConfig;
pub use dropout::{Dropout, DropoutRng};
pub use encoder::{BertModel, EncoderInput, EncoderOutput};
pub use weights::Weights;
pub mod heads;
pub mod norm;
pub mod pooling;

pub use heads::TaskHead;
pub use pooling::Pooling;
