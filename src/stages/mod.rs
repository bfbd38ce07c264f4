//! Stage kinds. Each kind lives in one file with its typed parameters (serde +
//! schemars), an explicit `VERSION` that enters every cache key, how it expands
//! into nodes, and how one node runs. `registry.rs` is the one list of kinds.

mod command;
mod embed;
mod evaluate;
mod features;
mod fuse;
mod ingest;
mod learn;
mod pca;
mod register;
mod registry;
mod report;
mod resample;
mod slice;
mod split;
pub mod study;
mod survival;
mod table1;
mod volumes;

pub use command::Command;
pub use embed::Embed;
pub use evaluate::Evaluate;
pub use features::Features;
pub use fuse::Fuse;
pub use ingest::Ingest;
pub use pca::Pca;
pub use register::Register;
pub use resample::{Interp, Resample};
pub use slice::Slice;
pub use split::{read_partition, read_partition_column, Split};
pub use registry::{StageSpec, KINDS};
pub use report::Report;
pub use survival::Survival;
pub use table1::Table1;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::engine::diagnostics::Diagnostics;
use crate::engine::plan::PlanContext;

/// What a node is about: a patient (with its cohort), or an item of a list or glob.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
}

/// A node that learns: it sees only the patients of some partitions of a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FitOn {
    /// The `split` stage whose `partition.csv` decides.
    pub split: String,
    /// The partitions to learn from, e.g. `[train]`.
    pub partitions: Vec<String>,
}

/// One node as a stage declares it; the engine adds edges and keys.
#[derive(Debug, Clone)]
pub struct NodeDecl {
    /// `None` for a single (cohort-level) node.
    pub item: Option<Item>,
    /// `Some` for a fit node (id `stage.fit`): its per-patient inputs are only
    /// those of the training partitions, chosen when the split has run, so
    /// growing or swapping validation cohorts never changes its key. The
    /// stage's other nodes (apply nodes) run after it.
    pub fit_on: Option<FitOn>,
    /// The resolved parameters that enter the key (and the action record).
    pub params: Value,
    /// Workspace-relative files or folders this node reads. Those that another
    /// node produces become edges; the others are sources, hashed by content.
    pub deps: Vec<String>,
    /// Workspace-relative outputs (command stages). Empty: the node writes into
    /// its own output folder, which the engine stores and copies to `results/`.
    pub outs: Vec<String>,
}

impl NodeDecl {
    /// A single node with these parameters and nothing else.
    pub fn single(params: Value) -> Self {
        NodeDecl { item: None, fit_on: None, params, deps: Vec::new(), outs: Vec::new() }
    }

    /// A per-item node.
    pub fn per_item(item: Item, params: Value) -> Self {
        NodeDecl { item: Some(item), ..NodeDecl::single(params) }
    }

    pub fn with_item(mut self, item: Option<Item>) -> Self {
        self.item = item;
        self
    }
}

/// Upstream outputs handed to a running node.
#[derive(Debug, Clone)]
pub struct InputArtifact {
    pub node: String,
    pub stage: String,
    pub item: Option<Item>,
    /// The upstream action's key (its record in the store).
    pub key: String,
    /// (file name relative to the upstream's output root, path of its stored object)
    pub files: Vec<(String, PathBuf)>,
}

impl InputArtifact {
    /// The stored object of the output named `name`.
    pub fn file(&self, name: &str) -> Option<&PathBuf> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }
}

/// What a running node may use.
pub struct RunContext<'a> {
    pub workspace: &'a Path,
    pub node_id: &'a str,
    /// The node's cache key (its action record's name): the lineage of what it writes.
    pub key: &'a str,
    pub decl: &'a NodeDecl,
    pub inputs: &'a [InputArtifact],
    /// Where a stage without workspace `outs` writes its outputs.
    pub out_dir: &'a Path,
    pub log: &'a mut dyn Write,
}

/// A node failed; the message says which patient, file and cause.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StageError(pub String);

impl StageError {
    pub fn new(msg: impl Into<String>) -> Self {
        StageError(msg.into())
    }
}

/// One `input:` reference: all outputs of a stage, or one named output (`stage.output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRef {
    pub stage: String,
    pub output: Option<String>,
}

impl InputRef {
    pub fn parse(s: &str) -> InputRef {
        match s.split_once('.') {
            Some((stage, output)) => InputRef { stage: stage.into(), output: Some(output.into()) },
            None => InputRef { stage: s.into(), output: None },
        }
    }
}

/// `input:` accepts one stage reference or a list of them.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Inputs {
    One(String),
    Many(Vec<String>),
}

impl Inputs {
    pub fn refs(&self) -> Vec<InputRef> {
        match self {
            Inputs::One(s) => vec![InputRef::parse(s)],
            Inputs::Many(v) => v.iter().map(|s| InputRef::parse(s)).collect(),
        }
    }
}

/// The behaviour every stage kind implements.
pub trait Stage: Send + Sync {
    /// The `kind:` name.
    fn kind(&self) -> &'static str;
    /// Bumped whenever the stage's outputs could change for the same inputs.
    fn version(&self) -> u32;
    /// The stages whose outputs this one reads (`input:`).
    fn inputs(&self) -> Vec<InputRef> {
        Vec::new()
    }
    /// Whether a cohort-level node may run on fewer patients when some failed.
    fn drops_missing(&self) -> bool {
        false
    }
    /// The nodes of this stage.
    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics>;
    /// Run one node.
    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError>;
    /// Whether the stage's nodes that are ready together run in one call of
    /// `run_batch` (one worker start and one model load for many patients).
    fn batched(&self) -> bool {
        false
    }
    /// Run several ready nodes of this stage; one result per context, in order.
    fn run_batch(&self, ctxs: &mut [RunContext<'_>]) -> Vec<Result<(), StageError>> {
        ctxs.iter_mut().map(|c| self.run(c)).collect()
    }
}
