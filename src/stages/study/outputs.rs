//! What the statistics stages write: `metrics.json` (every number with its id
//! and lineage), the tables (`table.{md,linked.md,json}` from one typed
//! document), `patients.json`, `dropped.csv` and CSV files by the `csv` crate.

use serde::Serialize;
use std::path::Path;

use crate::report::table::{Document, Rich};
use crate::stages::StageError;

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
