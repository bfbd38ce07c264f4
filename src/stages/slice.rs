//! `kind: slice`: per patient and sequence, the axial, sagittal and coronal
//! slices with the largest ROI area (ties: lowest index), each cropped around the
//! ROI with a margin in mm (`margin_mm`; at most the `crop_margin_mm` of a
//! cropping `resample` input, checked at plan time), made square, resized to
//! `size` x `size` (bilinear), stacked as 3 channels (2.5D) and z-scored per
//! channel. Outputs
//! `slices.safetensors` (one f32 tensor `[3, size, size]` per sequence, named by
//! the sequence, readable by PyTorch and tch), `slices.json` (chosen indices, ROI
//! areas, crops) and a PNG preview per sequence for quality control.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

use super::volumes::{input_crop_margin, per_patient_nodes, PatientVolumes, PerPatient, ROI};
use super::{InputRef, Inputs, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_imaging::{extract_25d, write_png_preview, SliceConfig};

pub const VERSION: u32 = 1;

/// Extract 2.5D inputs around the ROI.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slice {
    /// The stage holding resampled volumes and the ROI.
    pub input: Inputs,
    #[serde(default)]
    pub foreach: PerPatient,
    /// Output height and width in pixels.
    #[serde(default = "default_size")]
    pub size: usize,
    /// Margin around the ROI's bounding box, mm. At most the input's
    /// `crop_margin_mm` when it is a cropping `resample`.
    #[serde(default = "default_margin")]
    pub margin_mm: f64,
}

fn default_size() -> usize {
    224
}
fn default_margin() -> f64 {
    10.0
}

impl Stage for Slice {
    fn kind(&self) -> &'static str {
        "slice"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        if self.size < 8 || !(self.margin_mm >= 0.0) {
            return Err(Diagnostic::new(ctx.origin(stage, &["size"]), "size must be at least 8 pixels and margin_mm non-negative").into());
        }
        if let Some((input, crop)) = input_crop_margin(ctx, &self.input).filter(|(_, crop)| self.margin_mm > *crop) {
            return Err(Diagnostic::new(
                ctx.origin(stage, &["margin_mm"]),
                format!(
                    "margin_mm {} is more than the crop_margin_mm {crop} of `{input}`, which resamples only what a margin up to that reads",
                    self.margin_mm
                ),
            )
            .hint(format!("raise `{input}`'s crop_margin_mm to at least {}, or lower this margin_mm", self.margin_mm))
            .into());
        }
        per_patient_nodes(ctx, stage, &self.input, json!({ "size": self.size, "margin_mm": self.margin_mm }))
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let volumes = PatientVolumes::of(ctx);
        let patient = volumes.patient.clone();
        if !volumes.has_roi() {
            return Err(StageError::new(format!("patient {patient}: no ROI among the inputs; slicing needs `roi.nii.gz`")));
        }
        let roi = volumes.read(ROI)?;
        let config = SliceConfig { size: self.size, margin_mm: self.margin_mm, ..SliceConfig::default() };
        let mut tensors: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut info = serde_json::Map::new();
        for name in volumes.sequences() {
            let volume = volumes.read(&name)?;
            let s = extract_25d(&volume, &roi, &config).map_err(|e| StageError::new(format!("patient {patient}: {name}: {e}")))?;
            write_png_preview(&s.data, ctx.out_dir.join(format!("{name}.png"))).map_err(|e| StageError::new(format!("patient {patient}: {e}")))?;
            let bytes: Vec<u8> = s.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            tensors.insert(name.clone(), bytes);
            info.insert(name, json!({ "normal_axis": s.normal_axis, "slice_index": s.slice_index, "roi_area": s.roi_area, "crop": s.crop }));
        }
        let shape = vec![3, self.size, self.size];
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(name, bytes)| safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes).map(|v| (name.clone(), v)))
            .collect::<Result<_, _>>()
            .map_err(|e| StageError::new(format!("patient {patient}: {e}")))?;
        safetensors::serialize_to_file(views, None, &ctx.out_dir.join("slices.safetensors")).map_err(|e| StageError::new(format!("patient {patient}: {e}")))?;
        let text = serde_json::to_string_pretty(&info).map_err(|e| StageError::new(e.to_string()))?;
        std::fs::write(ctx.out_dir.join("slices.json"), text + "\n").map_err(|e| StageError::new(e.to_string()))
    }
}
