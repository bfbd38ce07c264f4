//! The one list of stage kinds. Adding a kind: one file in `src/stages/` and
//! one line in `stage_kinds!` below (its doc comment is the kind's help).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Command, Embed, Evaluate, Features, Fuse, Ingest, Pca, Register, Report, Resample, Slice, Split, Stage, Survival, Table1};
use crate::engine::diagnostics::Diagnostic;
use crate::engine::spec::typed;
use crate::engine::yaml::{PathSeg, YNode};

macro_rules! stage_kinds {
    ($( $(#[doc = $doc:literal])* $variant:ident($ty:ty) = $name:literal, )*) => {
        /// A stage of the pipeline file, chosen by its `kind`.
        #[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum StageSpec {
            $( $(#[doc = $doc])* $variant($ty), )*
        }

        /// The kind names.
        pub const KINDS: &[&str] = &[$($name),*];

        impl StageSpec {
            pub fn as_stage(&self) -> &dyn Stage {
                match self {
                    $( StageSpec::$variant(s) => s, )*
                }
            }

            /// Type a stage's mapping (without its `kind` key) as the given
            /// kind; `None` for an unknown kind. Deserialising the variant's own
            /// type keeps error paths precise (a tagged enum would lose them).
            pub fn parse(kind: &str, tree: &YNode, base: &[PathSeg], value: Value) -> Option<Result<StageSpec, Diagnostic>> {
                match kind {
                    $( $name => Some(typed::<$ty>(tree, base, value).map(StageSpec::$variant)), )*
                    _ => None,
                }
            }
        }
    };
}

stage_kinds! {
    /// Read and validate the cohorts' clinical tables, derive the label; one node.
    Ingest(Ingest) = "ingest",
    /// Run an external program with declared `deps` and `outs`, like a DVC stage.
    Command(Command) = "command",
    /// Seeded, stratified partition of one cohort (train / internal ...); one node.
    Split(Split) = "split",
    /// Per patient: register every sequence onto the reference (Mattes MI), carry the ROI.
    Register(Register) = "register",
    /// Per patient: resample to a spacing (B-spline images, nearest ROI), min-max scale.
    Resample(Resample) = "resample",
    /// Per patient: 2.5D max-ROI-area slices per sequence, as safetensors.
    Slice(Slice) = "slice",
    /// Fine-tune a ResNet per sequence on the training partition (`embed.fit`); features, scores and Grad-CAM per patient (radpipe-nn).
    Embed(Embed) = "embed",
    /// Principal components fit on a training partition (`pca.fit`), applied per patient.
    Pca(Pca) = "pca",
    /// Transformer fusion of the sequences' features into the DLS, fit on the training partition (`fuse.fit`), applied per patient (radpipe-nn).
    Fuse(Fuse) = "fuse",
    /// Gather per-patient feature vectors into cohort-level Arrow IPC tables; one node.
    Features(Features) = "features",
    /// Diagnostic performance of scores for a binary label per cohort: AUC (DeLong), threshold metrics, calibration, decision curves; one node.
    Evaluate(Evaluate) = "evaluate",
    /// Kaplan-Meier, log-rank, Cox hazard ratio and C-index by a group column or a score split at a threshold; one node.
    Survival(Survival) = "survival",
    /// Clinical characteristics by group with the appropriate test (the study's Table 1); one node.
    Table1(Table1) = "table1",
    /// One self-contained HTML page of the input stages' tables and figures, Grad-CAM panels and published values, every number linked to its lineage; one node.
    Report(Report) = "report",
}
