//! Clinical tables: exact Table-1 marginals, CPS, and PFS from a proportional-hazards
//! model (Weibull baseline, HR 0.55 for CPS >= 20, small T/N effects, censoring).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::synth::presets::{cohort_counts, CohortSpec, SurvivalSpec, HR_PDL1_HIGH, LOG_HR_N_STAGE, LOG_HR_T_STAGE};
use crate::synth::rng::{exact_categories, normal, shuffle, stream, uniform, SynthRng};
use crate::synth::SynthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Male,
    Female,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Differentiation {
    Well,
    Moderate,
    Poor,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }
}

impl Differentiation {
    pub fn as_str(self) -> &'static str {
        match self {
            Differentiation::Well => "well",
            Differentiation::Moderate => "moderate",
            Differentiation::Poor => "poor",
        }
    }
}

pub fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// One row of `clinical.csv` (plus the cohort name and the derived label, which the
/// CSV does not carry).  `t_stage` is 1..=4 (written `T1`..`T4`), `n_stage` 0..=3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClinicalRow {
    pub patient_id: String,
    pub cohort: String,
    pub age: u32,
    pub sex: Sex,
    pub smoking: bool,
    pub drinking: bool,
    pub differentiation: Differentiation,
    pub t_stage: u8,
    pub n_stage: u8,
    /// Combined positive score, integer 0..=100.
    pub cps: f64,
    /// PFS in months, rounded to 0.01.
    pub pfs_months: f64,
    /// 1 = progression observed, 0 = censored.
    pub progression: bool,
    /// ICI cohort only: PFS > 6 months; `None` when censored at or before 6 months (and in other cohorts).
    pub dcb: Option<bool>,
}

impl ClinicalRow {
    /// CPS >= 20.
    pub fn label(&self) -> bool {
        self.cps >= 20.0
    }
}

/// Latent survival values of one patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurvivalTruth {
    /// log-hazard relative to the reference patient.
    pub linear_predictor: f64,
    /// exp(linear_predictor).
    pub relative_hazard: f64,
    pub event_time_months: f64,
    pub censor_time_months: f64,
}

/// A cohort's table and latents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortTable {
    pub spec: CohortSpec,
    pub index: usize,
    pub rows: Vec<ClinicalRow>,
    pub survival: Vec<SurvivalTruth>,
    /// Weibull scale lambda of the baseline (S0(t) = exp(-lambda t^k)).
    pub baseline_lambda: f64,
}

impl CohortTable {
    pub fn labels(&self) -> Vec<bool> {
        self.rows.iter().map(|r| r.label()).collect()
    }
}

/// Draw a CPS consistent with the label: positives 20..=100 skewed low, negatives
/// 0 (30%) or 1..=19.
fn draw_cps(rng: &mut SynthRng, positive: bool) -> f64 {
    if positive {
        let u: f64 = uniform(rng, 0.0, 1.0);
        (20.0 + 80.0 * u.powf(1.6)).round().clamp(20.0, 100.0)
    } else if uniform(rng, 0.0, 1.0) < 0.3 {
        0.0
    } else {
        (1.0 + 18.999 * uniform(rng, 0.0, 1.0)).floor().clamp(1.0, 19.0)
    }
}

pub fn linear_predictor(label: bool, t_stage: u8, n_stage: u8) -> f64 {
    let b = if label { HR_PDL1_HIGH.ln() } else { 0.0 };
    b + LOG_HR_T_STAGE * (t_stage as f64 - 2.0) + LOG_HR_N_STAGE * n_stage as f64
}

/// Weibull lambda: from the reference median, or solved so that the cohort's expected
/// P(T > 6 months) equals `dcb_target`.
fn baseline_lambda(spec: &SurvivalSpec, lps: &[f64]) -> f64 {
    let k = spec.weibull_shape;
    match spec.dcb_target {
        None => std::f64::consts::LN_2 / spec.reference_median_months.powf(k),
        Some(target) => {
            let six = 6f64.powf(k);
            let surv = |lam: f64| lps.iter().map(|lp| (-lam * six * lp.exp()).exp()).sum::<f64>() / lps.len() as f64;
            let (mut lo, mut hi) = (1e-8, 10.0);
            for _ in 0..200 {
                let mid = 0.5 * (lo + hi);
                if surv(mid) > target {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Generate one cohort's table (no images).
pub fn cohort_table(spec: &CohortSpec, index: usize, seed: u64, scale: f64) -> CohortTable {
    let (n, n_pos) = cohort_counts(spec, scale);
    let t = &spec.targets;
    let mut rng = stream(seed, 1000 + index as u64, 0);
    let mut labels: Vec<bool> = (0..n).map(|i| i < n_pos).collect();
    shuffle(&mut rng, &mut labels);
    let sex = exact_categories(&mut rng, n, &t.sex);
    let smoking = exact_categories(&mut rng, n, &t.smoking);
    let drinking = exact_categories(&mut rng, n, &t.drinking);
    let diff = exact_categories(&mut rng, n, &t.differentiation);
    let tst = exact_categories(&mut rng, n, &t.t_stage);
    let nst = exact_categories(&mut rng, n, &t.n_stage);
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let age = (t.age_mean + t.age_sd * normal(&mut rng)).round().clamp(25.0, 95.0) as u32;
        let cps = draw_cps(&mut rng, labels[i]);
        rows.push(ClinicalRow {
            patient_id: format!("{}-{:04}", spec.kind.id_prefix(), i + 1),
            cohort: spec.name.clone(),
            age,
            sex: [Sex::Male, Sex::Female][sex[i]],
            smoking: smoking[i] == 1,
            drinking: drinking[i] == 1,
            differentiation: [Differentiation::Well, Differentiation::Moderate, Differentiation::Poor][diff[i]],
            t_stage: tst[i] as u8 + 1,
            n_stage: nst[i] as u8,
            cps,
            pfs_months: 0.0,
            progression: false,
            dcb: None,
        });
    }
    let lps: Vec<f64> = rows.iter().map(|r| linear_predictor(r.label(), r.t_stage, r.n_stage)).collect();
    let sv = &spec.survival;
    let lambda = baseline_lambda(sv, &lps);
    let mut survival = Vec::with_capacity(n);
    // redraw (rarely) so that a DCB cohort holds both DCB classes
    for attempt in 0..100u64 {
        let mut srng = stream(seed, 2000 + index as u64, attempt);
        survival.clear();
        for lp in &lps {
            let u = 1.0 - uniform(&mut srng, 0.0, 1.0);
            let event = (-u.ln() / (lambda * lp.exp())).powf(1.0 / sv.weibull_shape);
            let admin = uniform(&mut srng, sv.admin_censoring_months[0], sv.admin_censoring_months[1]);
            let loss = if sv.loss_rate_per_month > 0.0 { -(1.0 - uniform(&mut srng, 0.0, 1.0)).ln() / sv.loss_rate_per_month } else { f64::INFINITY };
            survival.push(SurvivalTruth { linear_predictor: *lp, relative_hazard: lp.exp(), event_time_months: event, censor_time_months: admin.min(loss) });
        }
        if sv.dcb_target.is_none() {
            break;
        }
        let dcb = survival.iter().filter(|s| s.event_time_months.min(s.censor_time_months) > 6.0).count();
        let no_dcb = survival.iter().filter(|s| s.event_time_months <= s.censor_time_months.min(6.0)).count();
        if dcb >= 2 && no_dcb >= 2 {
            break;
        }
    }
    for (r, s) in rows.iter_mut().zip(&survival) {
        let obs = s.event_time_months.min(s.censor_time_months);
        r.pfs_months = round2(obs).max(0.1);
        r.progression = s.event_time_months <= s.censor_time_months;
        if sv.dcb_target.is_some() {
            r.dcb = dcb(r.pfs_months, r.progression);
        }
    }
    CohortTable { spec: spec.clone(), index, rows, survival, baseline_lambda: lambda }
}

/// Durable clinical benefit by its definition, PFS > 6 months: unknown (empty)
/// for a patient censored at or before 6 months.
pub fn dcb(pfs_months: f64, progression: bool) -> Option<bool> {
    if pfs_months > 6.0 {
        Some(true)
    } else if progression {
        Some(false)
    } else {
        None
    }
}

/// Format a number with up to 2 decimals, trailing zeros dropped (deterministic).
fn fmt_num(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// The CSV text of a cohort table (written by the `csv` crate).
pub fn csv_string(rows: &[ClinicalRow]) -> String {
    let with_dcb = rows.iter().any(|r| r.dcb.is_some());
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["patient_id", "age", "sex", "smoking", "drinking", "differentiation", "t_stage", "n_stage", "cps", "pfs_months", "progression"];
    if with_dcb {
        header.push("dcb");
    }
    // Writing into a Vec cannot fail.
    w.write_record(&header).expect("CSV into memory");
    for r in rows {
        let mut record = vec![
            r.patient_id.clone(),
            r.age.to_string(),
            r.sex.as_str().to_string(),
            yes_no(r.smoking).to_string(),
            yes_no(r.drinking).to_string(),
            r.differentiation.as_str().to_string(),
            format!("T{}", r.t_stage),
            format!("N{}", r.n_stage),
            fmt_num(r.cps),
            fmt_num(r.pfs_months),
            (r.progression as u8).to_string(),
        ];
        if with_dcb {
            record.push(r.dcb.map(|d| (d as u8).to_string()).unwrap_or_default());
        }
        w.write_record(&record).expect("CSV into memory");
    }
    String::from_utf8(w.into_inner().expect("CSV into memory")).expect("CSV of UTF-8 fields")
}

pub fn write_csv(rows: &[ClinicalRow], path: &Path) -> Result<(), SynthError> {
    let mut f = std::fs::File::create(path).map_err(|e| SynthError::io(path, e))?;
    f.write_all(csv_string(rows).as_bytes()).map_err(|e| SynthError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::presets::{config, Preset};

    fn mean_sd(x: &[f64]) -> (f64, f64) {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        let v = x.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (x.len() as f64 - 1.0);
        (m, v.sqrt())
    }

    fn check_prop(name: &str, got: usize, n: usize, target: f64) {
        let p = got as f64 / n as f64;
        let se = (target * (1.0 - target) / n as f64).sqrt().max(1e-9);
        assert!((p - target).abs() <= 3.0 * se + 0.5 / n as f64, "{name}: {p} vs {target} (n={n})");
    }

    #[test]
    fn distributions_follow_table1() {
        for preset in [Preset::Paper, Preset::Demo] {
            let cfg = config(preset);
            for seed in [1u64, 2, 3] {
                for (ci, spec) in cfg.cohorts.iter().enumerate() {
                    let tab = cohort_table(spec, ci, seed, 1.0);
                    let n = tab.rows.len();
                    let t = &spec.targets;
                    let ages: Vec<f64> = tab.rows.iter().map(|r| r.age as f64).collect();
                    let (m, sd) = mean_sd(&ages);
                    assert!((m - t.age_mean).abs() < 3.0 * t.age_sd / (n as f64).sqrt(), "{} age {m}", spec.name);
                    assert!((sd - t.age_sd).abs() < 3.0 * t.age_sd / (2.0 * n as f64).sqrt() + 0.3, "{} sd {sd}", spec.name);
                    let tot = |c: &[u32]| c.iter().sum::<u32>() as f64;
                    let cnt = |f: &dyn Fn(&ClinicalRow) -> bool| tab.rows.iter().filter(|r| f(r)).count();
                    check_prop("male", cnt(&|r| r.sex == Sex::Male), n, t.sex[0] as f64 / tot(&t.sex));
                    check_prop("smoking", cnt(&|r| r.smoking), n, t.smoking[1] as f64 / tot(&t.smoking));
                    check_prop("drinking", cnt(&|r| r.drinking), n, t.drinking[1] as f64 / tot(&t.drinking));
                    for (k, d) in [Differentiation::Well, Differentiation::Moderate, Differentiation::Poor].iter().enumerate() {
                        check_prop("diff", cnt(&|r| r.differentiation == *d), n, t.differentiation[k] as f64 / tot(&t.differentiation));
                    }
                    for k in 0..4 {
                        check_prop("T", cnt(&|r| r.t_stage as usize == k + 1), n, t.t_stage[k] as f64 / tot(&t.t_stage));
                        check_prop("N", cnt(&|r| r.n_stage as usize == k), n, t.n_stage[k] as f64 / tot(&t.n_stage));
                    }
                    check_prop("label", cnt(&|r| r.label()), n, t.prevalence);
                    assert!(tab.rows.iter().all(|r| (0.0..=100.0).contains(&r.cps) && r.cps.fract() == 0.0));
                    if let Some(target) = spec.survival.dcb_target {
                        check_prop("dcb", cnt(&|r| r.dcb == Some(true)), n, target);
                    } else {
                        assert!(tab.rows.iter().all(|r| r.dcb.is_none()));
                    }
                }
            }
        }
    }

    #[test]
    fn paper_exact_counts() {
        let cfg = config(Preset::Paper);
        let tab = cohort_table(&cfg.cohorts[1], 1, 7, 1.0);
        let male = tab.rows.iter().filter(|r| r.sex == Sex::Male).count();
        let t4 = tab.rows.iter().filter(|r| r.t_stage == 4).count();
        let pos = tab.rows.iter().filter(|r| r.label()).count();
        assert_eq!((male, t4, pos), (123, 42, 65));
    }

    #[test]
    fn cox_recovers_hazard_ratio_at_paper_size() {
        use radpipe_stats::survival::{cox_ph, CoxOptions};
        let cfg = config(Preset::Paper);
        let mut hrs = Vec::new();
        for seed in [11u64, 12, 13, 14, 15] {
            let (mut t, mut e, mut x) = (Vec::new(), Vec::new(), Vec::new());
            for ci in 0..2 {
                let tab = cohort_table(&cfg.cohorts[ci], ci, seed, 1.0);
                for r in &tab.rows {
                    t.push(r.pfs_months);
                    e.push(r.progression);
                    x.push(r.label() as u8 as f64);
                }
            }
            let fit = cox_ph(&t, &e, &[&x], &CoxOptions::default()).unwrap();
            let hr = fit.hazard_ratio[0];
            assert!((hr - HR_PDL1_HIGH).abs() < 0.15, "seed {seed}: HR {hr}");
            hrs.push(hr);
        }
        let mean = hrs.iter().sum::<f64>() / hrs.len() as f64;
        eprintln!("Cox HR (institution1+external, label only) per seed {hrs:?}, mean {mean:.3}");
        assert!((mean - HR_PDL1_HIGH).abs() < 0.08);
    }

    #[test]
    fn csv_layout() {
        let cfg = config(Preset::Tiny);
        let tab = cohort_table(&cfg.cohorts[2], 2, 3, 1.0);
        let s = csv_string(&tab.rows);
        let mut lines = s.lines();
        assert_eq!(lines.next().unwrap(), "patient_id,age,sex,smoking,drinking,differentiation,t_stage,n_stage,cps,pfs_months,progression,dcb");
        let first: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(first.len(), 12);
        assert_eq!(first[0], "ICI-0001");
        assert!(["male", "female"].contains(&first[2]));
        assert!(first[6].starts_with('T') && first[7].starts_with('N'));
        assert_eq!(s.lines().count(), tab.rows.len() + 1);
    }
}
