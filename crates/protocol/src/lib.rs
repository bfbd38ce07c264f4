//! The job protocol between the radpipe engine and the `radpipe-nn` worker
//! (ARCHITECTURE.md §7), written once and used by both sides: the engine's
//! `embed` and `fuse` stages build a [`Job`], the worker reads it from its
//! stdin and answers with [`ProgressLine`]s on its stdout. Plain serde types;
//! nothing here links libtorch.
//!
//! - [`job`]: the job (task, parameters, device, determinism, nodes with their samples).
//! - [`model`]: the model configurations of `embed` and `fuse`.
//! - [`train`]: the training settings shared by both.
//! - [`progress`]: the JSON lines the worker prints.

pub mod job;
pub mod model;
pub mod progress;
pub mod train;

pub use job::{effective_threads, EmbedParams, FuseParams, Job, JobNode, Sample, Work, DETERMINISTIC_THREADS};
pub use model::{EmbedModel, FuseModel};
pub use progress::{Done, Event, ProgressLine};
pub use train::{Monitor, TrainSpec, TrainSpecError};
