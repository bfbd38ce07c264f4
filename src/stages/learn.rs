//! What the learning stages share: the fit/apply expansion (`pca`, `embed`,
//! `fuse`), the training settings and device options that `embed` and `fuse`
//! hand to the `radpipe-nn` worker, and the batch run through the worker.
//!
//! A fit node learns from the training partition only: its per-patient inputs
//! are those of the split's training patients, and its labels come from the
//! split's `partition.csv` (which holds the ingest label and the
//! stratification column), so that changing,
//! growing or swapping a validation cohort never retrains. Apply nodes (one per
//! patient) read the fit node's files.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::fit_apply::{fit_apply_nodes, PartitionList};
use super::{InputRef, Inputs, NodeDecl, RunContext, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_engine::partition::{self, Partition};
use radpipe_engine::worker;

/// What `embed` and `fuse` share: where the per-patient inputs are, which
/// tensors to learn from, the training partition, the label, the device.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct Learner {
    /// The stage whose per-patient nodes hold the inputs (`slice` for embed, `pca` for fuse).
    pub input: Inputs,
    /// The tensors (sequences) of each patient's input file to learn from.
    pub sequences: Vec<String>,
    /// The partition(s) to train on, e.g. `train`.
    pub fit_on: PartitionList,
    /// The split stage defining the partitions (default: the one that declares them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// The label column (default: the ingest label; read from the split's partition.csv).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The label value that counts as positive.
    #[serde(default = "default_positive")]
    pub positive: String,
    /// `auto` (CUDA when usable, else CPU), `cpu`, `cuda` or `cuda:N`. Not
    /// part of cache keys (a model trained on a GPU is reused on a laptop);
    /// the device used is in each node's log.
    #[serde(default = "default_device")]
    pub device: String,
    /// Half-precision autocast for inference on CUDA (part of the apply nodes' keys).
    #[serde(default)]
    pub amp: bool,
    /// libtorch threads (0: libtorch's default).
    #[serde(default)]
    pub threads: i32,
}

fn default_positive() -> String {
    "1".into()
}

impl Learner {
    /// Problems common to both stages, added to `problems`.
    pub fn check(&self, ctx: &PlanContext, stage: &str, train: &TrainSpec, problems: &mut Vec<Diagnostic>) {
        if self.sequences.is_empty() {
            problems.push(Diagnostic::new(ctx.origin(stage, &["sequences"]), "no sequences (feature tensors) to learn from"));
        }
        if let Err(e) = train.check() {
            problems.push(Diagnostic::new(ctx.origin(stage, &["train"]), e));
        }
        let d = self.device.as_str();
        if !(matches!(d, "auto" | "cpu" | "cuda") || d.strip_prefix("cuda:").is_some_and(|n| n.parse::<usize>().is_ok())) {
            problems.push(Diagnostic::new(ctx.origin(stage, &["device"]), format!("device `{d}`: use auto, cpu, cuda or cuda:N")));
        }
    }

    pub fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    /// The fit node (its parameters gain the label) and the apply nodes.
    pub fn nodes(&self, ctx: &PlanContext, stage: &str, mut fit: Value, apply: Value) -> Result<Vec<NodeDecl>, Diagnostics> {
        fit["label"] = json!(self.label_column(ctx, stage)?);
        fit["positive"] = json!(self.positive);
        fit_apply_nodes(ctx, stage, &self.input, &self.fit_on, self.split.as_deref(), fit, apply)
    }

    /// The label column: given, or the ingest label (else the stratification
    /// column) of the split, both of which its partition.csv holds.
    fn label_column(&self, ctx: &PlanContext, stage: &str) -> Result<String, Diagnostics> {
        if let Some(l) = &self.label {
            return Ok(l.clone());
        }
        let split = self.split.clone().or_else(|| ctx.split_defining(&self.fit_on.names()[0]));
        split
            .and_then(|s| ctx.stage_spec(&s)?.label(ctx))
            .ok_or_else(|| {
                Diagnostic::new(ctx.origin(stage, &["fit_on"]), "no label to train on: the split's ingest stage derives none and the split is not stratified")
                    .hint("give the ingest stage a `label:` or set `label:` here")
                    .into()
            })
    }

    /// Run a batch of this stage's nodes (all fit, or all apply) in one
    /// worker: `tasks` are the worker's (fit, apply) task names, `input_file`
    /// the per-patient file of the input stage, `params` the worker's view of
    /// the stage.
    pub fn run_worker(&self, ctxs: &mut [RunContext<'_>], tasks: (&str, &str), input_file: &str, params: Value) -> Vec<Result<(), StageError>> {
        let Some(first) = ctxs.first() else { return Vec::new() };
        let fit = first.decl.fit_on.is_some();
        let label = first.decl.params["label"].as_str().unwrap_or_default().to_string();
        let input_stage = self.input.refs()[0].stage.clone();
        let mut nodes = Vec::new();
        let mut prepared: Vec<Result<(), StageError>> = Vec::new();
        for ctx in ctxs.iter() {
            let node = if fit {
                fit_samples(ctx, &input_stage, input_file, &label, &self.positive).map(|samples| json!({ "id": ctx.node_id, "out_dir": ctx.out_dir, "samples": samples }))
            } else {
                apply_node(ctx, &input_stage, input_file)
            };
            match node {
                Ok(n) => {
                    nodes.push(n);
                    prepared.push(Ok(()));
                }
                Err(e) => prepared.push(Err(e)),
            }
        }
        let ids: Vec<String> = nodes.iter().map(|n| n["id"].as_str().unwrap_or_default().to_string()).collect();
        let job = json!({
            "task": if fit { tasks.0 } else { tasks.1 },
            "device": self.device,
            "amp": self.amp,
            "threads": self.threads,
            "params": params,
            "nodes": nodes,
        });
        let mut outcomes = if ids.is_empty() {
            Vec::new().into_iter()
        } else {
            let mut logs: Vec<&mut dyn std::io::Write> = ctxs.iter_mut().zip(&prepared).filter(|(_, p)| p.is_ok()).map(|(c, _)| &mut *c.log as &mut dyn std::io::Write).collect();
            worker::run(&job, &ids, &mut logs).into_iter()
        };
        prepared.into_iter().map(|p| p.and_then(|()| outcomes.next().expect("one outcome per node").map_err(StageError::new))).collect()
    }
}

/// Optimisation settings of `embed` and `fuse` (the study's: SGD, lr 0.01,
/// momentum, weight decay, batch 32, focal loss, early stopping). The worker's
/// `TrainConfig` (nn/src/train.rs) mirrors it field for field: the engine may
/// not link the worker's crate (libtorch), the JSON job is the contract, and
/// the worker refuses unknown fields, so a drift fails the CLI tests.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSpec {
    /// Most epochs.
    pub epochs: usize,
    pub batch_size: usize,
    /// SGD learning rate.
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Focal loss weight of the positive class.
    pub focal_alpha: f64,
    /// Focal loss focusing exponent (0: weighted cross-entropy).
    pub focal_gamma: f64,
    /// Share of the training patients held out (stratified) for early stopping.
    pub val_fraction: f64,
    /// Epochs without a better validation score before stopping.
    pub patience: usize,
    /// Early-stopping criterion: `loss` (validation loss) or `auc` (validation AUC, ties by loss); the best epoch's weights are kept.
    pub monitor: Monitor,
    /// Random horizontal flips (images).
    pub flip: bool,
    /// Random rotations by multiples of 90 degrees (images; with `flip`, the eight symmetries of the square).
    pub rotate: bool,
    /// Random crops: pad by this many pixels and crop back (images; 0: off).
    pub crop_pad: i64,
    /// Seed of initialisation, validation split, shuffling, augmentation, dropout.
    pub seed: u64,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            epochs: 30,
            batch_size: 32,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
            focal_alpha: 0.5,
            focal_gamma: 2.0,
            val_fraction: 0.2,
            patience: 5,
            monitor: Monitor::Loss,
            flip: true,
            rotate: false,
            crop_pad: 8,
            seed: 0,
        }
    }
}

/// The early-stopping criterion.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    Loss,
    Auc,
}

impl TrainSpec {
    pub fn check(&self) -> Result<(), String> {
        if self.epochs == 0 || self.batch_size < 2 {
            return Err("epochs must be at least 1 and batch_size at least 2".into());
        }
        if !(self.lr > 0.0) || !(0.0..1.0).contains(&self.val_fraction) || self.val_fraction == 0.0 {
            return Err("lr must be positive and val_fraction in (0, 1)".into());
        }
        if !(0.0..=1.0).contains(&self.focal_alpha) || self.focal_gamma < 0.0 {
            return Err("focal_alpha must be in [0, 1] and focal_gamma non-negative".into());
        }
        Ok(())
    }
}

fn default_device() -> String {
    "auto".into()
}

/// A fit node's samples: each training patient's `file`, with the label read
/// from column `label` of the split's `partition.csv` (`positive` counts as 1).
fn fit_samples(ctx: &RunContext<'_>, input_stage: &str, file: &str, label: &str, positive: &str) -> Result<Vec<Value>, StageError> {
    let split = &ctx.decl.fit_on.as_ref().expect("a fit node").split;
    let partition = ctx
        .inputs
        .iter()
        .find(|i| &i.stage == split)
        .and_then(|i| i.file(partition::FILE))
        .ok_or_else(|| StageError::new(format!("`{}`: the partition of `{split}` is missing", ctx.node_id)))?;
    let bytes = std::fs::read(partition).map_err(|e| StageError::new(format!("{}: {e}", partition.display())))?;
    let labels = Partition::from_csv(&bytes)
        .and_then(|p| p.column(label))
        .map_err(|e| StageError::new(format!("`{}`: the partition of `{split}`: {e}; set `label:` to one of its label columns", ctx.node_id)))?;
    let mut samples = Vec::new();
    for input in ctx.inputs.iter().filter(|i| i.stage == input_stage && i.item.is_some()) {
        let id = &input.item.as_ref().expect("per-patient").id;
        let path = input.file(file).ok_or_else(|| StageError::new(format!("patient {id}: `{}` wrote no {file}", input.node)))?;
        let y = labels.get(id).ok_or_else(|| StageError::new(format!("patient {id}: no `{label}` in the partition of `{split}`")))?;
        if y.is_empty() {
            return Err(StageError::new(format!("patient {id}: the label `{label}` is missing")));
        }
        samples.push(json!({ "patient": id, "label": i64::from(y == positive), "file": path }));
    }
    Ok(samples)
}

/// An apply node's job entry: its patient's input file and the fit node's files.
fn apply_node(ctx: &RunContext<'_>, input_stage: &str, input_file: &str) -> Result<Value, StageError> {
    let stage = ctx.node_id.split('[').next().unwrap_or_default();
    let me = ctx.decl.item.as_ref().map(|i| i.id.clone()).unwrap_or_else(|| ctx.node_id.to_string());
    let own = ctx.inputs.iter().find(|i| i.stage == input_stage && i.item.is_some()).and_then(|i| i.file(input_file));
    let fit_node = format!("{stage}.fit");
    let model: Vec<&std::path::PathBuf> = ctx.inputs.iter().filter(|i| i.node == fit_node).flat_map(|i| i.files.iter().map(|(_, p)| p)).collect();
    match own {
        Some(path) if !model.is_empty() => Ok(json!({ "id": ctx.node_id, "out_dir": ctx.out_dir, "samples": [{ "patient": me, "file": path }], "model": model })),
        Some(_) => Err(StageError::new(format!("patient {me}: the fitted model of `{stage}` is missing"))),
        None => Err(StageError::new(format!("patient {me}: `{input_stage}` wrote no {input_file}"))),
    }
}
