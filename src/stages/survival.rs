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
//!   confidence_bands: true           # shade each curve's log-log 95% CI (default false)
//!   covariates: [age, t_stage, n_stage]   # a multivariable Cox model too (default none)
//! ```
//!
//! Groups: `high` (`score >= threshold`) and `low` (the reference), or the
//! values of the `group` column (the reference is `reference:` or the first
//! value in sorted order). Per cohort: Kaplan-Meier per group (Greenwood SE,
//! log-log 95% CI; median survival as the first time S(t) <= 0.5, lifelines'
//! rule), the k-group log-rank test, a Cox model (Efron ties) with one
//! indicator per non-reference group giving each hazard ratio with its 95% CI
//! and Wald p, Harrell's C-index of the Cox linear predictor, and the median
//! follow-up by reverse Kaplan-Meier with its IQR. The table shows the Wald p
//! and the log-rank p side by side, each named in a footnote. An empty group
//! is an error, except when a Youden cut-off fitted on another cohort puts
//! every patient of a cohort on one side: that cohort is then left out with a
//! note in `table.md` (a finding about the score, not bad input).
//!
//! With `covariates`, a multivariable Cox model per cohort (Efron ties): the
//! group indicators adjusted for those clinical columns, in a table of its
//! own. A column with only numbers enters as it is (the HR is per unit); a
//! column with any text enters as one indicator per level against its first
//! level in sorted order. The complete cases are then those with every
//! covariate too (`missing:` applies), so the unadjusted and adjusted hazard
//! ratios are of the same patients. A covariate constant within a cohort is
//! an error naming the stage, cohort and column. A cohort whose design is
//! singular (a term a linear combination of the others, e.g. two sparse
//! levels on the same patients) or whose likelihood has no finite maximum
//! (e.g. a group or level without events) has its adjusted model reported as
//! not estimable with the reason (naming the term and columns), as the
//! unadjusted model is: small cohorts meet these, and the rest of the
//! analysis stands.
//!
//! Metric ids: `<stage>/<cohort>/<group>/{n,events,median_survival}`,
//! `<stage>/<cohort>/<group>_vs_<reference>/{hr,cox_p}` (`hr` carries its 95% CI),
//! `<stage>/<cohort>/all/{logrank_chisq,logrank_p,c_index,median_survival,median_followup,followup_q1,followup_q3}`,
//! and with `covariates` `<stage>/<cohort>/adjusted/<term>/{hr,cox_p}` and
//! `<stage>/<cohort>/adjusted/all/{n,events}`, where a term is
//! `<group>_vs_<reference>`, a numeric column's name, or `<column>=<level>_vs_<first level>`.
//! Outputs: `metrics.json`, `table.csv`, `table.md`, `table.linked.md` (numbers cited for the report), `patients.json` (each cohort's patients, which `radpipe lineage` follows), `km.csv`
//! (each group's steps with the Greenwood SE and log-log 95% CI), `km_<cohort>.svg` (with numbers at risk, and the bands
//! under `confidence_bands`), with `covariates` `adjusted.csv`, and under `missing: drop` `dropped.csv`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::study::{self, num, value_text, Csv, Metric, Missing, ScoreSource, Study};
use super::{InputRef, Inputs, NodeDecl, RunContext, Stage, StageError};
use crate::report::svg::{nice_range, ticks, Band, Chart, Series};
use crate::report::table::{Block, Cell, Document, Footnote, Rich, Table};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_engine::tables::EventColumn;
use radpipe_stats as stats;
use radpipe_stats::survival::{cox_ph, harrell_c, kaplan_meier, logrank_test, median_follow_up, CoxFit, CoxOptions, KaplanMeier, LogRank, MedianFollowUp};

pub const VERSION: u32 = 3;
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
    pub event: EventColumn,
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
    /// Patients lacking time, event, group or a covariate: `refuse` (default) or `drop`.
    #[serde(default)]
    pub missing: Missing,
    /// Shade each Kaplan-Meier curve's 95% confidence band (log-log, the `lower`/`upper` of `km.csv`) in the figures.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confidence_bands: bool,
    /// Clinical columns to adjust the hazard ratios for: a multivariable Cox model per cohort of the group indicators
    /// plus these columns, in a table of its own. A column of numbers enters as it is (HR per unit); a column with any
    /// text as one indicator per level against its first level in sorted order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covariates: Vec<String>,
}

fn one() -> Value {
    Value::from(1)
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

/// (cohort, patient, columns) of a patient left out under `missing: drop`.
type Dropped = (String, String, String);

/// How a cohort is grouped: the column (or score) the groups come from, each
/// row's group as an index into the levels (`None` where missing), the levels.
type Grouping = (String, Vec<Option<f64>>, Vec<String>);

/// A covariate's values over the rows of a cohort (`None` where missing).
enum RawCovariate {
    Numeric(Vec<Option<f64>>),
    Categorical(Vec<Option<String>>),
}

/// A covariate of the adjusted model over a cohort's complete cases.
enum Covariate {
    /// A column of numbers, entered as it is.
    Numeric { column: String, values: Vec<f64> },
    /// A column with text, entered as indicators of `levels[1..]` against `levels[0]`.
    Categorical { column: String, values: Vec<String>, levels: Vec<String> },
}

/// One cohort's complete cases, with group indices into `levels`.
struct Cohort {
    name: String,
    times: Vec<f64>,
    events: Vec<bool>,
    /// The column (or score) the groups come from.
    group_column: String,
    group: Vec<usize>,
    levels: Vec<String>,
    reference: usize,
    covariates: Vec<Covariate>,
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
            Some(SurvivalThreshold::Youden { fit_on, label, positive }) => {
                let rows = st.rows_of(fit_on)?;
                let pos = value_text(positive);
                let labels = st.text(label)?;
                let y: Vec<Option<f64>> = rows.iter().map(|&r| labels[r].as_ref().map(|v| (*v == pos) as u8 as f64)).collect();
                let s = study::score_values(st, inputs, source, &rows, fit_on)?;
                let score_name = self.score.clone().unwrap_or_default();
                let (keep, dropped) = study::apply_missing(st, self.missing, fit_on, &rows, &[(label.as_str(), &y), (score_name.as_str(), &s)])?;
                let dropped = if self.cohorts.contains(fit_on) { Vec::new() } else { dropped.into_iter().map(|(id, col)| (fit_on.clone(), id, col)).collect() };
                let yb: Vec<bool> = keep.iter().map(|&k| y[k] == Some(1.0)).collect();
                let sv: Vec<f64> = keep.iter().map(|&k| s[k].unwrap_or(f64::NAN)).collect();
                let yp = stats::youden(&sv, &yb).map_err(|e| {
                    StageError::new(format!("stage `{stage}`, cohort `{fit_on}`, column `{label}`: cannot fit the Youden threshold of `{score_name}`: {e}"))
                })?;
                let _ = writeln!(log, "Youden threshold of {score_name} for {label} on {fit_on}: {} (J = {})", yp.threshold, yp.j);
                Ok((yp.threshold, dropped))
            }
            None => Err(StageError::new(format!("stage `{stage}`: `score` needs a `threshold`"))),
        }
    }

    /// Follow-up times of `rows` (finite, non-negative; `None` where missing).
    fn times(&self, st: &Study, rows: &[usize], name: &str) -> Result<Vec<Option<f64>>, StageError> {
        let stage = &st.stage;
        let times = st.numbers(&self.time, rows, name)?;
        let bad: Vec<String> = rows
            .iter()
            .zip(&times)
            .filter(|(_, t)| t.is_some_and(|t| t < 0.0 || !t.is_finite()))
            .map(|(&r, t)| format!("{} ({})", st.ids[r], num(t.unwrap_or(f64::NAN))))
            .collect();
        if !bad.is_empty() {
            return Err(StageError::new(format!(
                "stage `{stage}`, cohort `{name}`, column `{}`: survival times must be finite and non-negative: {}",
                self.time,
                study::list_ids(&bad)
            )));
        }
        Ok(times)
    }

    /// Event indicators of `rows` (1 event, 0 censored, `None` where missing).
    fn events(&self, st: &Study, rows: &[usize], name: &str) -> Result<Vec<Option<f64>>, StageError> {
        let stage = &st.stage;
        let (ev, ce) = (value_text(&self.event.value), value_text(&self.event.censored));
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
                let bad: Vec<String> = rows.iter().zip(&s).filter(|(_, x)| x.is_some_and(|x| !x.is_finite())).map(|(&r, _)| st.ids[r].clone()).collect();
                if !bad.is_empty() {
                    return Err(StageError::new(format!(
                        "stage `{stage}`, cohort `{name}`, score `{}`: not a finite number for {}",
                        self.score.as_deref().unwrap_or(""),
                        study::list_ids(&bad)
                    )));
                }
                let g = s.iter().map(|x| x.map(|x| if x >= t { 1.0 } else { 0.0 })).collect();
                (self.score.clone().unwrap_or_default(), g, vec!["low".into(), "high".into()])
            }
            (None, Some(col)) => {
                let text = st.text(col)?;
                let lv = sorted_levels(rows.iter().filter_map(|&r| text[r].clone()));
                let g = rows.iter().map(|&r| text[r].as_ref().and_then(|v| lv.iter().position(|l| l == v)).map(|i| i as f64)).collect();
                (col.clone(), g, lv)
            }
            (None, None) => return Err(StageError::new(format!("stage `{stage}`: give `group` or `score`"))),
        })
    }

    /// Plan-time checks of `covariates`: each listed once, none of them the
    /// time, event or group column. (Whether the table has the column is
    /// known only when it is read: a located error then.)
    fn check_covariates(&self, ctx: &PlanContext, stage: &str) -> Vec<Diagnostic> {
        let mut roles = vec![(self.time.as_str(), "the time column"), (self.event.column.as_str(), "the event column")];
        roles.extend(self.group.as_deref().map(|g| (g, "the group column")));
        roles.extend(self.score.as_deref().map(|s| (s, "the score")));
        let mut out = Vec::new();
        for (i, c) in self.covariates.iter().enumerate() {
            let at = ctx.origin(stage, &["covariates", &i.to_string()]);
            if self.covariates[..i].contains(c) {
                out.push(Diagnostic::new(at, format!("stage `{stage}`: covariate `{c}` is listed twice")));
            } else if let Some((_, role)) = roles.iter().find(|(name, _)| name == c) {
                out.push(Diagnostic::new(at, format!("stage `{stage}`: covariate `{c}` is {role}; the groups are adjusted for other columns")));
            }
        }
        out
    }

    /// A covariate over `rows`: numbers if no cell of the column is text, else levels.
    fn raw_covariate(&self, st: &Study, rows: &[usize], name: &str, column: &str) -> Result<RawCovariate, StageError> {
        let stage = &st.stage;
        let cells = st.cells(column).map_err(|e| StageError::new(format!("{} (a column of `covariates`)", e.0)))?;
        if cells.iter().any(|c| matches!(c, study::Cell::Text(_))) {
            return Ok(RawCovariate::Categorical(
                rows.iter()
                    .map(|&r| match &cells[r] {
                        study::Cell::Missing => None,
                        study::Cell::Number(x) => Some(num(*x)),
                        study::Cell::Text(t) => Some(t.clone()),
                    })
                    .collect(),
            ));
        }
        let values: Vec<Option<f64>> = rows.iter().map(|&r| if let study::Cell::Number(x) = cells[r] { Some(x) } else { None }).collect();
        let bad: Vec<String> = rows.iter().zip(&values).filter(|(_, v)| v.is_some_and(|x| !x.is_finite())).map(|(&r, _)| st.ids[r].clone()).collect();
        if !bad.is_empty() {
            return Err(StageError::new(format!(
                "stage `{stage}`, cohort `{name}`, column `{column}`: covariate not a finite number for {}",
                study::list_ids(&bad)
            )));
        }
        Ok(RawCovariate::Numeric(values))
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
        let raw: Vec<RawCovariate> = self.covariates.iter().map(|c| self.raw_covariate(st, &rows, name, c)).collect::<Result<_, _>>()?;
        let present: Vec<Vec<Option<f64>>> = raw
            .iter()
            .map(|r| match r {
                RawCovariate::Numeric(v) => v.clone(),
                RawCovariate::Categorical(v) => v.iter().map(|x| x.as_ref().map(|_| 0.0)).collect(),
            })
            .collect();
        let mut needed: Vec<(&str, &[Option<f64>])> =
            vec![(self.time.as_str(), &times), (self.event.column.as_str(), &events), (group_col.as_str(), &group_vals)];
        needed.extend(self.covariates.iter().map(String::as_str).zip(present.iter().map(Vec::as_slice)));
        let (keep, dropped) = study::apply_missing(st, self.missing, name, &rows, &needed)?;
        let group: Vec<usize> = keep.iter().map(|&k| group_vals[k].unwrap_or(0.0) as usize).collect();
        for (i, l) in levels.iter().enumerate() {
            if !group.contains(&i) {
                let what = format!(
                    "group `{l}` is empty{}",
                    if cut.is_some() { format!(" (threshold {})", num(cut.map(|c| c.0).unwrap_or(f64::NAN))) } else { String::new() }
                );
                // A cut-off fitted on another cohort may leave a validation
                // cohort on one side: that is a finding, not an error.
                if let Some(SurvivalThreshold::Youden { fit_on, .. }) = &self.threshold {
                    if fit_on != name {
                        let threshold = cut.map(|c| format!(" (threshold {})", num(c.0))).unwrap_or_default();
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
                return Err(StageError::new(format!("stage `{stage}`, cohort `{name}`, column `{group_col}`: {what}")));
            }
        }
        if levels.len() < 2 {
            return Err(StageError::new(format!(
                "stage `{stage}`, cohort `{name}`, column `{group_col}`: need at least two groups, found {}",
                levels.join(", ")
            )));
        }
        let default_ref = levels[0].clone();
        let reference_name = self.reference.clone().unwrap_or(default_ref);
        let reference = levels.iter().position(|l| *l == reference_name).ok_or_else(|| {
            StageError::new(format!(
                "stage `{stage}`, cohort `{name}`, column `{group_col}`: the reference group `{reference_name}` is not among {}",
                levels.join(", ")
            ))
        })?;
        let covariates = self.covariates.iter().zip(raw).map(|(c, r)| covariate(stage, name, c, r, &keep)).collect::<Result<_, _>>()?;
        Ok(Some(Cohort {
            name: name.to_string(),
            times: keep.iter().map(|&k| times[k].unwrap_or(f64::NAN)).collect(),
            events: keep.iter().map(|&k| events[k] == Some(1.0)).collect(),
            group_column: group_col,
            group,
            levels,
            reference,
            covariates,
            patients: keep.iter().map(|&k| st.ids[rows[k]].clone()).collect(),
            dropped,
        }))
    }
}

/// Modified Gram-Schmidt on the centred terms: a term (numerically) in the
/// span of those before it makes the design singular; the reason names the
/// term and the columns involved.
fn check_independent(terms: &[Term]) -> Result<(), String> {
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for (j, t) in terms.iter().enumerate() {
        let mean = t.values.iter().sum::<f64>() / t.values.len().max(1) as f64;
        let mut r: Vec<f64> = t.values.iter().map(|v| v - mean).collect();
        let norm0 = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        for q in &basis {
            let d: f64 = r.iter().zip(q).map(|(a, b)| a * b).sum();
            r.iter_mut().zip(q).for_each(|(a, b)| *a -= d * b);
        }
        let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(norm > 1e-9 * norm0) {
            let mut columns: Vec<&str> = Vec::new();
            for c in terms[..=j].iter().map(|t| t.column.as_str()) {
                if !columns.contains(&c) {
                    columns.push(c);
                }
            }
            let columns: Vec<String> = columns.iter().map(|c| format!("`{c}`")).collect();
            return Err(format!("the design is singular: the term `{}` is a linear combination of the terms before it (columns {})", t.id, columns.join(", ")));
        }
        basis.push(r.iter().map(|v| v / norm).collect());
    }
    Ok(())
}

impl Covariate {
    fn column(&self) -> &str {
        match self {
            Covariate::Numeric { column, .. } | Covariate::Categorical { column, .. } => column,
        }
    }
}

/// A covariate over the complete cases `keep`; a constant one is an error (the model would be singular).
fn covariate(stage: &str, cohort: &str, column: &str, raw: RawCovariate, keep: &[usize]) -> Result<Covariate, StageError> {
    let constant = |value: String| {
        StageError::new(format!(
            "stage `{stage}`, cohort `{cohort}`, column `{column}`: every patient has the value `{value}`, so the adjusted Cox model is singular; leave `{column}` out of `covariates`"
        ))
    };
    let column = column.to_string();
    match raw {
        RawCovariate::Numeric(v) => {
            let values: Vec<f64> = keep.iter().map(|&k| v[k].unwrap_or(f64::NAN)).collect();
            match values.first() {
                Some(&x) if values.iter().all(|&y| y == x) => Err(constant(num(x))),
                _ => Ok(Covariate::Numeric { column, values }),
            }
        }
        RawCovariate::Categorical(v) => {
            let values: Vec<String> = keep.iter().map(|&k| v[k].clone().unwrap_or_default()).collect();
            let levels = sorted_levels(values.iter().cloned());
            match levels.as_slice() {
                [only] => Err(constant(only.clone())),
                _ => Ok(Covariate::Categorical { column, values, levels }),
            }
        }
    }
}

/// The distinct values in sorted order (as numbers where both parse as numbers).
fn sorted_levels(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut lv: Vec<String> = values.collect();
    study::sort_levels(&mut lv);
    lv
}

/// `HR (lower–upper)`, each number citing `metric`; "not estimable" when infinite.
fn hr_cell(metric: &str, hr: f64, lower: f64, upper: f64) -> Cell {
    if !hr.is_finite() {
        return "not estimable".into();
    }
    Rich::new().cite(metric, format!("{hr:.2}")).text(" (").cite(metric, format!("{lower:.2}")).text("–").cite(metric, format!("{upper:.2}")).text(")").into()
}

fn opt_num(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

fn f2(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite()).map(|v| format!("{v:.2}")).unwrap_or_else(|| "NR".into())
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
            (Some(_), Some(_), _) => {
                diags.push(Diagnostic::new(ctx.origin(stage, &["score"]), format!("stage `{stage}`: give either `group` or `score`, not both")))
            }
            (None, Some(_), None) => diags.push(
                Diagnostic::new(ctx.origin(stage, &["score"]), format!("stage `{stage}`: `score` needs a `threshold`"))
                    .hint("e.g. threshold: { rule: youden, fit_on: train, label: pdl1_high }"),
            ),
            (Some(_), None, Some(_)) => {
                diags.push(Diagnostic::new(ctx.origin(stage, &["threshold"]), format!("stage `{stage}`: `threshold` applies to `score`, not to `group`")))
            }
            (None, None, _) => {
                diags.push(Diagnostic::new(ctx.origin(stage, &[]), format!("stage `{stage}`: give `group` (a column) or `score` with `threshold`")))
            }
        }
        if let Some(s) = &self.score {
            diags.0.extend(study::check_score_input(ctx, stage, &inputs, s, s, &["score"]));
        }
        diags.0.extend(study::check_cohorts(ctx, stage, &inputs, &self.cohorts));
        match &self.threshold {
            Some(SurvivalThreshold::Youden { fit_on, .. }) => diags.0.extend(study::check_group_name(ctx, stage, &inputs, fit_on, &["threshold", "fit_on"])),
            Some(SurvivalThreshold::Fixed { value }) if !value.is_finite() => {
                diags.push(Diagnostic::new(ctx.origin(stage, &["threshold", "value"]), format!("stage `{stage}`: the threshold must be finite")))
            }
            _ => {}
        }
        diags.0.extend(self.check_covariates(ctx, stage));
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
        let mut results = Vec::new();
        for co in &cohorts {
            results.push(self.analyse(&stage, co, ctx.log)?);
        }
        for co in &cohorts {
            dropped.extend(co.dropped.iter().map(|(id, col)| (co.name.clone(), id.clone(), col.clone())));
        }
        for note in &notes {
            let _ = writeln!(ctx.log, "note: {}", note.markdown(false));
        }
        let metrics: Vec<Metric> = results.iter().flat_map(|r| r.metrics(&stage)).collect();
        let out = ctx.out_dir;
        study::write_metrics(out, &metrics, ctx.key)?;
        table_csv(&results)?.write(out)?;
        study::write_tables(out, &self.document(&stage, &results, cut.map(|c| c.0), dropped.len(), notes))?;
        study::write_patients(out, cohorts.iter().map(|c| (c.name.as_str(), c.patients.as_slice())))?;
        km_csv(&results)?.write(out)?;
        if !self.covariates.is_empty() {
            adjusted_csv(&results)?.write(out)?;
        }
        if self.missing == Missing::Drop {
            study::write_dropped(out, &dropped)?;
        }
        for r in &results {
            study::write(out, &format!("km_{}.svg", study::slug(&r.co.name)), &r.figure(&self.time, self.confidence_bands))?;
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
    Estimate { hr: f64, lower: f64, upper: f64, p: f64 },
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

/// One term of the adjusted model: its name in metric ids, its label, its column (or score).
struct Term {
    id: String,
    label: Rich,
    column: String,
    values: Vec<f64>,
}

/// The multivariable Cox model of one cohort: its terms, and the fit or why it is not estimable.
struct Adjusted {
    terms: Vec<Term>,
    fit: Result<CoxFit, String>,
}

/// One cohort's results.
struct CohortResult<'a> {
    co: &'a Cohort,
    events: usize,
    logrank: LogRank,
    /// Why the Cox model (hence the HRs and the C-index) is undefined, if it is.
    cox_failure: Option<String>,
    c_index: Option<f64>,
    follow_up: MedianFollowUp,
    km: KaplanMeier,
    groups: Vec<GroupResult>,
    /// With `covariates`: the group indicators adjusted for them.
    adjusted: Option<Adjusted>,
}

impl Survival {
    /// Log-rank, Cox model, C-index, follow-up and Kaplan-Meier per group of one cohort.
    fn analyse<'a>(&self, stage: &str, co: &'a Cohort, log: &mut dyn std::io::Write) -> Result<CohortResult<'a>, StageError> {
        let c = &co.name;
        let n = co.times.len();
        let err = |what: &str, e: stats::StatsError| StageError::new(format!("stage `{stage}`, cohort `{c}`, column `{}`: {what}: {e}", self.time));
        let logrank = logrank_test(&co.times, &co.events, &co.group).map_err(|e| err("log-rank test", e))?;
        let others: Vec<usize> = (0..co.levels.len()).filter(|&i| i != co.reference).collect();
        let indicators: Vec<Vec<f64>> = others.iter().map(|&l| co.group.iter().map(|&g| (g == l) as u8 as f64).collect()).collect();
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
            Ok(fit) => Some(harrell_c(&co.times, &fit.linear_predictor(&cols), &co.events).map_err(|e| err("C-index", e))?.c_index),
            Err(_) => None,
        };
        let follow_up = median_follow_up(&co.times, &co.events).map_err(|e| err("median follow-up", e))?;
        let km = kaplan_meier(&co.times, &co.events, LEVEL).map_err(|e| err("Kaplan-Meier", e))?;
        let mut groups = Vec::new();
        for (l, level) in co.levels.iter().enumerate() {
            let idx: Vec<usize> = (0..n).filter(|&i| co.group[i] == l).collect();
            let times: Vec<f64> = idx.iter().map(|&i| co.times[i]).collect();
            let e: Vec<bool> = idx.iter().map(|&i| co.events[i]).collect();
            let group_km = kaplan_meier(&times, &e, LEVEL).map_err(|e| err(&format!("Kaplan-Meier of group `{level}`"), e))?;
            let hazard = match (others.iter().position(|&o| o == l), &cox) {
                (None, _) => Hazard::Reference,
                (Some(_), Err(why)) => Hazard::NotEstimable(why.clone()),
                (Some(k), Ok(fit)) => Hazard::Estimate { hr: fit.hazard_ratio[k], lower: fit.hr_lower[k], upper: fit.hr_upper[k], p: fit.p_value[k] },
            };
            groups.push(GroupResult { level: level.clone(), events: e.iter().filter(|b| **b).count(), times, km: group_km, hazard });
        }
        let _ = writeln!(log, "{c}: n = {n}, log-rank chi2 = {} (p = {}), C = {:?}", logrank.statistic, logrank.p_value, c_index);
        let adjusted = self.adjusted(stage, co, &others, indicators, log);
        Ok(CohortResult { co, events: co.events.iter().filter(|e| **e).count(), logrank, cox_failure: cox.err(), c_index, follow_up, km, groups, adjusted })
    }

    /// The multivariable Cox model of the group indicators (`indicators`, of
    /// the levels `others`) and the covariates; `None` without covariates.
    fn adjusted(&self, stage: &str, co: &Cohort, others: &[usize], indicators: Vec<Vec<f64>>, log: &mut dyn std::io::Write) -> Option<Adjusted> {
        if co.covariates.is_empty() {
            return None;
        }
        let reference = &co.levels[co.reference];
        let mut terms: Vec<Term> = others
            .iter()
            .zip(indicators)
            .map(|(&l, values)| Term {
                id: format!("{}_vs_{reference}", co.levels[l]),
                label: Rich::new().text(format!("{} vs {reference}", co.levels[l])),
                column: co.group_column.clone(),
                values,
            })
            .collect();
        for c in &co.covariates {
            match c {
                Covariate::Numeric { column, values } => terms.push(Term {
                    id: column.clone(),
                    label: Rich::new().code(column.as_str()).text(", per unit"),
                    column: column.clone(),
                    values: values.clone(),
                }),
                Covariate::Categorical { column, values, levels } => terms.extend(levels[1..].iter().map(|l| Term {
                    id: format!("{column}={l}_vs_{}", levels[0]),
                    label: Rich::new().code(column.as_str()).text(format!(" {l} vs {}", levels[0])),
                    column: column.clone(),
                    values: values.iter().map(|v| (v == l) as u8 as f64).collect(),
                })),
            }
        }
        let cols: Vec<&[f64]> = terms.iter().map(|t| t.values.as_slice()).collect();
        let fit =
            check_independent(&terms).and_then(|()| cox_ph(&co.times, &co.events, &cols, &CoxOptions::default()).map_err(|e| e.to_string())).map_err(|why| {
                let _ = writeln!(log, "stage `{stage}`, cohort `{}`: adjusted Cox model not estimable: {why}", co.name);
                format!("not estimable: {why}")
            });
        Some(Adjusted { terms, fit })
    }

    /// The tables (by group; with `covariates` the adjusted model), what they
    /// show, how the groups were made, dropped patients, notes and footnotes.
    fn document(&self, stage: &str, results: &[CohortResult], cut: Option<f64>, dropped: usize, notes: Vec<Rich>) -> Document {
        let header = |text: &str, mark: &str| Cell::from(Rich::new().text(text).mark(mark));
        let mut table = Table::new(
            "Survival by cohort and group",
            vec![
                "Cohort".into(),
                "Group".into(),
                "n".into(),
                "Events".into(),
                "Median survival (95% CI)".into(),
                "HR (95% CI)".into(),
                header("Wald p", "a"),
                header("Log-rank p", "b"),
                header("Median follow-up (IQR)", "c"),
            ],
        );
        for r in results {
            table.rows.extend(r.groups.iter().enumerate().map(|(i, g)| r.row(stage, g, i == 0)));
        }
        let mut doc = Document::default();
        doc.push(Block::Table(table));
        let mut lines = vec![Rich::new()
            .text("Median survival by Kaplan-Meier (NR: not reached) with log-log 95% CI; HR from a Cox model (Efron ties) against the reference group; times in ")
            .code(self.time.as_str())
            .text(".")];
        if let Some(t) = cut {
            lines.push(Rich::new().text("Groups: ").code(self.score.as_deref().unwrap_or("")).text(format!(" >= {t:.3} is high, below is low.")));
        }
        doc.push(Block::Paragraph(lines));
        if !self.covariates.is_empty() {
            self.adjusted_tables(stage, results, &mut doc);
        }
        if dropped > 0 {
            doc.paragraph(study::dropped_note(dropped));
        }
        for note in notes {
            doc.paragraph(Rich::new().text("Note: ").then(note).text("."));
        }
        doc.push(Block::Footnotes(vec![
            Footnote { mark: "a".into(), text: "Wald test of the Cox coefficient: the hazard ratio's own test.".into() },
            Footnote {
                mark: "b".into(),
                text: "Log-rank test of equal survival across all the cohort's groups (k - 1 df): the comparison of the Kaplan-Meier curves; with two groups it tests the same null hypothesis as the Wald p.".into(),
            },
            Footnote {
                mark: "c".into(),
                text: "Median follow-up of the cohort (all groups) by reverse Kaplan-Meier (censoring as the event), with the interquartile range.".into(),
            },
        ]));
        doc
    }

    /// The adjusted model's table and what it shows.
    fn adjusted_tables(&self, stage: &str, results: &[CohortResult], doc: &mut Document) {
        let columns: Vec<&str> = self.covariates.iter().map(String::as_str).collect();
        let mut table = Table::new(
            format!("Multivariable Cox model by cohort: the groups adjusted for {}", columns.join(", ")),
            vec!["Cohort".into(), "Term".into(), "n".into(), "Events".into(), "HR (95% CI)".into(), Cell::from(Rich::new().text("Wald p").mark("a"))],
        );
        let mut failures = Vec::new();
        for r in results {
            let Some(a) = &r.adjusted else { continue };
            if let Err(why) = &a.fit {
                failures.push(Rich::new().text("cohort ").code(r.co.name.as_str()).text(format!(": the adjusted model is {why}")));
            }
            table.rows.extend(a.terms.iter().enumerate().map(|(k, t)| r.adjusted_row(stage, a, k, t)));
        }
        doc.push(Block::Table(table));
        let mut lines = vec![Rich::new().text(
            "Cox model (Efron ties) of the group indicators and the covariates together, on the same patients as the table above. A column of numbers enters as it is (HR per unit); a column with text as one indicator per level against its first level in sorted order.",
        )];
        lines.extend(failures.into_iter().map(|f| Rich::new().text("Note: ").then(f).text(".")));
        doc.push(Block::Paragraph(lines));
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
        let median =
            |m: Metric, km: &KaplanMeier| m.ci(km.median.lower.unwrap_or(f64::NAN), km.median.upper.unwrap_or(f64::NAN)).method("Kaplan-Meier, log-log CI");
        let mut out = vec![
            Metric::new(id("all", "logrank_chisq"), lr.statistic, n).method(format!("log-rank, {} df", lr.df)),
            Metric::new(id("all", "logrank_p"), lr.p_value, n).method(format!("log-rank, {} df", lr.df)),
            Metric::opt(id("all", "c_index"), self.c_index, n).method(match &self.cox_failure {
                None => "Harrell, Cox linear predictor of the groups".to_string(),
                Some(why) => format!("Harrell; Cox model {why}"),
            }),
            median(Metric::opt(id("all", "median_survival"), self.km.median.estimate, n), &self.km),
            Metric::opt(id("all", "median_followup"), self.follow_up.median, n).method("reverse Kaplan-Meier"),
            Metric::opt(id("all", "followup_q1"), self.follow_up.q1, n).method("reverse Kaplan-Meier"),
            Metric::opt(id("all", "followup_q3"), self.follow_up.q3, n).method("reverse Kaplan-Meier"),
        ];
        for g in &self.groups {
            let size = g.times.len();
            out.push(median(Metric::opt(id(&g.level, "median_survival"), g.km.median.estimate, size), &g.km));
            let pair = self.pair(g);
            match &g.hazard {
                Hazard::Reference => {}
                Hazard::NotEstimable(why) => {
                    out.push(Metric::opt(id(&pair, "hr"), None, n).method(format!("Cox PH, {why}")));
                    out.push(Metric::opt(id(&pair, "cox_p"), None, n).method(format!("Cox PH, {why}")));
                }
                Hazard::Estimate { hr, lower, upper, p } => {
                    out.push(Metric::new(id(&pair, "hr"), *hr, n).ci(*lower, *upper).method("Cox PH, Efron ties, Wald CI"));
                    out.push(Metric::new(id(&pair, "cox_p"), *p, n).method("Cox PH, Wald test"));
                }
            }
            out.push(Metric::new(id(&g.level, "n"), size as f64, size));
            out.push(Metric::new(id(&g.level, "events"), g.events as f64, size));
        }
        if let Some(a) = &self.adjusted {
            out.extend(self.adjusted_metrics(stage, a));
        }
        out
    }

    /// The adjusted model's metrics: `adjusted/all/{n,events}`, then `adjusted/<term>/{hr,cox_p}`.
    fn adjusted_metrics(&self, stage: &str, a: &Adjusted) -> Vec<Metric> {
        let n = self.co.times.len();
        let id = |term: &str, m: &str| self.id(stage, &format!("adjusted/{term}"), m);
        let columns: Vec<&str> = self.co.covariates.iter().map(|c| c.column()).collect();
        let model = format!("Cox PH adjusted for {}, Efron ties", columns.join(", "));
        let mut out = vec![Metric::new(id("all", "n"), n as f64, n), Metric::new(id("all", "events"), self.events as f64, n)];
        for (k, t) in a.terms.iter().enumerate() {
            match &a.fit {
                Ok(fit) => {
                    out.push(Metric::new(id(&t.id, "hr"), fit.hazard_ratio[k], n).ci(fit.hr_lower[k], fit.hr_upper[k]).method(format!("{model}, Wald CI")));
                    out.push(Metric::new(id(&t.id, "cox_p"), fit.p_value[k], n).method(format!("{model}, Wald test")));
                }
                Err(why) => {
                    out.push(Metric::opt(id(&t.id, "hr"), None, n).method(format!("{model}, {why}")));
                    out.push(Metric::opt(id(&t.id, "cox_p"), None, n).method(format!("{model}, {why}")));
                }
            }
        }
        out
    }

    /// A term's row of the adjusted table (n and events on the cohort's first row), every number cited.
    fn adjusted_row(&self, stage: &str, a: &Adjusted, k: usize, t: &Term) -> Vec<Cell> {
        let id = |term: &str, m: &str| self.id(stage, &format!("adjusted/{term}"), m);
        let count = |m: &str, v: usize| if k == 0 { Rich::new().cite(&id("all", m), v).into() } else { Cell::blank() };
        let (hr, p): (Cell, Cell) = match &a.fit {
            Ok(fit) => (
                hr_cell(&id(&t.id, "hr"), fit.hazard_ratio[k], fit.hr_lower[k], fit.hr_upper[k]),
                Rich::new().cite(&id(&t.id, "cox_p"), p_text(fit.p_value[k])).into(),
            ),
            Err(_) => ("not estimable".into(), Cell::blank()),
        };
        vec![self.co.name.as_str().into(), t.label.clone().into(), count("n", self.co.times.len()), count("events", self.events), hr, p]
    }

    /// A group's row of the table, every number cited: the Wald and log-rank
    /// p beside each hazard ratio, the cohort's follow-up on its `first` row.
    fn row(&self, stage: &str, g: &GroupResult, first: bool) -> Vec<Cell> {
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
        let logrank: Cell = Rich::new().cite(&id("all", "logrank_p"), p_text(self.logrank.p_value)).into();
        let (hr, p, logrank): (Cell, Cell, Cell) = match &g.hazard {
            Hazard::Estimate { hr, lower, upper, p } => {
                (hr_cell(&id(&pair, "hr"), *hr, *lower, *upper), Rich::new().cite(&id(&pair, "cox_p"), p_text(*p)).into(), logrank)
            }
            Hazard::NotEstimable(_) => ("not estimable".into(), Cell::blank(), logrank),
            Hazard::Reference => ("reference".into(), Cell::blank(), Cell::blank()),
        };
        let fu = &self.follow_up;
        let follow_up: Cell = match (first, fu.median) {
            (false, _) => Cell::blank(),
            (true, None) => "NR".into(),
            (true, Some(m)) => {
                let cite = |metric: &str, v: Option<f64>| Rich::new().cite(&id("all", metric), f2(v));
                cite("median_followup", Some(m)).text(" (").then(cite("followup_q1", fu.q1)).text("–").then(cite("followup_q3", fu.q3)).text(")").into()
            }
        };
        vec![
            self.co.name.as_str().into(),
            g.level.as_str().into(),
            Rich::new().cite(&id(&g.level, "n"), g.times.len()).into(),
            Rich::new().cite(&id(&g.level, "events"), g.events).into(),
            median,
            hr,
            p,
            logrank,
            follow_up,
        ]
    }

    /// Kaplan-Meier curves of the groups with the numbers at risk, and with
    /// `bands` each curve's log-log 95% confidence band shaded.
    fn figure(&self, time: &str, bands: bool) -> String {
        let x_max = self.co.times.iter().cloned().fold(0.0, f64::max).max(1e-9);
        let x_end = nice_range(0.0, x_max).1;
        let xt = ticks(0.0, x_end);
        let mut series = Vec::new();
        let mut shaded = Vec::new();
        let mut at_risk = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            let mut pts = vec![(0.0, 1.0)];
            pts.extend(g.km.steps.iter().map(|s| (s.time, s.survival)));
            let mut band = vec![(0.0, 1.0, 1.0)];
            band.extend(g.km.steps.iter().map(|s| (s.time, s.lower_loglog, s.upper_loglog)));
            if let Some(last) = g.times.iter().cloned().reduce(f64::max) {
                pts.push((last, g.km.survival_at(last)));
                if let Some(&(_, lo, hi)) = band.last() {
                    band.push((last, lo, hi));
                }
            }
            if bands {
                shaded.push(Band { series: i, points: band, step: true });
            }
            series.push(Series { name: format!("{} (n = {})", g.level, g.times.len()), points: pts, step: true, dashed: false });
            at_risk.push((g.level.clone(), xt.iter().map(|&x| g.times.iter().filter(|&&ti| ti >= x).count().to_string()).collect()));
        }
        let chart = Chart {
            title: format!("Kaplan-Meier, {} (log-rank p = {}{})", self.co.name, p_text(self.logrank.p_value), if bands { "; shaded: 95% CI" } else { "" }),
            x_label: time.to_string(),
            y_label: "survival probability".into(),
            x_range: (0.0, x_end),
            y_range: (0.0, 1.0),
            series,
            table: at_risk,
            table_title: "Number at risk".into(),
        };
        chart.render_with_bands(&shaded)
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
        "followup_q1",
        "followup_q3",
    ];
    let mut csv = Csv::new("table.csv", &header)?;
    for r in results {
        for g in &r.groups {
            let (hr, lower, upper, p) = match &g.hazard {
                Hazard::Estimate { hr, lower, upper, p } => (num(*hr), num(*lower), num(*upper), num(*p)),
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
                opt_num(r.follow_up.q1),
                opt_num(r.follow_up.q3),
            ])?;
        }
    }
    Ok(csv)
}

/// `adjusted.csv`: one row per cohort and term of the adjusted model, numbers in full precision.
fn adjusted_csv(results: &[CohortResult]) -> Result<Csv, StageError> {
    let mut csv = Csv::new("adjusted.csv", &["cohort", "term", "n", "events", "coef", "se", "hr", "hr_lower", "hr_upper", "cox_p"])?;
    for r in results {
        let Some(a) = &r.adjusted else { continue };
        for (k, t) in a.terms.iter().enumerate() {
            let numbers: Vec<String> = match &a.fit {
                Ok(fit) => [fit.coef[k], fit.se[k], fit.hazard_ratio[k], fit.hr_lower[k], fit.hr_upper[k], fit.p_value[k]].into_iter().map(num).collect(),
                Err(_) => vec![String::new(); 6],
            };
            let mut row = vec![r.co.name.clone(), t.id.clone(), r.co.times.len().to_string(), r.events.to_string()];
            row.extend(numbers);
            csv.row(row)?;
        }
    }
    Ok(csv)
}

/// `km.csv`: every group's Kaplan-Meier steps, from (0, 1).
fn km_csv(results: &[CohortResult]) -> Result<Csv, StageError> {
    let mut csv = Csv::new("km.csv", &["cohort", "group", "time", "n_at_risk", "n_events", "n_censored", "survival", "se", "lower", "upper"])?;
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
