//! Fine-tuning: losses, re-sampling, the optimizer, metrics, checkpoints and the training loop.

#[cfg(feature = "cuda")]
mod adamw_cuda;
pub mod batches;
pub mod checkpoint;
pub mod evaluate;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod prepare;
pub mod report;
pub mod sampler;
pub mod task;
pub mod trainer;

pub use task::Task;
pub use trainer::{TrainConfig, TrainSummary, Trainer};
