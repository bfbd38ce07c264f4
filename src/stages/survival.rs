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

use super::study::{self, num, Csv, Metric, Missing, ScoreSource, Study};
use super::{InputRef, Inputs, NodeDecl, RunContext, Stage, StageError};
use crate::report::svg::{nice_range, ticks, Chart, Series};
use crate::report::table::{Block, Cell, Document, Rich, Table};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_stats as stats;
use radpipe_stats::survival::{
    cox_ph, harrell_c, kaplan_meier, logrank_test, median_follow_up, CoxOptions, KaplanMeier,
    LogRank, MedianFollowUp,
};

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

/// How a cohort is grouped: the column (or score) the groups come from, each
/// row's group as an index into the levels (`None` where missing), the levels.
type Grouping = (String, Vec<Option<f64>>, Vec<String>);

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
        self.score
            .as_ref()
            .map(|s| study::score_source(s, &|x| stages.iter().any(|y| y == x)))
    }

    /// The cut-off, and the patients of the `fit_on` cohort left out under `missing: drop`.
    fn threshold(
        &self,
        st: &Study,
        inputs: &[super::InputArtifact],
        source: &ScoreSource,
        log: &mut dyn std::io::Write,
    ) -> Result<(f64, Vec<Dropped>), StageError> {
        let stage = &st.stage;
        match &self.threshold {
            Some(SurvivalThreshold::Fixed { value }) => Ok((*value, Vec::new())),
            Some(SurvivalThreshold::Youden {
                fit_on,
                label,
                positive,
            }) => {
                let rows = st.rows_of(fit_on)?;
                let pos = text_of(positive);
                let labels = st.text(label)?;
                let y: Vec<Option<f64>> = rows
                    .iter()
                    .map(|&r| labels[r].as_ref().map(|v| (*v == pos) as u8 as f64))
                    .collect();
                let s = study::score_values(st, inputs, source, &rows, fit_on)?;
                let score_name = self.score.clone().unwrap_or_default();
                let (keep, dropped) = study::apply_missing(
                    st,
                    self.missing,
                    fit_on,
                    &rows,
                    &[(label.as_str(), &y), (score_name.as_str(), &s)],
                )?;
                let dropped = if self.cohorts.contains(fit_on) {
                    Vec::new()
                } else {
                    dropped
                        .into_iter()
                        .map(|(id, col)| (fit_on.clone(), id, col))
                        .collect()
                };
                let yb: Vec<bool> = keep.iter().map(|&k| y[k] == Some(1.0)).collect();
                let sv: Vec<f64> = keep.iter().map(|&k| s[k].unwrap_or(f64::NAN)).collect();
                let yp = stats::youden(&sv, &yb).map_err(|e| StageError::new(format!("stage `{stage}`, cohort `{fit_on}`, column `{label}`: cannot fit the Youden threshold of `{score_name}`: {e}")))?;
                let _ = writeln!(
                    log,
                    "Youden threshold of {score_name} for {label} on {fit_on}: {} (J = {})",
                    yp.threshold, yp.j
                );
                Ok((yp.threshold, dropped))
            }
            None => Err(StageError::new(format!(
                "stage `{stage}`: `score` needs a `threshold`"
            ))),
        }
    }

    /// Follow-up times of `rows` (finite, non-negative; `None` where missing).
    fn times(
        &self,
        st: &Study,
        rows: &[usize],
        name: &str,
    ) -> Result<Vec<Option<f64>>, StageError> {
        let stage = &st.stage;
        let times = st.numbers(&self.time, rows, name)?;
        let bad: Vec<String> = rows
            .iter()
            .zip(&times)
            .filter(|(_, t)| t.is_some_and(|t| t < 0.0 || !t.is_finite()))
            .map(|(&r, t)| format!("{} ({})", st.ids[r], num(t.unwrap_or(f64::NAN))))
            .collect();
        if !bad.is_empty() {
            return Err(StageError::new(format!("stage `{stage}`, cohort `{name}`, column `{}`: survival times must be finite and non-negative: {}", self.time, study::list_ids(&bad))));
        }
        Ok(times)
    }

    /// Event indicators of `rows` (1 event, 0 censored, `None` where missing).
    fn events(
        &self,
        st: &Study,
        rows: &[usize],
        name: &str,
    ) -> Result<Vec<Option<f64>>, StageError> {
        let stage = &st.stage;
        let (ev, ce) = (text_of(&self.event.value), text_of(&self.event.censored));
        let cells = st.cells(&self.event.column)?;
        let mut unexpected = Vec::new();
        let events: Vec<Option<f64>> = rows
            .iter()
            .map(|&r| {
                let t = match &cells[r] {
                    study::Cell::Missing => return None,
                    study::Cell::Number(x) => num(*x),
                    study::Cell::Text(t) => t.clone(),
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
        Ok(events)
    }

    /// The grouping of `rows`: the column (or score) it comes from, each
    /// row's group as an index into the levels, and the levels.
    fn grouping(
        &self,
        st: &Study,
        inputs: &[super::InputArtifact],
        rows: &[usize],
        name: &str,
        cut: Option<(f64, &ScoreSource)>,
    ) -> Result<Grouping, StageError> {
        let stage = &st.stage;
        Ok(match (cut, &self.group) {
            (Some((t, source)), _) => {
                let s = study::score_values(st, inputs, source, rows, name)?;
                let bad: Vec<String> = rows
                    .iter()
                    .zip(&s)
                    .filter(|(_, x)| x.is_some_and(|x| !x.is_finite()))
                    .map(|(&r, _)| st.ids[r].clone())
                    .collect();
                if !bad.is_empty() {
                    return Err(StageError::new(format!(
                        "stage `{stage}`, cohort `{name}`, score `{}`: not a finite number for {}",
                        self.score.as_deref().unwrap_or(""),
                        study::list_ids(&bad)
                    )));
                }
                let g = s
                    .iter()
                    .map(|x| x.map(|x| if x >= t { 1.0 } else { 0.0 }))
                    .collect();
                (
                    self.score.clone().unwrap_or_default(),
                    g,
                    vec!["low".into(), "high".into()],
                )
            }
            (None, Some(col)) => {
                let text = st.text(col)?;
                let mut lv: Vec<String> = rows.iter().filter_map(|&r| text[r].clone()).collect();
                lv.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
                    (Ok(x), Ok(y)) => x.total_cmp(&y),
                    _ => a.cmp(b),
                });
                lv.dedup();
                let g = rows
                    .iter()
                    .map(|&r| {
                        text[r]
                            .as_ref()
                            .and_then(|v| lv.iter().position(|l| l == v))
                            .map(|i| i as f64)
                    })
                    .collect();
                (col.clone(), g, lv)
            }
            (None, None) => {
                return Err(StageError::new(format!(
                    "stage `{stage}`: give `group` or `score`"
                )))
            }
        })
    }

    /// One cohort's complete cases by group; `None` (with a note) when a
    /// cut-off fitted on another cohort leaves one of its groups empty.
    fn cohort(
        &self,
        st: &Study,
        inputs: &[super::InputArtifact],
        name: &str,
        cut: Option<(f64, &ScoreSource)>,
        notes: &mut Vec<Rich>,
    ) -> Result<Option<Cohort>, StageError> {
        let stage = &st.stage;
        let rows = st.rows_of(name)?;
        let times = self.times(st, &rows, name)?;
        let events = self.events(st, &rows, name)?;
        // Groups as numbers: index into `levels`.
        let (group_col, group_vals, levels) = self.grouping(st, inputs, &rows, name, cut)?;
        let (keep, dropped) = study::apply_missing(
            st,
            self.missing,
            name,
            &rows,
            &[
                (self.time.as_str(), &times),
                (self.event.column.as_str(), &events),
                (group_col.as_str(), &group_vals),
            ],
        )?;
        let group: Vec<usize> = keep
            .iter()
            .map(|&k| group_vals[k].unwrap_or(0.0) as usize)
            .collect();
        for (i, l) in levels.iter().enumerate() {
            if !group.contains(&i) {
                let what = format!(
                    "group `{l}` is empty{}",
                    if cut.is_some() {
                        format!(" (threshold {})", num(cut.map(|c| c.0).unwrap_or(f64::NAN)))
                    } else {
                        String::new()
                    }
                );
                // A cut-off fitted on another cohort may leave a validation
                // cohort on one side: that is a finding, not an error.
                if let Some(SurvivalThreshold::Youden { fit_on, .. }) = &self.threshold {
                    if fit_on != name {
                        let threshold = cut
                            .map(|c| format!(" (threshold {})", num(c.0)))
                            .unwrap_or_default();
                        notes.push(
                            Rich::new()
                                .text("cohort ")
                                .code(name)
                                .text(": group ")
                                .code(l.as_str())
                                .text(format!(" is empty{threshold}, the cut-off fitted on "))
                                .code(fit_on.as_str())
                                .text(" puts all its patients on one side, so there is no Kaplan-Meier comparison, log-rank test or hazard ratio"),
                        );
                        return Ok(None);
                    }
                }
                return Err(StageError::new(format!(
                    "stage `{stage}`, cohort `{name}`, column `{group_col}`: {what}"
                )));
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
    x.filter(|v| v.is_finite())
        .map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "NR".into())
}

fn p_text(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
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
            (Some(_), Some(_), _) => diags.push(Diagnostic::new(
                ctx.origin(stage, &["score"]),
                format!("stage `{stage}`: give either `group` or `score`, not both"),
            )),
            (None, Some(_), None) => diags.push(
                Diagnostic::new(
                    ctx.origin(stage, &["score"]),
                    format!("stage `{stage}`: `score` needs a `threshold`"),
                )
                .hint("e.g. threshold: { rule: youden, fit_on: train, label: pdl1_high }"),
            ),
            (Some(_), None, Some(_)) => diags.push(Diagnostic::new(
                ctx.origin(stage, &["threshold"]),
                format!("stage `{stage}`: `threshold` applies to `score`, not to `group`"),
            )),
            (None, None, _) => diags.push(Diagnostic::new(
                ctx.origin(stage, &[]),
                format!("stage `{stage}`: give `group` (a column) or `score` with `threshold`"),
            )),
        }
        if let Some(s) = &self.score {
            diags.0.extend(study::check_score_input(
                ctx,
                stage,
                &inputs,
                s,
                s,
                &["score"],
            ));
        }
        diags
            .0
            .extend(study::check_cohorts(ctx, stage, &inputs, &self.cohorts));
        match &self.threshold {
            Some(SurvivalThreshold::Youden { fit_on, .. }) => diags.0.extend(
                study::check_group_name(ctx, stage, &inputs, fit_on, &["threshold", "fit_on"]),
            ),
            Some(SurvivalThreshold::Fixed { value }) if !value.is_finite() => {
                diags.push(Diagnostic::new(
                    ctx.origin(stage, &["threshold", "value"]),
                    format!("stage `{stage}`: the threshold must be finite"),
                ))
            }
            _ => {}
        }
        study::into_result(diags)?;
        let params = serde_json::to_value(self).map_err(|e| {
            Diagnostics::from(Diagnostic::new(ctx.origin(stage, &[]), e.to_string()))
        })?;
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
        let mut results = Vec::new();
        for co in &cohorts {
            results.push(self.analyse(&stage, co, ctx.log)?);
        }
        for co in &cohorts {
            dropped.extend(
                co.dropped
                    .iter()
                    .map(|(id, col)| (co.name.clone(), id.clone(), col.clone())),
            );
        }
        for note in &notes {
            let _ = writeln!(ctx.log, "note: {}", note.markdown(false));
        }
        let metrics: Vec<Metric> = results.iter().flat_map(|r| r.metrics(&stage)).collect();
        let out = ctx.out_dir;
        study::write_metrics(out, &metrics, ctx.key)?;
        table_csv(&results)?.write(out)?;
        study::write_tables(
            out,
            &self.document(&stage, &results, cut.map(|c| c.0), dropped.len(), notes),
        )?;
        study::write_patients(
            out,
            cohorts
                .iter()
                .map(|c| (c.name.as_str(), c.patients.as_slice())),
        )?;
        km_csv(&results)?.write(out)?;
        if self.missing == Missing::Drop {
            study::write_dropped(out, &dropped)?;
        }
        for r in &results {
            study::write(
                out,
                &format!("km_{}.svg", study::slug(&r.co.name)),
                &r.figure(&self.time),
            )?;
        }
        Ok(())
    }
}

/// The hazard ratio of a group against the reference.
enum Hazard {
    /// The reference group itself.
    Reference,
    /// The Cox model could not be fitted (why).
    NotEstimable(String),
    /// HR with its 95% CI and Wald p.
    Estimate {
        hr: f64,
        lower: f64,
        upper: f64,
        p: f64,
    },
}

/// One group of one cohort.
struct GroupResult {
    level: String,
    /// The group's follow-up times.
    times: Vec<f64>,
    events: usize,
    km: KaplanMeier,
    hazard: Hazard,
}

/// One cohort's results.
struct CohortResult<'a> {
    co: &'a Cohort,
    logrank: LogRank,
    /// Why the Cox model (hence the HRs and the C-index) is undefined, if it is.
    cox_failure: Option<String>,
    c_index: Option<f64>,
    follow_up: MedianFollowUp,
    km: KaplanMeier,
    groups: Vec<GroupResult>,
}

impl Survival {
    /// Log-rank, Cox model, C-index, follow-up and Kaplan-Meier per group of one cohort.
    fn analyse<'a>(
        &self,
        stage: &str,
        co: &'a Cohort,
        log: &mut dyn std::io::Write,
    ) -> Result<CohortResult<'a>, StageError> {
        let c = &co.name;
        let n = co.times.len();
        let err = |what: &str, e: stats::StatsError| {
            StageError::new(format!(
                "stage `{stage}`, cohort `{c}`, column `{}`: {what}: {e}",
                self.time
            ))
        };
        let logrank =
            logrank_test(&co.times, &co.events, &co.group).map_err(|e| err("log-rank test", e))?;
        let others: Vec<usize> = (0..co.levels.len())
            .filter(|&i| i != co.reference)
            .collect();
        let indicators: Vec<Vec<f64>> = others
            .iter()
            .map(|&l| co.group.iter().map(|&g| (g == l) as u8 as f64).collect())
            .collect();
        let cols: Vec<&[f64]> = indicators.iter().map(|v| v.as_slice()).collect();
        // A group without events has no finite hazard ratio (the fit diverges):
        // the HRs and the C-index are then reported as undefined, with the reason.
        let cox = match cox_ph(&co.times, &co.events, &cols, &CoxOptions::default()) {
            Ok(fit) => Ok(fit),
            Err(e) => {
                let _ = writeln!(log, "{c}: Cox model not estimable: {e}");
                Err(format!("not estimable: {e}"))
            }
        };
        let c_index = match &cox {
            Ok(fit) => Some(
                harrell_c(&co.times, &fit.linear_predictor(&cols), &co.events)
                    .map_err(|e| err("C-index", e))?
                    .c_index,
            ),
            Err(_) => None,
        };
        let follow_up =
            median_follow_up(&co.times, &co.events).map_err(|e| err("median follow-up", e))?;
        let km = kaplan_meier(&co.times, &co.events, LEVEL).map_err(|e| err("Kaplan-Meier", e))?;
        let mut groups = Vec::new();
        for (l, level) in co.levels.iter().enumerate() {
            let idx: Vec<usize> = (0..n).filter(|&i| co.group[i] == l).collect();
            let times: Vec<f64> = idx.iter().map(|&i| co.times[i]).collect();
            let e: Vec<bool> = idx.iter().map(|&i| co.events[i]).collect();
            let group_km = kaplan_meier(&times, &e, LEVEL)
                .map_err(|e| err(&format!("Kaplan-Meier of group `{level}`"), e))?;
            let hazard = match (others.iter().position(|&o| o == l), &cox) {
                (None, _) => Hazard::Reference,
                (Some(_), Err(why)) => Hazard::NotEstimable(why.clone()),
                (Some(k), Ok(fit)) => Hazard::Estimate {
                    hr: fit.hazard_ratio[k],
                    lower: fit.hr_lower[k],
                    upper: fit.hr_upper[k],
                    p: fit.p_value[k],
                },
            };
            groups.push(GroupResult {
                level: level.clone(),
                events: e.iter().filter(|b| **b).count(),
                times,
                km: group_km,
                hazard,
            });
        }
        let _ = writeln!(
            log,
            "{c}: n = {n}, log-rank chi2 = {} (p = {}), C = {:?}",
            logrank.statistic, logrank.p_value, c_index
        );
        Ok(CohortResult {
            co,
            logrank,
            cox_failure: cox.err(),
            c_index,
            follow_up,
            km,
            groups,
        })
    }

    /// The table, what it shows, how the groups were made, dropped patients and notes.
    fn document(
        &self,
        stage: &str,
        results: &[CohortResult],
        cut: Option<f64>,
        dropped: usize,
        notes: Vec<Rich>,
    ) -> Document {
        let mut table = Table::with_headers(
            "Survival by cohort and group",
            &[
            "Cohort",
            "Group",
            "n",
            "Events",
            "Median survival (95% CI)",
            "HR (95% CI)",
            "Cox p",
            "Log-rank p",
        ],
        );
        for r in results {
            table.rows.extend(r.groups.iter().map(|g| r.row(stage, g)));
        }
        let mut doc = Document::default();
        doc.push(Block::Table(table));
        let mut lines = vec![Rich::from(
            "Median survival by Kaplan-Meier (NR: not reached) with log-log 95% CI; HR from a Cox model (Efron ties) against the reference group; log-rank test across all groups.",
        )];
        if let Some(t) = cut {
            lines.push(
                Rich::new()
                    .text("Groups: ")
                    .code(self.score.as_deref().unwrap_or(""))
                    .text(format!(" >= {} is high, below is low.", num(t))),
            );
        }
        doc.push(Block::Paragraph(lines));
        if dropped > 0 {
            doc.paragraph(study::dropped_note(dropped));
        }
        for note in notes {
            doc.paragraph(Rich::new().text("Note: ").then(note).text("."));
        }
        doc
    }
}

impl CohortResult<'_> {
    fn id(&self, stage: &str, subject: &str, metric: &str) -> String {
        format!("{stage}/{}/{subject}/{metric}", self.co.name)
    }

    /// `<group>_vs_<reference>`.
    fn pair(&self, g: &GroupResult) -> String {
        format!("{}_vs_{}", g.level, self.co.levels[self.co.reference])
    }

    /// The cohort's metrics, in `metrics.json` order.
    fn metrics(&self, stage: &str) -> Vec<Metric> {
        let n = self.co.times.len();
        let id = |g: &str, m: &str| self.id(stage, g, m);
        let lr = &self.logrank;
        let median = |m: Metric, km: &KaplanMeier| {
            m.ci(
                km.median.lower.unwrap_or(f64::NAN),
                km.median.upper.unwrap_or(f64::NAN),
            )
            .method("Kaplan-Meier, log-log CI")
        };
        let mut out = vec![
            Metric::new(id("all", "logrank_chisq"), lr.statistic, n)
                .method(format!("log-rank, {} df", lr.df)),
            Metric::new(id("all", "logrank_p"), lr.p_value, n)
                .method(format!("log-rank, {} df", lr.df)),
            Metric::opt(id("all", "c_index"), self.c_index, n).method(match &self.cox_failure {
                None => "Harrell, Cox linear predictor of the groups".to_string(),
                Some(why) => format!("Harrell; Cox model {why}"),
            }),
            median(
                Metric::opt(id("all", "median_survival"), self.km.median.estimate, n),
                &self.km,
            ),
            Metric::opt(id("all", "median_followup"), self.follow_up.median, n)
                .method("reverse Kaplan-Meier"),
            Metric::opt(id("all", "followup_q1"), self.follow_up.q1, n)
                .method("reverse Kaplan-Meier"),
            Metric::opt(id("all", "followup_q3"), self.follow_up.q3, n)
                .method("reverse Kaplan-Meier"),
        ];
        for g in &self.groups {
            let size = g.times.len();
            out.push(median(
                Metric::opt(id(&g.level, "median_survival"), g.km.median.estimate, size),
                &g.km,
            ));
            let pair = self.pair(g);
            match &g.hazard {
                Hazard::Reference => {}
                Hazard::NotEstimable(why) => {
                    out.push(
                        Metric::opt(id(&pair, "hr"), None, n).method(format!("Cox PH, {why}")),
                    );
                    out.push(
                        Metric::opt(id(&pair, "cox_p"), None, n).method(format!("Cox PH, {why}")),
                    );
                }
                Hazard::Estimate {
                    hr,
                    lower,
                    upper,
                    p,
                } => {
                    out.push(
                        Metric::new(id(&pair, "hr"), *hr, n)
                            .ci(*lower, *upper)
                            .method("Cox PH, Efron ties, Wald CI"),
                    );
                    out.push(Metric::new(id(&pair, "cox_p"), *p, n).method("Cox PH, Wald test"));
                }
            }
            out.push(Metric::new(id(&g.level, "n"), size as f64, size));
            out.push(Metric::new(id(&g.level, "events"), g.events as f64, size));
        }
        out
    }

    /// A group's row of the table, every number cited.
    fn row(&self, stage: &str, g: &GroupResult) -> Vec<Cell> {
        let id = |s: &str, m: &str| self.id(stage, s, m);
        let median_id = id(&g.level, "median_survival");
        let median: Cell = match g.km.median.estimate {
            Some(m) => Rich::new()
                .cite(&median_id, format!("{m:.2}"))
                .text(" (")
                .cite(&median_id, f2(g.km.median.lower))
                .text("–")
                .cite(&median_id, f2(g.km.median.upper))
                .text(")")
                .into(),
            None => "NR".into(),
        };
        let pair = self.pair(g);
        let hr_id = id(&pair, "hr");
        let (hr, p): (Cell, Cell) = match &g.hazard {
            Hazard::Estimate {
                hr,
                lower,
                upper,
                p,
            } => (
                if hr.is_finite() {
                    Rich::new()
                        .cite(&hr_id, format!("{hr:.2}"))
                        .text(" (")
                        .cite(&hr_id, format!("{lower:.2}"))
                        .text("–")
                        .cite(&hr_id, format!("{upper:.2}"))
                        .text(")")
                        .into()
                } else {
                    "not estimable".into()
                },
                Rich::new().cite(&id(&pair, "cox_p"), p_text(*p)).into(),
            ),
            Hazard::NotEstimable(_) => ("not estimable".into(), Rich::new().text("").into()),
            Hazard::Reference => ("reference".into(), Rich::new().text("").into()),
        };
        vec![
            self.co.name.as_str().into(),
            g.level.as_str().into(),
            Rich::new().cite(&id(&g.level, "n"), g.times.len()).into(),
            Rich::new().cite(&id(&g.level, "events"), g.events).into(),
            median,
            hr,
            p,
            Rich::new()
                .cite(&id("all", "logrank_p"), p_text(self.logrank.p_value))
                .into(),
        ]
    }

    /// Kaplan-Meier curves of the groups with the numbers at risk.
    fn figure(&self, time: &str) -> String {
        let x_max = self.co.times.iter().cloned().fold(0.0, f64::max).max(1e-9);
        let x_end = nice_range(0.0, x_max).1;
        let xt = ticks(0.0, x_end);
        let mut series = Vec::new();
        let mut at_risk = Vec::new();
        for g in &self.groups {
            let mut pts = vec![(0.0, 1.0)];
            pts.extend(g.km.steps.iter().map(|s| (s.time, s.survival)));
            if let Some(last) = g.times.iter().cloned().reduce(f64::max) {
                pts.push((last, g.km.survival_at(last)));
            }
            series.push(Series {
                name: format!("{} (n = {})", g.level, g.times.len()),
                points: pts,
                step: true,
                dashed: false,
            });
            at_risk.push((
                g.level.clone(),
                xt.iter()
                    .map(|&x| g.times.iter().filter(|&&ti| ti >= x).count().to_string())
                    .collect(),
            ));
        }
        let chart = Chart {
            title: format!(
                "Kaplan-Meier, {} (log-rank p = {})",
                self.co.name,
                p_text(self.logrank.p_value)
            ),
            x_label: time.to_string(),
            y_label: "survival probability".into(),
            x_range: (0.0, x_end),
            y_range: (0.0, 1.0),
            series,
            table: at_risk,
            table_title: "Number at risk".into(),
        };
        chart.render()
    }
}

/// `table.csv`: one row per cohort and group, numbers in full precision.
fn table_csv(results: &[CohortResult]) -> Result<Csv, StageError> {
    let header = [
        "cohort",
        "group",
        "n",
        "events",
        "median_survival",
        "median_lower",
        "median_upper",
        "hr",
        "hr_lower",
        "hr_upper",
        "cox_p",
        "logrank_chisq",
        "logrank_p",
        "c_index",
        "median_followup",
    ];
    let mut csv = Csv::new("table.csv", &header)?;
    for r in results {
        for g in &r.groups {
            let (hr, lower, upper, p) = match &g.hazard {
                Hazard::Estimate {
                    hr,
                    lower,
                    upper,
                    p,
                } => (num(*hr), num(*lower), num(*upper), num(*p)),
                Hazard::Reference | Hazard::NotEstimable(_) => Default::default(),
            };
            let m = &g.km.median;
            csv.row([
                r.co.name.clone(),
                g.level.clone(),
                g.times.len().to_string(),
                g.events.to_string(),
                opt_num(m.estimate),
                opt_num(m.lower),
                opt_num(m.upper),
                hr,
                lower,
                upper,
                p,
                num(r.logrank.statistic),
                num(r.logrank.p_value),
                opt_num(r.c_index),
                opt_num(r.follow_up.median),
            ])?;
        }
    }
    Ok(csv)
}

/// `km.csv`: every group's Kaplan-Meier steps, from (0, 1).
fn km_csv(results: &[CohortResult]) -> Result<Csv, StageError> {
    let mut csv = Csv::new(
        "km.csv",
        &[
            "cohort",
            "group",
            "time",
            "n_at_risk",
            "n_events",
            "n_censored",
            "survival",
            "se",
            "lower",
            "upper",
        ],
    )?;
    for r in results {
        let c = &r.co.name;
        for g in &r.groups {
            csv.row([
                c.clone(),
                g.level.clone(),
                "0".into(),
                g.times.len().to_string(),
                "0".into(),
                "0".into(),
                "1".into(),
                "0".into(),
                "1".into(),
                "1".into(),
            ])?;
            for s in &g.km.steps {
                csv.row([
                    c.clone(),
                    g.level.clone(),
                    num(s.time),
                    s.n_at_risk.to_string(),
                    s.n_events.to_string(),
                    s.n_censored.to_string(),
                    num(s.survival),
                    num(s.se),
                    num(s.lower_loglog),
                    num(s.upper_loglog),
                ])?;
            }
        }
    }
    Ok(csv)
}
