//! The missing-values policy: refuse (name the patients and columns) or drop
//! (leave them out and list them in `dropped.csv`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{list_ids, Study};
use crate::stages::StageError;

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
