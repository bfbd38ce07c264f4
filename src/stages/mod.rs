//! Stage kinds. Each kind lives in one file with its typed parameters (serde +
//! schemars), an explicit `VERSION` that enters every cache key, how it expands
//! into nodes, and how one node runs. The `stage_kinds!` list below is the one
//! registry of kinds (see CONTRIBUTING.md, "Adding a stage kind"); the other
//! modules are what several kinds share, and no kind imports another.

mod fit_apply;
mod learn;
mod registry;
pub(crate) mod study;
mod tensors;
mod volumes;

pub use radpipe_engine::stage::{FitOn, InputArtifact, InputRef, Inputs, Item, NodeDecl, RunContext, Stage, StageError};
pub use resample::Interp;

registry::stage_kinds! {
    /// Read and validate the cohorts' clinical tables, derive the label; one node.
    ingest::Ingest = "ingest",
    /// Run an external program with declared `deps` and `outs`, like a DVC stage.
    command::Command = "command",
    /// Seeded, stratified partition of one cohort (train / internal ...); one node.
    split::Split = "split",
    /// Per patient: register every sequence onto the reference (Mattes MI), carry the ROI.
    register::Register = "register",
    /// Per patient: resample to a spacing (B-spline images, nearest ROI), min-max scale.
    resample::Resample = "resample",
    /// Per patient: 2.5D max-ROI-area slices per sequence, as safetensors.
    slice::Slice = "slice",
    /// Fine-tune a ResNet per sequence on the training partition (`embed.fit`); features, scores and Grad-CAM per patient (radpipe-nn).
    embed::Embed = "embed",
    /// Principal components fit on a training partition (`pca.fit`), applied per patient.
    pca::Pca = "pca",
    /// Transformer fusion of the sequences' features into the DLS, fit on the training partition (`fuse.fit`), applied per patient (radpipe-nn).
    fuse::Fuse = "fuse",
    /// Gather per-patient feature vectors into cohort-level Arrow IPC tables; one node.
    features::Features = "features",
    /// Diagnostic performance of scores for a binary label per cohort: AUC (DeLong), threshold metrics, calibration, decision curves; one node.
    evaluate::Evaluate = "evaluate",
    /// Kaplan-Meier, log-rank, Cox hazard ratio and C-index by a group column or a score split at a threshold; one node.
    survival::Survival = "survival",
    /// Clinical characteristics by group with the appropriate test (the study's Table 1); one node.
    table1::Table1 = "table1",
    /// One self-contained HTML page of the input stages' tables and figures, Grad-CAM panels and published values, every number linked to its lineage; one node.
    report::Report = "report",
}
