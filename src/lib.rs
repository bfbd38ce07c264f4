//! radpipe: declarative, content-addressed pipelines for imaging-biomarker
//! studies. The `radpipe` binary is a thin layer over this library; the engine
//! never links libtorch (deep-learning nodes run in the `radpipe-nn` worker).

pub mod cli;
pub mod report;
pub mod stages;
pub mod synth;
