//! What the statistics stages (`evaluate`, `survival`, `table1`) share: the
//! ingested table with each patient's cohort and split partition, typed column
//! access whose errors name the stage, cohort, column and rows, score outputs
//! of other stages, the missing-values policy, and their outputs:
//! `metrics.json`, the tables (`table.{md,linked.md,json}`) and CSV files.

use indexmap::IndexMap;
use polars::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{InputArtifact, StageError};
use crate::report::table::{Document, Rich};
use radpipe_engine::diagnostics::{did_you_mean, Diagnostic, Diagnostics};
use radpipe_engine::partition::{self, Partition};
use radpipe_engine::plan::PlanContext;

/// What a statistics stage does with patients that lack a value it needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Fail, naming the patients and the column (the default).
    #[default]
    Refuse,
    /// Leave those patients out and list them in the stage's outputs (`dropped.csv`).
    Drop,
}

/// One reported number: `id` is `<stage>/<cohort or group>/<subject>/<metric>`.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    pub id: String,
    /// `null` where the number is undefined (e.g. a median survival not reached).
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<[f64; 2]>,
    pub n: usize,
    /// The test or method behind a p-value or statistic, where there is a choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The key of the action that produced the number (`radpipe lineage` walks from it).
    pub lineage: String,
}

impl Metric {
    pub fn new(id: String, value: f64, n: usize) -> Self {
        Metric { id, value: value.is_finite().then_some(value), ci: None, n, method: None, lineage: String::new() }
    }
    pub fn opt(id: String, value: Option<f64>, n: usize) -> Self {
        Metric { id, value: value.filter(|v| v.is_finite()), ci: None, n, method: None, lineage: String::new() }
    }
    pub fn ci(mut self, lo: f64, hi: f64) -> Self {
        if lo.is_finite() && hi.is_finite() {
            self.ci = Some([lo, hi]);
        }
        self
    }
    pub fn method(mut self, m: impl Into<String>) -> Self {
        self.method = Some(m.into());
        self
    }
}

/// Write `metrics.json`, every entry carrying the producing action's key.
pub fn write_metrics(dir: &Path, metrics: &[Metric], key: &str) -> Result<(), StageError> {
    let metrics: Vec<Metric> = metrics.iter().cloned().map(|m| Metric { lineage: key.to_string(), ..m }).collect();
    let text = serde_json::to_string_pretty(&metrics).map_err(|e| StageError::new(format!("cannot encode metrics.json: {e}")))?;
    write(dir, "metrics.json", &(text + "\n"))
}

/// The typed tables of a statistics stage, which the report reads.
pub const TABLE_JSON: &str = "table.json";

/// Write a stage's tables: `table.md` (for people), `table.linked.md` (each
/// number cited as `[[m:<metric id>|<text>]]`) and `table.json` (the typed
/// document, from which the report builds its HTML).
pub fn write_tables(dir: &Path, doc: &Document) -> Result<(), StageError> {
    write(dir, "table.md", &doc.markdown(false))?;
    write(dir, "table.linked.md", &doc.markdown(true))?;
    let text = serde_json::to_string_pretty(doc).map_err(|e| StageError::new(format!("cannot encode {TABLE_JSON}: {e}")))?;
    write(dir, TABLE_JSON, &(text + "\n"))
}

/// Write `patients.json`: each group's (cohort's) patients, sorted. `radpipe
/// lineage` of a metric `<stage>/<group>/...` follows only these patients.
pub fn write_patients<'a>(dir: &Path, groups: impl Iterator<Item = (&'a str, &'a [String])>) -> Result<(), StageError> {
    let mut map = serde_json::Map::new();
    for (name, ids) in groups {
        let mut ids = ids.to_vec();
        ids.sort();
        map.insert(name.to_string(), serde_json::json!(ids));
    }
    let text = serde_json::to_string_pretty(&map).map_err(|e| StageError::new(e.to_string()))?;
    write(dir, "patients.json", &(text + "\n"))
}

pub fn write(dir: &Path, name: &str, text: &str) -> Result<(), StageError> {
    std::fs::write(dir.join(name), text).map_err(|e| StageError::new(format!("cannot write {name}: {e}")))
}

/// A list of patient ids for a message: the first ten, then how many more.
pub fn list_ids<S: AsRef<str>>(ids: &[S]) -> String {
    let mut s: Vec<&str> = ids.iter().take(10).map(|x| x.as_ref()).collect();
    let more = ids.len().saturating_sub(10);
    let mut out = s.join(", ");
    if more > 0 {
        out.push_str(&format!(" and {more} more"));
    }
    s.clear();
    out
}

/// A CSV output being built: a header, then records of as many fields,
/// quoted where needed (RFC 4180) by the `csv` crate.
pub struct Csv {
    name: &'static str,
    writer: csv::Writer<Vec<u8>>,
}

impl Csv {
    /// A CSV file `name` with this header.
    pub fn new(name: &'static str, header: &[&str]) -> Result<Csv, StageError> {
        let mut csv = Csv { name, writer: csv::Writer::from_writer(Vec::new()) };
        csv.row(header)?;
        Ok(csv)
    }

    /// Add a record.
    pub fn row<I>(&mut self, fields: I) -> Result<(), StageError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let name = self.name;
        self.writer.write_record(fields).map_err(|e| StageError::new(format!("cannot write {name}: {e}")))
    }

    /// Write the file into `dir`.
    pub fn write(self, dir: &Path) -> Result<(), StageError> {
        let name = self.name;
        let bytes = self.writer.into_inner().map_err(|e| StageError::new(format!("cannot write {name}: {e}")))?;
        std::fs::write(dir.join(name), bytes).map_err(|e| StageError::new(format!("cannot write {name}: {e}")))
    }
}

/// A number as written in CSV outputs: shortest round-trip form, empty for undefined.
pub fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else if x.is_nan() {
        String::new()
    } else if x > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

/// The ingested table plus partitions, as the statistics stages read it.
pub struct Study {
    pub stage: String,
    pub df: DataFrame,
    pub ids: Vec<String>,
    pub cohort: Vec<String>,
    /// Partition of each row under each split (a patient is in at most one
    /// partition per split; splits are kept apart so names stay unambiguous).
    pub partitions: Vec<BTreeMap<String, String>>,
}

/// A cell of a column: missing, a number, or text that is not a number.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Missing,
    Number(f64),
    Text(String),
}

impl Study {
    /// Read `clinical.parquet` (from the ingest stage) and every `partition.csv` among the inputs.
    pub fn load(stage: &str, inputs: &[InputArtifact]) -> Result<Study, StageError> {
        let fail = |e: &dyn std::fmt::Display| StageError::new(format!("stage `{stage}`: {e}"));
        let table = inputs
            .iter()
            .flat_map(|i| i.files.iter())
            .find(|(name, _)| name == "clinical.parquet")
            .ok_or_else(|| StageError::new(format!("stage `{stage}`: no clinical.parquet among the inputs; add the ingest stage to `input`")))?;
        let df = ParquetReader::new(std::fs::File::open(&table.1).map_err(|e| fail(&e))?).finish().map_err(|e| fail(&e))?;
        let text = |name: &str| -> PolarsResult<Vec<String>> {
            let c = df.column(name)?.cast(&DataType::String)?;
            Ok(c.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect())
        };
        let cohort = text("cohort").map_err(|e| fail(&e))?;
        let id_name = if df.column("patient_id").is_ok() { "patient_id".to_string() } else { df.get_column_names()[0].to_string() };
        let ids = text(&id_name).map_err(|e| fail(&e))?;
        let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let mut partitions = vec![BTreeMap::new(); ids.len()];
        for input in inputs {
            for (name, path) in &input.files {
                if name != partition::FILE {
                    continue;
                }
                let bytes = std::fs::read(path).map_err(|e| fail(&e))?;
                let file = Partition::from_csv(&bytes).map_err(|e| fail(&format!("`{}`: {e}", input.node)))?;
                for (id, part) in file.partition_of() {
                    if let Some(&row) = index.get(id.as_str()) {
                        partitions[row].insert(input.stage.clone(), part);
                    }
                }
            }
        }
        Ok(Study { stage: stage.to_string(), df, ids, cohort, partitions })
    }

    /// The cohorts and partitions present, for messages.
    pub fn known_groups(&self) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for c in &self.cohort {
            if !seen.contains(c) {
                seen.push(c.clone());
            }
        }
        let parts: BTreeSet<&String> = self.partitions.iter().flat_map(|p| p.values()).collect();
        seen.extend(parts.into_iter().filter(|p| !seen.contains(p)).cloned().collect::<Vec<_>>());
        seen
    }

    /// Rows of a cohort or a split partition, in table order.
    pub fn rows_of(&self, group: &str) -> Result<Vec<usize>, StageError> {
        let rows: Vec<usize> = (0..self.ids.len()).filter(|&i| self.cohort[i] == group || self.partitions[i].values().any(|p| p == group)).collect();
        if rows.is_empty() {
            return Err(StageError::new(format!(
                "stage `{}`: cohort `{group}` has no patients: it is neither a cohort of the ingested table nor a partition of a split among the inputs (known: {})",
                self.stage,
                self.known_groups().join(", ")
            )));
        }
        Ok(rows)
    }

    fn column(&self, column: &str) -> Result<&Column, StageError> {
        self.df.column(column).map_err(|_| {
            let names: Vec<String> = self.df.get_column_names().iter().map(|s| s.to_string()).collect();
            let hint = match did_you_mean(column, names.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the table has: {}", names.join(", ")),
            };
            StageError::new(format!("stage `{}`: column `{column}` is not in the ingested table; {hint}", self.stage))
        })
    }

    /// Every cell of a column (numbers where they parse; NaN counts as missing).
    pub fn cells(&self, column: &str) -> Result<Vec<Cell>, StageError> {
        let c = self.column(column)?;
        let fail = |e: &dyn std::fmt::Display| StageError::new(format!("stage `{}`, column `{column}`: {e}", self.stage));
        if c.dtype().is_primitive_numeric() || c.dtype() == &DataType::Boolean {
            let f = c.cast(&DataType::Float64).map_err(|e| fail(&e))?;
            return Ok(f
                .f64()
                .map_err(|e| fail(&e))?
                .iter()
                .map(|v| match v {
                    Some(x) if !x.is_nan() => Cell::Number(x),
                    _ => Cell::Missing,
                })
                .collect());
        }
        let s = c.cast(&DataType::String).map_err(|e| fail(&e))?;
        Ok(s.str()
            .map_err(|e| fail(&e))?
            .iter()
            .map(|v| match v.map(str::trim) {
                None | Some("") => Cell::Missing,
                Some(t) if t.eq_ignore_ascii_case("na") || t.eq_ignore_ascii_case("nan") => Cell::Missing,
                Some(t) => match t.parse::<f64>() {
                    Ok(x) => Cell::Number(x),
                    Err(_) => Cell::Text(t.to_string()),
                },
            })
            .collect())
    }

    /// A column as text (numbers in their shortest form), `None` where missing.
    pub fn text(&self, column: &str) -> Result<Vec<Option<String>>, StageError> {
        Ok(self
            .cells(column)?
            .into_iter()
            .map(|c| match c {
                Cell::Missing => None,
                Cell::Number(x) => Some(num(x)),
                Cell::Text(t) => Some(t),
            })
            .collect())
    }

    /// A numeric column over `rows`: a non-numeric cell is an error naming the
    /// patients; missing cells are `None`.
    pub fn numbers(&self, column: &str, rows: &[usize], group: &str) -> Result<Vec<Option<f64>>, StageError> {
        let cells = self.cells(column)?;
        let mut bad = Vec::new();
        let out: Vec<Option<f64>> = rows
            .iter()
            .map(|&r| match &cells[r] {
                Cell::Number(x) => Some(*x),
                Cell::Missing => None,
                Cell::Text(t) => {
                    bad.push(format!("{} (`{t}`)", self.ids[r]));
                    None
                }
            })
            .collect();
        if !bad.is_empty() {
            return Err(StageError::new(format!(
                "stage `{}`, cohort `{group}`, column `{column}`: not a number for {} patient(s): {}",
                self.stage,
                bad.len(),
                list_ids(&bad)
            )));
        }
        Ok(out)
    }
}

/// Scores: a list of columns, or a map from display name to a column or a
/// `stage.name` output of another stage.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Scores {
    /// Columns of the ingested table, shown under their own names.
    List(Vec<String>),
    /// Display name -> column, or `stage.name` (a score another stage wrote).
    Map(IndexMap<String, String>),
}

/// Where a score comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreSource {
    Column(String),
    Stage { stage: String, name: String },
}

/// A reference is a stage output when its part before the first dot names a stage.
pub fn score_source(reference: &str, is_stage: &dyn Fn(&str) -> bool) -> ScoreSource {
    match reference.split_once('.') {
        Some((stage, name)) if is_stage(stage) => ScoreSource::Stage { stage: stage.into(), name: name.into() },
        _ => ScoreSource::Column(reference.into()),
    }
}

impl Scores {
    pub fn entries(&self) -> Vec<(String, String)> {
        match self {
            Scores::List(v) => v.iter().map(|c| (c.clone(), c.clone())).collect(),
            Scores::Map(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// Scores written by the nodes of `stage`: per-patient nodes each write
/// `scores.json` (`{"name": value}`), or one node writes `scores.csv`
/// (`patient_id,<name>,...`). Returns patient id -> value (`None`: null/empty).
pub fn stage_scores(me: &str, inputs: &[InputArtifact], stage: &str, name: &str) -> Result<BTreeMap<String, Option<f64>>, StageError> {
    let base = |n: &str| Path::new(n).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let arts: Vec<&InputArtifact> = inputs.iter().filter(|a| a.stage == stage).collect();
    if arts.is_empty() {
        return Err(StageError::new(format!("stage `{me}`: the score `{stage}.{name}` needs stage `{stage}` among the inputs")));
    }
    let mut out = BTreeMap::new();
    let mut found = false;
    for a in &arts {
        for (file, path) in &a.files {
            let b = base(file);
            if b == "scores.json" {
                let Some(item) = &a.item else { continue };
                found = true;
                let text = std::fs::read_to_string(path).map_err(|e| StageError::new(format!("stage `{me}`: cannot read `{file}` of `{}`: {e}", a.node)))?;
                let v: Value = serde_json::from_str(&text).map_err(|e| StageError::new(format!("stage `{me}`: `{file}` of `{}` is not JSON: {e}", a.node)))?;
                let value = match v.get(name) {
                    None => return Err(StageError::new(format!("stage `{me}`: `{file}` of `{}` (patient {}) has no score `{name}`", a.node, item.id))),
                    Some(Value::Null) => None,
                    Some(Value::Number(n)) => n.as_f64(),
                    Some(other) => {
                        return Err(StageError::new(format!("stage `{me}`: score `{stage}.{name}` of patient {} is not a number: {other}", item.id)))
                    }
                };
                out.insert(item.id.clone(), value);
            } else if b == "scores.csv" && a.item.is_none() {
                found = true;
                let unreadable = |e: csv::Error| StageError::new(format!("stage `{me}`: `{file}` of `{}`: {e}", a.node));
                let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(true).from_path(path).map_err(unreadable)?;
                let header: Vec<String> = reader.headers().map_err(unreadable)?.iter().map(str::to_string).collect();
                let col = header
                    .iter()
                    .position(|h| h == name)
                    .ok_or_else(|| StageError::new(format!("stage `{me}`: `{file}` of `{stage}` has no column `{name}` (it has: {})", header.join(", "))))?;
                let mut bad = Vec::new();
                for record in reader.records() {
                    let record = record.map_err(unreadable)?;
                    let id = record.get(0).unwrap_or_default().to_string();
                    let cell = record.get(col).unwrap_or_default();
                    let value = if cell.is_empty() || cell.eq_ignore_ascii_case("na") || cell.eq_ignore_ascii_case("nan") {
                        None
                    } else {
                        match cell.parse::<f64>() {
                            Ok(x) => Some(x),
                            Err(_) => {
                                bad.push(format!("{id} (`{cell}`)"));
                                None
                            }
                        }
                    };
                    out.insert(id, value);
                }
                if !bad.is_empty() {
                    return Err(StageError::new(format!(
                        "stage `{me}`: score `{stage}.{name}` in `{file}` is not a number for {} patient(s): {}",
                        bad.len(),
                        list_ids(&bad)
                    )));
                }
            }
        }
    }
    if !found {
        return Err(StageError::new(format!(
            "stage `{me}`: stage `{stage}` wrote neither per-patient `scores.json` nor a `scores.csv`, so score `{stage}.{name}` is not there"
        )));
    }
    Ok(out)
}

/// Values of one score over `rows` (a column or another stage's output).
pub fn score_values(study: &Study, inputs: &[InputArtifact], source: &ScoreSource, rows: &[usize], group: &str) -> Result<Vec<Option<f64>>, StageError> {
    match source {
        ScoreSource::Column(c) => study.numbers(c, rows, group),
        ScoreSource::Stage { stage, name } => {
            let map = stage_scores(&study.stage, inputs, stage, name)?;
            Ok(rows.iter().map(|&r| map.get(&study.ids[r]).copied().flatten()).collect())
        }
    }
}

/// Plan-time check of cohort names: a cohort of an ingest input, or a
/// partition of a split input. `field` locates the name in the stage.
pub fn check_group_name(ctx: &PlanContext, stage: &str, inputs: &[super::InputRef], name: &str, field: &[&str]) -> Option<Diagnostic> {
    let mut known: Vec<String> = Vec::new();
    for s in inputs.iter().filter_map(|r| ctx.stage_spec(&r.stage)) {
        known.extend(s.cohorts());
        known.extend(s.partitions());
    }
    if known.iter().any(|k| k == name) {
        return None;
    }
    let d = Diagnostic::new(
        ctx.origin(stage, field),
        format!("stage `{stage}`: cohort `{name}` is neither a cohort of the ingest stage nor a partition of a split stage among its inputs"),
    );
    Some(match did_you_mean(name, known.iter().map(String::as_str)) {
        Some(s) => d.hint(format!("did you mean `{s}`?")),
        None => d.hint(format!("known: {}", known.join(", "))),
    })
}

/// Plan-time check of a stage's `cohorts:` list: not empty, each name known.
pub fn check_cohorts(ctx: &PlanContext, stage: &str, inputs: &[super::InputRef], cohorts: &[String]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if cohorts.is_empty() {
        out.push(
            Diagnostic::new(ctx.origin(stage, &["cohorts"]), format!("stage `{stage}`: `cohorts` is empty"))
                .hint("list cohorts or partitions, e.g. [train, internal, external]"),
        );
    }
    for (i, c) in cohorts.iter().enumerate() {
        out.extend(check_group_name(ctx, stage, inputs, c, &["cohorts", &i.to_string()]));
    }
    out
}

/// Plan-time check that a score reference `stage.name` reads a stage listed in
/// `input`; `label` is how the score is called in messages, `field` locates it.
pub fn check_score_input(ctx: &PlanContext, stage: &str, inputs: &[super::InputRef], label: &str, reference: &str, field: &[&str]) -> Option<Diagnostic> {
    let (s, _) = reference.split_once('.')?;
    (ctx.stage_spec(s).is_some() && !inputs.iter().any(|r| r.stage == s)).then(|| {
        Diagnostic::new(ctx.origin(stage, field), format!("stage `{stage}`: score `{label}` reads stage `{s}`, which is not in `input`"))
            .hint(format!("add `{s}` to `input`"))
    })
}

/// Plan-time check that `input` includes an ingest stage.
pub fn check_has_ingest(ctx: &PlanContext, stage: &str, inputs: &[super::InputRef]) -> Option<Diagnostic> {
    if inputs.iter().any(|r| ctx.stage_spec(&r.stage).is_some_and(|s| s.writes_clinical_table())) {
        None
    } else {
        Some(Diagnostic::new(ctx.origin(stage, &["input"]), format!("stage `{stage}` reads the clinical table: list the ingest stage in `input`")))
    }
}

pub fn into_result(diags: Diagnostics) -> Result<(), Diagnostics> {
    if diags.is_empty() {
        Ok(())
    } else {
        Err(diags)
    }
}

/// Positions (into `rows`) of the complete cases, and (patient, columns) of the others.
pub type Kept = (Vec<usize>, Vec<(String, String)>);

/// The patients of `rows` that lack a value in any of `columns` (name, values
/// parallel to `rows`): under `refuse` an error naming them, under `drop` the
/// rows to keep plus (patient, column) of those left out.
pub fn apply_missing(study: &Study, policy: Missing, group: &str, rows: &[usize], columns: &[(&str, &[Option<f64>])]) -> Result<Kept, StageError> {
    let mut keep = Vec::new();
    let mut dropped = Vec::new();
    for (k, &r) in rows.iter().enumerate() {
        let lacking: Vec<&str> = columns.iter().filter(|(_, v)| v[k].is_none()).map(|(c, _)| *c).collect();
        if lacking.is_empty() {
            keep.push(k);
        } else {
            dropped.push((study.ids[r].clone(), lacking.join("+")));
        }
    }
    if !dropped.is_empty() && policy == Missing::Refuse {
        let mut by_col: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, col) in &dropped {
            by_col.entry(col.as_str()).or_default().push(id.as_str());
        }
        let parts: Vec<String> = by_col.iter().map(|(c, ids)| format!("column `{c}` for {} patient(s): {}", ids.len(), list_ids(ids))).collect();
        return Err(StageError::new(format!(
            "stage `{}`, cohort `{group}`: missing values in {}; fill them in, or set `missing: drop` to leave these patients out",
            study.stage,
            parts.join("; ")
        )));
    }
    Ok((keep, dropped))
}

/// Write `dropped.csv`: the patients a stage left out under `missing: drop`,
/// as (cohort, patient, columns).
pub fn write_dropped(dir: &Path, dropped: &[(String, String, String)]) -> Result<(), StageError> {
    let mut csv = Csv::new("dropped.csv", &["cohort", "patient_id", "missing"])?;
    for (g, id, c) in dropped {
        csv.row([g, id, c])?;
    }
    csv.write(dir)
}

/// The note under a table whose stage left patients out (`missing: drop`).
pub fn dropped_note(dropped: usize) -> Rich {
    Rich::new().text(format!("{dropped} patient(s) left out for missing values (")).code("dropped.csv").text(").")
}

/// A file-name-safe form of a cohort or score name.
pub fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}
