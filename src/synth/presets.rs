//! Presets: cohort sizes, Table-1 targets, scanner protocols and volume sizes.
//!
//! Table 1 of the study (training n=267, internal n=115, external n=134) gives the
//! targets.  Institution 1's training and internal cohorts are pooled (n=382) because
//! the 7:3 split is done downstream; where a row's percentages disagree with its
//! counts the counts are used (e.g. drinking 82/267, sex 6/115 female).  Table 1
//! has no T1 row, so T1 has target count 0.  The ICI cohort's table (Supplementary
//! Table S2) is not in the text; it borrows institution 1's marginals (same
//! institution) and a PD-L1 prevalence of 32.2%.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::synth::SynthError;

/// Which synthetic study to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Study-sized: 382 + 134 + 94 patients, 256x256x24 volumes.
    Paper,
    /// About 240 patients, 96x96x16 volumes (CPU pipeline in minutes).
    Demo,
    /// About 60 patients, 64x64x12 volumes (CI).
    Tiny,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Paper => "paper",
            Preset::Demo => "demo",
            Preset::Tiny => "tiny",
        }
    }
    pub fn all() -> [Preset; 3] {
        [Preset::Paper, Preset::Demo, Preset::Tiny]
    }
}

impl FromStr for Preset {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Preset, SynthError> {
        match s.to_ascii_lowercase().as_str() {
            "paper" => Ok(Preset::Paper),
            "demo" => Ok(Preset::Demo),
            "tiny" => Ok(Preset::Tiny),
            other => Err(SynthError::InvalidParameter(format!("unknown preset {other:?} (paper, demo, tiny)"))),
        }
    }
}

/// The three cohorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CohortKind {
    /// Training + internal validation pool (split 7:3 downstream).
    Institution1,
    /// External validation (institution 2, other scanner).
    External,
    /// ICI-treated cohort (institution 1) with DCB.
    Ici,
}

impl CohortKind {
    pub fn name(self) -> &'static str {
        match self {
            CohortKind::Institution1 => "institution1",
            CohortKind::External => "external",
            CohortKind::Ici => "ici",
        }
    }
    pub fn id_prefix(self) -> &'static str {
        match self {
            CohortKind::Institution1 => "I1",
            CohortKind::External => "E",
            CohortKind::Ici => "ICI",
        }
    }
}

/// Target marginal distributions of one cohort (reference counts from Table 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClinicalTargets {
    pub age_mean: f64,
    pub age_sd: f64,
    /// [male, female]
    pub sex: [u32; 2],
    /// [no, yes]
    pub smoking: [u32; 2],
    /// [no, yes]
    pub drinking: [u32; 2],
    /// [well, moderate, poor]
    pub differentiation: [u32; 3],
    /// [T1, T2, T3, T4]
    pub t_stage: [u32; 4],
    /// [N0, N1, N2, N3]
    pub n_stage: [u32; 4],
    /// Fraction with CPS >= 20.
    pub prevalence: f64,
}

/// One scanner / acquisition protocol (per institution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScannerProfile {
    pub name: String,
    /// Protocol in-plane spacings (mm) at 256 matrix; small presets scale them.
    pub inplane_spacing_mm: Vec<f64>,
    /// Protocol slice spacings (mm).
    pub slice_spacing_mm: Vec<f64>,
    /// Largest oblique angle of the slice stack (degrees, about x; others a third).
    pub max_oblique_deg: f64,
    /// Mean stored intensity of unit signal, per sequence [t1, t2, ce_t1].
    pub gain: [f64; 3],
    /// Coefficient of variation of the per-patient gain.
    pub gain_cv: f64,
    /// Multiplier on contrast enhancement (tumour and rim) in CE-T1.
    pub enhancement_factor: f64,
    /// Multiplier on the label-dependent rim / texture effects (centre effect).
    pub label_effect_factor: f64,
    /// Rician noise sigma relative to unit signal, per sequence.
    pub noise: [f64; 3],
    /// Peak-to-peak log amplitude of the smooth multiplicative bias field.
    pub bias_amplitude: f64,
}

/// Proportional-hazards PFS model of a cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurvivalSpec {
    /// Weibull shape k (S(t) = exp(-lambda t^k exp(lp))).
    pub weibull_shape: f64,
    /// Median PFS (months) of a reference patient (lp = 0); ignored when `dcb_target` set.
    pub reference_median_months: f64,
    /// For the ICI cohort: target P(PFS > 6 months); lambda is solved for it.
    pub dcb_target: Option<f64>,
    /// Administrative censoring uniform on [a, b] months.
    pub admin_censoring_months: [f64; 2],
    /// Loss to follow-up hazard per month (exponential).
    pub loss_rate_per_month: f64,
}

/// A cohort of a preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortSpec {
    pub kind: CohortKind,
    pub name: String,
    /// Patients at scale 1.
    pub n: usize,
    /// Smallest patient count whatever the scale.
    pub min_n: usize,
    /// Smallest count of each label class whatever the scale.
    pub min_per_class: usize,
    pub targets: ClinicalTargets,
    pub scanner: ScannerProfile,
    pub survival: SurvivalSpec,
}

/// Everything a preset fixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetConfig {
    pub preset: Preset,
    /// Volume size [i, j, k] of every sequence.
    pub dims: [usize; 3],
    /// Multiplier on protocol in-plane spacing (256 / matrix), so small volumes keep
    /// a neck-sized field of view.
    pub inplane_spacing_factor: f64,
    pub cohorts: Vec<CohortSpec>,
}

/// Log hazard ratio per T stage above T2 and per N stage above N0.
pub const LOG_HR_T_STAGE: f64 = 0.12;
pub const LOG_HR_N_STAGE: f64 = 0.10;
/// Generative hazard ratio of CPS >= 20.
pub const HR_PDL1_HIGH: f64 = 0.55;

pub fn institution1_targets() -> ClinicalTargets {
    // training 267 + internal 115 (Table 1 counts)
    ClinicalTargets {
        age_mean: (267.0 * 61.70 + 115.0 * 59.85) / 382.0,
        // pooled SD including the between-group difference
        age_sd: {
            let m: f64 = (267.0 * 61.70 + 115.0 * 59.85) / 382.0;
            let ss = 266.0 * 8.50f64.powi(2) + 114.0 * 8.16f64.powi(2) + 267.0 * (61.70 - m).powi(2) + 115.0 * (59.85 - m).powi(2);
            (ss / 381.0).sqrt()
        },
        sex: [238 + 109, 29 + 6],
        smoking: [72 + 29, 195 + 86],
        drinking: [185 + 79, 82 + 36],
        differentiation: [31 + 11, 115 + 48, 121 + 56],
        t_stage: [0, 89 + 30, 120 + 46, 58 + 39],
        n_stage: [85 + 34, 83 + 31, 92 + 42, 7 + 8],
        prevalence: 0.322,
    }
}

pub fn external_targets() -> ClinicalTargets {
    ClinicalTargets {
        age_mean: 58.76,
        age_sd: 8.63,
        sex: [123, 11],
        smoking: [42, 92],
        drinking: [88, 46],
        differentiation: [14, 47, 73],
        t_stage: [0, 46, 46, 42],
        n_stage: [33, 40, 53, 8],
        prevalence: 0.485,
    }
}

pub fn ici_targets() -> ClinicalTargets {
    ClinicalTargets { prevalence: 0.322, ..institution1_targets() }
}

pub fn institution1_scanner() -> ScannerProfile {
    ScannerProfile {
        name: "institution1_3T_vendorA".into(),
        inplane_spacing_mm: vec![0.703, 0.781, 0.859],
        slice_spacing_mm: vec![4.0, 4.5, 5.0],
        max_oblique_deg: 10.0,
        gain: [900.0, 800.0, 1000.0],
        gain_cv: 0.10,
        enhancement_factor: 1.0,
        label_effect_factor: 1.0,
        noise: [0.025, 0.03, 0.03],
        bias_amplitude: 0.25,
    }
}

pub fn external_scanner() -> ScannerProfile {
    ScannerProfile {
        name: "institution2_1.5T_vendorB".into(),
        inplane_spacing_mm: vec![0.586, 0.625, 0.703],
        slice_spacing_mm: vec![5.0, 5.5, 6.0],
        max_oblique_deg: 15.0,
        gain: [1400.0, 1700.0, 1300.0],
        gain_cv: 0.15,
        enhancement_factor: 0.85,
        label_effect_factor: 0.8,
        noise: [0.04, 0.045, 0.05],
        bias_amplitude: 0.40,
    }
}

fn survival_standard() -> SurvivalSpec {
    SurvivalSpec { weibull_shape: 1.2, reference_median_months: 20.0, dcb_target: None, admin_censoring_months: [3.0, 42.0], loss_rate_per_month: 0.008 }
}

fn survival_ici() -> SurvivalSpec {
    SurvivalSpec { weibull_shape: 1.2, reference_median_months: 3.5, dcb_target: Some(0.234), admin_censoring_months: [7.0, 30.0], loss_rate_per_month: 0.015 }
}

/// The configuration of a preset (scale 1).
pub fn config(preset: Preset) -> PresetConfig {
    let (dims, factor, n) = match preset {
        Preset::Paper => ([256, 256, 24], 1.0, [382, 134, 94]),
        Preset::Demo => ([96, 96, 16], 256.0 / 96.0, [150, 54, 36]),
        Preset::Tiny => ([64, 64, 12], 4.0, [36, 14, 10]),
    };
    let cohorts = vec![
        CohortSpec {
            kind: CohortKind::Institution1,
            name: CohortKind::Institution1.name().into(),
            n: n[0],
            // >= 10 per class: a 7:3 then 80:20 stratified split keeps both classes
            min_n: 30,
            min_per_class: 10,
            targets: institution1_targets(),
            scanner: institution1_scanner(),
            survival: survival_standard(),
        },
        CohortSpec {
            kind: CohortKind::External,
            name: CohortKind::External.name().into(),
            n: n[1],
            min_n: 10,
            min_per_class: 3,
            targets: external_targets(),
            scanner: external_scanner(),
            survival: survival_standard(),
        },
        CohortSpec {
            kind: CohortKind::Ici,
            name: CohortKind::Ici.name().into(),
            n: n[2],
            min_n: 10,
            min_per_class: 3,
            targets: ici_targets(),
            scanner: institution1_scanner(),
            survival: survival_ici(),
        },
    ];
    PresetConfig { preset, dims, inplane_spacing_factor: factor, cohorts }
}

/// Patient count and positive count of a cohort at `scale`.
pub fn cohort_counts(spec: &CohortSpec, scale: f64) -> (usize, usize) {
    let n = ((spec.n as f64 * scale).round() as usize).max(spec.min_n);
    let pos = ((n as f64 * spec.targets.prevalence).round() as usize).max(spec.min_per_class).min(n - spec.min_per_class);
    (n, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stratified split that rounds the held-out share of each class.
    fn split(pos: usize, neg: usize, frac: f64, round: fn(f64) -> f64) -> ((usize, usize), (usize, usize)) {
        let hp = round(pos as f64 * frac) as usize;
        let hn = round(neg as f64 * frac) as usize;
        ((pos - hp, neg - hn), (hp, hn))
    }

    #[test]
    fn every_partition_holds_both_classes() {
        let rounders: [fn(f64) -> f64; 3] = [f64::round, f64::floor, f64::ceil];
        for preset in Preset::all() {
            let cfg = config(preset);
            for scale in [0.01, 0.1, 0.25, 0.5, 1.0, 2.0] {
                for c in &cfg.cohorts {
                    let (n, pos) = cohort_counts(c, scale);
                    let neg = n - pos;
                    assert!(pos >= 3 && neg >= 3, "{preset:?} {} {scale}", c.name);
                    if c.kind == CohortKind::Institution1 {
                        for r in rounders {
                            let ((tp, tn), (ip, inn)) = split(pos, neg, 0.3, r);
                            let ((fp, fneg), (ep, en)) = split(tp, tn, 0.2, r);
                            for x in [ip, inn, fp, fneg, ep, en] {
                                assert!(x >= 1, "{preset:?} scale {scale}: empty class");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn paper_counts_match_study() {
        let cfg = config(Preset::Paper);
        let got: Vec<(usize, usize)> = cfg.cohorts.iter().map(|c| cohort_counts(c, 1.0)).collect();
        assert_eq!(got, vec![(382, 123), (134, 65), (94, 30)]);
        let t = institution1_targets();
        assert_eq!(t.sex.iter().sum::<u32>(), 382);
        assert_eq!(t.t_stage.iter().sum::<u32>(), 382);
        assert_eq!(t.n_stage.iter().sum::<u32>(), 382);
        let e = external_targets();
        assert_eq!(e.differentiation.iter().sum::<u32>(), 134);
        assert_eq!(e.n_stage.iter().sum::<u32>(), 134);
        let demo: usize = config(Preset::Demo).cohorts.iter().map(|c| cohort_counts(c, 1.0).0).sum();
        let tiny: usize = config(Preset::Tiny).cohorts.iter().map(|c| cohort_counts(c, 1.0).0).sum();
        assert_eq!((demo, tiny), (240, 60));
        assert_eq!("Demo".parse::<Preset>().unwrap(), Preset::Demo);
    }
}
