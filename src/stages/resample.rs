//! `kind: resample`: per patient, every sequence resampled in physical space to
//! a target spacing (default 1x1x1 mm) with cubic B-splines (exact prefilter),
//! optionally only over the ROI's bounding box plus a margin (`crop_margin_mm`;
//! the grid is the ROI's field of view at the new spacing), then min-max scaled to [0, 1] (a constant image becomes all zeros); the ROI
//! resampled by nearest neighbour onto the same grid. Outputs
//! `<sequence>.nii.gz` and `roi.nii.gz`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::volumes::{per_patient_nodes, write_volume, PatientVolumes, PerPatient, ROI};
use super::{Inputs, InputRef, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_imaging::{min_max_scale, resample_to_grid, resample_to_spacing, Grid, Interpolator};

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
    /// Resample only the ROI's bounding box plus this margin (mm) instead of
    /// the whole field of view: the same voxel values in that box (the output
    /// grid's points are the full grid's), a fraction of the time and disk.
    /// Min-max scaling then runs over the box. Keep it above `slice`'s `margin_mm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_margin_mm: Option<f64>,
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
        let mut params = json!({ "spacing": self.spacing, "interp": self.interp, "scale": self.scale });
        if let Some(margin) = self.crop_margin_mm {
            if !(margin >= 0.0) {
                return Err(Diagnostic::new(ctx.origin(stage, &["crop_margin_mm"]), format!("crop_margin_mm must be non-negative, got {margin}")).into());
            }
            params["crop_margin_mm"] = json!(margin);
        }
        per_patient_nodes(ctx, stage, &self.input, params)
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let volumes = PatientVolumes::of(ctx);
        let patient = volumes.patient.clone();
        // With a crop, the ROI read for it is the one resampled below.
        let (crop, mut roi) = match self.crop_margin_mm {
            Some(margin) => {
                if !volumes.has_roi() {
                    return Err(StageError::new(format!("patient {patient}: `crop_margin_mm` needs the ROI (`roi.nii.gz`) among the inputs")));
                }
                let roi = volumes.read(ROI)?;
                let grid = Grid::with_spacing(&roi, self.spacing).map_err(|e| StageError::new(format!("patient {patient}: roi: {e}")))?;
                let cropped = grid.cropped_to_mask(&roi, margin).ok_or_else(|| StageError::new(format!("patient {patient}: the ROI is empty; there is nothing to crop to")))?;
                (Some(cropped), Some(roi))
            }
            None => (None, None),
        };
        for name in volumes.files.keys() {
            let volume = match if name == ROI { roi.take() } else { None } {
                Some(v) => v,
                None => volumes.read(name)?,
            };
            let interp = if name == ROI { Interpolator::Nearest } else { self.interp.interpolator() };
            let resampled = match &crop {
                Some(grid) => resample_to_grid(&volume, grid, None, interp, 0.0),
                None => resample_to_spacing(&volume, self.spacing, interp),
            };
            let mut out = resampled.map_err(|e| StageError::new(format!("patient {patient}: {name}: {e}")))?;
            if name != ROI && self.scale {
                out = min_max_scale(&out);
            }
            let _ = writeln!(ctx.log, "{name}: {:?} -> {:?} voxels", volume.size(), out.size());
            write_volume(ctx.out_dir, name, &out)?;
        }
        Ok(())
    }
}
