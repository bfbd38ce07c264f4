//! `kind: embed`: per sequence, a ResNet (torchvision layout; `resnet101` in
//! the study) fine-tuned on the training partition's 2.5D tensors, then applied
//! to every patient. Runs in the `radpipe-nn` worker (libtorch), one process
//! per batch of ready nodes.
//!
//! ```yaml
//! embed:
//!   kind: embed
//!   input: slice                 # per patient: slices.safetensors, one [3, H, W] per sequence
//!   sequences: [t1, t2, ce_t1]
//!   fit_on: train                # the split's training partition
//!   backbone: resnet101          # resnet18|34|50|101, or torchscript (with weights:)
//!   weights: models/r101.safetensors   # optional: ImageNet backbone (head skipped)
//!   train: { epochs: 30, lr: 0.01, batch_size: 32, focal_alpha: 0.25 }
//!   device: auto
//! ```
//!
//! Fit (`embed.fit`): `<sequence>.safetensors` (the fine-tuned weights),
//! `curves.<sequence>.csv`, `fit.json`. Apply (`embed[<patient>]`):
//! `features.safetensors` (pooled layer4 per sequence, 512 or 2048 values),
//! `scores.json` (the single-sequence probability per sequence, for
//! `evaluate` as `embed.t1`, ...) and `gradcam/<sequence>_<plane>.png`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::PathBuf;

use super::learn::{fit_apply_nodes, run_batch, Runtime, TrainSpec, WorkerTask};
use super::pca::PartitionList;
use super::{Inputs, InputRef, NodeDecl, RunContext, Stage, StageError};
use crate::engine::diagnostics::{Diagnostic, Diagnostics};
use crate::engine::plan::PlanContext;

pub const VERSION: u32 = 1;

/// Fine-tune a ResNet per sequence on the training partition; features, scores and Grad-CAM per patient.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Embed {
    /// The stage whose per-patient nodes hold `slices.safetensors`.
    pub input: Inputs,
    /// The tensors (sequences) to train one model each on.
    pub sequences: Vec<String>,
    /// The partition(s) to train on.
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
    /// `resnet18`, `resnet34`, `resnet50`, `resnet101` or `torchscript`.
    #[serde(default = "default_backbone")]
    pub backbone: String,
    /// Pretrained backbone weights (safetensors with torchvision names; the
    /// head is not loaded), or the TorchScript module for `torchscript`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// Dropout before the classification head.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// Grad-CAM overlays per patient and sequence.
    #[serde(default = "default_true")]
    pub gradcam: bool,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(flatten)]
    pub runtime: Runtime,
}

pub(crate) fn default_positive() -> String {
    "1".into()
}
fn default_backbone() -> String {
    "resnet101".into()
}
fn default_dropout() -> f64 {
    0.5
}
fn default_true() -> bool {
    true
}

/// The label column: given, or the ingest label (else the stratification
/// column) of the split, both of which its partition.csv holds.
pub(crate) fn label_column(ctx: &PlanContext, stage: &str, label: &Option<String>, fit_on: &PartitionList, split: &Option<String>) -> Result<String, Diagnostics> {
    if let Some(l) = label {
        return Ok(l.clone());
    }
    let split = split.clone().or_else(|| ctx.split_defining(&fit_on.names()[0]));
    split
        .and_then(|s| match ctx.stage_spec(&s) {
            Some(super::StageSpec::Split(sp)) => sp.ingest_label(ctx).or_else(|| sp.stratify_column(ctx)),
            _ => None,
        })
        .ok_or_else(|| Diagnostic::new(ctx.origin(stage, &["fit_on"]), "no label to train on: the split's ingest stage derives none and the split is not stratified").hint("give the ingest stage a `label:` or set `label:` here").into())
}

impl Embed {
    fn check(&self, ctx: &PlanContext, stage: &str) -> Result<(), Diagnostics> {
        let mut problems = Vec::new();
        if self.sequences.is_empty() {
            problems.push(Diagnostic::new(ctx.origin(stage, &["sequences"]), "no sequences to train on"));
        }
        if !matches!(self.backbone.as_str(), "resnet18" | "resnet34" | "resnet50" | "resnet101" | "torchscript") {
            problems.push(Diagnostic::new(ctx.origin(stage, &["backbone"]), format!("unknown backbone `{}`", self.backbone)).hint("use resnet18, resnet34, resnet50, resnet101 or torchscript"));
        }
        if self.backbone == "torchscript" && self.weights.is_none() {
            problems.push(Diagnostic::new(ctx.origin(stage, &["weights"]), "backbone `torchscript` needs `weights:` naming the TorchScript file"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            problems.push(Diagnostic::new(ctx.origin(stage, &["dropout"]), "dropout must be in [0, 1)"));
        }
        if let Err(e) = self.train.check() {
            problems.push(Diagnostic::new(ctx.origin(stage, &["train"]), e));
        }
        if let Err(e) = self.runtime.check() {
            problems.push(Diagnostic::new(ctx.origin(stage, &["device"]), e));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(problems))
        }
    }

    fn worker_params(&self, ctx_workspace: &std::path::Path) -> serde_json::Value {
        json!({
            "backbone": self.backbone,
            "weights": self.weights.as_ref().map(|w| ctx_workspace.join(w)),
            "sequences": self.sequences,
            "dropout": self.dropout,
            "gradcam": self.gradcam,
            "train": self.train,
        })
    }
}

impl Stage for Embed {
    fn kind(&self) -> &'static str {
        "embed"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        self.check(ctx, stage)?;
        let label = label_column(ctx, stage, &self.label, &self.fit_on, &self.split)?;
        let model = json!({ "backbone": self.backbone, "sequences": self.sequences, "dropout": self.dropout });
        let fit = json!({ "model": model, "label": label, "positive": self.positive, "train": self.train });
        let apply = json!({ "model": model, "gradcam": self.gradcam, "amp": self.runtime.amp });
        let mut nodes = fit_apply_nodes(ctx, stage, &self.input, &self.fit_on, self.split.as_deref(), fit, apply)?;
        // Pretrained or TorchScript weights are a source file of the fit node
        // (and of the apply nodes, which rebuild the module).
        if let Some(w) = &self.weights {
            for n in &mut nodes {
                n.deps.push(w.clone());
            }
        }
        Ok(nodes)
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        self.run_batch(std::slice::from_mut(ctx)).pop().expect("one result")
    }

    fn batched(&self) -> bool {
        true
    }

    fn run_batch(&self, ctxs: &mut [RunContext<'_>]) -> Vec<Result<(), StageError>> {
        let Some(first) = ctxs.first() else { return Vec::new() };
        let label = first.decl.params["label"].as_str().unwrap_or_default().to_string();
        let input_stage = self.input.refs()[0].stage.clone();
        let workspace: PathBuf = first.workspace.to_path_buf();
        let task = WorkerTask {
            fit_task: "embed_fit",
            apply_task: "embed_apply",
            input_stage: &input_stage,
            input_file: "slices.safetensors",
            label: &label,
            positive: &self.positive,
            params: self.worker_params(&workspace),
            runtime: &self.runtime,
        };
        run_batch(&task, ctxs)
    }
}
