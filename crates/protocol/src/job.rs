//! The job: what the engine writes on the worker's stdin, one JSON object per
//! batch (all ready fit nodes, or all ready apply nodes, of one stage).
//!
//! ```json
//! {"task": "embed_fit", "params": {...}, "device": "cpu", "amp": false, "threads": 2,
//!  "deterministic": true, "nodes": [{"id": "embed.fit", "out_dir": "...", "samples": [{"patient": "P1", "label": 1, "file": "..."}]}]}
//! ```
//!
//! Tasks ([`Work`]) and what the worker writes into each node's `out_dir`:
//! - `embed_fit`: one ResNet per sequence on the samples' `[3, H, W]` tensors
//!   (named by the sequence in each `slices.safetensors`); writes
//!   `<sequence>.safetensors`, `curves.<sequence>.csv` and `fit.json`.
//! - `embed_apply`: per node (patient) `features.safetensors` (pooled layer4
//!   per sequence), `scores.json` (probability of class 1 per sequence) and
//!   `gradcam/<sequence>_{axial,sagittal,coronal}.png`.
//! - `fuse_fit`: the fusion transformer on the sequences' feature vectors
//!   (concatenated in the order of `sequences`); writes `fusion.safetensors`,
//!   `fusion.json` (its shape), `curves.csv` and `fit.json`.
//! - `fuse_apply`: per node `scores.json` with the DLS (`{"dls": p}`).
//!
//! Outputs hold no wall-clock time (they are content-addressed); timings go
//! to the node's log through the progress lines.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::{EmbedModel, FuseModel};
use crate::train::TrainSpec;

/// One batch for the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The task and its parameters (`task` and `params` in the JSON).
    #[serde(flatten)]
    pub work: Work,
    /// `auto` (CUDA when usable, else CPU), `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "auto")]
    pub device: String,
    /// Half-precision autocast for inference on CUDA (ignored on the CPU).
    #[serde(default)]
    pub amp: bool,
    /// libtorch intra-op threads (0: libtorch's default, or
    /// [`DETERMINISTIC_THREADS`] in a deterministic job; see [`effective_threads`]).
    #[serde(default)]
    pub threads: i32,
    /// Pin what changes results besides the inputs, before any tensor
    /// operation: the thread count, the CPU kernels (libtorch's and oneDNN's
    /// capped at AVX2, MKL's reproducible; whatever the environment says) and deterministic
    /// algorithms (cuDNN's too, benchmark off). Absent: nothing is pinned.
    #[serde(default)]
    pub deterministic: bool,
    /// The nodes of the batch; the worker answers for each, in this order.
    pub nodes: Vec<JobNode>,
}

/// The intra-op threads of a deterministic job that names none: a stated
/// number, so that the machine's core count never changes results.
pub const DETERMINISTIC_THREADS: i32 = 2;

/// The intra-op threads a job runs with: `threads` when positive, else
/// [`DETERMINISTIC_THREADS`] in deterministic mode, else 0 (libtorch's default).
pub fn effective_threads(threads: i32, deterministic: bool) -> i32 {
    match (threads, deterministic) {
        (n, _) if n > 0 => n,
        (_, true) => DETERMINISTIC_THREADS,
        _ => 0,
    }
}

fn auto() -> String {
    "auto".into()
}

/// What to do, with the stage's parameters as the worker needs them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "task", content = "params", rename_all = "snake_case")]
pub enum Work {
    EmbedFit(EmbedParams),
    EmbedApply(EmbedParams),
    FuseFit(FuseParams),
    FuseApply(FuseParams),
}

/// One node of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobNode {
    /// The node id, as the progress lines name it.
    pub id: String,
    /// Where the node's outputs go (the engine hashes and commits it).
    pub out_dir: PathBuf,
    /// A fit node's training patients; an apply node's one patient.
    pub samples: Vec<Sample>,
    /// The fit node's files, for apply tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model: Vec<PathBuf>,
}

/// One patient's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub patient: String,
    /// 0 or 1; fit tasks only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<i64>,
    /// The patient's input file (safetensors).
    pub file: PathBuf,
}

/// The parameters of `embed_fit` and `embed_apply`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedParams {
    pub model: EmbedModel,
    /// Pretrained backbone (safetensors, head skipped) or TorchScript module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
    /// Grad-CAM overlays (apply).
    #[serde(default = "yes")]
    pub gradcam: bool,
    pub train: TrainSpec,
}

fn yes() -> bool {
    true
}

/// The parameters of `fuse_fit` and `fuse_apply`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuseParams {
    pub model: FuseModel,
    pub train: TrainSpec,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        let model = EmbedModel { backbone: "resnet18".into(), sequences: vec!["t1".into()], dropout: 0.5 };
        Job {
            work: Work::EmbedApply(EmbedParams { model, weights: None, gradcam: true, train: TrainSpec::default() }),
            device: "cpu".into(),
            amp: false,
            threads: 2,
            deterministic: true,
            nodes: vec![JobNode {
                id: "embed[P1]".into(),
                out_dir: "/tmp/out".into(),
                samples: vec![Sample { patient: "P1".into(), label: None, file: "/tmp/P1.safetensors".into() }],
                model: vec!["/tmp/t1.safetensors".into()],
            }],
        }
    }

    #[test]
    fn a_job_round_trips_with_the_task_and_params_at_the_top() {
        let text = serde_json::to_string(&job()).unwrap();
        assert!(text.starts_with(r#"{"task":"embed_apply","params":{"model":{"backbone":"resnet18""#), "{text}");
        assert!(text.contains(r#""samples":[{"patient":"P1","file":"/tmp/P1.safetensors"}]"#), "{text}");
        let back: Job = serde_json::from_str(&text).unwrap();
        assert!(matches!(&back.work, Work::EmbedApply(p) if p.model.backbone == "resnet18" && p.gradcam));
        assert_eq!((back.device.as_str(), back.threads, back.deterministic, back.nodes[0].model.len()), ("cpu", 2, true, 1));
    }

    #[test]
    fn a_deterministic_job_always_has_a_thread_count() {
        assert_eq!([effective_threads(0, true), effective_threads(-1, true), effective_threads(4, true)], [DETERMINISTIC_THREADS, DETERMINISTIC_THREADS, 4]);
        assert_eq!([effective_threads(0, false), effective_threads(3, false)], [0, 3]);
    }

    #[test]
    fn a_job_without_the_setting_is_not_deterministic() {
        let mut v = serde_json::to_value(job()).unwrap();
        assert_eq!(v["deterministic"], true);
        v.as_object_mut().unwrap().remove("deterministic");
        assert!(!serde_json::from_value::<Job>(v).unwrap().deterministic);
    }

    #[test]
    fn parameters_are_read_as_those_of_the_task() {
        let mut v = serde_json::to_value(job()).unwrap();
        v["task"] = "fuse_fit".into();
        let err = serde_json::from_value::<Job>(v).unwrap_err().to_string();
        assert!(err.contains("unknown field `backbone`") || err.contains("missing field"), "{err}");
        let err = serde_json::from_str::<Job>(r#"{"task": "embed_train", "params": {}, "nodes": []}"#).unwrap_err().to_string();
        assert!(err.contains("embed_train"), "{err}");
    }
}
