//! Scores: columns of the table or per-patient outputs of other stages
//! (`scores.json` per patient, or one `scores.csv`), read by display name.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

use super::{list_ids, Study};
use crate::stages::{InputArtifact, StageError};

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
