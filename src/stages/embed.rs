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

use super::learn::{Learner, TrainSpec};
use super::{InputRef, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;

pub const VERSION: u32 = 2;

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

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        self.check(ctx, stage)?;
        let model = json!({ "backbone": self.backbone, "sequences": self.learner.sequences, "dropout": self.dropout });
        let fit = json!({ "model": model, "train": self.train });
        let apply = json!({ "model": model, "gradcam": self.gradcam, "amp": self.learner.amp });
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

    fn run_batch(&self, ctxs: &mut [RunContext<'_>]) -> Vec<Result<(), StageError>> {
        let Some(first) = ctxs.first() else { return Vec::new() };
        let params = json!({
            "backbone": self.backbone,
            "weights": self.weights.as_ref().map(|w| first.workspace.join(w)),
            "sequences": self.learner.sequences,
            "dropout": self.dropout,
            "gradcam": self.gradcam,
            "train": self.train,
        });
        self.learner.run_worker(ctxs, ("embed_fit", "embed_apply"), "slices.safetensors", params)
    }
}
