//! `kind: features`: the per-patient feature vectors of a stage (`embed`'s
//! pooled layer4, `pca`'s components) gathered into cohort-level tables, one
//! Arrow IPC file per tensor name (`<name>.arrow`): columns `patient_id`,
//! `cohort`, then `f0000`, `f0001`, ... (float32), rows sorted by patient.
//! Readable by polars (`pl.read_ipc`) and pyarrow (`pyarrow.ipc.open_file`).
//!
//! ```yaml
//! embed_features: { kind: features, input: embed }
//! ```

use polars::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

use super::tensors::read_features;
use super::{Inputs, InputRef, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::Diagnostics;
use radpipe_engine::plan::PlanContext;

pub const VERSION: u32 = 1;

/// Gather per-patient feature vectors into Arrow IPC tables.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// The stage whose per-patient nodes hold `features.safetensors` (or `features.csv`).
    pub input: Inputs,
}

impl Stage for Features {
    fn kind(&self) -> &'static str {
        "features"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    fn expand(&self, _ctx: &PlanContext, _stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        Ok(vec![NodeDecl::single(json!({}))])
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let fail = |e: &dyn std::fmt::Display| StageError::new(e.to_string());
        // name -> [(patient, cohort, vector)]
        let mut tables: BTreeMap<String, Vec<(String, String, Vec<f64>)>> = BTreeMap::new();
        for input in ctx.inputs.iter().filter(|i| i.item.is_some()) {
            let item = input.item.as_ref().expect("per-patient");
            for (name, v) in read_features(&input.files, &item.id)? {
                tables.entry(name).or_default().push((item.id.clone(), item.cohort.clone().unwrap_or_default(), v));
            }
        }
        if tables.is_empty() {
            return Err(StageError::new("no per-patient features among the inputs"));
        }
        for (name, mut rows) in tables {
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            let width = rows[0].2.len();
            if let Some(r) = rows.iter().find(|r| r.2.len() != width) {
                return Err(StageError::new(format!("patient {}: `{name}` has {} values, patient {} has {width}", r.0, r.2.len(), rows[0].0)));
            }
            let mut columns: Vec<Column> = vec![
                Column::new("patient_id".into(), rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>()),
                Column::new("cohort".into(), rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>()),
            ];
            for j in 0..width {
                columns.push(Column::new(format!("f{j:04}").into(), rows.iter().map(|r| r.2[j] as f32).collect::<Vec<f32>>()));
            }
            let mut df = DataFrame::new(rows.len(), columns).map_err(|e| fail(&e))?;
            let path = ctx.out_dir.join(format!("{}.arrow", super::study::slug(&name)));
            let file = std::fs::File::create(&path).map_err(|e| fail(&e))?;
            IpcWriter::new(file).finish(&mut df).map_err(|e| fail(&e))?;
            let _ = writeln!(ctx.log, "{name}: {} patients x {width} features -> {}", rows.len(), path.file_name().unwrap_or_default().to_string_lossy());
        }
        Ok(())
    }
}
