//! The ingested clinical table with each patient's cohort and split
//! partition, and typed column access whose errors name the stage, cohort,
//! column and rows.

use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

use super::{list_ids, num};
use crate::stages::{InputArtifact, StageError};
use radpipe_engine::diagnostics::did_you_mean;
use radpipe_engine::partition::{self, Partition};
pub use radpipe_engine::tables::Cell;

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
        radpipe_engine::tables::cells(self.column(column)?).map_err(|e| StageError::new(format!("stage `{}`, column `{column}`: {e}", self.stage)))
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

/// Sort and deduplicate group or category levels: numbers first, by value
/// (`9` before `10`), then text in byte order (a total order, so equal levels
/// end up adjacent for `dedup`).
pub fn sort_levels(v: &mut Vec<String>) {
    let key = |s: &String| -> (u8, f64) {
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() => (0, x),
            _ => (1, 0.0),
        }
    };
    v.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then_with(|| a.cmp(b))
    });
    v.dedup();
}
