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
use serde_json::{json, Value};

use super::learn::Learner;
use radpipe_engine::stage::Trained;
use super::{InputRef, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_engine::resources::Resources;
use radpipe_protocol::{EmbedModel, EmbedParams, TrainSpec, Work};

/// Part of every key. 3: no per-epoch wall-clock seconds in `fit.json` and
/// `curves.<sequence>.csv` (the fit's bytes changed). 4: deterministic mode
/// (pinned threads and kernels change the bytes; `fit.json` records it).
pub const VERSION: u32 = 4;

/// Fine-tune a ResNet per sequence on the training partition; features, scores and Grad-CAM per patient.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Embed {
    #[serde(flatten)]
    pub learner: Learner,
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

impl Embed {
    /// The network, as the nodes' parameters and the worker's job name it.
    fn model(&self) -> EmbedModel {
        EmbedModel { backbone: self.backbone.clone(), sequences: self.learner.sequences.clone(), dropout: self.dropout }
    }

    /// The parameters (part of the keys) of the fit node (before the label
    /// and the partition are added) and of the apply nodes.
    fn node_params(&self) -> (Value, Value) {
        let model = self.model();
        (json!({ "model": model, "train": self.train }), json!({ "model": model, "gradcam": self.gradcam, "amp": self.learner.amp }))
    }

    fn check(&self, ctx: &PlanContext, stage: &str) -> Result<(), Diagnostics> {
        let mut problems = Vec::new();
        self.learner.check(ctx, stage, &self.train, &mut problems);
        if !matches!(self.backbone.as_str(), "resnet18" | "resnet34" | "resnet50" | "resnet101" | "torchscript") {
            problems.push(Diagnostic::new(ctx.origin(stage, &["backbone"]), format!("unknown backbone `{}`", self.backbone)).hint("use resnet18, resnet34, resnet50, resnet101 or torchscript"));
        }
        if self.backbone == "torchscript" && self.weights.is_none() {
            problems.push(Diagnostic::new(ctx.origin(stage, &["weights"]), "backbone `torchscript` needs `weights:` naming the TorchScript file"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            problems.push(Diagnostic::new(ctx.origin(stage, &["dropout"]), "dropout must be in [0, 1)"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(problems))
        }
    }
}

impl Stage for Embed {
    fn kind(&self) -> &'static str {
        "embed"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn scores(&self) -> Vec<String> {
        self.learner.sequences.clone()
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.learner.inputs()
    }

    fn trained_on(&self, ctx: &PlanContext) -> Option<Trained> {
        self.learner.trained_on(ctx)
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        self.check(ctx, stage)?;
        let (fit, apply) = self.node_params();
        let mut nodes = self.learner.nodes(ctx, stage, fit, apply)?;
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

    /// A deep-learning batch: one job on the GPU partition.
    fn resources(&self) -> Resources {
        Resources { cpus: Some(2), mem_gb: Some(8.0), gpus: Some(1), time: None }
    }

    fn run_batch(&self, ctxs: &mut [RunContext<'_>]) -> Vec<Result<(), StageError>> {
        let Some(first) = ctxs.first() else { return Vec::new() };
        let params = EmbedParams { model: self.model(), weights: self.weights.as_ref().map(|w| first.workspace.join(w)), gradcam: self.gradcam, train: self.train.clone() };
        self.learner.run_worker(ctxs, (Work::EmbedFit, Work::EmbedApply), "slices.safetensors", params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nodes' parameters are cache-key material: their JSON stays what it was
    /// before the protocol's types existed (hand-written here), so that no key moves.
    #[test]
    fn the_node_parameters_keep_their_json() {
        let e: Embed = serde_json::from_value(json!({ "input": "slice", "sequences": ["t1", "ce_t1"], "fit_on": "train", "amp": true })).unwrap();
        let (fit, apply) = e.node_params();
        let model = json!({ "backbone": "resnet101", "sequences": ["t1", "ce_t1"], "dropout": 0.5 });
        assert_eq!(fit.to_string(), json!({ "model": model, "train": TrainSpec::default() }).to_string());
        assert_eq!(apply.to_string(), json!({ "model": model, "gradcam": true, "amp": true }).to_string());
    }
}
