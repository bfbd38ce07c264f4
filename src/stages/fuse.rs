//! `kind: fuse`: the deep-learning signature. The sequences' feature vectors
//! (PCA scores) are concatenated along the channel dimension, cut into patches
//! of `patch` values and read by a transformer encoder (8 heads, 3 layers,
//! post-norm by default or pre-norm, learned positional embeddings), pooled
//! (mean, CLS or flatten), classified
//! by an MLP; softmax gives the DLS in [0, 1]. Trained on the training
//! partition with the `embed` stage's settings (SGD, focal loss, early
//! stopping), applied per patient. Runs in the `radpipe-nn` worker; the
//! model's layout and its PyTorch twin are documented in `nn/src/fusion.rs`.
//!
//! ```yaml
//! fuse:
//!   kind: fuse
//!   input: pca                   # per patient: features.safetensors with the sequences
//!   sequences: [t1, t2, ce_t1]   # concatenation order
//!   fit_on: train
//!   patch: 16
//! ```
//!
//! Fit (`fuse.fit`): `fusion.safetensors`, `fusion.json`, `curves.csv`,
//! `fit.json`. Apply (`fuse[<patient>]`): `scores.json` `{"dls": p}`, for
//! `evaluate` and `survival` as `fuse.dls`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::learn::Learner;
use radpipe_engine::stage::Trained;
use super::{InputRef, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_engine::resources::Resources;
use radpipe_protocol::{FuseModel, FuseParams, TrainSpec, Work};

/// Part of every key. 2: no per-epoch wall-clock seconds in `fit.json` and
/// `curves.csv` (the fit's bytes changed). 3: deterministic mode (pinned
/// threads and kernels change the bytes; `fit.json` records it).
pub const VERSION: u32 = 3;

/// Transformer fusion of the sequences' features into the DLS; fit on the training partition, applied per patient.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fuse {
    /// `sequences` are fused in their order.
    #[serde(flatten)]
    pub learner: Learner,
    /// Values per token; the fused width must be a multiple of it.
    #[serde(default = "default_patch")]
    pub patch: i64,
    /// Token width.
    #[serde(default = "default_d_model")]
    pub d_model: i64,
    #[serde(default = "default_heads")]
    pub heads: i64,
    #[serde(default = "default_layers")]
    pub layers: i64,
    /// Width of each encoder layer's feed-forward block.
    #[serde(default = "default_ff")]
    pub ff: i64,
    /// Width of the MLP head's hidden layer.
    #[serde(default = "default_hidden")]
    pub hidden: i64,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// `mean` (of the tokens), `cls` (a learned class token) or `flatten` (the tokens concatenated).
    #[serde(default = "default_pool")]
    pub pool: String,
    /// `post` (normalise after each residual block, the original transformer) or `pre` (before, plus a final LayerNorm).
    #[serde(default = "default_norm")]
    pub norm: String,
    #[serde(default = "default_train")]
    pub train: TrainSpec,
}

fn default_patch() -> i64 {
    16
}
fn default_d_model() -> i64 {
    64
}
fn default_heads() -> i64 {
    8
}
fn default_layers() -> i64 {
    3
}
fn default_ff() -> i64 {
    128
}
fn default_hidden() -> i64 {
    32
}
fn default_dropout() -> f64 {
    0.1
}
fn default_pool() -> String {
    "mean".into()
}
fn default_norm() -> String {
    "post".into()
}
/// Feature vectors are not images: no flips, rotations or crops.
fn default_train() -> TrainSpec {
    TrainSpec { flip: false, crop_pad: 0, ..TrainSpec::default() }
}

impl Fuse {
    /// The network, as the nodes' parameters and the worker's job name it.
    fn model(&self) -> FuseModel {
        FuseModel {
            sequences: self.learner.sequences.clone(),
            patch: self.patch,
            d_model: self.d_model,
            heads: self.heads,
            layers: self.layers,
            ff: self.ff,
            hidden: self.hidden,
            dropout: self.dropout,
            pool: self.pool.clone(),
            norm: self.norm.clone(),
        }
    }

    /// The parameters (part of the keys) of the fit node (before the label
    /// and the partition are added) and of the apply nodes.
    fn node_params(&self) -> (Value, Value) {
        (json!({ "model": self.model(), "train": self.train }), json!({ "model": self.model() }))
    }

    fn check(&self, ctx: &PlanContext, stage: &str) -> Result<(), Diagnostics> {
        let mut problems = Vec::new();
        self.learner.check(ctx, stage, &self.train, &mut problems);
        if self.patch <= 0 || self.d_model <= 0 || self.heads <= 0 || self.layers <= 0 || self.ff <= 0 || self.hidden <= 0 {
            problems.push(Diagnostic::new(ctx.origin(stage, &["patch"]), "patch, d_model, heads, layers, ff and hidden must be positive"));
        } else if self.d_model % self.heads != 0 {
            problems.push(Diagnostic::new(ctx.origin(stage, &["d_model"]), format!("d_model {} is not a multiple of {} heads", self.d_model, self.heads)));
        }
        if !["mean", "cls", "flatten"].contains(&self.pool.as_str()) {
            problems.push(Diagnostic::new(ctx.origin(stage, &["pool"]), format!("pool `{}`: use mean, cls or flatten", self.pool)));
        }
        if self.norm != "post" && self.norm != "pre" {
            problems.push(Diagnostic::new(ctx.origin(stage, &["norm"]), format!("norm `{}`: use post or pre", self.norm)));
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

impl Stage for Fuse {
    fn kind(&self) -> &'static str {
        "fuse"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn scores(&self) -> Vec<String> {
        vec!["dls".into()]
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
        self.learner.nodes(ctx, stage, fit, apply)
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        self.run_batch(std::slice::from_mut(ctx)).pop().expect("one result")
    }

    fn batched(&self) -> bool {
        true
    }

    /// A deep-learning batch: one job on the GPU partition.
    fn resources(&self) -> Resources {
        Resources { cpus: Some(2), mem_gb: Some(4.0), gpus: Some(1), time: None }
    }

    fn run_batch(&self, ctxs: &mut [RunContext<'_>]) -> Vec<Result<(), StageError>> {
        self.learner.run_worker(ctxs, (Work::FuseFit, Work::FuseApply), "features.safetensors", FuseParams { model: self.model(), train: self.train.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nodes' parameters are cache-key material: their JSON stays what it was
    /// before the protocol's types existed (hand-written here), so that no key moves.
    #[test]
    fn the_node_parameters_keep_their_json() {
        let f: Fuse = serde_json::from_value(json!({ "input": "pca", "sequences": ["t1", "t2", "ce_t1"], "fit_on": "train" })).unwrap();
        let (fit, apply) = f.node_params();
        let model = json!({
            "sequences": ["t1", "t2", "ce_t1"], "patch": 16, "d_model": 64, "heads": 8,
            "layers": 3, "ff": 128, "hidden": 32, "dropout": 0.1, "pool": "mean", "norm": "post",
        });
        let train = json!({
            "epochs": 30, "batch_size": 32, "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "focal_alpha": 0.5,
            "focal_gamma": 2.0, "val_fraction": 0.2, "patience": 5, "monitor": "loss", "flip": false, "rotate": false,
            "crop_pad": 0, "seed": 0,
        });
        assert_eq!(fit.to_string(), json!({ "model": model, "train": train }).to_string());
        assert_eq!(apply.to_string(), json!({ "model": model }).to_string());
    }
}
