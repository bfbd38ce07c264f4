//! radpipe: declarative, content-addressed pipelines for imaging-biomarker
//! studies. The `radpipe` binary is a thin layer over this library; the engine
//! (`radpipe-engine`) never links libtorch (deep-learning nodes run in the
//! `radpipe-nn` worker). Public here: the stage kinds (their registry and the
//! schema enum) and the synthetic-cohort generator, which tests and examples
//! use; the CLI and the report are private, so unused code in them warns.

// `!(x > 0.0)` is used on purpose in parameter checks: it is also true for NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod cli;
mod report;
pub mod stages;
mod sweep;
pub mod synth;

pub use cli::main;
