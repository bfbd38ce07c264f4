//! `radpipe-nn`: the deep-learning worker of radpipe, the only code that links
//! libtorch (through `tch`). The engine spawns it with a JSON job on stdin
//! (`job`); the modules are also a library for tests and benchmarks.

pub mod backbone;
pub mod bench;
pub mod determinism;
pub mod device;
pub mod fusion;
pub mod gradcam;
pub mod job;
pub mod loss;
pub mod resnet;
pub mod train;
pub mod weights;

/// A failure, worded for the user (names the file, patient, tensor or epoch).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }
}

/// libtorch's version, as found at build time.
pub const LIBTORCH_VERSION: &str = env!("RADPIPE_LIBTORCH_VERSION");
