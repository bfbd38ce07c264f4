//! `kind: resample`: per patient, every sequence resampled in physical space to
//! a target spacing (default 1x1x1 mm) with cubic B-splines (exact prefilter),
//! then min-max scaled to [0, 1] (a constant image becomes all zeros); the ROI
//! resampled by nearest neighbour onto the same grid. Outputs
//! `<sequence>.nii.gz` and `roi.nii.gz`.
//!
//! With `crop_margin_mm` only a block of that grid is resampled and written:
//! the ROI's bounding box plus the margin, grown to hold every voxel `slice`
//! reads with `margin_mm` up to `crop_margin_mm` (its three square crops and
//! their bilinear neighbours, which reach beyond the box around an elongated
//! ROI). The block's voxels are the full grid's, and min-max scaling uses the
//! minimum and maximum of the whole resampled field of view (found without
//! resampling all of it), so `slice` gives the same tensors as without the crop.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::volumes::{per_patient_nodes, write_volume, PatientVolumes, PerPatient, CROP_MARGIN, ROI};
use super::{InputRef, Inputs, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_imaging::{min_max_scale, min_max_scale_by, resample_block_with_range, resample_to_grid, resample_to_spacing, slice_reach, Grid, Interpolator};

pub const VERSION: u32 = 2;

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
    /// Resample only the block that `slice` with a `margin_mm` up to this
    /// value (mm) reads (the ROI's bounding box plus this margin, grown to
    /// its square crops) instead of the whole field of view: the same voxel
    /// values there (the block's points are the full grid's) and min-max
    /// scaling by the whole field of view's range, in a fraction of the time
    /// and disk. A `slice` reading this stage must have `margin_mm` at most this.
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
            return Err(Diagnostic::new(ctx.origin(stage, &["spacing"]), format!("spacing must be positive, got {:?}", self.spacing))
                .hint("for example [1, 1, 1]")
                .into());
        }
        let mut params = json!({ "spacing": self.spacing, "interp": self.interp, "scale": self.scale });
        if let Some(margin) = self.crop_margin_mm {
            if !(margin >= 0.0) {
                return Err(Diagnostic::new(ctx.origin(stage, &["crop_margin_mm"]), format!("crop_margin_mm must be non-negative, got {margin}")).into());
            }
            params[CROP_MARGIN] = json!(margin);
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
                let crop = slice_block(&roi, self.spacing, margin).map_err(|e| StageError::new(format!("patient {patient}: roi: {e}")))?;
                (Some(crop), Some(roi))
            }
            None => (None, None),
        };
        for name in volumes.files.keys() {
            let volume = match if name == ROI { roi.take() } else { None } {
                Some(v) => v,
                None => volumes.read(name)?,
            };
            let interp = if name == ROI { Interpolator::Nearest } else { self.interp.interpolator() };
            let scale = name != ROI && self.scale;
            let resampled = match &crop {
                Some((full, block)) if scale => {
                    resample_block_with_range(&volume, full, block, interp, 0.0).map(|(v, range)| min_max_scale_by(&v, Some(range)))
                }
                Some((_, block)) => resample_to_grid(&volume, block, None, interp, 0.0),
                None => resample_to_spacing(&volume, self.spacing, interp).map(|v| if scale { min_max_scale(&v) } else { v }),
            };
            let out = resampled.map_err(|e| StageError::new(format!("patient {patient}: {name}: {e}")))?;
            let _ = writeln!(ctx.log, "{name}: {:?} -> {:?} voxels", volume.size(), out.size());
            write_volume(ctx.out_dir, name, &out)?;
        }
        Ok(())
    }
}

/// The full output grid of the ROI's volume at `spacing`, and the block of it
/// `slice` reads with a margin up to `margin_mm`: the ROI's box plus the
/// margin, and [`slice_reach`] on the ROI resampled onto that box.
fn slice_block(roi: &radpipe_imaging::Volume, spacing: [f64; 3], margin_mm: f64) -> Result<(Grid, Grid), String> {
    let full = Grid::with_spacing(roi, spacing).map_err(|e| e.to_string())?;
    let empty = || "the ROI is empty; there is nothing to crop to".to_string();
    let index_box = full.index_box_of_mask(roi, margin_mm).ok_or_else(empty)?;
    let (around_roi, start) = full.block(&index_box).ok_or_else(empty)?;
    let roi_there = resample_to_grid(roi, &around_roi, None, Interpolator::Nearest, 0.0).map_err(|e| e.to_string())?;
    let reach = slice_reach(&roi_there, margin_mm).map_err(|e| format!("after resampling to {spacing:?} mm: {e}"))?;
    let grown: [[i64; 2]; 3] = std::array::from_fn(|a| {
        let offset = start[a] as i64;
        [index_box[a][0].min(reach[a][0] + offset), index_box[a][1].max(reach[a][1] + offset)]
    });
    let (block, _) = full.block(&grown).ok_or_else(empty)?;
    Ok((full, block))
}
