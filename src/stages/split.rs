//! `kind: split`: a seeded, reproducible, stratified partition of one cohort
//! (the study: institution 1 into 7:3 training and internal validation).
//!
//! Each patient gets a rank from blake3(seed, patient id); within each class of
//! the stratification column, patients in rank order fill the partitions in the
//! order they are declared, in proportion to their fractions (rounded, the last
//! partition taking the rest). The assignment therefore depends only on the
//! seed and the patient ids of each class: adding a patient moves at most the
//! patients at a partition boundary, and reordering the table moves none.
//!
//! Outputs: `partition.csv` (`patient_id,cohort,partition`, then the values of
//! the stratification column and of the ingest label, so that a learning stage
//! finds its training labels here and depends on no other cohort; sorted by id)
//! and `summary.json` (patients and positives per partition).

use indexmap::IndexMap;
use polars::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

use super::{Inputs, InputRef, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::partition::{self, Assignment, Partition};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;

pub const VERSION: u32 = 2;

/// Partition one cohort of the ingested table.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// The ingest stage whose `clinical.parquet` holds the patients.
    pub input: Inputs,
    /// The cohort to partition.
    pub cohort: String,
    /// Partition names and fractions (summing to 1), e.g. `{ train: 0.7, internal: 0.3 }`.
    pub fractions: IndexMap<String, f64>,
    /// Seed of the assignment.
    pub seed: u64,
    /// Column to stratify by (default: the ingest stage's label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stratify: Option<String>,
}

fn rank(seed: u64, id: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(id.as_bytes());
    *h.finalize().as_bytes()
}

/// Assign `ids` (one class) to partitions in proportion to `fractions`.
pub fn assign(seed: u64, ids: &[String], fractions: &IndexMap<String, f64>) -> Vec<(String, String)> {
    let mut ranked: Vec<&String> = ids.iter().collect();
    ranked.sort_by_key(|id| rank(seed, id));
    let n = ranked.len();
    let mut out = Vec::with_capacity(n);
    let mut start = 0usize;
    let mut cumulative = 0.0;
    for (i, (name, f)) in fractions.iter().enumerate() {
        cumulative += f;
        let end = if i + 1 == fractions.len() { n } else { ((cumulative * n as f64).round() as usize).min(n) };
        out.extend(ranked[start..end.max(start)].iter().map(|id| ((*id).clone(), name.clone())));
        start = end.max(start);
    }
    out
}

impl Split {
    /// The label column of the input stage (ingest), if it derives one.
    fn ingest_label(&self, ctx: &PlanContext) -> Option<String> {
        self.input.refs().iter().find_map(|r| ctx.stage_spec(&r.stage)?.label(ctx))
    }

    /// The columns copied into `partition.csv`: the stratification column and the label.
    fn label_columns(&self, ctx: &PlanContext) -> Vec<String> {
        let mut cols: Vec<String> = self.stratify_column(ctx).into_iter().collect();
        if let Some(l) = self.ingest_label(ctx) {
            if !cols.contains(&l) {
                cols.push(l);
            }
        }
        cols
    }

    fn stratify_column(&self, ctx: &PlanContext) -> Option<String> {
        self.stratify.clone().or_else(|| self.ingest_label(ctx))
    }
}

impl Stage for Split {
    fn kind(&self) -> &'static str {
        "split"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    fn partitions(&self) -> Vec<String> {
        self.fractions.keys().cloned().collect()
    }

    /// The ingest label, else the stratification column: both are in `partition.csv`.
    fn label(&self, ctx: &PlanContext) -> Option<String> {
        self.ingest_label(ctx).or_else(|| self.stratify_column(ctx))
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        let mut diags = Diagnostics::default();
        let total: f64 = self.fractions.values().sum();
        if self.fractions.is_empty() || (total - 1.0).abs() > 1e-9 || self.fractions.values().any(|f| !(*f > 0.0)) {
            diags.push(
                Diagnostic::new(ctx.origin(stage, &["fractions"]), format!("fractions must be positive and sum to 1 (they sum to {total})"))
                    .hint("for example { train: 0.7, internal: 0.3 }"),
            );
        }
        if let Some(clash) = self.fractions.keys().find(|k| ctx.cohort_spec(k).is_some()) {
            diags.push(Diagnostic::new(ctx.origin(stage, &["fractions", clash]), format!("partition `{clash}` has the name of a cohort")).hint("partitions and cohorts share one namespace; rename the partition"));
        }
        if let Err(d) = ctx.cohort(&self.cohort, ctx.origin(stage, &["cohort"])) {
            diags.extend(d);
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        Ok(vec![NodeDecl::single(json!({
            "cohort": self.cohort,
            "fractions": self.fractions,
            "seed": self.seed,
            "stratify": self.stratify_column(ctx),
            "columns": self.label_columns(ctx),
        }))])
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let fail = |e: &dyn std::fmt::Display| StageError::new(e.to_string());
        let table = ctx
            .inputs
            .iter()
            .flat_map(|i| i.files.iter())
            .find(|(name, _)| name == "clinical.parquet")
            .ok_or_else(|| StageError::new("the split's input has no clinical.parquet; give it the ingest stage as `input`"))?;
        let df = ParquetReader::new(std::fs::File::open(&table.1).map_err(|e| fail(&e))?).finish().map_err(|e| fail(&e))?;
        let cohort = df.column("cohort").map_err(|e| fail(&e))?.str().map_err(|e| fail(&e))?.clone();
        let ids = df.column("patient_id").or_else(|_| df.column(&df.get_column_names()[0].clone())).map_err(|e| fail(&e))?;
        let ids = ids.cast(&DataType::String).map_err(|e| fail(&e))?;
        let ids = ids.str().map_err(|e| fail(&e))?;
        let stratify: Option<String> = serde_json::from_value(ctx.decl.params["stratify"].clone()).unwrap_or(None);
        let strata: Vec<String> = match &stratify {
            Some(col) => {
                let c = df.column(col).map_err(|_| StageError::new(format!("the stratification column `{col}` is not in the ingested table")))?;
                let c = c.cast(&DataType::String).map_err(|e| fail(&e))?;
                c.str().map_err(|e| fail(&e))?.iter().map(|v| v.unwrap_or("").to_string()).collect()
            }
            None => vec![String::new(); df.height()],
        };
        let mut by_class: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for ((id, c), s) in ids.iter().zip(cohort.iter()).zip(&strata) {
            if c == Some(self.cohort.as_str()) {
                by_class.entry(s.clone()).or_default().push(id.unwrap_or("").to_string());
            }
        }
        if by_class.is_empty() {
            return Err(StageError::new(format!("cohort `{}` has no patients in the ingested table", self.cohort)));
        }
        let columns: Vec<String> = serde_json::from_value(ctx.decl.params["columns"].clone()).unwrap_or_default();
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let text_of = |col: &str| -> Result<Vec<String>, StageError> {
            let c = df.column(col).map_err(|_| StageError::new(format!("the column `{col}` is not in the ingested table")))?;
            let c = c.cast(&DataType::String).map_err(|e| fail(&e))?;
            Ok(c.str().map_err(|e| fail(&e))?.iter().map(|v| v.unwrap_or("").to_string()).collect())
        };
        let by_id: BTreeMap<String, usize> = ids.iter().enumerate().map(|(i, id)| (id.unwrap_or("").to_string(), i)).collect();
        for c in &columns {
            extra.insert(c.clone(), text_of(c)?);
        }
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for (class, members) in &by_class {
            for (id, part) in assign(self.seed, members, &self.fractions) {
                rows.push((id, part, class.clone()));
            }
        }
        rows.sort();
        let mut summary: IndexMap<String, BTreeMap<String, usize>> = self.fractions.keys().map(|k| (k.clone(), BTreeMap::new())).collect();
        let mut file = Partition { columns: columns.clone(), rows: Vec::with_capacity(rows.len()) };
        for (id, part, class) in rows {
            let values = columns.iter().map(|col| extra[col][by_id[&id]].clone()).collect();
            *summary.entry(part.clone()).or_default().entry(class).or_default() += 1;
            file.rows.push(Assignment { patient: id, cohort: self.cohort.clone(), partition: part, values });
        }
        for (part, counts) in &summary {
            let _ = writeln!(ctx.log, "{part}: {counts:?}");
        }
        let bytes = file.to_csv().map_err(|e| fail(&e))?;
        std::fs::write(ctx.out_dir.join(partition::FILE), bytes).map_err(|e| fail(&e))?;
        let text = serde_json::to_string_pretty(&json!({ "stratify": stratify, "counts": summary })).map_err(|e| fail(&e))?;
        std::fs::write(ctx.out_dir.join("summary.json"), text + "\n").map_err(|e| fail(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fractions() -> IndexMap<String, f64> {
        [("train".to_string(), 0.7), ("internal".to_string(), 0.3)].into_iter().collect()
    }

    #[test]
    fn assignment_follows_the_fractions_and_the_seed() {
        let ids: Vec<String> = (0..100).map(|i| format!("P{i:03}")).collect();
        let a = assign(7, &ids, &fractions());
        assert_eq!(a.iter().filter(|(_, p)| p == "train").count(), 70);
        let b = assign(8, &ids, &fractions());
        assert_ne!(a, b, "another seed gives another split");
        let mut shuffled = ids.clone();
        shuffled.reverse();
        let mut c = assign(7, &shuffled, &fractions());
        let mut a2 = a.clone();
        c.sort();
        a2.sort();
        assert_eq!(a2, c, "table order does not matter");
    }

    #[test]
    fn adding_a_patient_moves_at_most_one_existing_assignment() {
        let ids: Vec<String> = (0..50).map(|i| format!("P{i:03}")).collect();
        let before: BTreeMap<String, String> = assign(3, &ids, &fractions()).into_iter().collect();
        let mut more = ids.clone();
        more.push("P999".into());
        let after: BTreeMap<String, String> = assign(3, &more, &fractions()).into_iter().collect();
        let moved = ids.iter().filter(|id| before[*id] != after[*id]).count();
        assert!(moved <= 1, "{moved} patients moved");
    }
}
