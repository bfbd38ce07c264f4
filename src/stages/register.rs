//! `kind: register`: per patient, rigid (or affine) registration of every
//! sequence onto the reference sequence (CE-T1WI in the study) by Mattes mutual
//! information, multi-resolution, from a centred-geometry start. Outputs, all on
//! the reference grid: `<sequence>.nii.gz` (moving ones resampled with cubic
//! B-splines), `roi.nii.gz` (carried by nearest neighbour when drawn on another
//! sequence), `<sequence>.transform.json` (fixed -> moving, ITK convention) and
//! `registration.json` (final metric and iterations per sequence).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::volumes::{per_patient_nodes, write_volume, PatientVolumes, PerPatient, ROI};
use super::{Inputs, InputRef, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::Diagnostics;
use radpipe_engine::plan::PlanContext;
use radpipe_imaging::{apply_transform_image, apply_transform_roi, register, RegistrationConfig, TransformKind};

pub const VERSION: u32 = 1;

/// Register each patient's sequences onto a reference sequence.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// The stage holding the patients' volumes (ingest).
    pub input: Inputs,
    #[serde(default)]
    pub foreach: PerPatient,
    /// The fixed sequence (default `ce_t1`).
    #[serde(default = "default_reference")]
    pub reference: String,
    /// The ROI's sequence when it is not the reference (default: the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roi_on: Option<String>,
    /// `rigid` (Euler 3D, default) or `affine`.
    #[serde(default)]
    pub transform: TransformChoice,
    /// Histogram bins of the Mattes metric.
    #[serde(default = "default_bins")]
    pub bins: usize,
    /// Pyramid shrink factors, coarse to fine.
    #[serde(default = "default_shrink")]
    pub shrink: Vec<usize>,
    /// Gaussian smoothing per level, mm.
    #[serde(default = "default_smoothing")]
    pub smoothing_mm: Vec<f64>,
    /// Fraction of voxels sampled by the metric.
    #[serde(default = "default_sampling")]
    pub sampling: f64,
    /// Seed of the sampling.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Maximum optimiser iterations per level.
    #[serde(default = "default_iterations")]
    pub iterations: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransformChoice {
    #[default]
    Rigid,
    Affine,
}

fn default_reference() -> String {
    "ce_t1".into()
}
fn default_bins() -> usize {
    RegistrationConfig::default().bins
}
fn default_shrink() -> Vec<usize> {
    RegistrationConfig::default().shrink_factors
}
fn default_smoothing() -> Vec<f64> {
    RegistrationConfig::default().smoothing_sigmas_mm
}
fn default_sampling() -> f64 {
    RegistrationConfig::default().sampling_fraction
}
fn default_seed() -> u64 {
    RegistrationConfig::default().seed
}
fn default_iterations() -> usize {
    RegistrationConfig::default().max_iterations
}

impl Register {
    fn config(&self) -> RegistrationConfig {
        RegistrationConfig {
            transform: match self.transform {
                TransformChoice::Rigid => TransformKind::Euler3d,
                TransformChoice::Affine => TransformKind::Affine,
            },
            bins: self.bins,
            shrink_factors: self.shrink.clone(),
            smoothing_sigmas_mm: self.smoothing_mm.clone(),
            sampling_fraction: self.sampling,
            seed: self.seed,
            max_iterations: self.iterations,
            ..RegistrationConfig::default()
        }
    }
}

impl Stage for Register {
    fn kind(&self) -> &'static str {
        "register"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        let params = json!({ "reference": self.reference, "roi_on": self.roi_on, "config": self.config() });
        per_patient_nodes(ctx, stage, &self.input, params)
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let volumes = PatientVolumes::of(ctx);
        let patient = volumes.patient.clone();
        let fixed = volumes.read(&self.reference)?;
        let config = self.config();
        let mut report = serde_json::Map::new();
        for name in volumes.sequences() {
            if name == self.reference {
                write_volume(ctx.out_dir, &name, &fixed)?;
                continue;
            }
            let moving = volumes.read(&name)?;
            let result = register(&fixed, &moving, &config).map_err(|e| StageError::new(format!("patient {patient}: registering {name} onto {}: {e}", self.reference)))?;
            let resampled = apply_transform_image(&moving, &fixed, &result.transform).map_err(|e| StageError::new(format!("patient {patient}: {name}: {e}")))?;
            write_volume(ctx.out_dir, &name, &resampled)?;
            result
                .transform
                .save_json(ctx.out_dir.join(format!("{name}.transform.json")))
                .map_err(|e| StageError::new(format!("patient {patient}: {e}")))?;
            let _ = writeln!(ctx.log, "{name} -> {}: metric {:.5}, iterations {:?}, {}", self.reference, result.metric, result.iterations, result.stop_reason);
            report.insert(name.clone(), json!({ "metric": result.metric, "iterations": result.iterations, "stop": result.stop_reason, "parameters": result.transform.parameters() }));
            if volumes.has_roi() && self.roi_on.as_deref() == Some(name.as_str()) {
                // The ROI was drawn on this moving sequence: carry it onto the reference grid.
                let roi = volumes.read(ROI)?;
                let carried = apply_transform_roi(&roi, &fixed, &result.transform).map_err(|e| StageError::new(format!("patient {patient}: ROI: {e}")))?;
                write_volume(ctx.out_dir, ROI, &carried)?;
            }
        }
        if volumes.has_roi() && self.roi_on.as_deref().is_none_or(|r| r == self.reference) {
            write_volume(ctx.out_dir, ROI, &volumes.read(ROI)?)?;
        }
        let text = serde_json::to_string_pretty(&report).map_err(|e| StageError::new(e.to_string()))?;
        std::fs::write(ctx.out_dir.join("registration.json"), text + "\n").map_err(|e| StageError::new(e.to_string()))
    }
}
