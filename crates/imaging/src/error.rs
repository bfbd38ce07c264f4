//! Error type shared by the whole `imaging` module.

use std::path::PathBuf;

/// Everything that can go wrong in `imaging`. User data never causes a panic:
/// it produces one of these, carrying the file path where one is involved.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    #[error("{path}: I/O error: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unsupported NIfTI datatype {datatype}")]
    UnsupportedDatatype { path: PathBuf, datatype: String },
    #[error("{path}: bad NIfTI header: {reason}")]
    BadHeader { path: PathBuf, reason: String },
    #[error("{path}: cannot read/write NIfTI: {reason}")]
    Nifti { path: PathBuf, reason: String },
    #[error("shape mismatch: {what}")]
    ShapeMismatch { what: String },
    #[error("empty ROI: {what}")]
    EmptyRoi { what: String },
    #[error("invalid geometry: {0}")]
    InvalidGeometry(String),
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("{path}: transform file: {reason}")]
    TransformFile { path: PathBuf, reason: String },
    #[error("{path}: PNG: {reason}")]
    Png { path: PathBuf, reason: String },
    #[error("registration failed: {0}")]
    Registration(String),
}

pub type Result<T> = std::result::Result<T, ImagingError>;
