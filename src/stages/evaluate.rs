//! `kind: evaluate`: diagnostic performance of one or more scores for a binary
//! label, per cohort or split partition (the study's Table 2 and Figure 3).
//!
//! ```yaml
//! table2:
//!   kind: evaluate
//!   input: [ingest, split, fuse]
//!   label: pdl1_high                 # a column of the ingested table
//!   positive: 1                      # the label value that counts as positive
//!   scores: { DLS: fuse.dls, CPS: cps }   # display name -> column or stage.name
//!   cohorts: [train, internal, external]
//!   threshold: { rule: youden, fit_on: train }   # or { rule: fixed, value: 0.5 }
//!   compare: delong
//!   missing: refuse                  # or drop
//!   calibration: { bins: 10, strategy: uniform }
//! ```
//!
//! Per cohort and score: AUC with its DeLong variance and 95% CI (normal,
//! clipped to [0, 1]); the threshold (Youden point of the `fit_on` cohort —
//! the highest of tied optima, midpoints between adjacent scores as pROC — or
//! each cohort's own Youden point when `fit_on` is absent, or a fixed value;
//! `score >= threshold` is positive); accuracy, sensitivity, specificity, PPV
//! and NPV with Wilson 95% CIs; for scores that are probabilities (all in
//! [0, 1]) the Brier score, calibration intercept and slope (logistic
//! recalibration), the calibration curve and the decision curve. With
//! `compare: delong`, the paired DeLong test between every pair of scores.
//! Under `missing: drop` a patient lacking the label or any score is left out
//! of that cohort for every score (so paired comparisons see the same patients).
//!
//! Outputs: `metrics.json` (ids `<stage>/<cohort>/<score>/<metric>`, and
//! `<stage>/<cohort>/<a>_vs_<b>/{delong_z,delong_p,auc_diff}`), `table.csv`,
//! `table.md` (and `table.linked.md`: numbers cited for the report), `patients.json` (each cohort's patients, which `radpipe lineage` follows), `roc.csv`, `calibration.csv`, `decision_curve.csv`,
//! `roc_<cohort>.svg`, `calibration_<cohort>.svg`, `decision_curve_<cohort>.svg`
//! and, under `missing: drop`, `dropped.csv`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::study::{self, csv_field, num, Metric, Missing, ScoreSource, Scores, Study};
use super::{Inputs, InputRef, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use crate::report::svg::{Chart, Series};
use radpipe_stats as stats;

pub const VERSION: u32 = 2;
const LEVEL: f64 = 0.95;

/// Diagnostic performance of scores for a binary label, per cohort; one node.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evaluate {
    /// The stages read: the ingest stage, split stages (for partitions) and the stages whose score outputs are used.
    pub input: Inputs,
    /// The binary label column of the ingested table.
    pub label: String,
    /// The label value that counts as positive (default 1).
    #[serde(default = "default_positive")]
    pub positive: Value,
    /// Columns (a list), or display name -> column or `stage.name` score output.
    pub scores: Scores,
    /// Cohorts or split partitions to evaluate, in table order.
    pub cohorts: Vec<String>,
    /// How the operating point is chosen (default: each cohort's own Youden point).
    #[serde(default)]
    pub threshold: ThresholdRule,
    /// `delong`: paired DeLong test between every pair of scores, per cohort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<Compare>,
    /// Patients lacking the label or a score: `refuse` (default) or `drop`.
    #[serde(default)]
    pub missing: Missing,
    /// Calibration curve bins.
    #[serde(default)]
    pub calibration: CalibrationBins,
}

fn default_positive() -> Value {
    Value::from(1)
}

/// The operating point.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum ThresholdRule {
    /// The Youden-optimal cut-off of `fit_on` (a cohort or partition), applied to
    /// every cohort; without `fit_on`, each cohort's own.
    Youden {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fit_on: Option<String>,
    },
    /// A fixed cut-off: `score >= value` is positive.
    Fixed { value: f64 },
}

impl Default for ThresholdRule {
    fn default() -> Self {
        ThresholdRule::Youden { fit_on: None }
    }
}

/// Comparison of AUCs between scores.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Paired DeLong test (same patients, correlated AUCs).
    Delong,
}

/// Calibration-curve binning.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalibrationBins {
    /// Number of bins (default 10).
    #[serde(default = "default_bins")]
    pub bins: usize,
    /// `uniform` (equal width on [0, 1], default) or `quantile`.
    #[serde(default)]
    pub strategy: Binning,
}

impl Default for CalibrationBins {
    fn default() -> Self {
        CalibrationBins { bins: default_bins(), strategy: Binning::Uniform }
    }
}

fn default_bins() -> usize {
    10
}

/// How calibration bins are cut.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Binning {
    /// Equal width on [0, 1].
    #[default]
    Uniform,
    /// At quantiles of the predictions.
    Quantile,
}

impl Binning {
    fn strategy(self) -> stats::BinStrategy {
        match self {
            Binning::Uniform => stats::BinStrategy::Uniform,
            Binning::Quantile => stats::BinStrategy::Quantile,
        }
    }
}

/// One cohort's complete cases.
struct CohortData {
    name: String,
    y: Vec<bool>,
    /// One vector per score, parallel to `y`.
    scores: Vec<Vec<f64>>,
    /// The patients behind the numbers, parallel to `y`.
    patients: Vec<String>,
    dropped: Vec<(String, String)>,
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map(num).unwrap_or_else(|| n.to_string()),
        Value::Bool(b) => (*b as u8).to_string(),
        other => other.to_string(),
    }
}

impl Evaluate {
    fn score_sources(&self) -> Vec<(String, ScoreSource)> {
        let stages: Vec<String> = self.input.refs().into_iter().map(|r| r.stage).collect();
        self.scores.entries().into_iter().map(|(name, r)| (name, study::score_source(&r, &|s| stages.iter().any(|x| x == s)))).collect()
    }

    fn fit_on(&self) -> Option<&str> {
        match &self.threshold {
            ThresholdRule::Youden { fit_on } => fit_on.as_deref(),
            ThresholdRule::Fixed { .. } => None,
        }
    }

    /// Complete cases of one cohort, with the label checked.
    fn cohort(&self, st: &Study, inputs: &[super::InputArtifact], name: &str, sources: &[(String, ScoreSource)]) -> Result<CohortData, StageError> {
        let stage = &st.stage;
        let rows = st.rows_of(name)?;
        let positive = value_text(&self.positive);
        let labels = st.text(&self.label)?;
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for &r in &rows {
            if let Some(v) = &labels[r] {
                values.entry(v.clone()).or_default().push(st.ids[r].clone());
            }
        }
        if values.len() > 2 {
            let desc: Vec<String> = values.iter().map(|(v, ids)| format!("`{v}` ({} patients, e.g. {})", ids.len(), study::list_ids(&ids[..ids.len().min(3)]))).collect();
            return Err(StageError::new(format!(
                "stage `{stage}`, cohort `{name}`, column `{}`: a binary label has more than two values: {}",
                self.label,
                desc.join(", ")
            )));
        }
        if values.len() == 2 && !values.contains_key(&positive) {
            let known: Vec<&String> = values.keys().collect();
            return Err(StageError::new(format!(
                "stage `{stage}`, cohort `{name}`, column `{}`: the positive value `{positive}` is not among the label's values ({})",
                self.label,
                known.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            )));
        }
        let y_opt: Vec<Option<f64>> = rows.iter().map(|&r| labels[r].as_ref().map(|v| (*v == positive) as u8 as f64)).collect();
        let mut score_vals = Vec::new();
        for (display, source) in sources {
            let v = study::score_values(st, inputs, source, &rows, name)?;
            let bad: Vec<String> = rows.iter().zip(&v).filter(|(_, x)| x.is_some_and(|x| !x.is_finite())).map(|(&r, x)| format!("{} ({})", st.ids[r], num(x.unwrap_or(f64::NAN)))).collect();
            if !bad.is_empty() {
                return Err(StageError::new(format!("stage `{stage}`, cohort `{name}`, score `{display}`: not a finite number for {}", study::list_ids(&bad))));
            }
            score_vals.push(v);
        }
        let score_cols: Vec<String> = sources
            .iter()
            .map(|(d, s)| match s {
                ScoreSource::Column(c) => c.clone(),
                ScoreSource::Stage { stage, name } if d == name => format!("{stage}.{name}"),
                ScoreSource::Stage { stage, name } => format!("{stage}.{name} ({d})"),
            })
            .collect();
        let mut columns: Vec<(&str, &[Option<f64>])> = vec![(self.label.as_str(), &y_opt)];
        for (c, v) in score_cols.iter().zip(&score_vals) {
            columns.push((c.as_str(), v));
        }
        let (keep, dropped) = study::apply_missing(st, self.missing, name, &rows, &columns)?;
        let y: Vec<bool> = keep.iter().map(|&k| y_opt[k] == Some(1.0)).collect();
        let positives = y.iter().filter(|b| **b).count();
        if positives == 0 || positives == y.len() {
            return Err(StageError::new(format!(
                "stage `{stage}`, cohort `{name}`, column `{}`: need both classes, got {positives} positive (`{positive}`) and {} negative patients{}",
                self.label,
                y.len() - positives,
                if dropped.is_empty() { String::new() } else { format!(" after dropping {} with missing values", dropped.len()) }
            )));
        }
        let scores = score_vals.iter().map(|v| keep.iter().map(|&k| v[k].unwrap_or(f64::NAN)).collect()).collect();
        let patients = keep.iter().map(|&k| st.ids[rows[k]].clone()).collect();
        Ok(CohortData { name: name.to_string(), y, scores, patients, dropped })
    }
}

fn ctx_err(stage: &str, cohort: &str, score: &str, e: stats::StatsError) -> StageError {
    StageError::new(format!("stage `{stage}`, cohort `{cohort}`, score `{score}`: {e}"))
}

fn prop_metric(id: String, p: &Option<stats::Proportion>) -> Metric {
    match p {
        Some(p) => Metric::new(id, p.estimate, p.denominator as usize).ci(p.lower, p.upper),
        None => Metric::opt(id, None, 0),
    }
}

fn f3(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite()).map(|v| format!("{v:.3}")).unwrap_or_else(|| "NA".into())
}

impl Stage for Evaluate {
    fn kind(&self) -> &'static str {
        "evaluate"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn fitted_threshold_id(&self, stage: &str, reference: &str) -> Option<String> {
        let fit_on = self.fit_on()?;
        let (display, _) = self.scores.entries().into_iter().find(|(_, r)| r == reference)?;
        Some(format!("{stage}/{fit_on}/{display}/threshold"))
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        let inputs = self.input.refs();
        let mut diags = Diagnostics::default();
        diags.0.extend(study::check_has_ingest(ctx, stage, &inputs));
        diags.0.extend(study::check_cohorts(ctx, stage, &inputs, &self.cohorts));
        if let Some(f) = self.fit_on() {
            diags.0.extend(study::check_group_name(ctx, stage, &inputs, f, &["threshold", "fit_on"]));
        }
        if let ThresholdRule::Fixed { value } = self.threshold {
            if !value.is_finite() {
                diags.push(Diagnostic::new(ctx.origin(stage, &["threshold", "value"]), format!("stage `{stage}`: the fixed threshold must be a finite number")));
            }
        }
        let entries = self.scores.entries();
        if entries.is_empty() {
            diags.push(Diagnostic::new(ctx.origin(stage, &["scores"]), format!("stage `{stage}`: `scores` is empty")));
        }
        for (display, reference) in &entries {
            diags.0.extend(study::check_score_input(ctx, stage, &inputs, display, reference, &["scores", display]));
            if display.contains('/') {
                diags.push(Diagnostic::new(ctx.origin(stage, &["scores"]), format!("stage `{stage}`: score name `{display}` contains `/`, which metric ids use as separator")));
            }
        }
        if self.calibration.bins == 0 {
            diags.push(Diagnostic::new(ctx.origin(stage, &["calibration", "bins"]), format!("stage `{stage}`: calibration needs at least one bin")));
        }
        study::into_result(diags)?;
        let params = serde_json::to_value(self).map_err(|e| Diagnostics::from(Diagnostic::new(ctx.origin(stage, &[]), e.to_string())))?;
        Ok(vec![NodeDecl::single(params)])
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let stage = ctx.node_id.to_string();
        let st = Study::load(&stage, ctx.inputs)?;
        let sources = self.score_sources();
        let names: Vec<String> = sources.iter().map(|(n, _)| n.clone()).collect();

        // Thresholds: fixed, fitted on one cohort, or per cohort.
        let mut fit_dropped: Vec<(String, String, String)> = Vec::new();
        let fitted: Option<(String, Vec<f64>)> = match self.fit_on() {
            Some(f) => {
                let data = self.cohort(&st, ctx.inputs, f, &sources)?;
                if !self.cohorts.iter().any(|c| c == f) {
                    fit_dropped.extend(data.dropped.iter().map(|(id, col)| (f.to_string(), id.clone(), col.clone())));
                }
                let mut ts = Vec::new();
                for (k, name) in names.iter().enumerate() {
                    let yp = stats::youden(&data.scores[k], &data.y).map_err(|e| ctx_err(&stage, f, name, e))?;
                    let _ = writeln!(ctx.log, "Youden threshold of {name} on {f}: {} (J = {}, {} tied)", yp.threshold, yp.j, yp.n_tied);
                    ts.push(yp.threshold);
                }
                Some((f.to_string(), ts))
            }
            None => None,
        };

        let mut cohorts = Vec::new();
        for c in &self.cohorts {
            cohorts.push(self.cohort(&st, ctx.inputs, c, &sources)?);
        }

        let mut metrics: Vec<Metric> = Vec::new();
        let mut table_csv = String::from("cohort,score,n,positives,auc,auc_lower,auc_upper,threshold,accuracy,sensitivity,specificity,ppv,npv,tp,fp,tn,fn,brier\n");
        let mut table_md = String::from("| Cohort | Score | n | AUC (95% CI) | Accuracy | Sensitivity | Specificity | PPV | NPV |\n|---|---|---|---|---|---|---|---|---|\n");
        let mut roc_csv = String::from("cohort,score,threshold,fpr,tpr\n");
        let mut cal_csv = String::from("cohort,score,bin_lower,bin_upper,count,mean_predicted,observed_fraction\n");
        let mut dca_csv = String::from("cohort,score,threshold,net_benefit,treat_all,treat_none\n");
        let mut notes: Vec<String> = Vec::new();
        let mut compare_md = String::from("\n| Cohort | Comparison | AUC difference (95% CI) | Z | P (paired DeLong) |\n|---|---|---|---|---|\n");
        let mut figures: Vec<(String, String)> = Vec::new();
        let grid: Vec<f64> = (1..100).map(|i| i as f64 / 100.0).collect();

        for data in &cohorts {
            let c = &data.name;
            let n = data.y.len();
            let positives = data.y.iter().filter(|b| **b).count();
            let mut roc_series = Vec::new();
            let mut cal_series = Vec::new();
            let mut dca_series = Vec::new();
            let mut treat_all: Option<Vec<(f64, f64)>> = None;
            for (k, name) in names.iter().enumerate() {
                let s = &data.scores[k];
                let err = |e| ctx_err(&stage, c, name, e);
                let id = |m: &str| format!("{stage}/{c}/{name}/{m}");
                let d = stats::delong_auc(s, &data.y, LEVEL).map_err(err)?;
                metrics.push(Metric::new(id("auc"), d.auc, n).ci(d.lower, d.upper).method("DeLong"));
                metrics.push(Metric::new(id("auc_var"), d.variance, n).method("DeLong"));
                let (t, how) = match (&self.threshold, &fitted) {
                    (ThresholdRule::Fixed { value }, _) => (*value, "fixed".to_string()),
                    (_, Some((f, ts))) => (ts[k], format!("Youden on {f}")),
                    _ => (stats::youden(s, &data.y).map_err(err)?.threshold, format!("Youden on {c}")),
                };
                metrics.push(Metric::new(id("threshold"), t, n).method(how));
                let m = stats::metrics_at_threshold(s, &data.y, t, LEVEL).map_err(err)?;
                for (metric, p) in [("accuracy", &m.accuracy), ("sensitivity", &m.sensitivity), ("specificity", &m.specificity), ("ppv", &m.ppv), ("npv", &m.npv)] {
                    metrics.push(prop_metric(id(metric), p).method("Wilson"));
                }
                let est = |p: &Option<stats::Proportion>| p.as_ref().map(|p| p.estimate);
                let roc = stats::roc_curve(s, &data.y).map_err(err)?;
                for ((th, fpr), tpr) in roc.thresholds.iter().zip(&roc.fpr).zip(&roc.tpr) {
                    let _ = writeln!(roc_csv, "{},{},{},{},{}", csv_field(c), csv_field(name), num(*th), num(*fpr), num(*tpr));
                }
                roc_series.push(Series { name: format!("{name} (AUC {:.3})", d.auc), points: roc.fpr.iter().copied().zip(roc.tpr.iter().copied()).collect(), step: false, dashed: false });
                let is_prob = s.iter().all(|p| (0.0..=1.0).contains(p));
                let mut brier = None;
                if is_prob {
                    let b = stats::brier_score(s, &data.y).map_err(err)?;
                    brier = Some(b);
                    metrics.push(Metric::new(id("brier"), b, n));
                    match stats::calibration_intercept_slope(s, &data.y, LEVEL) {
                        Ok(fit) => {
                            metrics.push(Metric::new(id("calibration_intercept"), fit.intercept, n).ci(fit.intercept_lower, fit.intercept_upper).method("logistic recalibration, slope fixed at 1"));
                            metrics.push(Metric::new(id("calibration_slope"), fit.slope, n).ci(fit.slope_lower, fit.slope_upper).method("logistic recalibration on logit(p)"));
                        }
                        Err(e) => notes.push(format!("{c}/{name}: no calibration intercept/slope ({e})")),
                    }
                    let bins = stats::calibration_curve(s, &data.y, self.calibration.bins, self.calibration.strategy.strategy()).map_err(err)?;
                    for b in &bins {
                        let _ = writeln!(cal_csv, "{},{},{},{},{},{},{}", csv_field(c), csv_field(name), num(b.lower_edge), num(b.upper_edge), b.count, num(b.mean_predicted), num(b.observed_fraction));
                    }
                    cal_series.push(Series { name: name.clone(), points: bins.iter().map(|b| (b.mean_predicted, b.observed_fraction)).collect(), step: false, dashed: false });
                    let nb = stats::net_benefit(s, &data.y, &grid).map_err(err)?;
                    for p in &nb {
                        let _ = writeln!(dca_csv, "{},{},{},{},{},{}", csv_field(c), csv_field(name), num(p.threshold), num(p.model), num(p.treat_all), num(p.treat_none));
                    }
                    dca_series.push(Series { name: name.clone(), points: nb.iter().map(|p| (p.threshold, p.model)).collect(), step: false, dashed: false });
                    treat_all.get_or_insert_with(|| nb.iter().map(|p| (p.threshold, p.treat_all)).collect());
                } else {
                    notes.push(format!("{c}/{name}: not a probability (values outside [0, 1]), so no Brier score, calibration or decision curve"));
                }
                let _ = writeln!(
                    table_csv,
                    "{},{},{n},{positives},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    csv_field(c),
                    csv_field(name),
                    num(d.auc),
                    num(d.lower),
                    num(d.upper),
                    num(t),
                    est(&m.accuracy).map(num).unwrap_or_default(),
                    est(&m.sensitivity).map(num).unwrap_or_default(),
                    est(&m.specificity).map(num).unwrap_or_default(),
                    est(&m.ppv).map(num).unwrap_or_default(),
                    est(&m.npv).map(num).unwrap_or_default(),
                    m.tp,
                    m.fp,
                    m.tn,
                    m.fn_,
                    brier.map(num).unwrap_or_default()
                );
                let auc_id = id("auc");
                let at = |metric: &str, p: &Option<stats::Proportion>| match est(p) {
                    Some(_) => study::cite(&id(metric), f3(est(p))),
                    None => f3(None),
                };
                let _ = writeln!(
                    table_md,
                    "| {c} | {name} | {} | {} ({}–{}) | {} | {} | {} | {} | {} |",
                    study::cite(&auc_id, n),
                    study::cite(&auc_id, format!("{:.3}", d.auc)),
                    study::cite(&auc_id, format!("{:.3}", d.lower)),
                    study::cite(&auc_id, format!("{:.3}", d.upper)),
                    at("accuracy", &m.accuracy),
                    at("sensitivity", &m.sensitivity),
                    at("specificity", &m.specificity),
                    at("ppv", &m.ppv),
                    at("npv", &m.npv)
                );
            }
            if matches!(self.compare, Some(Compare::Delong)) {
                for a in 0..names.len() {
                    for b in a + 1..names.len() {
                        let pair = format!("{}_vs_{}", names[a], names[b]);
                        let cmp = stats::delong_paired(&data.scores[a], &data.scores[b], &data.y, LEVEL).map_err(|e| ctx_err(&stage, c, &pair, e))?;
                        let id = |m: &str| format!("{stage}/{c}/{pair}/{m}");
                        metrics.push(Metric::new(id("auc_diff"), cmp.difference, n).ci(cmp.lower, cmp.upper).method("paired DeLong"));
                        metrics.push(Metric::new(id("delong_z"), cmp.z, n).method("paired DeLong"));
                        metrics.push(Metric::new(id("delong_p"), cmp.p_two_sided, n).method("paired DeLong, two-sided"));
                        let p = study::cite(&id("delong_p"), if cmp.p_two_sided < 0.001 { "<0.001".to_string() } else { format!("{:.3}", cmp.p_two_sided) });
                        let diff = |x: f64| study::cite(&id("auc_diff"), format!("{x:.3}"));
                        let z = study::cite(&id("delong_z"), format!("{:.2}", cmp.z));
                        let _ = writeln!(compare_md, "| {c} | {} vs {} | {} ({}–{}) | {z} | {p} |", names[a], names[b], diff(cmp.difference), diff(cmp.lower), diff(cmp.upper));
                    }
                }
            }
            let slug = study::slug(c);
            let mut roc_chart = chart(format!("ROC, {c} (n = {n})"), "1 - specificity", "sensitivity", (0.0, 1.0), (0.0, 1.0), roc_series);
            roc_chart.series.push(Series { name: "chance".into(), points: vec![(0.0, 0.0), (1.0, 1.0)], step: false, dashed: true });
            figures.push((format!("roc_{slug}.svg"), roc_chart.render()));
            if !cal_series.is_empty() {
                let mut cal = chart(format!("Calibration, {c}"), "mean predicted probability", "observed fraction", (0.0, 1.0), (0.0, 1.0), cal_series);
                cal.series.push(Series { name: "ideal".into(), points: vec![(0.0, 0.0), (1.0, 1.0)], step: false, dashed: true });
                figures.push((format!("calibration_{slug}.svg"), cal.render()));
            }
            if let Some(all) = treat_all {
                let prevalence = positives as f64 / n as f64;
                let mut series = dca_series;
                series.push(Series { name: "treat all".into(), points: all, step: false, dashed: true });
                series.push(Series { name: "treat none".into(), points: vec![(0.0, 0.0), (1.0, 0.0)], step: false, dashed: true });
                let top = (prevalence * 1.1).max(0.05);
                figures.push((format!("decision_curve_{slug}.svg"), chart(format!("Decision curve, {c}"), "threshold probability", "net benefit", (0.0, 1.0), (-0.05, top), series).render()));
            }
        }

        let mut dropped_rows = fit_dropped;
        for data in &cohorts {
            dropped_rows.extend(data.dropped.iter().map(|(id, col)| (data.name.clone(), id.clone(), col.clone())));
        }
        table_md.push_str(&format!(
            "\nAUC with 95% CI by DeLong; accuracy, sensitivity, specificity, PPV and NPV at the threshold ({}), `score >= threshold` positive.\n",
            match (&self.threshold, self.fit_on()) {
                (ThresholdRule::Fixed { value }, _) => format!("fixed at {value}"),
                (_, Some(f)) => format!("Youden index on {f}"),
                _ => "Youden index of each cohort".into(),
            }
        ));
        if matches!(self.compare, Some(Compare::Delong)) && names.len() > 1 {
            table_md.push_str(&compare_md);
        }
        if !dropped_rows.is_empty() {
            table_md.push_str(&format!("\n{} patient(s) left out for missing values (`dropped.csv`).\n", dropped_rows.len()));
        }
        for note in &notes {
            table_md.push_str(&format!("\nNote: {note}.\n"));
            let _ = writeln!(ctx.log, "note: {note}");
        }

        let out = ctx.out_dir;
        study::write_metrics(out, &metrics, ctx.key)?;
        study::write(out, "table.csv", &table_csv)?;
        study::write_tables(out, &table_md)?;
        study::write_patients(out, cohorts.iter().map(|c| (c.name.as_str(), c.patients.as_slice())))?;
        study::write(out, "roc.csv", &roc_csv)?;
        study::write(out, "calibration.csv", &cal_csv)?;
        study::write(out, "decision_curve.csv", &dca_csv)?;
        if self.missing == Missing::Drop {
            study::write(out, "dropped.csv", &study::dropped_csv(&dropped_rows))?;
        }
        for (name, svg) in &figures {
            study::write(out, name, svg)?;
        }
        Ok(())
    }
}

fn chart(title: String, x: &str, y: &str, xr: (f64, f64), yr: (f64, f64), series: Vec<Series>) -> Chart {
    Chart { title, x_label: x.into(), y_label: y.into(), x_range: xr, y_range: yr, series, table: Vec::new(), table_title: String::new() }
}
