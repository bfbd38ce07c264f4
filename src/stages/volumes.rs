//! What the per-patient imaging stages (`register`, `resample`, `slice`) share:
//! expansion into one node per patient of their input stage, access to the
//! patient's volumes among the node's inputs (`<sequence>.nii.gz`, `roi.nii.gz`),
//! and the crop margin a cropping `resample` records in its nodes' parameters.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Inputs, NodeDecl, RunContext, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_imaging::{read_nifti, write_nifti, write_nifti_as, NiftiDtype, Volume};

/// `foreach: patient`: the only expansion imaging stages have (and their default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PerPatient {
    #[default]
    Patient,
}

/// The name of the ROI among a patient's volumes.
pub const ROI: &str = "roi";

/// The node parameter in which `resample` records its `crop_margin_mm`.
pub const CROP_MARGIN: &str = "crop_margin_mm";

/// The `crop_margin_mm` of the (single) input stage's nodes, when it crops
/// (a `resample` with `crop_margin_mm`): its name and the margin.
pub fn input_crop_margin(ctx: &PlanContext, input: &Inputs) -> Option<(String, f64)> {
    let refs = input.refs();
    let [first] = refs.as_slice() else { return None };
    let nodes = ctx.stage_spec(&first.stage)?.expand(ctx, &first.stage).ok()?;
    Some((first.stage.clone(), nodes.first()?.params.get(CROP_MARGIN)?.as_f64()?))
}

/// One node per patient of the (single) input stage, each with `params`.
pub fn per_patient_nodes(ctx: &PlanContext, stage: &str, input: &Inputs, params: Value) -> Result<Vec<NodeDecl>, Diagnostics> {
    let refs = input.refs();
    let [first] = refs.as_slice() else {
        return Err(Diagnostic::new(ctx.origin(stage, &["input"]), "an imaging stage reads one stage").hint("give `input:` one stage name").into());
    };
    let items = ctx.items_of(&first.stage, ctx.origin(stage, &["input"]))?;
    if items.is_empty() {
        return Err(Diagnostic::new(ctx.origin(stage, &["input"]), format!("`{}` has no per-patient images", first.stage))
            .hint("give the ingest stage `sequences:` and the cohorts `images:` folders")
            .into());
    }
    Ok(items.into_iter().map(|item| NodeDecl::per_item(item, params.clone())).collect())
}

/// A patient's volumes among the node's inputs, by name (`t1`, `ce_t1`, `roi`).
pub struct PatientVolumes {
    pub patient: String,
    pub files: BTreeMap<String, PathBuf>,
}

impl PatientVolumes {
    pub fn of(ctx: &RunContext<'_>) -> Self {
        let mut files = BTreeMap::new();
        for input in ctx.inputs {
            for (name, path) in &input.files {
                let stem = name.strip_suffix(".nii.gz").or_else(|| name.strip_suffix(".nii"));
                if let Some(stem) = stem.filter(|s| !s.contains('/')) {
                    files.insert(stem.to_string(), path.clone());
                }
            }
        }
        PatientVolumes { patient: ctx.decl.item.as_ref().map(|i| i.id.clone()).unwrap_or_default(), files }
    }

    /// The sequences (every volume but the ROI), in name order.
    pub fn sequences(&self) -> Vec<String> {
        self.files.keys().filter(|k| *k != ROI).cloned().collect()
    }

    pub fn read(&self, name: &str) -> Result<Volume, StageError> {
        let path = self.files.get(name).ok_or_else(|| {
            StageError::new(format!(
                "patient {}: no `{name}` volume among the inputs (have: {})",
                self.patient,
                self.files.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        read_nifti(path).map_err(|e| StageError::new(format!("patient {}: {name}: {e}", self.patient)))
    }

    pub fn has_roi(&self) -> bool {
        self.files.contains_key(ROI)
    }
}

/// Write an image (float32) or, for the ROI, a mask (uint8) as `<name>.nii.gz`.
pub fn write_volume(dir: &Path, name: &str, volume: &Volume) -> Result<(), StageError> {
    let path = dir.join(format!("{name}.nii.gz"));
    let written = if name == ROI { write_nifti_as(volume, &path, NiftiDtype::Uint8) } else { write_nifti(volume, &path) };
    written.map_err(|e| StageError::new(format!("cannot write {}: {e}", path.display())))
}
