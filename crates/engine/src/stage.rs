//! The stage interface: what every stage kind implements, what the engine
//! hands a running node, and the registry through which the pipeline file's
//! `kind:` names become stages. The engine names no concrete kind: what it
//! needs to know of one (the partitions it defines, the cohorts it reads, its
//! label, the scores it writes, whether it learns) it asks through [`Stage`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

use std::collections::HashSet;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::lineage::{self, LineageError, Step};
use crate::plan::PlanContext;
use crate::resources::Resources;
use crate::store::{ActionRecord, Store};
use crate::yaml::{PathSeg, YNode};

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

/// The label a learning stage's scores predict and the partitions it learned from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trained {
    pub label: String,
    /// The label's positive value, as the ingested table's text shows it (`1`).
    pub positive: String,
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
    /// The store's action records, read-only: how a stage reads lineage.
    pub records: Records<'a>,
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

/// Read-only access to the store's action records and their outputs: the
/// lineage a stage (the report) may cite. Stages never open the store.
#[derive(Clone, Copy)]
pub struct Records<'a>(pub(crate) &'a Store);

impl Records<'_> {
    /// The action record of a key.
    pub fn action(&self, key: &str) -> Option<ActionRecord> {
        self.0.read_action(key)
    }

    /// The bytes of one output of an action.
    pub fn output(&self, action: &ActionRecord, name: &str) -> Option<Vec<u8>> {
        self.0.read_output(action, name)
    }

    /// The patients an action's metrics of `group` stand on (see [`lineage::group_patients`]).
    pub fn group_patients(&self, action: &ActionRecord, group: &str) -> Option<HashSet<String>> {
        lineage::group_patients(self.0, action, group)
    }

    /// The steps from an action back to its sources (see [`lineage::steps_of_action`]).
    pub fn steps(&self, key: &str, patients: Option<&HashSet<String>>) -> Result<Vec<Step>, LineageError> {
        lineage::steps_of_action(self.0, key, patients)
    }
}

/// The behaviour every stage kind implements. Beyond expanding into nodes and
/// running one, a kind tells the engine and other stages what it declares:
/// the defaults say "nothing".
pub trait Stage: Send + Sync + std::fmt::Debug {
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
    /// The partitions this stage defines (a split: `train`, `internal`),
    /// usable wherever a cohort name is.
    fn partitions(&self) -> Vec<String> {
        Vec::new()
    }
    /// The cohorts whose rows this stage's clinical table holds (ingest).
    fn cohorts(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether this stage writes the clinical table (`clinical.parquet`) that
    /// statistics stages read.
    fn writes_clinical_table(&self) -> bool {
        false
    }
    /// The label column this stage makes available to its consumers: derived
    /// (ingest), or carried in its partition file (a split).
    fn label(&self, _ctx: &PlanContext) -> Option<String> {
        None
    }
    /// The per-patient scores this stage writes (`scores.json` keys).
    fn scores(&self) -> Vec<String> {
        Vec::new()
    }
    /// What this stage's scores are probabilities of: the label its model was
    /// trained on and the partitions it learned from (learning stages).
    fn trained_on(&self, _ctx: &PlanContext) -> Option<Trained> {
        None
    }
    /// The metric id of the threshold this stage fits for the score `reference`
    /// (`stage.score`), when it fits one on a training partition.
    fn fitted_threshold_id(&self, _stage: &str, _reference: &str) -> Option<String> {
        None
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
    /// What this kind's cluster jobs ask for unless the pipeline file's
    /// `resources:` says otherwise (see [`Resources::over`]).
    fn resources(&self) -> Resources {
        Resources::default()
    }
    /// Run several ready nodes of this stage; one result per context, in order.
    fn run_batch(&self, ctxs: &mut [RunContext<'_>]) -> Vec<Result<(), StageError>> {
        ctxs.iter_mut().map(|c| self.run(c)).collect()
    }
}

/// The stage kinds a program knows: how `kind:` names become stages.
pub trait Registry: Sync {
    /// The kind names, for messages.
    fn kinds(&self) -> &'static [&'static str];
    /// Type a stage's mapping (without its `kind` key) as the given kind;
    /// `None` for an unknown kind.
    fn parse(&self, kind: &str, tree: &YNode, base: &[PathSeg], value: Value) -> Option<Result<Box<dyn Stage>, Diagnostic>>;
}
