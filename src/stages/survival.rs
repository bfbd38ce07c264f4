//! `kind: survival`: time-to-event analysis by group, per cohort (the study's
//! Figure 5: PFS by high/low DLS split at the training Youden cut-off).
//!
//! ```yaml
//! km:
//!   kind: survival
//!   input: [ingest, split, fuse]
//!   time: pfs_months
//!   event: { column: progression, value: 1, censored: 0 }
//!   score: fuse.dls                  # a column or stage.name; or `group: <column>`
//!   threshold: { rule: youden, fit_on: train, label: pdl1_high }   # or { rule: fixed, value: 0.5 }
//!   cohorts: [internal, external]
//!   missing: refuse                  # or drop
//! ```
//!
//! Groups: `high` (`score >= threshold`) and `low` (the reference), or the
//! values of the `group` column (the reference is `reference:` or the first
//! value in sorted order). Per cohort: Kaplan-Meier per group (Greenwood SE,
//! log-log 95% CI; median survival as the first time S(t) <= 0.5, lifelines'
//! rule), the k-group log-rank test, a Cox model (Efron ties) with one
//! indicator per non-reference group giving each hazard ratio with its 95% CI
//! and Wald p, Harrell's C-index of the Cox linear predictor, and the median
//! follow-up by reverse Kaplan-Meier with its IQR. An empty group is an error,
//! except when a Youden cut-off fitted on another cohort puts every patient of
//! a cohort on one side: that cohort is then left out with a note in
//! `table.md` (a finding about the score, not bad input).
//!
//! Metric ids: `<stage>/<cohort>/<group>/{n,events,median_survival}`,
//! `<stage>/<cohort>/<group>_vs_<reference>/{hr,cox_p}`,
//! `<stage>/<cohort>/all/{logrank_chisq,logrank_p,c_index,median_survival,median_followup,followup_q1,followup_q3}`.
//! Outputs: `metrics.json`, `table.csv`, `table.md`, `table.linked.md` (numbers cited for the report), `patients.json` (each cohort's patients, which `radpipe lineage` follows), `km.csv`,
//! `km_<cohort>.svg` (with numbers at risk), and under `missing: drop` `dropped.csv`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;

use super::study::{self, csv_field, num, Cell, Metric, Missing, ScoreSource, Study};
use super::{Inputs, InputRef, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use crate::report::svg::{nice_range, ticks, Chart, Series};
use radpipe_stats as stats;
use radpipe_stats::survival::{cox_ph, harrell_c, kaplan_meier, logrank_test, median_follow_up, CoxOptions};

pub const VERSION: u32 = 2;
const LEVEL: f64 = 0.95;

/// Kaplan-Meier, log-rank, Cox HR and C-index by group, per cohort; one node.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Survival {
    /// The stages read: the ingest stage, split stages, and the stage of a `stage.name` score.
    pub input: Inputs,
    /// Column with the follow-up time (non-negative).
    pub time: String,
    /// The event column and which values mean event and censored.
    pub event: EventSpec,
    /// A column whose values are the groups (instead of `score` + `threshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A score (column or `stage.name`) split into `high` and `low` at `threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<String>,
    /// Where the score is cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<SurvivalThreshold>,
    /// The reference group of the hazard ratios (default: `low`, or the first group value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Cohorts or split partitions to analyse.
    pub cohorts: Vec<String>,
    /// Patients lacking time, event or group: `refuse` (default) or `drop`.
    #[serde(default)]
    pub missing: Missing,
}

/// Event indicator column.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub column: String,
    /// The value meaning the event happened (default 1).
    #[serde(default = "one")]
    pub value: Value,
    /// The value meaning censored (default 0). Any other value is an error.
    #[serde(default = "zero")]
    pub censored: Value,
}

fn one() -> Value {
    Value::from(1)
}

fn zero() -> Value {
    Value::from(0)
}

/// The cut-off of a score.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum SurvivalThreshold {
    /// The Youden-optimal cut-off of the score for `label` on `fit_on` (e.g. the training partition).
    Youden {
        fit_on: String,
        label: String,
        #[serde(default = "one")]
        positive: Value,
    },
    /// A fixed cut-off.
    Fixed { value: f64 },
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map(num).unwrap_or_else(|| n.to_string()),
        Value::Bool(b) => (*b as u8).to_string(),
        other => other.to_string(),
    }
}

/// (cohort, patient, columns) of a patient left out under `missing: drop`.
type Dropped = (String, String, String);

/// One cohort's complete cases, with group indices into `levels`.
struct Cohort {
    name: String,
    times: Vec<f64>,
    events: Vec<bool>,
    group: Vec<usize>,
    levels: Vec<String>,
    reference: usize,
    /// The patients behind the numbers, parallel to `times`.
    patients: Vec<String>,
    dropped: Vec<(String, String)>,
}

impl Survival {
    fn score_source(&self) -> Option<ScoreSource> {
        let stages: Vec<String> = self.input.refs().into_iter().map(|r| r.stage).collect();
        self.score.as_ref().map(|s| study::score_source(s, &|x| stages.iter().any(|y| y == x)))
    }

    /// The cut-off, and the patients of the `fit_on` cohort left out under `missing: drop`.
    fn threshold(&self, st: &Study, inputs: &[super::InputArtifact], source: &ScoreSource, log: &mut dyn std::io::Write) -> Result<(f64, Vec<Dropped>), StageError> {
        let stage = &st.stage;
        match &self.threshold {
            Some(SurvivalThreshold::Fixed { value }) => Ok((*value, Vec::new())),
            Some(SurvivalThreshold::Youden { fit_on, label, positive }) => {
                let rows = st.rows_of(fit_on)?;
                let pos = text_of(positive);
                let labels = st.text(label)?;
                let y: Vec<Option<f64>> = rows.iter().map(|&r| labels[r].as_ref().map(|v| (*v == pos) as u8 as f64)).collect();
                let s = study::score_values(st, inputs, source, &rows, fit_on)?;
                let score_name = self.score.clone().unwrap_or_default();
                let (keep, dropped) = study::apply_missing(st, self.missing, fit_on, &rows, &[(label.as_str(), &y), (score_name.as_str(), &s)])?;
                let dropped = if self.cohorts.contains(fit_on) { Vec::new() } else { dropped.into_iter().map(|(id, col)| (fit_on.clone(), id, col)).collect() };
                let yb: Vec<bool> = keep.iter().map(|&k| y[k] == Some(1.0)).collect();
                let sv: Vec<f64> = keep.iter().map(|&k| s[k].unwrap_or(f64::NAN)).collect();
                let yp = stats::youden(&sv, &yb).map_err(|e| StageError::new(format!("stage `{stage}`, cohort `{fit_on}`, column `{label}`: cannot fit the Youden threshold of `{score_name}`: {e}")))?;
                let _ = writeln!(log, "Youden threshold of {score_name} for {label} on {fit_on}: {} (J = {})", yp.threshold, yp.j);
                Ok((yp.threshold, dropped))
            }
            None => Err(StageError::new(format!("stage `{stage}`: `score` needs a `threshold`"))),
        }
    }

    /// One cohort's complete cases by group; `None` (with a note) when a
    /// cut-off fitted on another cohort leaves one of its groups empty.
    fn cohort(&self, st: &Study, inputs: &[super::InputArtifact], name: &str, cut: Option<(f64, &ScoreSource)>, notes: &mut Vec<String>) -> Result<Option<Cohort>, StageError> {
        let stage = &st.stage;
        let rows = st.rows_of(name)?;
        let times = st.numbers(&self.time, &rows, name)?;
        let bad: Vec<String> = rows.iter().zip(&times).filter(|(_, t)| t.is_some_and(|t| t < 0.0 || !t.is_finite())).map(|(&r, t)| format!("{} ({})", st.ids[r], num(t.unwrap_or(f64::NAN)))).collect();
        if !bad.is_empty() {
            return Err(StageError::new(format!("stage `{stage}`, cohort `{name}`, column `{}`: survival times must be finite and non-negative: {}", self.time, study::list_ids(&bad))));
        }
        let (ev, ce) = (text_of(&self.event.value), text_of(&self.event.censored));
        let cells = st.cells(&self.event.column)?;
        let mut unexpected = Vec::new();
        let events: Vec<Option<f64>> = rows
            .iter()
            .map(|&r| {
                let t = match &cells[r] {
                    Cell::Missing => return None,
                    Cell::Number(x) => num(*x),
                    Cell::Text(t) => t.clone(),
                };
                if t == ev {
                    Some(1.0)
                } else if t == ce {
                    Some(0.0)
                } else {
                    unexpected.push(format!("{} (`{t}`)", st.ids[r]));
                    None
                }
            })
            .collect();
        if !unexpected.is_empty() {
            return Err(StageError::new(format!(
                "stage `{stage}`, cohort `{name}`, column `{}`: values other than the event value `{ev}` and the censored value `{ce}`: {}",
                self.event.column,
                study::list_ids(&unexpected)
            )));
        }
        // Groups as numbers: index into `levels` (filled below).
        let (group_col, group_vals, levels): (String, Vec<Option<f64>>, Vec<String>) = match (cut, &self.group) {
            (Some((t, source)), _) => {
                let s = study::score_values(st, inputs, source, &rows, name)?;
                let bad: Vec<String> = rows.iter().zip(&s).filter(|(_, x)| x.is_some_and(|x| !x.is_finite())).map(|(&r, _)| st.ids[r].clone()).collect();
                if !bad.is_empty() {
                    return Err(StageError::new(format!("stage `{stage}`, cohort `{name}`, score `{}`: not a finite number for {}", self.score.as_deref().unwrap_or(""), study::list_ids(&bad))));
                }
                let g = s.iter().map(|x| x.map(|x| if x >= t { 1.0 } else { 0.0 })).collect();
                (self.score.clone().unwrap_or_default(), g, vec!["low".into(), "high".into()])
            }
            (None, Some(col)) => {
                let text = st.text(col)?;
                let mut lv: Vec<String> = rows.iter().filter_map(|&r| text[r].clone()).collect();
                lv.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
                    (Ok(x), Ok(y)) => x.total_cmp(&y),
                    _ => a.cmp(b),
                });
                lv.dedup();
                let g = rows.iter().map(|&r| text[r].as_ref().and_then(|v| lv.iter().position(|l| l == v)).map(|i| i as f64)).collect();
                (col.clone(), g, lv)
            }
            (None, None) => return Err(StageError::new(format!("stage `{stage}`: give `group` or `score`"))),
        };
        let (keep, dropped) = study::apply_missing(st, self.missing, name, &rows, &[(self.time.as_str(), &times), (self.event.column.as_str(), &events), (group_col.as_str(), &group_vals)])?;
        let group: Vec<usize> = keep.iter().map(|&k| group_vals[k].unwrap_or(0.0) as usize).collect();
        for (i, l) in levels.iter().enumerate() {
            if !group.contains(&i) {
                let what = format!("group `{l}` is empty{}", if cut.is_some() { format!(" (threshold {})", num(cut.map(|c| c.0).unwrap_or(f64::NAN))) } else { String::new() });
                // A cut-off fitted on another cohort may leave a validation
                // cohort on one side: that is a finding, not an error.
                if let Some(SurvivalThreshold::Youden { fit_on, .. }) = &self.threshold {
                    if fit_on != name {
                        notes.push(format!("cohort `{name}`: {what}, the cut-off fitted on `{fit_on}` puts all its patients on one side, so there is no Kaplan-Meier comparison, log-rank test or hazard ratio"));
                        return Ok(None);
                    }
                }
                return Err(StageError::new(format!("stage `{stage}`, cohort `{name}`, column `{group_col}`: {what}")));
            }
        }
        if levels.len() < 2 {
            return Err(StageError::new(format!("stage `{stage}`, cohort `{name}`, column `{group_col}`: need at least two groups, found {}", levels.join(", "))));
        }
        let default_ref = levels[0].clone();
        let reference_name = self.reference.clone().unwrap_or(default_ref);
        let reference = levels.iter().position(|l| *l == reference_name).ok_or_else(|| {
            StageError::new(format!("stage `{stage}`, cohort `{name}`, column `{group_col}`: the reference group `{reference_name}` is not among {}", levels.join(", ")))
        })?;
        Ok(Some(Cohort {
            name: name.to_string(),
            times: keep.iter().map(|&k| times[k].unwrap_or(f64::NAN)).collect(),
            events: keep.iter().map(|&k| events[k] == Some(1.0)).collect(),
            group,
            levels,
            reference,
            patients: keep.iter().map(|&k| st.ids[rows[k]].clone()).collect(),
            dropped,
        }))
    }
}

fn opt_num(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

fn f2(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite()).map(|v| format!("{v:.2}")).unwrap_or_else(|| "NR".into())
}

fn p_text(p: f64) -> String {
    if p < 0.001 { "<0.001".into() } else { format!("{p:.3}") }
}

impl Stage for Survival {
    fn kind(&self) -> &'static str {
        "survival"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        let inputs = self.input.refs();
        let mut diags = Diagnostics::default();
        diags.0.extend(study::check_has_ingest(ctx, stage, &inputs));
        match (&self.group, &self.score, &self.threshold) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
            (Some(_), Some(_), _) => diags.push(Diagnostic::new(ctx.origin(stage, &["score"]), format!("stage `{stage}`: give either `group` or `score`, not both"))),
            (None, Some(_), None) => diags.push(Diagnostic::new(ctx.origin(stage, &["score"]), format!("stage `{stage}`: `score` needs a `threshold`")).hint("e.g. threshold: { rule: youden, fit_on: train, label: pdl1_high }")),
            (Some(_), None, Some(_)) => diags.push(Diagnostic::new(ctx.origin(stage, &["threshold"]), format!("stage `{stage}`: `threshold` applies to `score`, not to `group`"))),
            (None, None, _) => diags.push(Diagnostic::new(ctx.origin(stage, &[]), format!("stage `{stage}`: give `group` (a column) or `score` with `threshold`"))),
        }
        if let Some(s) = &self.score {
            diags.0.extend(study::check_score_input(ctx, stage, &inputs, s, s, &["score"]));
        }
        diags.0.extend(study::check_cohorts(ctx, stage, &inputs, &self.cohorts));
        match &self.threshold {
            Some(SurvivalThreshold::Youden { fit_on, .. }) => diags.0.extend(study::check_group_name(ctx, stage, &inputs, fit_on, &["threshold", "fit_on"])),
            Some(SurvivalThreshold::Fixed { value }) if !value.is_finite() => diags.push(Diagnostic::new(ctx.origin(stage, &["threshold", "value"]), format!("stage `{stage}`: the threshold must be finite"))),
            _ => {}
        }
        study::into_result(diags)?;
        let params = serde_json::to_value(self).map_err(|e| Diagnostics::from(Diagnostic::new(ctx.origin(stage, &[]), e.to_string())))?;
        Ok(vec![NodeDecl::single(params)])
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let stage = ctx.node_id.to_string();
        let st = Study::load(&stage, ctx.inputs)?;
        let source = self.score_source();
        let mut dropped = Vec::new();
        let cut = match &source {
            Some(s) => {
                let (t, fit_dropped) = self.threshold(&st, ctx.inputs, s, ctx.log)?;
                dropped.extend(fit_dropped);
                Some((t, s))
            }
            None => None,
        };
        let mut cohorts = Vec::new();
        let mut notes = Vec::new();
        for c in &self.cohorts {
            cohorts.extend(self.cohort(&st, ctx.inputs, c, cut, &mut notes)?);
        }
        let mut metrics = Vec::new();
        let mut km_csv = String::from("cohort,group,time,n_at_risk,n_events,n_censored,survival,se,lower,upper\n");
        let mut table_csv = String::from("cohort,group,n,events,median_survival,median_lower,median_upper,hr,hr_lower,hr_upper,cox_p,logrank_chisq,logrank_p,c_index,median_followup\n");
        let mut table_md = String::from("| Cohort | Group | n | Events | Median survival (95% CI) | HR (95% CI) | Cox p | Log-rank p |\n|---|---|---|---|---|---|---|---|\n");
        let mut figures = Vec::new();
        for co in &cohorts {
            let c = &co.name;
            let n = co.times.len();
            let err = |what: &str, e: stats::StatsError| StageError::new(format!("stage `{stage}`, cohort `{c}`, column `{}`: {what}: {e}", self.time));
            let lr = logrank_test(&co.times, &co.events, &co.group).map_err(|e| err("log-rank test", e))?;
            let others: Vec<usize> = (0..co.levels.len()).filter(|&i| i != co.reference).collect();
            let indicators: Vec<Vec<f64>> = others.iter().map(|&l| co.group.iter().map(|&g| (g == l) as u8 as f64).collect()).collect();
            let cols: Vec<&[f64]> = indicators.iter().map(|v| v.as_slice()).collect();
            // A group without events has no finite hazard ratio (the fit diverges):
            // the HRs and the C-index are then reported as undefined, with the reason.
            let cox = match cox_ph(&co.times, &co.events, &cols, &CoxOptions::default()) {
                Ok(fit) => Ok(fit),
                Err(e) => {
                    let _ = writeln!(ctx.log, "{c}: Cox model not estimable: {e}");
                    Err(format!("not estimable: {e}"))
                }
            };
            let c_index = match &cox {
                Ok(fit) => Some(harrell_c(&co.times, &fit.linear_predictor(&cols), &co.events).map_err(|e| err("C-index", e))?.c_index),
                Err(_) => None,
            };
            let fu = median_follow_up(&co.times, &co.events).map_err(|e| err("median follow-up", e))?;
            let all_km = kaplan_meier(&co.times, &co.events, LEVEL).map_err(|e| err("Kaplan-Meier", e))?;
            let id = |g: &str, m: &str| format!("{stage}/{c}/{g}/{m}");
            metrics.push(Metric::new(id("all", "logrank_chisq"), lr.statistic, n).method(format!("log-rank, {} df", lr.df)));
            metrics.push(Metric::new(id("all", "logrank_p"), lr.p_value, n).method(format!("log-rank, {} df", lr.df)));
            metrics.push(Metric::opt(id("all", "c_index"), c_index, n).method(match &cox {
                Ok(_) => "Harrell, Cox linear predictor of the groups".to_string(),
                Err(why) => format!("Harrell; Cox model {why}"),
            }));
            metrics.push(Metric::opt(id("all", "median_survival"), all_km.median.estimate, n).ci(all_km.median.lower.unwrap_or(f64::NAN), all_km.median.upper.unwrap_or(f64::NAN)).method("Kaplan-Meier, log-log CI"));
            metrics.push(Metric::opt(id("all", "median_followup"), fu.median, n).method("reverse Kaplan-Meier"));
            metrics.push(Metric::opt(id("all", "followup_q1"), fu.q1, n).method("reverse Kaplan-Meier"));
            metrics.push(Metric::opt(id("all", "followup_q3"), fu.q3, n).method("reverse Kaplan-Meier"));
            let x_max = co.times.iter().cloned().fold(0.0, f64::max).max(1e-9);
            let x_end = nice_range(0.0, x_max).1;
            let xt = ticks(0.0, x_end);
            let mut series = Vec::new();
            let mut at_risk = Vec::new();
            for (l, level) in co.levels.iter().enumerate() {
                let idx: Vec<usize> = (0..n).filter(|&i| co.group[i] == l).collect();
                let t: Vec<f64> = idx.iter().map(|&i| co.times[i]).collect();
                let e: Vec<bool> = idx.iter().map(|&i| co.events[i]).collect();
                let km = kaplan_meier(&t, &e, LEVEL).map_err(|e| err(&format!("Kaplan-Meier of group `{level}`"), e))?;
                metrics.push(Metric::opt(id(level, "median_survival"), km.median.estimate, t.len()).ci(km.median.lower.unwrap_or(f64::NAN), km.median.upper.unwrap_or(f64::NAN)).method("Kaplan-Meier, log-log CI"));
                let _ = writeln!(km_csv, "{},{},0,{},0,0,1,0,1,1", csv_field(c), csv_field(level), t.len());
                for s in &km.steps {
                    let _ = writeln!(km_csv, "{},{},{},{},{},{},{},{},{},{}", csv_field(c), csv_field(level), num(s.time), s.n_at_risk, s.n_events, s.n_censored, num(s.survival), num(s.se), num(s.lower_loglog), num(s.upper_loglog));
                }
                let mut pts = vec![(0.0, 1.0)];
                pts.extend(km.steps.iter().map(|s| (s.time, s.survival)));
                if let Some(last) = t.iter().cloned().reduce(f64::max) {
                    pts.push((last, km.survival_at(last)));
                }
                series.push(Series { name: format!("{level} (n = {})", t.len()), points: pts, step: true, dashed: false });
                at_risk.push((level.clone(), xt.iter().map(|&x| t.iter().filter(|&&ti| ti >= x).count().to_string()).collect()));
                let events = e.iter().filter(|b| **b).count();
                let (hr, hr_lo, hr_hi, p) = match (others.iter().position(|&o| o == l), &cox) {
                    (Some(_), Err(why)) => {
                        let pair = format!("{level}_vs_{}", co.levels[co.reference]);
                        metrics.push(Metric::opt(id(&pair, "hr"), None, n).method(format!("Cox PH, {why}")));
                        metrics.push(Metric::opt(id(&pair, "cox_p"), None, n).method(format!("Cox PH, {why}")));
                        (Some(f64::NAN), None, None, None)
                    }
                    (Some(k), Ok(cox)) => {
                        let pair = format!("{level}_vs_{}", co.levels[co.reference]);
                        metrics.push(Metric::new(id(&pair, "hr"), cox.hazard_ratio[k], n).ci(cox.hr_lower[k], cox.hr_upper[k]).method("Cox PH, Efron ties, Wald CI"));
                        metrics.push(Metric::new(id(&pair, "cox_p"), cox.p_value[k], n).method("Cox PH, Wald test"));
                        (Some(cox.hazard_ratio[k]), Some(cox.hr_lower[k]), Some(cox.hr_upper[k]), Some(cox.p_value[k]))
                    }
                    (None, _) => (None, None, None, None),
                };
                let _ = writeln!(
                    table_csv,
                    "{},{},{},{events},{},{},{},{},{},{},{},{},{},{},{}",
                    csv_field(c),
                    csv_field(level),
                    t.len(),
                    opt_num(km.median.estimate),
                    opt_num(km.median.lower),
                    opt_num(km.median.upper),
                    opt_num(hr),
                    opt_num(hr_lo),
                    opt_num(hr_hi),
                    opt_num(p),
                    num(lr.statistic),
                    num(lr.p_value),
                    opt_num(c_index),
                    opt_num(fu.median)
                );
                metrics.push(Metric::new(id(level, "n"), t.len() as f64, t.len()));
                metrics.push(Metric::new(id(level, "events"), events as f64, t.len()));
                let pair = format!("{level}_vs_{}", co.levels[co.reference]);
                let median_id = id(level, "median_survival");
                let hr_id = id(&pair, "hr");
                let _ = writeln!(
                    table_md,
                    "| {c} | {level} | {} | {} | {} | {} | {} | {} |",
                    study::cite(&id(level, "n"), t.len()),
                    study::cite(&id(level, "events"), events),
                    match km.median.estimate {
                        Some(m) => format!("{} ({}–{})", study::cite(&median_id, format!("{m:.2}")), study::cite(&median_id, f2(km.median.lower)), study::cite(&median_id, f2(km.median.upper))),
                        None => "NR".into(),
                    },
                    match hr {
                        Some(h) if h.is_finite() => format!(
                            "{} ({}–{})",
                            study::cite(&hr_id, format!("{h:.2}")),
                            study::cite(&hr_id, format!("{:.2}", hr_lo.unwrap_or(f64::NAN))),
                            study::cite(&hr_id, format!("{:.2}", hr_hi.unwrap_or(f64::NAN)))
                        ),
                        Some(_) => "not estimable".into(),
                        None => "reference".into(),
                    },
                    p.map(|p| study::cite(&id(&pair, "cox_p"), p_text(p))).unwrap_or_default(),
                    study::cite(&id("all", "logrank_p"), p_text(lr.p_value))
                );
            }
            let chart = Chart {
                title: format!("Kaplan-Meier, {c} (log-rank p = {})", p_text(lr.p_value)),
                x_label: self.time.clone(),
                y_label: "survival probability".into(),
                x_range: (0.0, x_end),
                y_range: (0.0, 1.0),
                series,
                table: at_risk,
                table_title: "Number at risk".into(),
            };
            figures.push((format!("km_{}.svg", study::slug(c)), chart.render()));
            let _ = writeln!(ctx.log, "{c}: n = {n}, log-rank chi2 = {} (p = {}), C = {:?}", lr.statistic, lr.p_value, c_index);
        }
        table_md.push_str("\nMedian survival by Kaplan-Meier (NR: not reached) with log-log 95% CI; HR from a Cox model (Efron ties) against the reference group; log-rank test across all groups.\n");
        if let Some((t, _)) = cut {
            table_md.push_str(&format!("Groups: `{}` >= {} is high, below is low.\n", self.score.as_deref().unwrap_or(""), num(t)));
        }
        for co in &cohorts {
            dropped.extend(co.dropped.iter().map(|(id, col)| (co.name.clone(), id.clone(), col.clone())));
        }
        if !dropped.is_empty() {
            table_md.push_str(&format!("\n{} patient(s) left out for missing values (`dropped.csv`).\n", dropped.len()));
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
        study::write(out, "km.csv", &km_csv)?;
        if self.missing == Missing::Drop {
            study::write(out, "dropped.csv", &study::dropped_csv(&dropped))?;
        }
        for (name, svg) in &figures {
            study::write(out, name, svg)?;
        }
        Ok(())
    }
}
