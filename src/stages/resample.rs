//! `kind: resample`: per patient, every sequence resampled in physical space to
//! a target spacing (default 1x1x1 mm) with cubic B-splines (exact prefilter),
//! then min-max scaled to [0, 1] (a constant image becomes all zeros); the ROI
//! resampled by nearest neighbour onto the same grid. Outputs
//! `<sequence>.nii.gz` and `roi.nii.gz`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::volumes::{per_patient_nodes, write_volume, PatientVolumes, PerPatient, ROI};
use super::{Inputs, InputRef, NodeDecl, RunContext, Stage, StageError};
use crate::engine::diagnostics::{Diagnostic, Diagnostics};
use crate::engine::plan::PlanContext;
use crate::imaging::{min_max_scale, resample_to_spacing, Interpolator};

pub const VERSION: u32 = 1;

/// Resample each patient's volumes to a common spacing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resample {
    /// The stage holding the volumes (register or ingest).
    pub input: Inputs,
    #[serde(default)]
    pub foreach: PerPatient,
    /// Output spacing in mm (x, y, z).
    #[serde(default = "default_spacing")]
    pub spacing: [f64; 3],
    /// Interpolation of images: `bspline3` (default), `linear` or `nearest`. Masks use nearest.
    #[serde(default)]
    pub interp: Interp,
    /// Min-max scale images to [0, 1] (default true).
    #[serde(default = "yes")]
    pub scale: bool,
}

fn default_spacing() -> [f64; 3] {
    [1.0; 3]
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Interp {
    #[default]
    Bspline3,
    Linear,
    Nearest,
}

impl Interp {
    pub fn interpolator(self) -> Interpolator {
        match self {
            Interp::Bspline3 => Interpolator::BSpline,
            Interp::Linear => Interpolator::Linear,
            Interp::Nearest => Interpolator::Nearest,
        }
    }
}

impl Stage for Resample {
    fn kind(&self) -> &'static str {
        "resample"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        if self.spacing.iter().any(|s| !(*s > 0.0)) {
            return Err(Diagnostic::new(ctx.origin(stage, &["spacing"]), format!("spacing must be positive, got {:?}", self.spacing)).hint("for example [1, 1, 1]").into());
        }
        per_patient_nodes(ctx, stage, &self.input, json!({ "spacing": self.spacing, "interp": self.interp, "scale": self.scale }))
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let volumes = PatientVolumes::of(ctx);
        let patient = volumes.patient.clone();
        for name in volumes.files.keys() {
            let volume = volumes.read(name)?;
            let interp = if name == ROI { Interpolator::Nearest } else { self.interp.interpolator() };
            let mut out = resample_to_spacing(&volume, self.spacing, interp).map_err(|e| StageError::new(format!("patient {patient}: {name}: {e}")))?;
            if name != ROI && self.scale {
                out = min_max_scale(&out);
            }
            let _ = writeln!(ctx.log, "{name}: {:?} -> {:?} voxels", volume.size(), out.size());
            write_volume(ctx.out_dir, name, &out)?;
        }
        Ok(())
    }
}
