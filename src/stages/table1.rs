//! `kind: table1`: clinical characteristics by group with the appropriate test
//! (the study's Table 1).
//!
//! ```yaml
//! table1:
//!   kind: table1
//!   input: [ingest, split]
//!   by: [train, internal, external]      # cohorts or partitions; or a column: `by: sex`
//!   tests: study                          # or auto (default)
//!   variables:
//!     - { column: age, name: "Age, years", type: continuous, summary: mean_sd }
//!     - { column: t_stage, name: T stage, type: categorical }
//!   missing: refuse                       # or drop
//!   normality_alpha: 0.05
//! ```
//!
//! Continuous variables are summarised per group as mean ± SD (sample SD) or
//! median (IQR; quartiles by linear interpolation, as NumPy's default), by the
//! variable's `summary`: `mean_sd`, `median_iqr`, or `normality` (mean ± SD
//! when Shapiro-Wilk rejects normality in no group, p >= `normality_alpha`,
//! else median (IQR)). The test policy `tests`:
//! - `study`, the study's tests: the summary decides, mean ± SD with Student's
//!   t-test (two groups; pooled variance, R's `t.test(var.equal = TRUE)`) or
//!   one-way ANOVA (three or more), median (IQR) with the Mann-Whitney U test
//!   or the Kruskal-Wallis test. Every continuous variable states its
//!   `summary` (a plan error otherwise), so no pretest switches a test unless
//!   `summary: normality` asks for one.
//! - `auto` (default): Shapiro-Wilk in every group picks the test, Welch's
//!   t-test (two groups) or one-way ANOVA when no group rejects normality,
//!   else Mann-Whitney U or Kruskal-Wallis; the summary follows the same
//!   pretest unless the variable sets `summary`.
//!
//! Mann-Whitney U is exact for small samples without ties (smaller group <= 8,
//! SciPy's rule), else the normal approximation with tie and continuity
//! correction (R's `wilcox.test(exact = FALSE, correct = TRUE)`).
//! Categorical variables, under both policies: n (%) of the group's
//! non-missing values; chi-square (Yates' correction for 2x2 tables, as
//! SciPy's and R's defaults) when every expected count is at least 5, else
//! Fisher's exact test (2x2) or the Fisher-Freeman-Halton test (exact, or
//! 100 000 seeded Monte-Carlo tables beyond 10^7 tables). Each p-value carries
//! the mark of its test, named in a footnote; the rules follow the table.
//! Under `missing: drop`, a missing value leaves the patient out of that
//! variable only, counted in a `missing` row and listed in `dropped.csv`; with
//! `by: <column>`, a patient lacking the grouping value is in no group,
//! counted as `<stage>/all/<column>/missing`, noted under the table and listed
//! in `dropped.csv` (e.g. patients unclassifiable for a landmark label).
//!
//! Metric ids: `<stage>/<group>/patients`, `<stage>/<group>/<column>/{n,mean,sd,median,q1,q3,missing}`,
//! `<stage>/<group>/<column>/<value>` (count; `n` is the group's non-missing)
//! and `<stage>/<group>/<column>/<value>_pct`, and the test as
//! `<stage>/all/<column>/{statistic,p_value}` (`method` names the test).
//! Outputs: `metrics.json`, `table.csv`, `table.md`, `table.linked.md` (the same with every number cited, for the report) and `dropped.csv` when patients were dropped.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::study::{self, num, Csv, Metric, Missing, Study};
use super::{InputRef, Inputs, NodeDecl, RunContext, Stage, StageError};
use crate::report::table::{Block, Cell, Document, Footnote, Rich, Table};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_stats::hypothesis::{
    chi_square, compare_groups, fisher_exact, fisher_exact_rxc, kruskal_wallis, mann_whitney_u,
    one_way_anova, shapiro_wilk, t_test, Alternative, FisherRxcMethod, GroupTest, MwuMethod,
};

pub const VERSION: u32 = 3;
const MAX_TABLES: u64 = 10_000_000;
const RESAMPLES: u64 = 100_000;
const SEED: u64 = 1;

/// Clinical characteristics by group with tests; one node.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Table1 {
    /// The ingest stage and any split stages whose partitions are used.
    pub input: Inputs,
    /// The groups: a list of cohorts or partitions, or a column whose values are the groups.
    pub by: By,
    /// With `by: <column>`: the cohorts or partitions whose patients are included (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohorts: Option<Vec<String>>,
    /// The test policy: `auto` (default; a Shapiro-Wilk pretest picks each continuous
    /// variable's test) or `study` (the variable's `summary` decides: Student's t-test or
    /// one-way ANOVA for mean ± SD, Mann-Whitney U or Kruskal-Wallis for median (IQR)).
    #[serde(default, skip_serializing_if = "TestPolicy::is_auto")]
    pub tests: TestPolicy,
    /// The rows of the table.
    pub variables: Vec<Variable>,
    /// Missing values: `refuse` (default) or `drop` (per variable, counted and listed).
    #[serde(default)]
    pub missing: Missing,
    /// Shapiro-Wilk level below which a group counts as not normal (default 0.05).
    #[serde(default = "default_alpha")]
    pub normality_alpha: f64,
}

fn default_alpha() -> f64 {
    0.05
}

/// The groups compared.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum By {
    /// Cohorts or split partitions, e.g. `[train, internal, external]`.
    Groups(Vec<String>),
    /// A column of the ingested table.
    Column(String),
}

/// One characteristic.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub column: String,
    /// Display name (default: the column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: VariableKind,
    /// Continuous variables: `mean_sd`, `median_iqr` or `normality` (by a Shapiro-Wilk
    /// pretest). Under `tests: study` it decides the test and is required; under `auto` it
    /// sets the summary only (default `normality`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VariableKind {
    Continuous,
    Categorical,
}

/// How the tests of continuous variables are chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestPolicy {
    /// Shapiro-Wilk in every group: Welch's t-test or one-way ANOVA when no group rejects
    /// normality, else Mann-Whitney U or Kruskal-Wallis.
    #[default]
    Auto,
    /// The study's tests, by the variable's `summary`: mean ± SD with Student's t-test (two
    /// groups) or one-way ANOVA, median (IQR) with Mann-Whitney U or Kruskal-Wallis.
    Study,
}

impl TestPolicy {
    fn is_auto(&self) -> bool {
        *self == TestPolicy::Auto
    }
}

/// The summary of a continuous variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SummaryKind {
    /// Mean ± SD (sample SD).
    MeanSd,
    /// Median (IQR), quartiles by linear interpolation.
    MedianIqr,
    /// Mean ± SD when Shapiro-Wilk rejects normality (p < `normality_alpha`) in no group,
    /// else median (IQR).
    Normality,
}

fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let var = if x.len() > 1 {
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        f64::NAN
    };
    (m, var.sqrt())
}

fn p_text(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}


/// Footnote marks, in the order they are listed (Student's t-test last, so that the
/// marks of `tests: auto` tables stay as they were).
const TESTS: [(&str, &str); 8] = [
    ("a", "Welch's t-test"),
    ("b", "one-way ANOVA"),
    ("c", "Mann-Whitney U test"),
    ("d", "Kruskal-Wallis test"),
    ("e", "chi-square test (Yates' correction for 2x2 tables)"),
    ("f", "Fisher's exact test"),
    ("g", "Fisher-Freeman-Halton exact test"),
    ("h", "Student's t-test"),
];

fn mark(test: &str) -> &'static str {
    TESTS
        .iter()
        .find(|(_, t)| *t == test)
        .map(|(m, _)| *m)
        .unwrap_or("")
}

impl Stage for Table1 {
    fn kind(&self) -> &'static str {
        "table1"
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
        match &self.by {
            By::Groups(g) => {
                if g.is_empty() {
                    diags.push(Diagnostic::new(
                        ctx.origin(stage, &["by"]),
                        format!("stage `{stage}`: `by` lists no groups"),
                    ));
                }
                for (i, c) in g.iter().enumerate() {
                    diags.0.extend(study::check_group_name(
                        ctx,
                        stage,
                        &inputs,
                        c,
                        &["by", &i.to_string()],
                    ));
                }
                if self.cohorts.is_some() {
                    diags.push(Diagnostic::new(ctx.origin(stage, &["cohorts"]), format!("stage `{stage}`: `cohorts` applies to `by: <column>`; with a list of groups, list them in `by`")));
                }
            }
            By::Column(_) => {
                for (i, c) in self.cohorts.iter().flatten().enumerate() {
                    diags.0.extend(study::check_group_name(
                        ctx,
                        stage,
                        &inputs,
                        c,
                        &["cohorts", &i.to_string()],
                    ));
                }
            }
        }
        if self.variables.is_empty() {
            diags.push(Diagnostic::new(
                ctx.origin(stage, &["variables"]),
                format!("stage `{stage}`: `variables` is empty"),
            ));
        }
        for (i, v) in self.variables.iter().enumerate() {
            let at = ctx.origin(stage, &["variables", &i.to_string(), "summary"]);
            match (v.kind, v.summary) {
                (VariableKind::Categorical, Some(_)) => diags.push(Diagnostic::new(
                    at,
                    format!("stage `{stage}`, variable `{}`: `summary` applies to continuous variables (categorical ones are n (%))", v.column),
                )),
                (VariableKind::Continuous, None) if self.tests == TestPolicy::Study => diags.push(Diagnostic::new(
                    at,
                    format!("stage `{stage}`, variable `{}`: `tests: study` takes the test from the summary; set `summary: mean_sd` (Student's t-test / one-way ANOVA), `median_iqr` (Mann-Whitney U / Kruskal-Wallis) or `normality` (Shapiro-Wilk decides between them)", v.column),
                )),
                _ => {}
            }
        }
        if !(self.normality_alpha > 0.0 && self.normality_alpha < 1.0) {
            diags.push(Diagnostic::new(
                ctx.origin(stage, &["normality_alpha"]),
                format!("stage `{stage}`: `normality_alpha` must be in (0, 1)"),
            ));
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
        let mut dropped: Vec<(String, String, String)> = Vec::new();
        let groups = self.groups(&st, &mut dropped)?;
        let ungrouped = dropped.len();
        if groups.is_empty() {
            return Err(StageError::new(format!(
                "stage `{stage}`: no groups to describe"
            )));
        }
        let mut rows = Vec::new();
        for var in &self.variables {
            rows.push(self.describe(&st, var, &groups, &mut dropped, ctx.log)?);
        }
        let mut metrics: Vec<Metric> = groups
            .iter()
            .map(|(g, r)| Metric::new(format!("{stage}/{g}/patients"), r.len() as f64, r.len()))
            .collect();
        if let (By::Column(col), true) = (&self.by, ungrouped > 0) {
            metrics.push(Metric::new(format!("{stage}/all/{col}/missing"), ungrouped as f64, ungrouped));
        }
        for r in &rows {
            metrics.extend(r.metrics(&stage, &groups));
        }
        let out = ctx.out_dir;
        study::write_metrics(out, &metrics, ctx.key)?;
        study::write_tables(out, &self.document(&stage, &groups, &rows, ungrouped))?;
        table_csv(&stage, &groups, &rows)?.write(out)?;
        if self.missing == Missing::Drop {
            study::write_dropped(out, &dropped)?;
        }
        Ok(())
    }
}

/// The groups compared: (name, rows of the study table).
type Groups = [(String, Vec<usize>)];

/// A test across the groups.
struct Test {
    /// Its name, one of `TESTS`.
    name: &'static str,
    /// The test statistic (none for Fisher's exact tests).
    statistic: Option<f64>,
    p: f64,
    /// The patients with a value.
    n: usize,
}

/// A continuous variable in one group.
struct Summary {
    n: usize,
    mean: f64,
    sd: f64,
    median: f64,
    q1: f64,
    q3: f64,
}

/// A variable's numbers per group.
enum Described {
    /// Mean ± SD when `normal`, else median (IQR), per group.
    Continuous { normal: bool, groups: Vec<Summary> },
    /// Counts per group (outer) and level (inner), out of `present` values per group.
    Categorical {
        levels: Vec<String>,
        counts: Vec<Vec<u64>>,
        present: Vec<usize>,
    },
}

/// One variable of the table.
struct VariableRows {
    column: String,
    display: String,
    described: Described,
    test: Option<Test>,
    /// Patients lacking a value, per group.
    missing: Vec<usize>,
}

/// A variable's present values per group.
enum Values {
    Numbers(Vec<Vec<f64>>),
    Texts(Vec<Vec<String>>),
}

impl Table1 {
    /// The groups: the cohorts or partitions of `by`, or the values of its column; under
    /// `missing: drop`, the patients lacking that column's value are added to `dropped`.
    fn groups(
        &self,
        st: &Study,
        dropped: &mut Vec<(String, String, String)>,
    ) -> Result<Vec<(String, Vec<usize>)>, StageError> {
        let col = match &self.by {
            By::Groups(names) => {
                return names
                    .iter()
                    .map(|g| st.rows_of(g).map(|r| (g.clone(), r)))
                    .collect()
            }
            By::Column(col) => col,
        };
        let rows: Vec<usize> = match &self.cohorts {
            None => (0..st.ids.len()).collect(),
            Some(cs) => {
                let mut rows = Vec::new();
                for c in cs {
                    rows.extend(st.rows_of(c)?);
                }
                rows.sort();
                rows.dedup();
                rows
            }
        };
        let text = st.text(col)?;
        let lacking: Vec<&str> = rows
            .iter()
            .filter(|&&r| text[r].is_none())
            .map(|&r| st.ids[r].as_str())
            .collect();
        if !lacking.is_empty() && self.missing == Missing::Refuse {
            return Err(StageError::new(format!(
                "stage `{}`, column `{col}`: the grouping column is missing for {} patient(s): {}; fill it in or set `missing: drop`",
                st.stage,
                lacking.len(),
                study::list_ids(&lacking)
            )));
        }
        dropped.extend(
            rows.iter()
                .filter(|&&r| text[r].is_none())
                .map(|&r| (st.cohort[r].clone(), st.ids[r].clone(), col.clone())),
        );
        let mut levels: Vec<String> = rows.iter().filter_map(|&r| text[r].clone()).collect();
        study::sort_levels(&mut levels);
        Ok(levels
            .into_iter()
            .map(|l| {
                let rs = rows
                    .iter()
                    .copied()
                    .filter(|&r| text[r].as_deref() == Some(l.as_str()))
                    .collect();
                (l, rs)
            })
            .collect())
    }

    /// A variable's present values per group; the patients lacking one are
    /// refused, or counted and added to `dropped`.
    fn values(
        &self,
        st: &Study,
        var: &Variable,
        groups: &Groups,
        dropped: &mut Vec<(String, String, String)>,
    ) -> Result<(Values, Vec<usize>), StageError> {
        let col = &var.column;
        let mut missing = Vec::new();
        let (mut numbers, mut texts) = (Vec::new(), Vec::new());
        for (g, rows) in groups {
            let (lacking, present): (Vec<String>, usize) = match var.kind {
                VariableKind::Continuous => {
                    let v = st.numbers(col, rows, g)?;
                    let lacking = rows
                        .iter()
                        .zip(&v)
                        .filter(|(_, x)| x.is_none())
                        .map(|(&r, _)| st.ids[r].clone())
                        .collect();
                    numbers.push(v.into_iter().flatten().collect::<Vec<f64>>());
                    (lacking, numbers.last().map_or(0, Vec::len))
                }
                VariableKind::Categorical => {
                    let t = st.text(col)?;
                    let lacking = rows
                        .iter()
                        .filter(|&&r| t[r].is_none())
                        .map(|&r| st.ids[r].clone())
                        .collect();
                    texts.push(
                        rows.iter()
                            .filter_map(|&r| t[r].clone())
                            .collect::<Vec<String>>(),
                    );
                    (lacking, texts.last().map_or(0, Vec::len))
                }
            };
            if !lacking.is_empty() && self.missing == Missing::Refuse {
                return Err(StageError::new(format!(
                    "stage `{}`, cohort `{g}`, column `{col}`: missing values for {} patient(s): {}; fill them in, or set `missing: drop` to count them apart",
                    st.stage,
                    lacking.len(),
                    study::list_ids(&lacking)
                )));
            }
            dropped.extend(
                lacking
                    .iter()
                    .map(|id| (g.clone(), id.clone(), col.clone())),
            );
            missing.push(lacking.len());
            if present == 0 {
                return Err(StageError::new(format!(
                    "stage `{}`, cohort `{g}`, column `{col}`: no values in this group",
                    st.stage
                )));
            }
        }
        let values = match var.kind {
            VariableKind::Continuous => Values::Numbers(numbers),
            VariableKind::Categorical => Values::Texts(texts),
        };
        Ok((values, missing))
    }

    /// One variable: its numbers per group and the test across groups.
    fn describe(
        &self,
        st: &Study,
        var: &Variable,
        groups: &Groups,
        dropped: &mut Vec<(String, String, String)>,
        log: &mut dyn std::io::Write,
    ) -> Result<VariableRows, StageError> {
        let (values, missing) = self.values(st, var, groups, dropped)?;
        let err = |e: radpipe_stats::StatsError| {
            StageError::new(format!(
                "stage `{}`, column `{}`: {e}",
                st.stage, var.column
            ))
        };
        let (described, test) = match values {
            Values::Numbers(v) => self.continuous(var.summary, &v).map_err(err)?,
            Values::Texts(v) => categorical(&var.column, &v, log).map_err(err)?,
        };
        let display = var.name.clone().unwrap_or_else(|| var.column.clone());
        Ok(VariableRows {
            column: var.column.clone(),
            display,
            described,
            test,
            missing,
        })
    }

    /// Mean ± SD or median (IQR) per group, with the test, by the policy and the summary.
    fn continuous(
        &self,
        summary: Option<SummaryKind>,
        per_group: &[Vec<f64>],
    ) -> Result<(Described, Option<Test>), radpipe_stats::StatsError> {
        let slices: Vec<&[f64]> = per_group.iter().map(|v| v.as_slice()).collect();
        let n = per_group.iter().map(Vec::len).sum();
        let pretest = || {
            slices
                .iter()
                .all(|g| shapiro_wilk(g).is_ok_and(|s| s.p_value >= self.normality_alpha))
        };
        let normal = match summary.unwrap_or(SummaryKind::Normality) {
            SummaryKind::MeanSd => true,
            SummaryKind::MedianIqr => false,
            SummaryKind::Normality => pretest(),
        };
        let test = if per_group.len() < 2 {
            None
        } else {
            let (name, statistic, p) = match self.tests {
                TestPolicy::Auto => {
                    let cmp = compare_groups(&slices, self.normality_alpha)?;
                    let name = match cmp.test {
                        GroupTest::WelchT => TESTS[0].1,
                        GroupTest::Anova => TESTS[1].1,
                        GroupTest::MannWhitney => TESTS[2].1,
                        GroupTest::KruskalWallis => TESTS[3].1,
                    };
                    (name, cmp.statistic, cmp.p_value)
                }
                TestPolicy::Study => match (normal, slices.len()) {
                    (true, 2) => {
                        let t = t_test(slices[0], slices[1], false)?;
                        (TESTS[7].1, t.statistic, t.p_value)
                    }
                    (true, _) => {
                        let a = one_way_anova(&slices)?;
                        (TESTS[1].1, a.statistic, a.p_value)
                    }
                    (false, 2) => {
                        let m = mann_whitney_u(
                            slices[0],
                            slices[1],
                            Alternative::TwoSided,
                            MwuMethod::Auto,
                        )?;
                        (TESTS[2].1, m.u, m.p_value)
                    }
                    (false, _) => {
                        let k = kruskal_wallis(&slices)?;
                        (TESTS[3].1, k.statistic, k.p_value)
                    }
                },
            };
            Some(Test {
                name,
                statistic: Some(statistic),
                p,
                n,
            })
        };
        let groups = per_group
            .iter()
            .map(|v| {
                let mut s = v.clone();
                s.sort_by(f64::total_cmp);
                let (mean, sd) = mean_sd(&s);
                Summary {
                    n: s.len(),
                    mean,
                    sd,
                    median: radpipe_stats::quantile(&s, 0.5),
                    q1: radpipe_stats::quantile(&s, 0.25),
                    q3: radpipe_stats::quantile(&s, 0.75),
                }
            })
            .collect();
        Ok((Described::Continuous { normal, groups }, test))
    }

    /// The table: a header with the groups' sizes, one block of rows per
    /// variable, the tests' footnotes and the rules.
    fn document(&self, stage: &str, groups: &Groups, rows: &[VariableRows], ungrouped: usize) -> Document {
        let mut columns: Vec<Cell> = vec!["Characteristic".into()];
        columns.extend(groups.iter().map(|(g, r)| {
            Rich::new()
                .text(format!("{g} (n="))
                .cite(&format!("{stage}/{g}/patients"), r.len())
                .text(")")
                .into()
        }));
        columns.push("P value".into());
        let mut table = Table::new("Characteristics by group", columns);
        for r in rows {
            table.rows.extend(r.table_rows(stage, groups));
        }
        let used: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.test.as_ref().map(|t| t.name))
            .collect();
        let footnotes = TESTS
            .iter()
            .filter(|(_, t)| used.contains(t))
            .map(|(m, t)| Footnote {
                mark: m.to_string(),
                text: format!("{t}."),
            })
            .collect();
        let mut doc = Document::default();
        doc.push(Block::Table(table));
        doc.push(Block::Footnotes(footnotes));
        doc.paragraph(self.rules());
        if let (By::Column(col), true) = (&self.by, ungrouped > 0) {
            doc.paragraph(
                Rich::new()
                    .cite(&format!("{stage}/all/{col}/missing"), ungrouped)
                    .text(" patient(s) without a value of ")
                    .code(col)
                    .text(" are in no group (listed in ")
                    .code("dropped.csv")
                    .text(")."),
            );
        }
        doc
    }

    /// The rules paragraph under the table. Unchanged from earlier versions for `tests:
    /// auto` without per-variable summaries.
    fn rules(&self) -> String {
        let alpha = self.normality_alpha;
        let categorical = "Categorical: n (% of the group's non-missing values); chi-square when every expected count is >= 5, else Fisher's exact test.";
        match self.tests {
            TestPolicy::Auto if self.variables.iter().all(|v| v.summary.is_none()) => format!(
                "Continuous variables: mean ± SD when Shapiro-Wilk does not reject normality (p >= {alpha}) in any group, else median (IQR). {categorical}"
            ),
            TestPolicy::Auto => format!(
                "Continuous variables: the summary set per variable (mean ± SD or median (IQR)), else mean ± SD when Shapiro-Wilk does not reject normality (p >= {alpha}) in any group, else median (IQR); the test by the same Shapiro-Wilk rule (Welch's t-test or one-way ANOVA, else Mann-Whitney U or Kruskal-Wallis). {categorical}"
            ),
            TestPolicy::Study => {
                let pretest = self.variables.iter().any(|v| v.summary == Some(SummaryKind::Normality));
                format!(
                    "Continuous variables: mean ± SD compared by Student's t-test (two groups) or one-way ANOVA, median (IQR) by the Mann-Whitney U test or the Kruskal-Wallis test; the summary as set per variable{}. Categorical: n (% of the group's non-missing values); chi-square (Yates' correction for 2x2 tables) when every expected count is >= 5, else Fisher's exact test (2x2) or the Fisher-Freeman-Halton exact test.",
                    if pretest { format!(" (`normality`: mean ± SD when Shapiro-Wilk does not reject normality, p >= {alpha}, in any group)") } else { String::new() }
                )
            }
        }
    }
}

/// Counts per level and group, with chi-square or Fisher's exact test.
fn categorical(
    col: &str,
    per_group: &[Vec<String>],
    log: &mut dyn std::io::Write,
) -> Result<(Described, Option<Test>), radpipe_stats::StatsError> {
    let mut levels: Vec<String> = per_group.iter().flatten().cloned().collect();
    study::sort_levels(&mut levels);
    let counts: Vec<Vec<u64>> = per_group
        .iter()
        .map(|v| {
            levels
                .iter()
                .map(|l| v.iter().filter(|x| *x == l).count() as u64)
                .collect()
        })
        .collect();
    let present: Vec<usize> = per_group.iter().map(Vec::len).collect();
    let n = present.iter().sum();
    // Contingency table: rows = levels, columns = groups.
    let table: Vec<Vec<u64>> = (0..levels.len())
        .map(|l| counts.iter().map(|c| c[l]).collect())
        .collect();
    let groups = per_group.len();
    let test = if groups >= 2 && levels.len() >= 2 {
        let total: u64 = table.iter().flatten().sum();
        let row_sums: Vec<u64> = table.iter().map(|r| r.iter().sum()).collect();
        let col_sums: Vec<u64> = (0..groups)
            .map(|j| table.iter().map(|r| r[j]).sum())
            .collect();
        let min_expected = row_sums
            .iter()
            .flat_map(|&r| {
                col_sums
                    .iter()
                    .map(move |&c| r as f64 * c as f64 / total as f64)
            })
            .fold(f64::INFINITY, f64::min);
        Some(if min_expected >= 5.0 {
            let c = chi_square(&table, true)?;
            Test {
                name: TESTS[4].1,
                statistic: Some(c.statistic),
                p: c.p_value,
                n,
            }
        } else if levels.len() == 2 && groups == 2 {
            let f = fisher_exact(&table, 0.95)?;
            Test {
                name: TESTS[5].1,
                statistic: None,
                p: f.p_value,
                n,
            }
        } else {
            let f = fisher_exact_rxc(&table, MAX_TABLES, RESAMPLES, SEED)?;
            let how = match f.method {
                FisherRxcMethod::Exact { .. } => "exact".to_string(),
                FisherRxcMethod::MonteCarlo { resamples, seed } => {
                    format!("Monte Carlo, {resamples} tables, seed {seed}")
                }
            };
            let _ = writeln!(log, "{col}: Fisher-Freeman-Halton ({how})");
            Test {
                name: TESTS[6].1,
                statistic: None,
                p: f.p_value,
                n,
            }
        })
    } else {
        None
    };
    Ok((
        Described::Categorical {
            levels,
            counts,
            present,
        },
        test,
    ))
}

impl VariableRows {
    fn id(&self, stage: &str, group: &str, metric: &str) -> String {
        format!("{stage}/{group}/{}/{metric}", self.column)
    }

    /// The variable's metrics, in `metrics.json` order.
    fn metrics(&self, stage: &str, groups: &Groups) -> Vec<Metric> {
        let mut out = Vec::new();
        let test = |out: &mut Vec<Metric>| {
            if let Some(t) = &self.test {
                if let Some(s) = t.statistic {
                    out.push(
                        Metric::new(format!("{stage}/all/{}/statistic", self.column), s, t.n)
                            .method(t.name),
                    );
                }
                out.push(
                    Metric::new(format!("{stage}/all/{}/p_value", self.column), t.p, t.n)
                        .method(t.name),
                );
            }
        };
        match &self.described {
            Described::Continuous {
                groups: summaries, ..
            } => {
                for ((g, _), s) in groups.iter().zip(summaries) {
                    let n = s.n;
                    out.push(Metric::new(self.id(stage, g, "n"), n as f64, n));
                    out.push(Metric::new(self.id(stage, g, "mean"), s.mean, n));
                    out.push(Metric::new(self.id(stage, g, "sd"), s.sd, n));
                    out.push(Metric::new(self.id(stage, g, "median"), s.median, n));
                    out.push(
                        Metric::new(self.id(stage, g, "q1"), s.q1, n)
                            .method("linear interpolation"),
                    );
                    out.push(
                        Metric::new(self.id(stage, g, "q3"), s.q3, n)
                            .method("linear interpolation"),
                    );
                }
                test(&mut out);
            }
            Described::Categorical {
                levels,
                counts,
                present,
            } => {
                test(&mut out);
                for (l, level) in levels.iter().enumerate() {
                    for (gi, (g, _)) in groups.iter().enumerate() {
                        let (k, n) = (counts[gi][l], present[gi]);
                        out.push(Metric::new(self.id(stage, g, level), k as f64, n));
                        out.push(Metric::new(
                            self.id(stage, g, &format!("{level}_pct")),
                            pct(k, n),
                            n,
                        ));
                    }
                }
            }
        }
        for ((g, _), m) in groups.iter().zip(&self.missing) {
            out.push(Metric::new(self.id(stage, g, "missing"), *m as f64, *m));
        }
        out
    }

    /// The test's p-value with its footnote mark (empty without a test).
    fn p_cell(&self, stage: &str) -> Cell {
        match &self.test {
            Some(t) => Rich::new()
                .cite(&format!("{stage}/all/{}/p_value", self.column), p_text(t.p))
                .mark(mark(t.name))
                .into(),
            None => Rich::new().text("").into(),
        }
    }

    /// The summary (`mean ± SD`, `median (IQR)` or `n (%)`) and, for a
    /// continuous variable, its cells per group.
    fn summary_cells(&self, stage: &str, groups: &Groups) -> (&'static str, Vec<Cell>) {
        match &self.described {
            Described::Continuous {
                normal,
                groups: summaries,
            } => {
                let cells = groups
                    .iter()
                    .zip(summaries)
                    .map(|((g, _), s)| {
                        let c = |what: &str, x: f64| {
                            Rich::new().cite(&self.id(stage, g, what), format!("{x:.2}"))
                        };
                        if *normal {
                            c("mean", s.mean).text(" ± ").then(c("sd", s.sd)).into()
                        } else {
                            c("median", s.median)
                                .text(" (")
                                .then(c("q1", s.q1))
                                .text("–")
                                .then(c("q3", s.q3))
                                .text(")")
                                .into()
                        }
                    })
                    .collect();
                (
                    if *normal {
                        "mean ± SD"
                    } else {
                        "median (IQR)"
                    },
                    cells,
                )
            }
            Described::Categorical { .. } => ("n (%)", vec![Cell::blank(); groups.len()]),
        }
    }

    /// Count (%) cells of each level: (level, cells per group).
    fn level_cells(&self, stage: &str, groups: &Groups) -> Vec<(String, Vec<Cell>)> {
        let Described::Categorical {
            levels,
            counts,
            present,
        } = &self.described
        else {
            return Vec::new();
        };
        levels
            .iter()
            .enumerate()
            .map(|(l, level)| {
                let cells = groups
                    .iter()
                    .enumerate()
                    .map(|(gi, (g, _))| {
                        let k = counts[gi][l];
                        let p = pct(k, present[gi]);
                        Rich::new()
                            .cite(&self.id(stage, g, level), k)
                            .text(" (")
                            .cite(
                                &self.id(stage, g, &format!("{level}_pct")),
                                format!("{p:.2}"),
                            )
                            .text("%)")
                            .into()
                    })
                    .collect();
                (level.clone(), cells)
            })
            .collect()
    }

    /// Missing counts per group, when any is missing.
    fn missing_cells(&self, stage: &str, groups: &Groups) -> Option<Vec<Cell>> {
        self.missing.iter().any(|m| *m > 0).then(|| {
            groups
                .iter()
                .zip(&self.missing)
                .map(|((g, _), m)| Rich::new().cite(&self.id(stage, g, "missing"), m).into())
                .collect()
        })
    }

    /// The variable's rows of the table.
    fn table_rows(&self, stage: &str, groups: &Groups) -> Vec<Vec<Cell>> {
        let (summary, cells) = self.summary_cells(stage, groups);
        let mut first: Vec<Cell> = vec![format!("{}, {summary}", self.display).into()];
        first.extend(cells);
        first.push(self.p_cell(stage));
        let mut rows = vec![first];
        for (level, cells) in self.level_cells(stage, groups) {
            rows.push(
                std::iter::once(Cell::indented(level))
                    .chain(cells)
                    .chain([Cell::blank()])
                    .collect(),
            );
        }
        if let Some(cells) = self.missing_cells(stage, groups) {
            rows.push(
                std::iter::once(Cell::indented("missing"))
                    .chain(cells)
                    .chain([Cell::blank()])
                    .collect(),
            );
        }
        rows
    }
}

fn pct(k: u64, n: usize) -> f64 {
    100.0 * k as f64 / n as f64
}

/// `table.csv`: the table's cells without citations, the p-value in full precision and the test.
fn table_csv(stage: &str, groups: &Groups, rows: &[VariableRows]) -> Result<Csv, StageError> {
    let mut header = vec!["variable", "value", "summary"];
    header.extend(groups.iter().map(|(g, _)| g.as_str()));
    header.extend(["p_value", "test"]);
    let mut csv = Csv::new("table.csv", &header)?;
    let plain = |cells: Vec<Cell>| {
        cells
            .into_iter()
            .map(|c| c.content.plain())
            .collect::<Vec<_>>()
    };
    for r in rows {
        let (summary, cells) = r.summary_cells(stage, groups);
        let (p, test) = r
            .test
            .as_ref()
            .map(|t| (num(t.p), t.name.to_string()))
            .unwrap_or_default();
        let d = r.display.clone();
        csv.row(
            [d.clone(), String::new(), summary.to_string()]
                .into_iter()
                .chain(plain(cells))
                .chain([p, test]),
        )?;
        for (level, cells) in r.level_cells(stage, groups) {
            csv.row(
                [d.clone(), level, "n (%)".to_string()]
                    .into_iter()
                    .chain(plain(cells))
                    .chain([String::new(), String::new()]),
            )?;
        }
        if let Some(cells) = r.missing_cells(stage, groups) {
            csv.row(
                [d.clone(), "missing".to_string(), "n".to_string()]
                    .into_iter()
                    .chain(plain(cells))
                    .chain([String::new(), String::new()]),
            )?;
        }
    }
    Ok(csv)
}
