//! `ground_truth.json`: every generative parameter of a cohort and each patient's
//! latent values.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::synth::anatomy;
use crate::synth::clinical::{CohortTable, SurvivalTruth};
use crate::synth::patient::{ImagingTruth, MISREG_MAX_DEG, MISREG_MAX_MM};
use crate::synth::presets::{CohortSpec, Preset, HR_PDL1_HIGH, LOG_HR_N_STAGE, LOG_HR_T_STAGE};
use crate::synth::tumour::SignalModel;
use crate::synth::SynthError;

pub const GENERATOR: &str = "radpipe-synth";
pub const GENERATOR_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HazardModel {
    pub formula: String,
    pub hr_pdl1_high: f64,
    pub log_hr_per_t_stage: f64,
    pub log_hr_per_n_stage: f64,
    pub weibull_shape: f64,
    pub baseline_lambda: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TissueTable {
    pub order: [String; 3],
    pub air: [f64; 3],
    pub fat: [f64; 3],
    pub soft_tissue: [f64; 3],
    pub muscle: [f64; 3],
    pub marrow: [f64; 3],
    pub csf_cord: [f64; 3],
    pub vessel: [f64; 3],
    pub airway: [f64; 3],
}

impl Default for TissueTable {
    fn default() -> Self {
        TissueTable {
            order: ["t1".into(), "t2".into(), "ce_t1".into()],
            air: anatomy::AIR,
            fat: anatomy::FAT,
            soft_tissue: anatomy::SOFT_TISSUE,
            muscle: anatomy::MUSCLE,
            marrow: anatomy::MARROW,
            csf_cord: anatomy::CSF_CORD,
            vessel: anatomy::VESSEL,
            airway: anatomy::AIRWAY,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientGroundTruth {
    pub patient_id: String,
    pub index: usize,
    /// CPS >= 20.
    pub label: bool,
    pub cps: f64,
    pub t_stage: u8,
    pub n_stage: u8,
    pub survival: SurvivalTruth,
    /// Absent for tables-only generation.
    pub imaging: Option<ImagingTruth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortGroundTruth {
    pub generator: String,
    pub version: u32,
    pub preset: Preset,
    pub seed: u64,
    pub scale: f64,
    pub cohort: String,
    pub dims: [usize; 3],
    pub inplane_spacing_factor: f64,
    pub spec: CohortSpec,
    pub hazard_model: HazardModel,
    pub signal_model: SignalModel,
    pub tissues: TissueTable,
    pub misregistration_max_deg: f64,
    pub misregistration_max_mm: f64,
    pub seeding: String,
    pub patients: Vec<PatientGroundTruth>,
}

impl CohortGroundTruth {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        preset: Preset,
        seed: u64,
        scale: f64,
        dims: [usize; 3],
        inplane_spacing_factor: f64,
        table: &CohortTable,
        model: &SignalModel,
        imaging: Vec<Option<ImagingTruth>>,
    ) -> CohortGroundTruth {
        let patients = table
            .rows
            .iter()
            .zip(&table.survival)
            .zip(imaging)
            .enumerate()
            .map(|(index, ((r, s), im))| PatientGroundTruth {
                patient_id: r.patient_id.clone(),
                index,
                label: r.label(),
                cps: r.cps,
                t_stage: r.t_stage,
                n_stage: r.n_stage,
                survival: s.clone(),
                imaging: im,
            })
            .collect();
        CohortGroundTruth {
            generator: GENERATOR.into(),
            version: GENERATOR_VERSION,
            preset,
            seed,
            scale,
            cohort: table.spec.name.clone(),
            dims,
            inplane_spacing_factor,
            spec: table.spec.clone(),
            hazard_model: HazardModel {
                formula: "S(t|x) = exp(-lambda * t^k * exp(log(hr_pdl1_high)*[cps>=20] + log_hr_per_t_stage*(T-2) + log_hr_per_n_stage*N)); observed = min(event, censor)".into(),
                hr_pdl1_high: HR_PDL1_HIGH,
                log_hr_per_t_stage: LOG_HR_T_STAGE,
                log_hr_per_n_stage: LOG_HR_N_STAGE,
                weibull_shape: table.spec.survival.weibull_shape,
                baseline_lambda: table.baseline_lambda,
            },
            signal_model: model.clone(),
            tissues: TissueTable::default(),
            misregistration_max_deg: MISREG_MAX_DEG,
            misregistration_max_mm: MISREG_MAX_MM,
            seeding: "ChaCha8 streams from splitmix(seed, stream, patient index): tables 1000+cohort, survival 2000+cohort, patient parameters 10+cohort, noise 500+cohort".into(),
            patients,
        }
    }

    pub fn write(&self, path: &Path) -> Result<(), SynthError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| SynthError::Json(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| SynthError::io(path, e))
    }

    pub fn read(path: &Path) -> Result<CohortGroundTruth, SynthError> {
        let text = std::fs::read_to_string(path).map_err(|e| SynthError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| SynthError::Json(e.to_string()))
    }
}
