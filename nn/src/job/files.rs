//! The files a task writes and reads back: writing one output file (the
//! error names the path), the environment a fit records in its `fit.json`
//! (the worker's version, libtorch's, the device) for the report, and
//! finding a named file among the files of a fitted model that an apply
//! node is given.

use std::path::{Path, PathBuf};

use radpipe_protocol::JobNode;
use serde_json::{json, Value};
use tch::Device;

use crate::Error;

/// What trained a model: the worker's version, libtorch's, the device (in `fit.json`, for the report).
pub(super) fn environment(dev: Device) -> Value {
    json!({ "radpipe_nn": env!("CARGO_PKG_VERSION"), "libtorch": env!("RADPIPE_LIBTORCH_VERSION"), "device": format!("{dev:?}") })
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
