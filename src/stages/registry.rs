//! The one list of stage kinds. Adding a kind: one file in `src/stages/`, one
//! variant here (its doc comment is the kind's help), one arm in `as_stage`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Command, Ingest, Stage};

/// A stage of the pipeline file, chosen by its `kind`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StageSpec {
    /// Read and validate the cohorts' clinical tables, derive the label; one node.
    Ingest(Ingest),
    /// Run an external program with declared `deps` and `outs`, like a DVC stage.
    Command(Command),
}

/// The kind names, for hints.
pub const KINDS: &[&str] = &["ingest", "command"];

impl StageSpec {
    pub fn as_stage(&self) -> &dyn Stage {
        match self {
            StageSpec::Ingest(s) => s,
            StageSpec::Command(s) => s,
        }
    }
}
