//! What the learning stages share: the fit/apply expansion (`pca`, `embed`,
//! `fuse`), the device options that `embed` and `fuse` hand to the
//! `radpipe-nn` worker, and the batch run through the worker (a typed
//! `radpipe_protocol::Job`; the training settings are the protocol's
//! `TrainSpec`).
//!
//! A fit node learns from the training partition only: its per-patient inputs
//! are those of the split's training patients, and its labels come from the
//! split's `partition.csv` (which holds the ingest label and the
//! stratification column), so that changing,
//! growing or swapping a validation cohort never retrains. Apply nodes (one per
//! patient) read the fit node's files.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::fit_apply::{fit_apply_nodes, PartitionList};
use super::{InputRef, Inputs, NodeDecl, RunContext, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::partition::{self, Partition};
use radpipe_engine::plan::PlanContext;
use radpipe_engine::stage::Trained;
use radpipe_engine::worker;
use radpipe_protocol::{effective_threads, Job, JobNode, Sample, TrainSpec, Work};

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
    /// libtorch intra-op threads. 0: in deterministic mode a fixed
    /// `DETERMINISTIC_THREADS` (2), so that the machine's core count never
    /// changes results; otherwise libtorch's default. Part of the keys in
    /// deterministic mode (the thread count changes the sums' order).
    #[serde(default)]
    pub threads: i32,
    /// Reproducible learning (part of the keys). On the CPU the worker fixes
    /// the thread count, caps libtorch's and oneDNN's kernels at AVX2, puts
    /// MKL in its compatible (CNR) mode, whatever the environment says, and
    /// asks for deterministic algorithms, so that training and inference do
    /// not depend on the machine's cores or vector units: byte-identical
    /// outputs for the same libtorch and radpipe versions (measured on one
    /// machine across core counts and kernel levels; README, "What is
    /// reproducible"). On CUDA it turns on cuDNN's deterministic algorithms
    /// and switches its benchmark off: results are then reproducible only
    /// statistically. `false` lets libtorch pick the machine's fastest kernels.
    #[serde(default = "default_deterministic")]
    pub deterministic: bool,
}

fn default_deterministic() -> bool {
    true
}

/// A stage's (fit, apply) tasks for the worker, each made from the stage's parameters.
pub type Tasks<P> = (fn(P) -> Work, fn(P) -> Work);

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
            problems.push(Diagnostic::new(ctx.origin(stage, &["train"]), e.to_string()));
        }
        let d = self.device.as_str();
        if !(matches!(d, "auto" | "cpu" | "cuda") || d.strip_prefix("cuda:").is_some_and(|n| n.parse::<usize>().is_ok())) {
            problems.push(Diagnostic::new(ctx.origin(stage, &["device"]), format!("device `{d}`: use auto, cpu, cuda or cuda:N")));
        }
    }

    pub fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    /// The fit node (its parameters gain the label) and the apply nodes; the
    /// parameters of both gain what of the determinism setting enters the keys.
    pub fn nodes(&self, ctx: &PlanContext, stage: &str, mut fit: Value, mut apply: Value) -> Result<Vec<NodeDecl>, Diagnostics> {
        fit["label"] = json!(self.label_column(ctx, stage)?);
        fit["positive"] = json!(self.positive);
        for params in [&mut fit, &mut apply] {
            for (name, value) in self.determinism() {
                params[name] = value;
            }
        }
        fit_apply_nodes(ctx, stage, &self.input, &self.fit_on, self.split.as_deref(), fit, apply)
    }

    /// What of the determinism setting enters the keys: `deterministic` and,
    /// when it is on, the thread count it runs with (which then changes the
    /// outputs); off, the outputs depend on the machine anyway and the
    /// thread count stays out.
    fn determinism(&self) -> Vec<(&'static str, Value)> {
        if self.deterministic {
            vec![("deterministic", json!(true)), ("threads", json!(self.job_threads()))]
        } else {
            vec![("deterministic", json!(false))]
        }
    }

    /// The thread count the worker is given.
    fn job_threads(&self) -> i32 {
        effective_threads(self.threads, self.deterministic)
    }

    /// The label the model learns and the partitions it learns from.
    pub fn trained_on(&self, ctx: &PlanContext) -> Option<Trained> {
        Some(Trained { label: self.label_column(ctx, "").ok()?, positive: self.positive.clone(), partitions: self.fit_on.names() })
    }

    /// The label column: given, or the ingest label (else the stratification
    /// column) of the split, both of which its partition.csv holds.
    fn label_column(&self, ctx: &PlanContext, stage: &str) -> Result<String, Diagnostics> {
        if let Some(l) = &self.label {
            return Ok(l.clone());
        }
        let split = self.split.clone().or_else(|| ctx.split_defining(&self.fit_on.names()[0]));
        split.and_then(|s| ctx.stage_spec(&s)?.label(ctx)).ok_or_else(|| {
            Diagnostic::new(ctx.origin(stage, &["fit_on"]), "no label to train on: the split's ingest stage derives none and the split is not stratified")
                .hint("give the ingest stage a `label:` or set `label:` here")
                .into()
        })
    }

    /// Run a batch of this stage's nodes (all fit, or all apply) in one
    /// worker: `tasks` are the worker's (fit, apply) tasks, `input_file` the
    /// per-patient file of the input stage, `params` the worker's view of the
    /// stage.
    pub fn run_worker<P>(&self, ctxs: &mut [RunContext<'_>], tasks: Tasks<P>, input_file: &str, params: P) -> Vec<Result<(), StageError>> {
        let Some(first) = ctxs.first() else { return Vec::new() };
        let fit = first.decl.fit_on.is_some();
        let label = first.decl.params["label"].as_str().unwrap_or_default().to_string();
        let input_stage = self.input.refs()[0].stage.clone();
        let mut nodes = Vec::new();
        let mut prepared: Vec<Result<(), StageError>> = Vec::new();
        for ctx in ctxs.iter() {
            let node = if fit {
                fit_samples(ctx, &input_stage, input_file, &label, &self.positive).map(|samples| JobNode {
                    id: ctx.node_id.to_string(),
                    out_dir: ctx.out_dir.to_path_buf(),
                    samples,
                    model: Vec::new(),
                })
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
        let job = Job {
            work: if fit { tasks.0(params) } else { tasks.1(params) },
            device: self.device.clone(),
            amp: self.amp,
            threads: self.job_threads(),
            deterministic: self.deterministic,
            nodes,
        };
        let mut outcomes = if job.nodes.is_empty() {
            Vec::new().into_iter()
        } else {
            let mut logs: Vec<&mut dyn std::io::Write> =
                ctxs.iter_mut().zip(&prepared).filter(|(_, p)| p.is_ok()).map(|(c, _)| &mut *c.log as &mut dyn std::io::Write).collect();
            worker::run(&job, &mut logs).into_iter()
        };
        prepared.into_iter().map(|p| p.and_then(|()| outcomes.next().expect("one outcome per node").map_err(StageError::new))).collect()
    }
}

fn default_device() -> String {
    "auto".into()
}

/// A fit node's samples: each training patient's `file`, with the label read
/// from column `label` of the split's `partition.csv` (`positive` counts as 1).
fn fit_samples(ctx: &RunContext<'_>, input_stage: &str, file: &str, label: &str, positive: &str) -> Result<Vec<Sample>, StageError> {
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
        samples.push(Sample { patient: id.clone(), label: Some(i64::from(y == positive)), file: path.clone() });
    }
    Ok(samples)
}

/// An apply node's job entry: its patient's input file and the fit node's files.
fn apply_node(ctx: &RunContext<'_>, input_stage: &str, input_file: &str) -> Result<JobNode, StageError> {
    let stage = ctx.node_id.split('[').next().unwrap_or_default();
    let me = ctx.decl.item.as_ref().map(|i| i.id.clone()).unwrap_or_else(|| ctx.node_id.to_string());
    let own = ctx.inputs.iter().find(|i| i.stage == input_stage && i.item.is_some()).and_then(|i| i.file(input_file));
    let fit_node = format!("{stage}.fit");
    let model: Vec<PathBuf> = ctx.inputs.iter().filter(|i| i.node == fit_node).flat_map(|i| i.files.iter().map(|(_, p)| p.clone())).collect();
    match own {
        Some(path) if !model.is_empty() => Ok(JobNode {
            id: ctx.node_id.to_string(),
            out_dir: ctx.out_dir.to_path_buf(),
            samples: vec![Sample { patient: me, label: None, file: path.clone() }],
            model,
        }),
        Some(_) => Err(StageError::new(format!("patient {me}: the fitted model of `{stage}` is missing"))),
        None => Err(StageError::new(format!("patient {me}: `{input_stage}` wrote no {input_file}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learner(extra: Value) -> Learner {
        let mut v = json!({ "input": "slice", "sequences": ["t1"], "fit_on": "train" });
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn deterministic_mode_is_the_default_and_keys_its_thread_count() {
        let l = learner(json!({}));
        assert_eq!(l.determinism(), vec![("deterministic", json!(true)), ("threads", json!(2))]);
        assert_eq!(l.job_threads(), 2);
        let l = learner(json!({ "threads": 4 }));
        assert_eq!(l.determinism(), vec![("deterministic", json!(true)), ("threads", json!(4))]);
    }

    #[test]
    fn without_deterministic_mode_the_thread_count_stays_out_of_the_keys() {
        for threads in [0, 3] {
            let l = learner(json!({ "deterministic": false, "threads": threads }));
            assert_eq!(l.determinism(), vec![("deterministic", json!(false))]);
            assert_eq!(l.job_threads(), threads);
        }
    }
}
