//! Fine-tuning: losses, re-sampling, the optimizer, metrics, checkpoints and the training loop.

pub mod loss;
pub mod metrics;
pub mod optim;
pub mod sampler;
