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
//!   proportion_ci: wilson            # or clopper_pearson
//!   missing: refuse                  # or drop
//!   calibration: { bins: 10, strategy: uniform }
//! ```
//!
//! Per cohort and score: n, prevalence, AUC with its DeLong variance and 95% CI
//! (normal, clipped to [0, 1]); the threshold (Youden point of the `fit_on`
//! cohort — the highest of tied optima, midpoints between adjacent scores as
//! pROC — for this stage's label or for `threshold.label`, e.g. the label the
//! score was trained on; or each cohort's own Youden point when `fit_on` is
//! absent, or a fixed value; `score >= threshold` is positive); the 2x2
//! counts; accuracy, sensitivity, specificity, PPV and NPV with 95% CIs
//! (Wilson score or Clopper-Pearson exact, named in the table). The Brier
//! score, calibration intercept and slope (logistic recalibration), the
//! calibration curve and the decision curve only for a score that is a
//! probability of this label: a learning stage's score trained on it, or a
//! column listed in `probabilities`; for any other score a note says why they
//! are omitted. Rows of a cohort the score's model or threshold was fitted on
//! are marked in-sample. With `compare: delong`, the paired DeLong test
//! between every pair of scores (unadjusted for multiple comparisons); with
//! `class_test: mann_whitney`, each score's median (IQR) in the two classes
//! and the two-sided Mann-Whitney U test between them.
//! Under `missing: drop` a patient lacking the label or any score is left out
//! of that cohort for every score (so paired comparisons see the same patients).
//!
//! Outputs: `metrics.json` (ids `<stage>/<cohort>/<score>/<metric>`:
//! `auc`, `auc_var`, `prevalence`, `positives`, `threshold`, `tp`, `fp`, `tn`,
//! `fn`, `accuracy`, `sensitivity`, `specificity`, `ppv`, `npv`, `brier`,
//! `calibration_intercept`, `calibration_slope`, and with a class test
//! `{median,q1,q3}_{positive,negative}`, `mwu_u`, `mwu_p`; and
//! `<stage>/<cohort>/<a>_vs_<b>/{delong_z,delong_p,auc_diff}`), `table.csv`,
//! `table.md` (and `table.linked.md`: numbers cited for the report), `patients.json` (each cohort's patients, which `radpipe lineage` follows), `roc.csv`, `calibration.csv`, `decision_curve.csv`,
//! `roc_<cohort>.svg`, `calibration_<cohort>.svg`, `decision_curve_<cohort>.svg`
//! and, under `missing: drop`, `dropped.csv`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use super::study::{self, num, value_text, Csv, Metric, Missing, ScoreSource, Scores, Study};
use super::{InputRef, Inputs, NodeDecl, RunContext, Stage, StageError};
use crate::report::svg::{Chart, Series};
use crate::report::table::{Block, Cell, Document, Rich, Table};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_engine::stage::Trained;
use radpipe_stats as stats;
use radpipe_stats::hypothesis::{mann_whitney_u, Alternative, MwuMethod};

pub const VERSION: u32 = 3;
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
    /// The 95% CIs of accuracy, sensitivity, specificity, PPV, NPV and prevalence:
    /// `wilson` (score interval, default) or `clopper_pearson` (exact).
    #[serde(default)]
    pub proportion_ci: ProportionCi,
    /// `mann_whitney`: each score's median (IQR) in both classes and the two-sided Mann-Whitney U test between them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_test: Option<ClassTest>,
    /// Column scores that are predicted probabilities of this label (a learning stage's
    /// scores are known to be probabilities of the label it was trained on). Only those get
    /// the Brier score, calibration and decision curves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probabilities: Vec<String>,
}

/// How the CI of a proportion is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProportionCi {
    /// Wilson score interval (no continuity correction).
    #[default]
    Wilson,
    /// Clopper-Pearson exact interval (R's `binom.test`).
    ClopperPearson,
}

impl ProportionCi {
    fn name(self) -> &'static str {
        match self {
            ProportionCi::Wilson => "Wilson",
            ProportionCi::ClopperPearson => "Clopper-Pearson",
        }
    }

    fn of(self, k: u64, n: u64) -> Result<Option<stats::Proportion>, stats::StatsError> {
        match self {
            ProportionCi::Wilson => stats::wilson(k, n, LEVEL),
            ProportionCi::ClopperPearson => stats::clopper_pearson(k, n, LEVEL),
        }
    }
}

/// A test of the score between the label's two classes.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClassTest {
    /// Two-sided Mann-Whitney U (exact for small samples without ties, else normal with continuity correction).
    MannWhitney,
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
        /// The label the cut-off is fitted for on `fit_on` (default: this stage's label),
        /// e.g. the label the score was trained on when evaluating another endpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// The positive value of `label` (default: this stage's `positive`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        positive: Option<Value>,
    },
    /// A fixed cut-off: `score >= value` is positive.
    Fixed { value: f64 },
}

impl Default for ThresholdRule {
    fn default() -> Self {
        ThresholdRule::Youden { fit_on: None, label: None, positive: None }
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
        CalibrationBins {
            bins: default_bins(),
            strategy: Binning::Uniform,
        }
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

impl Evaluate {
    /// What each stage score's model learned: its label and training partitions.
    fn trained(&self, ctx: &PlanContext) -> BTreeMap<String, Trained> {
        self.score_sources()
            .into_iter()
            .filter_map(|(display, source)| match source {
                ScoreSource::Stage { stage, .. } => Some((display, ctx.stage_spec(&stage)?.trained_on(ctx)?)),
                ScoreSource::Column(_) => None,
            })
            .collect()
    }

    fn score_sources(&self) -> Vec<(String, ScoreSource)> {
        let stages: Vec<String> = self.input.refs().into_iter().map(|r| r.stage).collect();
        self.scores
            .entries()
            .into_iter()
            .map(|(name, r)| {
                (
                    name,
                    study::score_source(&r, &|s| stages.iter().any(|x| x == s)),
                )
            })
            .collect()
    }

    fn fit_on(&self) -> Option<&str> {
        match &self.threshold {
            ThresholdRule::Youden { fit_on, .. } => fit_on.as_deref(),
            ThresholdRule::Fixed { .. } => None,
        }
    }

    /// The label (and its positive value) the threshold is fitted for.
    fn threshold_label(&self) -> (&str, &Value) {
        match &self.threshold {
            ThresholdRule::Youden { label, positive, .. } => (label.as_deref().unwrap_or(&self.label), positive.as_ref().unwrap_or(&self.positive)),
            ThresholdRule::Fixed { .. } => (&self.label, &self.positive),
        }
    }

    /// Complete cases of one cohort, with this stage's label checked.
    fn cohort(&self, st: &Study, inputs: &[super::InputArtifact], name: &str, sources: &[(String, ScoreSource)]) -> Result<CohortData, StageError> {
        self.cohort_of(st, inputs, name, sources, &self.label, &self.positive)
    }

    /// Complete cases of one cohort for `label`, with the label checked.
    fn cohort_of(
        &self,
        st: &Study,
        inputs: &[super::InputArtifact],
        name: &str,
        sources: &[(String, ScoreSource)],
        label: &str,
        positive: &Value,
    ) -> Result<CohortData, StageError> {
        let stage = &st.stage;
        let rows = st.rows_of(name)?;
        let positive = value_text(positive);
        let labels = st.text(label)?;
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for &r in &rows {
            if let Some(v) = &labels[r] {
                values.entry(v.clone()).or_default().push(st.ids[r].clone());
            }
        }
        if values.len() > 2 {
            let desc: Vec<String> = values
                .iter()
                .map(|(v, ids)| {
                    format!(
                        "`{v}` ({} patients, e.g. {})",
                        ids.len(),
                        study::list_ids(&ids[..ids.len().min(3)])
                    )
                })
                .collect();
            return Err(StageError::new(format!(
                "stage `{stage}`, cohort `{name}`, column `{}`: a binary label has more than two values: {}",
                label,
                desc.join(", ")
            )));
        }
        if values.len() == 2 && !values.contains_key(&positive) {
            let known: Vec<&String> = values.keys().collect();
            return Err(StageError::new(format!(
                "stage `{stage}`, cohort `{name}`, column `{}`: the positive value `{positive}` is not among the label's values ({})",
                label,
                known.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            )));
        }
        let y_opt: Vec<Option<f64>> = rows
            .iter()
            .map(|&r| labels[r].as_ref().map(|v| (*v == positive) as u8 as f64))
            .collect();
        let mut score_vals = Vec::new();
        for (display, source) in sources {
            let v = study::score_values(st, inputs, source, &rows, name)?;
            let bad: Vec<String> = rows
                .iter()
                .zip(&v)
                .filter(|(_, x)| x.is_some_and(|x| !x.is_finite()))
                .map(|(&r, x)| format!("{} ({})", st.ids[r], num(x.unwrap_or(f64::NAN))))
                .collect();
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
        let mut columns: Vec<(&str, &[Option<f64>])> = vec![(label, &y_opt)];
        for (c, v) in score_cols.iter().zip(&score_vals) {
            columns.push((c.as_str(), v));
        }
        let (keep, dropped) = study::apply_missing(st, self.missing, name, &rows, &columns)?;
        let y: Vec<bool> = keep.iter().map(|&k| y_opt[k] == Some(1.0)).collect();
        let positives = y.iter().filter(|b| **b).count();
        if positives == 0 || positives == y.len() {
            return Err(StageError::new(format!(
                "stage `{stage}`, cohort `{name}`, column `{}`: need both classes, got {positives} positive (`{positive}`) and {} negative patients{}",
                label,
                y.len() - positives,
                if dropped.is_empty() { String::new() } else { format!(" after dropping {} with missing values", dropped.len()) }
            )));
        }
        let scores = score_vals
            .iter()
            .map(|v| keep.iter().map(|&k| v[k].unwrap_or(f64::NAN)).collect())
            .collect();
        let patients = keep.iter().map(|&k| st.ids[rows[k]].clone()).collect();
        Ok(CohortData {
            name: name.to_string(),
            y,
            scores,
            patients,
            dropped,
        })
    }
}

fn ctx_err(stage: &str, cohort: &str, score: &str, e: stats::StatsError) -> StageError {
    StageError::new(format!(
        "stage `{stage}`, cohort `{cohort}`, score `{score}`: {e}"
    ))
}

fn prop_metric(id: String, p: &Option<stats::Proportion>) -> Metric {
    match p {
        Some(p) => Metric::new(id, p.estimate, p.denominator as usize).ci(p.lower, p.upper),
        None => Metric::opt(id, None, 0),
    }
}

/// `0.812 (0.701–0.889)`, every number citing `id`; `NA` when the denominator is zero.
fn proportion_cell(id: &str, p: &Option<stats::Proportion>) -> Cell {
    match p {
        Some(p) => estimate_ci(id, p.estimate, p.lower, p.upper).into(),
        None => "NA".into(),
    }
}

/// An estimate and its CI, each number citing `id`.
fn estimate_ci(id: &str, estimate: f64, lower: f64, upper: f64) -> Rich {
    Rich::new().cite(id, format!("{estimate:.3}")).text(" (").cite(id, format!("{lower:.3}")).text("–").cite(id, format!("{upper:.3}")).text(")")
}

/// A p value as tables print it: three decimals, `<0.001` below.
fn p_text(p: f64) -> String {
    if p < 0.001 {
        "<0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

impl Stage for Evaluate {
    fn kind(&self) -> &'static str {
        "evaluate"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn fitted_threshold_id(&self, stage: &str, reference: &str) -> Option<String> {
        // Metrics are written for the evaluated cohorts only.
        let fit_on = self.fit_on().filter(|f| self.cohorts.iter().any(|c| c == f))?;
        let (display, _) = self
            .scores
            .entries()
            .into_iter()
            .find(|(_, r)| r == reference)?;
        Some(format!("{stage}/{fit_on}/{display}/threshold"))
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        let inputs = self.input.refs();
        let mut diags = Diagnostics::default();
        diags.0.extend(study::check_has_ingest(ctx, stage, &inputs));
        diags
            .0
            .extend(study::check_cohorts(ctx, stage, &inputs, &self.cohorts));
        if let Some(f) = self.fit_on() {
            diags.0.extend(study::check_group_name(
                ctx,
                stage,
                &inputs,
                f,
                &["threshold", "fit_on"],
            ));
        }
        if let ThresholdRule::Fixed { value } = self.threshold {
            if !value.is_finite() {
                diags.push(Diagnostic::new(
                    ctx.origin(stage, &["threshold", "value"]),
                    format!("stage `{stage}`: the fixed threshold must be a finite number"),
                ));
            }
        }
        let entries = self.scores.entries();
        if entries.is_empty() {
            diags.push(Diagnostic::new(
                ctx.origin(stage, &["scores"]),
                format!("stage `{stage}`: `scores` is empty"),
            ));
        }
        for (display, reference) in &entries {
            diags.0.extend(study::check_score_input(
                ctx,
                stage,
                &inputs,
                display,
                reference,
                &["scores", display],
            ));
            if display.contains('/') {
                diags.push(Diagnostic::new(ctx.origin(stage, &["scores"]), format!("stage `{stage}`: score name `{display}` contains `/`, which metric ids use as separator")));
            }
        }
        for (i, p) in self.probabilities.iter().enumerate() {
            if !entries.iter().any(|(d, r)| d == p && !r.contains('.')) {
                diags.push(Diagnostic::new(ctx.origin(stage, &["probabilities", &i.to_string()]), format!("stage `{stage}`: `{p}` is not one of the column scores")).hint("list the display names of column scores; a learning stage's scores know their label"));
            }
        }
        if self.calibration.bins == 0 {
            diags.push(Diagnostic::new(
                ctx.origin(stage, &["calibration", "bins"]),
                format!("stage `{stage}`: calibration needs at least one bin"),
            ));
        }
        study::into_result(diags)?;
        let mut params = serde_json::to_value(self).map_err(|e| {
            Diagnostics::from(Diagnostic::new(ctx.origin(stage, &[]), e.to_string()))
        })?;
        params["trained"] = serde_json::json!(self.trained(ctx));
        Ok(vec![NodeDecl::single(params)])
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let stage = ctx.node_id.to_string();
        let st = Study::load(&stage, ctx.inputs)?;
        let sources = self.score_sources();
        let names: Vec<String> = sources.iter().map(|(n, _)| n.clone()).collect();
        let (fitted, mut dropped) =
            self.fitted_thresholds(&st, ctx.inputs, &sources, &names, ctx.log)?;
        let mut cohorts = Vec::new();
        for c in &self.cohorts {
            cohorts.push(self.cohort(&st, ctx.inputs, c, &sources)?);
        }
        let trained: BTreeMap<String, Trained> = serde_json::from_value(ctx.decl.params["trained"].clone()).unwrap_or_default();
        let kinds: Vec<ScoreKind> = names.iter().map(|n| self.score_kind(n, &trained)).collect();
        let results: Vec<CohortResult> = cohorts
            .iter()
            .map(|data| self.evaluate_cohort(&stage, data, &names, &kinds, fitted.as_ref()))
            .collect::<Result<_, _>>()?;
        for data in &cohorts {
            dropped.extend(
                data.dropped
                    .iter()
                    .map(|(id, col)| (data.name.clone(), id.clone(), col.clone())),
            );
        }
        let notes: Vec<String> = results.iter().flat_map(|r| r.notes(&kinds)).collect();
        for note in &notes {
            let _ = writeln!(ctx.log, "note: {note}");
        }
        let metrics: Vec<Metric> = results.iter().flat_map(|r| r.metrics(&stage)).collect();
        let out = ctx.out_dir;
        study::write_metrics(out, &metrics, ctx.key)?;
        table_csv(&results)?.write(out)?;
        study::write_tables(out, &self.document(&stage, &results, names.len(), dropped.len(), &notes))?;
        study::write_patients(
            out,
            cohorts
                .iter()
                .map(|c| (c.name.as_str(), c.patients.as_slice())),
        )?;
        write_curves(out, &results)?;
        if self.missing == Missing::Drop {
            study::write_dropped(out, &dropped)?;
        }
        for r in &results {
            for (name, svg) in r.figures() {
                study::write(out, &name, &svg)?;
            }
        }
        Ok(())
    }
}

/// (cohort, patient, columns) of a patient left out under `missing: drop`.
type Dropped = (String, String, String);

/// Thresholds fitted on `fit_on`, per score (`None` for other rules).
type Fitted = Option<(String, Vec<f64>)>;

/// One score's results in one cohort.
struct ScoreResult {
    name: String,
    auc: stats::AucCi,
    threshold: f64,
    /// How the threshold was chosen.
    how: String,
    at: stats::ThresholdMetrics,
    /// Accuracy, sensitivity, specificity, PPV, NPV and prevalence with the stage's CI method.
    props: Proportions,
    roc: stats::RocCurve,
    /// For scores that are probabilities of the label; `None` for others.
    prob: Option<Probability>,
    /// Whether the cohort is one the score's model or threshold was fitted on.
    in_sample: bool,
    /// The score in the two classes, with `class_test`.
    classes: Option<ClassComparison>,
}

/// The proportions of a 2x2 table (`None` where the denominator is zero).
struct Proportions {
    accuracy: Option<stats::Proportion>,
    sensitivity: Option<stats::Proportion>,
    specificity: Option<stats::Proportion>,
    ppv: Option<stats::Proportion>,
    npv: Option<stats::Proportion>,
    prevalence: Option<stats::Proportion>,
}

impl Proportions {
    fn new(m: &stats::ThresholdMetrics, how: ProportionCi) -> Result<Self, stats::StatsError> {
        let (tp, fp, tn, fn_) = (m.tp, m.fp, m.tn, m.fn_);
        let n = tp + fp + tn + fn_;
        Ok(Proportions {
            accuracy: how.of(tp + tn, n)?,
            sensitivity: how.of(tp, tp + fn_)?,
            specificity: how.of(tn, tn + fp)?,
            ppv: how.of(tp, tp + fp)?,
            npv: how.of(tn, tn + fn_)?,
            prevalence: how.of(tp + fn_, n)?,
        })
    }

    /// (metric name, proportion), in table order.
    fn named(&self) -> [(&'static str, &Option<stats::Proportion>); 5] {
        [("accuracy", &self.accuracy), ("sensitivity", &self.sensitivity), ("specificity", &self.specificity), ("ppv", &self.ppv), ("npv", &self.npv)]
    }
}

/// A score's median (IQR) in each class and the Mann-Whitney U test between them.
struct ClassComparison {
    positive: stats::Quartiles,
    negative: stats::Quartiles,
    test: stats::hypothesis::MannWhitney,
}

/// What is known of a score's scale: a probability of this stage's label, or why not.
#[derive(Debug, Clone)]
enum ScoreKind {
    /// A probability of the label; `partitions`: where its model learned (in-sample cohorts).
    Probability { partitions: Vec<String> },
    /// Not a probability of the label, and why (for the note).
    Other { why: String, partitions: Vec<String> },
}

impl ScoreKind {
    fn partitions(&self) -> &[String] {
        match self {
            ScoreKind::Probability { partitions } | ScoreKind::Other { partitions, .. } => partitions,
        }
    }
}

/// Brier score, recalibration and curves of a probability.
struct Probability {
    brier: f64,
    /// The logistic recalibration, or why it could not be fitted.
    fit: Result<stats::CalibrationFit, String>,
    bins: Vec<stats::CalibrationBin>,
    decision: Vec<stats::NetBenefit>,
}

/// The paired DeLong comparison of two scores.
struct Comparison {
    a: String,
    b: String,
    cmp: stats::AucComparison,
}

/// One cohort's results.
struct CohortResult<'a> {
    data: &'a CohortData,
    /// The CI method of the proportions, by name.
    ci_method: &'static str,
    n: usize,
    positives: usize,
    scores: Vec<ScoreResult>,
    comparisons: Vec<Comparison>,
}

impl Evaluate {
    /// The thresholds fitted on `fit_on` (logged), and the patients of that
    /// cohort left out for missing values when it is not itself evaluated.
    fn fitted_thresholds(
        &self,
        st: &Study,
        inputs: &[super::InputArtifact],
        sources: &[(String, ScoreSource)],
        names: &[String],
        log: &mut dyn std::io::Write,
    ) -> Result<(Fitted, Vec<Dropped>), StageError> {
        let Some(f) = self.fit_on() else {
            return Ok((None, Vec::new()));
        };
        let (label, positive) = self.threshold_label();
        let data = self.cohort_of(st, inputs, f, sources, label, positive)?;
        let mut dropped = Vec::new();
        if !self.cohorts.iter().any(|c| c == f) {
            dropped.extend(
                data.dropped
                    .iter()
                    .map(|(id, col)| (f.to_string(), id.clone(), col.clone())),
            );
        }
        let mut ts = Vec::new();
        for (k, name) in names.iter().enumerate() {
            let yp = stats::youden(&data.scores[k], &data.y)
                .map_err(|e| ctx_err(&st.stage, f, name, e))?;
            let _ = writeln!(log, "Youden threshold of {name} for {label} on {f}: {} (J = {}, {} tied)", yp.threshold, yp.j, yp.n_tied);
            ts.push(yp.threshold);
        }
        Ok((Some((f.to_string(), ts)), dropped))
    }

    /// Whether score `name` is a probability of this stage's label, and where its model learned.
    fn score_kind(&self, name: &str, trained: &BTreeMap<String, Trained>) -> ScoreKind {
        match trained.get(name) {
            Some(t) if t.label == self.label && t.positive == value_text(&self.positive) => ScoreKind::Probability { partitions: t.partitions.clone() },
            Some(t) if t.label == self.label => ScoreKind::Other {
                why: format!("a probability of `{} = {}` (what its model was trained on), not of `{} = {}`", t.label, t.positive, self.label, value_text(&self.positive)),
                partitions: t.partitions.clone(),
            },
            Some(t) => ScoreKind::Other { why: format!("a probability of `{}` (the label its model was trained on), not of `{}`", t.label, self.label), partitions: t.partitions.clone() },
            None if self.probabilities.iter().any(|p| p == name) => ScoreKind::Probability { partitions: Vec::new() },
            None => ScoreKind::Other { why: format!("not declared a probability of `{}` (list it under `probabilities`)", self.label), partitions: Vec::new() },
        }
    }

    /// Every score of one cohort, and their paired comparisons.
    fn evaluate_cohort<'a>(
        &self,
        stage: &str,
        data: &'a CohortData,
        names: &[String],
        kinds: &[ScoreKind],
        fitted: Option<&(String, Vec<f64>)>,
    ) -> Result<CohortResult<'a>, StageError> {
        let c = &data.name;
        let mut scores = Vec::new();
        for (k, name) in names.iter().enumerate() {
            scores.push(self.evaluate_score(data, k, name, &kinds[k], fitted).map_err(|e| ctx_err(stage, c, name, e))?);
        }
        let mut comparisons = Vec::new();
        if matches!(self.compare, Some(Compare::Delong)) {
            for a in 0..names.len() {
                for b in a + 1..names.len() {
                    let pair = format!("{}_vs_{}", names[a], names[b]);
                    let cmp =
                        stats::delong_paired(&data.scores[a], &data.scores[b], &data.y, LEVEL)
                            .map_err(|e| ctx_err(stage, c, &pair, e))?;
                    comparisons.push(Comparison {
                        a: names[a].clone(),
                        b: names[b].clone(),
                        cmp,
                    });
                }
            }
        }
        let positives = data.y.iter().filter(|b| **b).count();
        Ok(CohortResult {
            data,
            ci_method: self.proportion_ci.name(),
            n: data.y.len(),
            positives,
            scores,
            comparisons,
        })
    }

    /// Score `k` (`name`) of one cohort.
    fn evaluate_score(&self, data: &CohortData, k: usize, name: &str, kind: &ScoreKind, fitted: Option<&(String, Vec<f64>)>) -> Result<ScoreResult, stats::StatsError> {
        let s = &data.scores[k];
        let auc = stats::delong_auc(s, &data.y, LEVEL)?;
        let (threshold, how) = match (&self.threshold, fitted) {
            (ThresholdRule::Fixed { value }, _) => (*value, "fixed".to_string()),
            (_, Some((f, ts))) => (ts[k], format!("Youden on {f}{}", self.threshold_label_note())),
            _ => (
                stats::youden(s, &data.y)?.threshold,
                format!("Youden on {}", data.name),
            ),
        };
        let at = stats::metrics_at_threshold(s, &data.y, threshold, LEVEL)?;
        let props = Proportions::new(&at, self.proportion_ci)?;
        let roc = stats::roc_curve(s, &data.y)?;
        // In-sample: the model learned from this cohort, or the threshold was fitted on it (`fit_on`, or each cohort's own Youden point).
        let own_threshold = matches!(self.threshold, ThresholdRule::Youden { fit_on: None, .. });
        let in_sample = kind.partitions().contains(&data.name) || own_threshold || self.fit_on() == Some(data.name.as_str());
        let classes = match self.class_test {
            Some(ClassTest::MannWhitney) => {
                let class = |positive: bool| -> Vec<f64> { s.iter().zip(&data.y).filter(|(_, y)| **y == positive).map(|(x, _)| *x).collect() };
                let (pos, neg) = (class(true), class(false));
                Some(ClassComparison { positive: stats::quartiles(&pos)?, negative: stats::quartiles(&neg)?, test: mann_whitney_u(&pos, &neg, Alternative::TwoSided, MwuMethod::Auto)? })
            }
            None => None,
        };
        let is_probability = matches!(kind, ScoreKind::Probability { .. });
        let prob = if is_probability && s.iter().all(|p| (0.0..=1.0).contains(p)) {
            let brier = stats::brier_score(s, &data.y)?;
            let fit =
                stats::calibration_intercept_slope(s, &data.y, LEVEL).map_err(|e| e.to_string());
            let bins = stats::calibration_curve(
                s,
                &data.y,
                self.calibration.bins,
                self.calibration.strategy.strategy(),
            )?;
            let grid: Vec<f64> = (1..100).map(|i| i as f64 / 100.0).collect();
            let decision = stats::net_benefit(s, &data.y, &grid)?;
            Some(Probability {
                brier,
                fit,
                bins,
                decision,
            })
        } else {
            None
        };
        Ok(ScoreResult {
            name: name.to_string(),
            auc,
            threshold,
            how,
            at,
            props,
            roc,
            prob,
            in_sample,
            classes,
        })
    }

    /// The threshold rule, in words.
    fn rule_text(&self) -> String {
        match (&self.threshold, self.fit_on()) {
            (ThresholdRule::Fixed { value }, _) => format!("fixed at {value}"),
            (_, Some(f)) => format!("Youden index on {f}{}", self.threshold_label_note()),
            _ => "Youden index of each cohort".into(),
        }
    }

    /// ` for <label>` when the threshold is fitted for another label than this stage's.
    fn threshold_label_note(&self) -> String {
        let (label, positive) = self.threshold_label();
        if label == self.label {
            String::new()
        } else {
            format!(" for {label} = {}", value_text(positive))
        }
    }

    /// Table 2 (and the counts, calibration, class and paired comparisons), the rule, dropped patients and notes.
    fn document(&self, stage: &str, results: &[CohortResult], scores: usize, dropped: usize, notes: &[String]) -> Document {
        let ci = self.proportion_ci.name();
        let with_ci = |what: &str| format!("{what} (95% CI, {ci})");
        let headers = [
            "Cohort".to_string(),
            "Score".into(),
            "n".into(),
            with_ci("Prevalence"),
            "AUC (95% CI, DeLong)".into(),
            "Threshold".into(),
            with_ci("Accuracy"),
            with_ci("Sensitivity"),
            with_ci("Specificity"),
            with_ci("PPV"),
            with_ci("NPV"),
        ];
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let mut table = Table::with_headers("Diagnostic performance by cohort and score", &headers);
        let mut counts = Table::with_headers(
            "Counts at the threshold and calibration",
            &["Cohort", "Score", "TP", "FP", "TN", "FN", "Brier score", "Calibration intercept (95% CI)", "Calibration slope (95% CI)"],
        );
        let positive = value_text(&self.positive);
        let (pos_head, neg_head) = (format!("{} = {positive}, median (IQR)", self.label), format!("{} other, median (IQR)", self.label));
        let mut classes = Table::with_headers(
            format!("Scores by {}: Mann-Whitney U test", self.label),
            &["Cohort", "Score", &pos_head, &neg_head, "U", "P (Mann-Whitney, two-sided)"],
        );
        let mut compare = Table::with_headers(
            "Paired DeLong comparison of AUCs (unadjusted for multiple comparisons)",
            &["Cohort", "Comparison", "AUC difference (95% CI)", "Z", "P (paired DeLong, unadjusted)"],
        );
        for r in results {
            table.rows.extend(r.scores.iter().map(|s| r.score_row(stage, s)));
            counts.rows.extend(r.scores.iter().map(|s| r.counts_row(stage, s)));
            classes.rows.extend(r.scores.iter().filter_map(|s| r.class_row(stage, s)));
            compare.rows.extend(r.comparisons.iter().map(|cmp| r.comparison_row(stage, cmp)));
        }
        let mut doc = Document::default();
        doc.push(Block::Table(table));
        doc.paragraph(
            Rich::new()
                .text(format!(
                    "AUC with 95% CI by DeLong; prevalence, accuracy, sensitivity, specificity, PPV and NPV with 95% {} CIs at the threshold ({}), ",
                    if self.proportion_ci == ProportionCi::Wilson { "Wilson score" } else { "Clopper-Pearson exact" },
                    self.rule_text()
                ))
                .code("score >= threshold")
                .text(" positive."),
        );
        if results.iter().any(|r| r.scores.iter().any(|s| s.in_sample)) {
            doc.paragraph("In-sample: the score's model or its threshold was fitted on these patients, so the row describes fit, not validation.");
        }
        doc.push(Block::Table(counts));
        doc.paragraph("Brier score, calibration intercept (slope fixed at 1) and slope (logistic recalibration on logit(p)) only for scores that are probabilities of the label (see the notes for the others).");
        if self.class_test.is_some() {
            doc.push(Block::Table(classes));
        }
        if matches!(self.compare, Some(Compare::Delong)) && scores > 1 {
            doc.push(Block::Table(compare));
        }
        if dropped > 0 {
            doc.paragraph(study::dropped_note(dropped));
        }
        for note in notes {
            doc.paragraph(format!("Note: {note}."));
        }
        doc
    }
}

impl CohortResult<'_> {
    fn id(&self, stage: &str, subject: &str, metric: &str) -> String {
        format!("{stage}/{}/{subject}/{metric}", self.data.name)
    }

    /// The cohort's metrics, in `metrics.json` order.
    fn metrics(&self, stage: &str) -> Vec<Metric> {
        let n = self.n;
        let mut metrics = Vec::new();
        for s in &self.scores {
            let id = |m: &str| self.id(stage, &s.name, m);
            metrics.push(
                Metric::new(id("auc"), s.auc.auc, n)
                    .ci(s.auc.lower, s.auc.upper)
                    .method("DeLong"),
            );
            metrics.push(Metric::new(id("auc_var"), s.auc.variance, n).method("DeLong"));
            metrics.push(prop_metric(id("prevalence"), &s.props.prevalence).method(self.ci_method));
            metrics.push(Metric::new(id("positives"), self.positives as f64, n));
            metrics.push(Metric::new(id("threshold"), s.threshold, n).method(s.how.clone()));
            let m = &s.at;
            for (metric, count) in [("tp", m.tp), ("fp", m.fp), ("tn", m.tn), ("fn", m.fn_)] {
                metrics.push(Metric::new(id(metric), count as f64, n).method("count at the threshold, score >= threshold positive"));
            }
            for (metric, p) in s.props.named() {
                metrics.push(prop_metric(id(metric), p).method(self.ci_method));
            }
            if let Some(c) = &s.classes {
                for (class, q) in [("positive", &c.positive), ("negative", &c.negative)] {
                    metrics.push(Metric::new(id(&format!("median_{class}")), q.median, n));
                    metrics.push(Metric::new(id(&format!("q1_{class}")), q.q1, n).method("25th percentile, linear interpolation"));
                    metrics.push(Metric::new(id(&format!("q3_{class}")), q.q3, n).method("75th percentile, linear interpolation"));
                }
                let how = format!("Mann-Whitney U, two-sided, {}", if c.test.method == MwuMethod::Exact { "exact" } else { "normal approximation with continuity and tie correction" });
                metrics.push(Metric::new(id("mwu_u"), c.test.u, n).method(how.clone()));
                metrics.push(Metric::new(id("mwu_p"), c.test.p_value, n).method(how));
            }
            if let Some(p) = &s.prob {
                metrics.push(Metric::new(id("brier"), p.brier, n).method("Brier score"));
                if let Ok(fit) = &p.fit {
                    metrics.push(
                        Metric::new(id("calibration_intercept"), fit.intercept, n)
                            .ci(fit.intercept_lower, fit.intercept_upper)
                            .method("logistic recalibration, slope fixed at 1"),
                    );
                    metrics.push(
                        Metric::new(id("calibration_slope"), fit.slope, n)
                            .ci(fit.slope_lower, fit.slope_upper)
                            .method("logistic recalibration on logit(p)"),
                    );
                }
            }
        }
        for c in &self.comparisons {
            let pair = format!("{}_vs_{}", c.a, c.b);
            let id = |m: &str| self.id(stage, &pair, m);
            metrics.push(
                Metric::new(id("auc_diff"), c.cmp.difference, n)
                    .ci(c.cmp.lower, c.cmp.upper)
                    .method("paired DeLong"),
            );
            metrics.push(Metric::new(id("delong_z"), c.cmp.z, n).method("paired DeLong"));
            metrics.push(Metric::new(id("delong_p"), c.cmp.p_two_sided, n).method("paired DeLong, two-sided, unadjusted for multiple comparisons"));
        }
        metrics
    }

    /// Why a score lacks some of its numbers.
    fn notes(&self, kinds: &[ScoreKind]) -> Vec<String> {
        let c = &self.data.name;
        self.scores
            .iter()
            .zip(kinds)
            .filter_map(|(s, kind)| match (&s.prob, kind) {
                (None, ScoreKind::Other { why, .. }) => Some(format!("{c}/{}: {why}, so no Brier score, calibration or decision curve", s.name)),
                (None, _) => Some(format!("{c}/{}: not a probability (values outside [0, 1]), so no Brier score, calibration or decision curve", s.name)),
                (Some(Probability { fit: Err(e), .. }), _) => Some(format!("{c}/{}: no calibration intercept/slope ({e})", s.name)),
                (Some(_), _) => None,
            })
            .collect()
    }

    /// A row of Table 2, every number cited.
    fn score_row(&self, stage: &str, s: &ScoreResult) -> Vec<Cell> {
        let id = |m: &str| self.id(stage, &s.name, m);
        let auc_id = id("auc");
        let auc = Rich::new()
            .cite(&auc_id, format!("{:.3}", s.auc.auc))
            .text(" (")
            .cite(&auc_id, format!("{:.3}", s.auc.lower))
            .text("–")
            .cite(&auc_id, format!("{:.3}", s.auc.upper))
            .text(")");
        let cohort = if s.in_sample { format!("{} (in-sample)", self.data.name) } else { self.data.name.clone() };
        let mut row = vec![
            cohort.into(),
            s.name.as_str().into(),
            Rich::new().cite(&auc_id, self.n).into(),
            proportion_cell(&id("prevalence"), &s.props.prevalence),
            auc.into(),
            Rich::new().cite(&id("threshold"), format!("{:.3}", s.threshold)).into(),
        ];
        row.extend(s.props.named().iter().map(|(metric, p)| proportion_cell(&id(metric), p)));
        row
    }

    /// A row of the counts and calibration table.
    fn counts_row(&self, stage: &str, s: &ScoreResult) -> Vec<Cell> {
        let id = |m: &str| self.id(stage, &s.name, m);
        let m = &s.at;
        let mut row: Vec<Cell> = vec![self.data.name.as_str().into(), s.name.as_str().into()];
        row.extend([("tp", m.tp), ("fp", m.fp), ("tn", m.tn), ("fn", m.fn_)].iter().map(|(metric, k)| Cell::from(Rich::new().cite(&id(metric), k))));
        let missing = || Cell::from("–");
        match &s.prob {
            Some(p) => {
                row.push(Rich::new().cite(&id("brier"), format!("{:.3}", p.brier)).into());
                match &p.fit {
                    Ok(fit) => {
                        row.push(estimate_ci(&id("calibration_intercept"), fit.intercept, fit.intercept_lower, fit.intercept_upper).into());
                        row.push(estimate_ci(&id("calibration_slope"), fit.slope, fit.slope_lower, fit.slope_upper).into());
                    }
                    Err(_) => row.extend([missing(), missing()]),
                }
            }
            None => row.extend([missing(), missing(), missing()]),
        }
        row
    }

    /// A row of the class-test table, when the stage has one.
    fn class_row(&self, stage: &str, s: &ScoreResult) -> Option<Vec<Cell>> {
        let c = s.classes.as_ref()?;
        let id = |m: &str| self.id(stage, &s.name, m);
        let quartiles = |class: &str| -> Cell {
            Rich::new()
                .cite(&id(&format!("median_{class}")), format!("{:.3}", if class == "positive" { c.positive.median } else { c.negative.median }))
                .text(" (")
                .cite(&id(&format!("q1_{class}")), format!("{:.3}", if class == "positive" { c.positive.q1 } else { c.negative.q1 }))
                .text("–")
                .cite(&id(&format!("q3_{class}")), format!("{:.3}", if class == "positive" { c.positive.q3 } else { c.negative.q3 }))
                .text(")")
                .into()
        };
        Some(vec![
            self.data.name.as_str().into(),
            s.name.as_str().into(),
            quartiles("positive"),
            quartiles("negative"),
            Rich::new().cite(&id("mwu_u"), num(c.test.u)).into(),
            Rich::new().cite(&id("mwu_p"), p_text(c.test.p_value)).into(),
        ])
    }

    /// A row of the comparison table.
    fn comparison_row(&self, stage: &str, c: &Comparison) -> Vec<Cell> {
        let pair = format!("{}_vs_{}", c.a, c.b);
        let id = |m: &str| self.id(stage, &pair, m);
        let p = p_text(c.cmp.p_two_sided);
        let diff = id("auc_diff");
        vec![
            self.data.name.as_str().into(),
            format!("{} vs {}", c.a, c.b).into(),
            Rich::new()
                .cite(&diff, format!("{:.3}", c.cmp.difference))
                .text(" (")
                .cite(&diff, format!("{:.3}", c.cmp.lower))
                .text("–")
                .cite(&diff, format!("{:.3}", c.cmp.upper))
                .text(")")
                .into(),
            Rich::new()
                .cite(&id("delong_z"), format!("{:.2}", c.cmp.z))
                .into(),
            Rich::new().cite(&id("delong_p"), p).into(),
        ]
    }

    /// ROC, calibration and decision-curve figures: (file name, SVG).
    fn figures(&self) -> Vec<(String, String)> {
        let (c, n) = (&self.data.name, self.n);
        let slug = study::slug(c);
        let mut figures = Vec::new();
        let roc_series = self
            .scores
            .iter()
            .map(|s| {
                line(
                    format!("{} (AUC {:.3})", s.name, s.auc.auc),
                    s.roc
                        .fpr
                        .iter()
                        .copied()
                        .zip(s.roc.tpr.iter().copied())
                        .collect(),
                )
            })
            .collect();
        let mut roc_chart = chart(
            format!("ROC, {c} (n = {n})"),
            "1 - specificity",
            "sensitivity",
            (0.0, 1.0),
            (0.0, 1.0),
            roc_series,
        );
        roc_chart.series.push(dashed("chance", vec![(0.0, 0.0), (1.0, 1.0)]));
        figures.push((format!("roc_{slug}.svg"), roc_chart.render()));
        figures.extend(self.probability_figures(&slug));
        figures
    }

    /// Calibration and decision-curve figures of the scores that are probabilities.
    fn probability_figures(&self, slug: &str) -> Vec<(String, String)> {
        let (c, n) = (&self.data.name, self.n);
        let mut figures = Vec::new();
        let probs: Vec<(&ScoreResult, &Probability)> = self
            .scores
            .iter()
            .filter_map(|s| s.prob.as_ref().map(|p| (s, p)))
            .collect();
        let Some((_, first)) = probs.first() else {
            return Vec::new();
        };
        let cal_series = probs
            .iter()
            .map(|(s, p)| {
                line(
                    s.name.clone(),
                    p.bins
                        .iter()
                        .map(|b| (b.mean_predicted, b.observed_fraction))
                        .collect(),
                )
            })
            .collect();
        let mut cal = chart(
            format!("Calibration, {c}"),
            "mean predicted probability",
            "observed fraction",
            (0.0, 1.0),
            (0.0, 1.0),
            cal_series,
        );
        cal.series.push(dashed("ideal", vec![(0.0, 0.0), (1.0, 1.0)]));
        figures.push((format!("calibration_{slug}.svg"), cal.render()));
        let prevalence = self.positives as f64 / n as f64;
        let mut series: Vec<Series> = probs
            .iter()
            .map(|(s, p)| {
                line(
                    s.name.clone(),
                    p.decision.iter().map(|d| (d.threshold, d.model)).collect(),
                )
            })
            .collect();
        series.push(dashed("treat all", first.decision.iter().map(|d| (d.threshold, d.treat_all)).collect()));
        series.push(dashed("treat none", vec![(0.0, 0.0), (1.0, 0.0)]));
        let top = (prevalence * 1.1).max(0.05);
        figures.push((
            format!("decision_curve_{slug}.svg"),
            chart(
                format!("Decision curve, {c}"),
                "threshold probability",
                "net benefit",
                (0.0, 1.0),
                (-0.05, top),
                series,
            )
            .render(),
        ));
        figures
    }
}

/// `table.csv`: every score of every cohort, numbers in full precision.
fn table_csv(results: &[CohortResult]) -> Result<Csv, StageError> {
    let mut header = vec!["cohort", "score", "in_sample", "n", "positives", "auc", "auc_lower", "auc_upper", "threshold", "tp", "fp", "tn", "fn"];
    let proportions = ["prevalence", "accuracy", "sensitivity", "specificity", "ppv", "npv"];
    let bounds: Vec<String> = proportions.iter().flat_map(|p| [p.to_string(), format!("{p}_lower"), format!("{p}_upper")]).collect();
    header.extend(bounds.iter().map(String::as_str));
    header.extend(["ci_method", "brier", "calibration_intercept", "calibration_slope"]);
    let mut csv = Csv::new("table.csv", &header)?;
    for r in results {
        for s in &r.scores {
            let m = &s.at;
            let mut row = vec![
                r.data.name.clone(),
                s.name.clone(),
                s.in_sample.to_string(),
                r.n.to_string(),
                r.positives.to_string(),
                num(s.auc.auc),
                num(s.auc.lower),
                num(s.auc.upper),
                num(s.threshold),
                m.tp.to_string(),
                m.fp.to_string(),
                m.tn.to_string(),
                m.fn_.to_string(),
            ];
            let props = std::iter::once(&s.props.prevalence).chain(s.props.named().into_iter().map(|(_, p)| p));
            for p in props {
                match p {
                    Some(p) => row.extend([num(p.estimate), num(p.lower), num(p.upper)]),
                    None => row.extend([String::new(), String::new(), String::new()]),
                }
            }
            let fit = s.prob.as_ref().and_then(|p| p.fit.as_ref().ok());
            row.extend([
                r.ci_method.to_string(),
                s.prob.as_ref().map(|p| num(p.brier)).unwrap_or_default(),
                fit.map(|f| num(f.intercept)).unwrap_or_default(),
                fit.map(|f| num(f.slope)).unwrap_or_default(),
            ]);
            csv.row(row)?;
        }
    }
    Ok(csv)
}

/// `roc.csv`, `calibration.csv` and `decision_curve.csv`.
fn write_curves(out: &std::path::Path, results: &[CohortResult]) -> Result<(), StageError> {
    let mut roc = Csv::new("roc.csv", &["cohort", "score", "threshold", "fpr", "tpr"])?;
    let mut cal = Csv::new(
        "calibration.csv",
        &[
            "cohort",
            "score",
            "bin_lower",
            "bin_upper",
            "count",
            "mean_predicted",
            "observed_fraction",
        ],
    )?;
    let mut dca = Csv::new(
        "decision_curve.csv",
        &[
            "cohort",
            "score",
            "threshold",
            "net_benefit",
            "treat_all",
            "treat_none",
        ],
    )?;
    for r in results {
        let c = &r.data.name;
        for s in &r.scores {
            for ((th, fpr), tpr) in s.roc.thresholds.iter().zip(&s.roc.fpr).zip(&s.roc.tpr) {
                roc.row([c.clone(), s.name.clone(), num(*th), num(*fpr), num(*tpr)])?;
            }
            let Some(p) = &s.prob else { continue };
            for b in &p.bins {
                cal.row([
                    c.clone(),
                    s.name.clone(),
                    num(b.lower_edge),
                    num(b.upper_edge),
                    b.count.to_string(),
                    num(b.mean_predicted),
                    num(b.observed_fraction),
                ])?;
            }
            for d in &p.decision {
                dca.row([
                    c.clone(),
                    s.name.clone(),
                    num(d.threshold),
                    num(d.model),
                    num(d.treat_all),
                    num(d.treat_none),
                ])?;
            }
        }
    }
    roc.write(out)?;
    cal.write(out)?;
    dca.write(out)
}

/// A solid line.
fn line(name: String, points: Vec<(f64, f64)>) -> Series {
    Series { name, points, step: false, dashed: false }
}

/// A dashed reference line (chance, ideal calibration, treat all / none).
fn dashed(name: &str, points: Vec<(f64, f64)>) -> Series {
    Series { name: name.into(), points, step: false, dashed: true }
}

fn chart(
    title: String,
    x: &str,
    y: &str,
    xr: (f64, f64),
    yr: (f64, f64),
    series: Vec<Series>,
) -> Chart {
    Chart {
        title,
        x_label: x.into(),
        y_label: y.into(),
        x_range: xr,
        y_range: yr,
        series,
        table: Vec::new(),
        table_title: String::new(),
    }
}
