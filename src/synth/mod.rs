//! Synthetic multi-centre cohort generator standing in for the study's private data
//! (MRI-based PD-L1 CPS >= 20 prediction in HNSCC).  See [`describe`] for the
//! design in plain words.
//!
//! Layout written by [`generate`]:
//!
//! ```text
//! DIR/design.txt                          describe(preset)
//! DIR/<cohort>/clinical.csv               institution1, external, ici (also clinical.parquet)
//! DIR/<cohort>/ground_truth.json
//! DIR/<cohort>/images/<patient_id>/{t1,t2,ce_t1,roi}.nii.gz
//! ```
//!
//! Determinism: cohort tables come from per-cohort ChaCha8 streams, each patient's
//! images from streams keyed by (seed, cohort, patient index), so the rayon-parallel
//! rendering is byte-identical for a given (preset, seed, scale).

pub mod anatomy;
pub mod clinical;
pub mod describe;
pub mod ground_truth;
pub mod measure;
pub mod patient;
pub mod presets;
pub mod rng;
pub mod scanner;
pub mod tumour;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use clinical::{ClinicalRow, CohortTable, Differentiation, Sex, SurvivalTruth};
pub use describe::describe;
pub use ground_truth::{CohortGroundTruth, PatientGroundTruth};
pub use presets::{config, CohortKind, Preset, PresetConfig};
pub use tumour::SignalModel;

use radpipe_imaging::ImagingError;

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("{path}: I/O error: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Imaging(#[from] ImagingError),
    #[error("JSON: {0}")]
    Json(String),
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}

impl SynthError {
    pub fn io(path: &Path, source: std::io::Error) -> SynthError {
        SynthError::Io { path: path.to_path_buf(), source }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Write images (false: tables and ground truth only).
    pub images: bool,
    /// Restrict to these cohorts (None: all).
    pub cohorts: Option<Vec<CohortKind>>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { images: true, cohorts: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortSummary {
    pub name: String,
    pub dir: PathBuf,
    pub n: usize,
    pub n_positive: usize,
    pub n_progression: usize,
    /// ICI cohort only.
    pub n_dcb: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub preset: Preset,
    pub seed: u64,
    pub scale: f64,
    pub out_dir: PathBuf,
    pub images: bool,
    pub n_patients: usize,
    pub cohorts: Vec<CohortSummary>,
}

fn check_scale(scale: f64) -> Result<(), SynthError> {
    if !(scale.is_finite() && scale > 0.0 && scale <= 100.0) {
        return Err(SynthError::InvalidParameter(format!("scale must be in (0, 100], got {scale}")));
    }
    Ok(())
}

/// The clinical tables (typed rows + survival latents) of every cohort, no files.
pub fn tables(preset: Preset, seed: u64, scale: f64) -> Result<Vec<CohortTable>, SynthError> {
    check_scale(scale)?;
    let cfg = config(preset);
    Ok(cfg.cohorts.iter().enumerate().map(|(i, c)| clinical::cohort_table(c, i, seed, scale)).collect())
}

/// Generate the full synthetic study into `out`.
pub fn generate(preset: Preset, seed: u64, scale: f64, out: &Path) -> Result<Summary, SynthError> {
    generate_with(preset, seed, scale, out, &GenerateOptions::default())
}

/// [`generate`] with options (tables only, a subset of cohorts).
pub fn generate_with(preset: Preset, seed: u64, scale: f64, out: &Path, opts: &GenerateOptions) -> Result<Summary, SynthError> {
    check_scale(scale)?;
    let cfg = config(preset);
    let model = SignalModel::default();
    std::fs::create_dir_all(out).map_err(|e| SynthError::io(out, e))?;
    let design = out.join("design.txt");
    std::fs::write(&design, describe(preset)).map_err(|e| SynthError::io(&design, e))?;
    let mut summaries = Vec::new();
    for (ci, spec) in cfg.cohorts.iter().enumerate() {
        if let Some(only) = &opts.cohorts {
            if !only.contains(&spec.kind) {
                continue;
            }
        }
        let table = clinical::cohort_table(spec, ci, seed, scale);
        let dir = out.join(&spec.name);
        std::fs::create_dir_all(&dir).map_err(|e| SynthError::io(&dir, e))?;
        clinical::write_csv(&table.rows, &dir.join("clinical.csv"))?;
        let parquet = dir.join("clinical.parquet");
        radpipe_engine::tables::csv_to_parquet(&dir.join("clinical.csv"), &parquet)
            .map_err(|e| SynthError::io(&parquet, std::io::Error::other(e.to_string())))?;
        let imaging: Vec<Option<patient::ImagingTruth>> = if opts.images {
            let img_dir = dir.join("images");
            table
                .rows
                .par_iter()
                .enumerate()
                .map(|(pi, row)| {
                    let (truth, images) = patient::simulate(&cfg, spec, ci, pi, row, &model, seed)?;
                    patient::write_images(&images, &img_dir.join(&row.patient_id))?;
                    Ok(Some(truth))
                })
                .collect::<Result<Vec<_>, SynthError>>()?
        } else {
            vec![None; table.rows.len()]
        };
        let gt = CohortGroundTruth::new(preset, seed, scale, cfg.dims, cfg.inplane_spacing_factor, &table, &model, imaging);
        gt.write(&dir.join("ground_truth.json"))?;
        summaries.push(CohortSummary {
            name: spec.name.clone(),
            dir,
            n: table.rows.len(),
            n_positive: table.rows.iter().filter(|r| r.label()).count(),
            n_progression: table.rows.iter().filter(|r| r.progression).count(),
            n_dcb: spec.survival.dcb_target.map(|_| table.rows.iter().filter(|r| r.dcb == Some(true)).count()),
        });
    }
    Ok(Summary { preset, seed, scale, out_dir: out.to_path_buf(), images: opts.images, n_patients: summaries.iter().map(|c| c.n).sum(), cohorts: summaries })
}

#[cfg(test)]
mod tests;
