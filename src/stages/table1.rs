//! `kind: table1`: clinical characteristics by group with the appropriate test
//! (the study's Table 1).
//!
//! ```yaml
//! table1:
//!   kind: table1
//!   input: [ingest, split]
//!   by: [train, internal, external]      # cohorts or partitions; or a column: `by: sex`
//!   variables:
//!     - { column: age, name: "Age, years", type: continuous }
//!     - { column: t_stage, name: T stage, type: categorical }
//!   missing: refuse                       # or drop
//!   normality_alpha: 0.05
//! ```
//!
//! Continuous variables: Shapiro-Wilk in every group decides (all p >=
//! `normality_alpha`): mean ± SD (sample SD) with Welch's t-test (two groups)
//! or one-way ANOVA, else median (IQR; quartiles by linear interpolation, as
//! NumPy's default) with Mann-Whitney U or Kruskal-Wallis. Categorical
//! variables: n (%) of the group's non-missing values; chi-square (Yates'
//! correction for 2x2 tables, as SciPy's and R's defaults) when every expected
//! count is at least 5, else Fisher's exact test (2x2) or the
//! Fisher-Freeman-Halton test (exact, or 100 000 seeded Monte-Carlo tables
//! beyond 10^7 tables). The test used is named in a footnote.
//! Under `missing: drop`, a missing value leaves the patient out of that
//! variable only, counted in a `missing` row and listed in `dropped.csv`.
//!
//! Metric ids: `<stage>/<group>/patients`, `<stage>/<group>/<column>/{n,mean,sd,median,q1,q3,missing}`,
//! `<stage>/<group>/<column>/<value>` (count; `n` is the group's non-missing)
//! and `<stage>/<group>/<column>/<value>_pct`, and the test as
//! `<stage>/all/<column>/{statistic,p_value}` (`method` names the test).
//! Outputs: `metrics.json`, `table.csv`, `table.md`, `table.linked.md` (the same with every number cited, for the report) and `dropped.csv` when patients were dropped.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

use super::study::{self, csv_field, num, Metric, Missing, Study};
use super::{Inputs, InputRef, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_stats::hypothesis::{chi_square, compare_groups, fisher_exact, fisher_exact_rxc, shapiro_wilk, FisherRxcMethod, GroupTest};

pub const VERSION: u32 = 2;
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VariableKind {
    Continuous,
    Categorical,
}

/// Quantile by linear interpolation between order statistics (NumPy's default, R type 7).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let var = if x.len() > 1 { x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0) } else { f64::NAN };
    (m, var.sqrt())
}

fn p_text(p: f64) -> String {
    if p < 0.001 { "<0.001".into() } else { format!("{p:.3}") }
}

fn sort_levels(v: &mut Vec<String>) {
    v.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    });
    v.dedup();
}

/// Footnote marks, in the order they are listed.
const TESTS: [(&str, &str); 7] = [
    ("a", "Welch's t-test"),
    ("b", "one-way ANOVA"),
    ("c", "Mann-Whitney U test"),
    ("d", "Kruskal-Wallis test"),
    ("e", "chi-square test (Yates' correction for 2x2 tables)"),
    ("f", "Fisher's exact test"),
    ("g", "Fisher-Freeman-Halton exact test"),
];

fn mark(test: &str) -> &'static str {
    TESTS.iter().find(|(_, t)| *t == test).map(|(m, _)| *m).unwrap_or("")
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
                    diags.push(Diagnostic::new(ctx.origin(stage, &["by"]), format!("stage `{stage}`: `by` lists no groups")));
                }
                for (i, c) in g.iter().enumerate() {
                    diags.0.extend(study::check_group_name(ctx, stage, &inputs, c, &["by", &i.to_string()]));
                }
                if self.cohorts.is_some() {
                    diags.push(Diagnostic::new(ctx.origin(stage, &["cohorts"]), format!("stage `{stage}`: `cohorts` applies to `by: <column>`; with a list of groups, list them in `by`")));
                }
            }
            By::Column(_) => {
                for (i, c) in self.cohorts.iter().flatten().enumerate() {
                    diags.0.extend(study::check_group_name(ctx, stage, &inputs, c, &["cohorts", &i.to_string()]));
                }
            }
        }
        if self.variables.is_empty() {
            diags.push(Diagnostic::new(ctx.origin(stage, &["variables"]), format!("stage `{stage}`: `variables` is empty")));
        }
        if !(self.normality_alpha > 0.0 && self.normality_alpha < 1.0) {
            diags.push(Diagnostic::new(ctx.origin(stage, &["normality_alpha"]), format!("stage `{stage}`: `normality_alpha` must be in (0, 1)")));
        }
        study::into_result(diags)?;
        let params = serde_json::to_value(self).map_err(|e| Diagnostics::from(Diagnostic::new(ctx.origin(stage, &[]), e.to_string())))?;
        Ok(vec![NodeDecl::single(params)])
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let stage = ctx.node_id.to_string();
        let st = Study::load(&stage, ctx.inputs)?;
        // The groups: (name, rows).
        let groups: Vec<(String, Vec<usize>)> = match &self.by {
            By::Groups(names) => names.iter().map(|g| st.rows_of(g).map(|r| (g.clone(), r))).collect::<Result<_, _>>()?,
            By::Column(col) => {
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
                let lacking: Vec<&str> = rows.iter().filter(|&&r| text[r].is_none()).map(|&r| st.ids[r].as_str()).collect();
                if !lacking.is_empty() && self.missing == Missing::Refuse {
                    return Err(StageError::new(format!(
                        "stage `{stage}`, column `{col}`: the grouping column is missing for {} patient(s): {}; fill it in or set `missing: drop`",
                        lacking.len(),
                        study::list_ids(&lacking)
                    )));
                }
                let mut levels: Vec<String> = rows.iter().filter_map(|&r| text[r].clone()).collect();
                sort_levels(&mut levels);
                levels.into_iter().map(|l| {
                    let rs = rows.iter().copied().filter(|&r| text[r].as_deref() == Some(l.as_str())).collect();
                    (l, rs)
                }).collect()
            }
        };
        if groups.is_empty() {
            return Err(StageError::new(format!("stage `{stage}`: no groups to describe")));
        }
        let mut metrics = Vec::new();
        let mut dropped: Vec<(String, String, String)> = Vec::new();
        let mut used_tests: Vec<&str> = Vec::new();
        for (g, r) in &groups {
            metrics.push(Metric::new(format!("{stage}/{g}/patients"), r.len() as f64, r.len()));
        }
        let header_groups: Vec<String> = groups.iter().map(|(g, r)| format!("{g} (n={})", study::cite(&format!("{stage}/{g}/patients"), r.len()))).collect();
        let mut md = format!("| Characteristic | {} | P value |\n|---|{}---|\n", header_groups.join(" | "), "---|".repeat(groups.len()));
        let mut csv = format!("variable,value,summary,{},p_value,test\n", groups.iter().map(|(g, _)| csv_field(g)).collect::<Vec<_>>().join(","));

        for var in &self.variables {
            let col = &var.column;
            let display = var.name.clone().unwrap_or_else(|| col.clone());
            let id = |g: &str, m: &str| format!("{stage}/{g}/{col}/{m}");
            // Per group: the non-missing values, and the patients lacking one.
            let mut missing_counts = Vec::new();
            let mut per_group_text: Vec<Vec<String>> = Vec::new();
            let mut per_group_num: Vec<Vec<f64>> = Vec::new();
            for (g, rows) in &groups {
                let (vals, lacking): (Vec<Option<f64>>, Vec<String>) = match var.kind {
                    VariableKind::Continuous => {
                        let v = st.numbers(col, rows, g)?;
                        let lacking = rows.iter().zip(&v).filter(|(_, x)| x.is_none()).map(|(&r, _)| st.ids[r].clone()).collect();
                        (v, lacking)
                    }
                    VariableKind::Categorical => {
                        let t = st.text(col)?;
                        let lacking = rows.iter().filter(|&&r| t[r].is_none()).map(|&r| st.ids[r].clone()).collect();
                        per_group_text.push(rows.iter().filter_map(|&r| t[r].clone()).collect());
                        (Vec::new(), lacking)
                    }
                };
                if !lacking.is_empty() && self.missing == Missing::Refuse {
                    return Err(StageError::new(format!(
                        "stage `{stage}`, cohort `{g}`, column `{col}`: missing values for {} patient(s): {}; fill them in, or set `missing: drop` to count them apart",
                        lacking.len(),
                        study::list_ids(&lacking)
                    )));
                }
                dropped.extend(lacking.iter().map(|id| (g.clone(), id.clone(), col.clone())));
                missing_counts.push(lacking.len());
                if var.kind == VariableKind::Continuous {
                    per_group_num.push(vals.into_iter().flatten().collect());
                }
                let present = if var.kind == VariableKind::Continuous { per_group_num.last().map_or(0, Vec::len) } else { per_group_text.last().map_or(0, Vec::len) };
                if present == 0 {
                    return Err(StageError::new(format!("stage `{stage}`, cohort `{g}`, column `{col}`: no values in this group")));
                }
            }
            match var.kind {
                VariableKind::Continuous => {
                    let slices: Vec<&[f64]> = per_group_num.iter().map(|v| v.as_slice()).collect();
                    let (normal, test) = if groups.len() >= 2 {
                        let cmp = compare_groups(&slices, self.normality_alpha).map_err(|e| StageError::new(format!("stage `{stage}`, column `{col}`: {e}")))?;
                        let name = match cmp.test {
                            GroupTest::WelchT => TESTS[0].1,
                            GroupTest::Anova => TESTS[1].1,
                            GroupTest::MannWhitney => TESTS[2].1,
                            GroupTest::KruskalWallis => TESTS[3].1,
                        };
                        let normal = matches!(cmp.test, GroupTest::WelchT | GroupTest::Anova);
                        (normal, Some((name, cmp.statistic, cmp.p_value)))
                    } else {
                        (shapiro_wilk(slices[0]).is_ok_and(|s| s.p_value >= self.normality_alpha), None)
                    };
                    let mut cells = Vec::new();
                    for ((g, _), v) in groups.iter().zip(&per_group_num) {
                        let mut s = v.clone();
                        s.sort_by(f64::total_cmp);
                        let (m, sd) = mean_sd(&s);
                        let (q1, med, q3) = (quantile(&s, 0.25), quantile(&s, 0.5), quantile(&s, 0.75));
                        let n = s.len();
                        metrics.push(Metric::new(id(g, "n"), n as f64, n));
                        metrics.push(Metric::new(id(g, "mean"), m, n));
                        metrics.push(Metric::new(id(g, "sd"), sd, n));
                        metrics.push(Metric::new(id(g, "median"), med, n));
                        metrics.push(Metric::new(id(g, "q1"), q1, n).method("linear interpolation"));
                        metrics.push(Metric::new(id(g, "q3"), q3, n).method("linear interpolation"));
                        let c = |what: &str, x: f64| study::cite(&id(g, what), format!("{x:.2}"));
                        cells.push(if normal { format!("{} ± {}", c("mean", m), c("sd", sd)) } else { format!("{} ({}–{})", c("median", med), c("q1", q1), c("q3", q3)) });
                    }
                    let summary = if normal { "mean ± SD" } else { "median (IQR)" };
                    let (p_cell, p_csv, t_csv) = match test {
                        Some((name, stat, p)) => {
                            if !used_tests.contains(&name) {
                                used_tests.push(name);
                            }
                            metrics.push(Metric::new(format!("{stage}/all/{col}/statistic"), stat, per_group_num.iter().map(Vec::len).sum()).method(name));
                            metrics.push(Metric::new(format!("{stage}/all/{col}/p_value"), p, per_group_num.iter().map(Vec::len).sum()).method(name));
                            (format!("{}<sup>{}</sup>", study::cite(&format!("{stage}/all/{col}/p_value"), p_text(p)), mark(name)), num(p), name.to_string())
                        }
                        None => (String::new(), String::new(), String::new()),
                    };
                    let _ = writeln!(md, "| {display}, {summary} | {} | {p_cell} |", cells.join(" | "));
                    let _ = writeln!(csv, "{},,{},{},{p_csv},{}", csv_field(&display), csv_field(summary), cells.iter().map(|c| csv_field(&study::strip_citations(c))).collect::<Vec<_>>().join(","), csv_field(&t_csv));
                }
                VariableKind::Categorical => {
                    let mut levels: Vec<String> = per_group_text.iter().flatten().cloned().collect();
                    sort_levels(&mut levels);
                    let counts: Vec<Vec<u64>> = per_group_text.iter().map(|v| levels.iter().map(|l| v.iter().filter(|x| *x == l).count() as u64).collect()).collect();
                    // Contingency table: rows = levels, columns = groups.
                    let table: Vec<Vec<u64>> = (0..levels.len()).map(|l| counts.iter().map(|c| c[l]).collect()).collect();
                    let test = if groups.len() >= 2 && levels.len() >= 2 {
                        let total: u64 = table.iter().flatten().sum();
                        let row_sums: Vec<u64> = table.iter().map(|r| r.iter().sum()).collect();
                        let col_sums: Vec<u64> = (0..groups.len()).map(|j| table.iter().map(|r| r[j]).sum()).collect();
                        let min_expected = row_sums.iter().flat_map(|&r| col_sums.iter().map(move |&c| r as f64 * c as f64 / total as f64)).fold(f64::INFINITY, f64::min);
                        let err = |e| StageError::new(format!("stage `{stage}`, column `{col}`: {e}"));
                        if min_expected >= 5.0 {
                            let c = chi_square(&table, true).map_err(err)?;
                            Some((TESTS[4].1, Some(c.statistic), c.p_value))
                        } else if levels.len() == 2 && groups.len() == 2 {
                            let f = fisher_exact(&table, 0.95).map_err(err)?;
                            Some((TESTS[5].1, None, f.p_value))
                        } else {
                            let f = fisher_exact_rxc(&table, MAX_TABLES, RESAMPLES, SEED).map_err(err)?;
                            let name = TESTS[6].1;
                            let how = match f.method {
                                FisherRxcMethod::Exact { .. } => "exact".to_string(),
                                FisherRxcMethod::MonteCarlo { resamples, seed } => format!("Monte Carlo, {resamples} tables, seed {seed}"),
                            };
                            let _ = writeln!(ctx.log, "{col}: Fisher-Freeman-Halton ({how})");
                            Some((name, None, f.p_value))
                        }
                    } else {
                        None
                    };
                    let (p_cell, p_csv, t_csv) = match test {
                        Some((name, stat, p)) => {
                            if !used_tests.contains(&name) {
                                used_tests.push(name);
                            }
                            let n: usize = per_group_text.iter().map(Vec::len).sum();
                            if let Some(s) = stat {
                                metrics.push(Metric::new(format!("{stage}/all/{col}/statistic"), s, n).method(name));
                            }
                            metrics.push(Metric::new(format!("{stage}/all/{col}/p_value"), p, n).method(name));
                            (format!("{}<sup>{}</sup>", study::cite(&format!("{stage}/all/{col}/p_value"), p_text(p)), mark(name)), num(p), name.to_string())
                        }
                        None => (String::new(), String::new(), String::new()),
                    };
                    let _ = writeln!(md, "| {display}, n (%) |{} {p_cell} |", " |".repeat(groups.len()));
                    let _ = writeln!(csv, "{},,n (%),{},{p_csv},{}", csv_field(&display), vec![""; groups.len()].join(","), csv_field(&t_csv));
                    for (l, level) in levels.iter().enumerate() {
                        let mut cells = Vec::new();
                        for (gi, (g, _)) in groups.iter().enumerate() {
                            let n = per_group_text[gi].len();
                            let k = counts[gi][l];
                            let pct = 100.0 * k as f64 / n as f64;
                            metrics.push(Metric::new(id(g, level), k as f64, n));
                            metrics.push(Metric::new(id(g, &format!("{level}_pct")), pct, n));
                            cells.push(format!("{} ({}%)", study::cite(&id(g, level), k), study::cite(&id(g, &format!("{level}_pct")), format!("{pct:.2}"))));
                        }
                        let _ = writeln!(md, "| &nbsp;&nbsp;{level} | {} | |", cells.join(" | "));
                        let _ = writeln!(csv, "{},{},n (%),{},,", csv_field(&display), csv_field(level), cells.iter().map(|c| csv_field(&study::strip_citations(c))).collect::<Vec<_>>().join(","));
                    }
                }
            }
            for ((g, _), m) in groups.iter().zip(&missing_counts) {
                metrics.push(Metric::new(id(g, "missing"), *m as f64, *m));
            }
            if missing_counts.iter().any(|m| *m > 0) {
                let cells: Vec<String> = groups.iter().zip(&missing_counts).map(|((g, _), m)| study::cite(&id(g, "missing"), m)).collect();
                let _ = writeln!(md, "| &nbsp;&nbsp;missing | {} | |", cells.join(" | "));
                let _ = writeln!(csv, "{},missing,n,{},,", csv_field(&display), study::strip_citations(&cells.join(",")));
            }
        }
        md.push('\n');
        for (m, t) in TESTS.iter() {
            if used_tests.contains(t) {
                let _ = writeln!(md, "<sup>{m}</sup> {t}.  ");
            }
        }
        let _ = writeln!(
            md,
            "\nContinuous variables: mean ± SD when Shapiro-Wilk does not reject normality (p >= {}) in any group, else median (IQR). Categorical: n (% of the group's non-missing values); chi-square when every expected count is >= 5, else Fisher's exact test.",
            self.normality_alpha
        );
        let out = ctx.out_dir;
        study::write_metrics(out, &metrics, ctx.key)?;
        study::write_tables(out, &md)?;
        study::write(out, "table.csv", &csv)?;
        if self.missing == Missing::Drop {
            study::write(out, "dropped.csv", &study::dropped_csv(&dropped))?;
        }
        Ok(())
    }
}
