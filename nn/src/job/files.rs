//! The files a task writes and reads back: writing one output file (the
//! error names the path), the environment a fit records in its `fit.json`
//! (the worker's version, libtorch's, the device, the determinism settings)
//! for the report, and
//! finding a named file among the files of a fitted model that an apply
//! node is given.

use std::path::{Path, PathBuf};

use radpipe_protocol::JobNode;
use serde_json::{json, Value};
use tch::Device;

use crate::determinism::Pinned;
use crate::Error;

/// What trained a model: the worker's version, libtorch's, the device and
/// the settings that change results (in `fit.json`, for the report; in
/// deterministic mode the same on every machine).
pub(super) fn environment(dev: Device, pinned: &Pinned) -> Value {
    json!({
        "radpipe_nn": env!("CARGO_PKG_VERSION"), "libtorch": env!("RADPIPE_LIBTORCH_VERSION"), "device": format!("{dev:?}"),
        "deterministic": pinned.deterministic, "threads": pinned.threads, "cpu_capability": pinned.cpu_capability,
    })
}

pub(super) fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::new(format!("{}: {e}", path.display())))
}

pub(super) fn model_file<'a>(node: &'a JobNode, name: &str) -> Result<&'a Path, Error> {
    node.model
        .iter()
        .find(|p| p.file_name().is_some_and(|f| f == name))
        .map(PathBuf::as_path)
        .ok_or_else(|| Error::new(format!("the fitted model has no `{name}`")))
}
