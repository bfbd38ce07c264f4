//! `kind: ingest`: read the cohorts' clinical tables (CSV or Parquet) with
//! Polars, check them against the clinical schema, derive the binary label, and
//! write one table of all patients (`clinical.parquet`, with a `cohort` column
//! and the ids in `patient_id`, whatever each table calls them)
//! plus `summary.json` (patients and label prevalence per cohort).
//!
//! `landmarks:` derives binary labels from a time-to-event column, such as
//! durable clinical benefit (PFS > 6 months): `1` when the time exceeds
//! `after`, `0` when the event happened at or before it, empty when the
//! patient was censored at or before it (or lacks a time or event value).
//! Unclassifiable patients are counted per cohort in `summary.json` and listed
//! with the reason in `unclassified.csv`; a stage reading the label under
//! `missing: drop` leaves them out and lists them in its `dropped.csv`.
//!
//! Tables are read and checked when the pipeline is planned, so `validate`
//! reports schema violations (file, row, column) before anything runs.
//!
//! With `sequences` (and `roi`), each patient of a cohort with `images:` also
//! gets a node `ingest[<patient>]` whose outputs are that patient's image files
//! (`<sequence>.nii.gz`, `roi.nii.gz`), checked to be readable NIfTI volumes and
//! stored by content. Imaging stages pair with these nodes, so their keys depend
//! on the patient's images only, never on clinical columns. The files are found
//! at `<images>/<patient_id>/<file>`.

use indexmap::IndexMap;
use polars::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;
use radpipe_engine::tables::{ClinicalSchema, LabelRule, LandmarkRule, Table, Unclassified};

pub const VERSION: u32 = 1;

/// Read and validate clinical tables; one cohort-level node.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ingest {
    /// The cohorts to read (names from the pipeline's `cohorts:`).
    pub cohorts: Vec<String>,
    /// The clinical schema file (YAML: `columns: {name: {type, required, nullable, min, max, values}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The binary label to derive, e.g. `{ name: pdl1_high, from: cps, rule: ">= 20" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<LabelRule>,
    /// Labels defined by a landmark of a time-to-event column, e.g. durable clinical benefit:
    /// `{ name: pfs_gt_6m, time: pfs_months, event: { column: progression, value: 1, censored: 0 }, after: 6, cohorts: [ici] }`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub landmarks: Vec<LandmarkRule>,
    /// Image files per patient, by sequence name: `{ t1: t1.nii.gz, t2: t2.nii.gz, ce_t1: ce_t1.nii.gz }`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub sequences: IndexMap<String, String>,
    /// The ROI mask and the sequence it was drawn on: `{ file: roi.nii.gz, on: ce_t1 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roi: Option<RoiSpec>,
}

/// Where the region of interest is.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoiSpec {
    pub file: String,
    /// The sequence whose grid the mask was drawn on.
    pub on: String,
}

/// File names of a patient's ingested images: `<sequence>.nii.gz` (or `.nii`).
pub fn image_name(sequence: &str, source: &str) -> String {
    if source.ends_with(".nii") {
        format!("{sequence}.nii")
    } else {
        format!("{sequence}.nii.gz")
    }
}

impl Ingest {
    fn load_schema(&self, ctx: &PlanContext, stage: &str) -> Result<Option<ClinicalSchema>, Diagnostics> {
        let Some(file) = &self.schema else { return Ok(None) };
        let path = ctx.workspace.join(file);
        if !path.exists() {
            return Err(Diagnostic::new(ctx.origin(stage, &["schema"]), format!("the clinical schema `{file}` does not exist"))
                .hint("give a path relative to the workspace")
                .into());
        }
        let tree = radpipe_engine::yaml::YNode::load(&path)?;
        Ok(Some(radpipe_engine::spec::typed(&tree, &[], tree.to_json())?))
    }
}

impl Ingest {
    /// Landmark labels need unique names, other than the label's, and cohorts of this stage.
    fn check_landmarks(&self, ctx: &PlanContext, stage: &str) -> Diagnostics {
        let mut diags = Diagnostics::default();
        let mut names: Vec<&str> = self.label.iter().map(|l| l.name.as_str()).collect();
        for (i, rule) in self.landmarks.iter().enumerate() {
            let at = |field: &str| ctx.origin(stage, &["landmarks", &i.to_string(), field]);
            if names.contains(&rule.name.as_str()) {
                diags.push(Diagnostic::new(at("name"), format!("the label `{}` is derived twice", rule.name)));
            }
            names.push(&rule.name);
            if !(rule.after.is_finite() && rule.after >= 0.0) {
                diags.push(Diagnostic::new(at("after"), format!("the landmark of `{}` must be a non-negative time, not {}", rule.name, rule.after)));
            }
            for c in rule.cohorts.iter().flatten() {
                if !self.cohorts.contains(c) {
                    diags.push(Diagnostic::new(at("cohorts"), format!("`{c}` is not among this stage's cohorts ({})", self.cohorts.join(", "))));
                }
            }
        }
        diags
    }

    /// One node per patient of every cohort with `images:`, when sequences are declared.
    fn patient_nodes(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        if self.sequences.is_empty() {
            if self.roi.is_some() {
                return Err(Diagnostic::new(ctx.origin(stage, &["roi"]), "`roi` needs `sequences`").hint("declare the image files under `sequences:`").into());
            }
            return Ok(Vec::new());
        }
        if let Some(roi) = &self.roi {
            if !self.sequences.contains_key(&roi.on) {
                return Err(Diagnostic::new(ctx.origin(stage, &["roi", "on"]), format!("the ROI is drawn on `{}`, which is not a sequence", roi.on))
                    .hint(format!("use one of: {}", self.sequences.keys().cloned().collect::<Vec<_>>().join(", ")))
                    .into());
            }
        }
        let mut files: Vec<(String, String)> = self.sequences.iter().map(|(k, f)| (image_name(k, f), f.clone())).collect();
        if let Some(roi) = &self.roi {
            files.push((image_name("roi", &roi.file), roi.file.clone()));
        }
        let mut nodes = Vec::new();
        for item in ctx.patients(stage, Some(&self.cohorts))? {
            let cohort = item.cohort.as_deref().and_then(|c| ctx.cohort_spec(c));
            let Some(images) = cohort.and_then(|c| c.images.as_deref()) else { continue };
            let dir = format!("{}/{}", images.trim_end_matches('/'), item.id);
            let names: Vec<&String> = files.iter().map(|(n, _)| n).collect();
            let mut node = NodeDecl::per_item(item, json!({ "files": names, "roi_on": self.roi.as_ref().map(|r| &r.on) }));
            node.deps = files.iter().map(|(_, f)| format!("{dir}/{f}")).collect();
            nodes.push(node);
        }
        Ok(nodes)
    }

    /// Copy a patient's image files in, after checking that each is a readable volume
    /// and that the ROI is a non-empty mask on the grid of the sequence it was drawn on.
    fn run_patient(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let names: Vec<String> = serde_json::from_value(ctx.decl.params["files"].clone()).unwrap_or_default();
        let patient = ctx.decl.item.as_ref().map(|i| i.id.clone()).unwrap_or_default();
        let mut volumes = std::collections::HashMap::new();
        for (name, dep) in names.iter().zip(&ctx.decl.deps) {
            let path = ctx.workspace.join(dep);
            let volume = radpipe_imaging::read_nifti(&path).map_err(|e| StageError::new(format!("patient {patient}: {dep}: {e}")))?;
            let not_finite = volume.data.iter().filter(|v| !v.is_finite()).count();
            if not_finite > 0 {
                return Err(StageError::new(format!("patient {patient}: {dep}: {not_finite} voxels are NaN or infinite")));
            }
            std::fs::copy(&path, ctx.out_dir.join(name)).map_err(|e| StageError::new(format!("patient {patient}: cannot copy {dep}: {e}")))?;
            let _ = writeln!(ctx.log, "{dep}: {:?} voxels, spacing {:?}", volume.size(), volume.spacing);
            volumes.insert(name.clone(), volume);
        }
        // Every sequence must see the same part of the body as the others.
        // (The ROI is checked against the sequence it was drawn on below.)
        let roi_name = self.roi.as_ref().map(|r| image_name("roi", &r.file));
        let boxes: Vec<(&String, [[f64; 3]; 2])> = names.iter().filter(|n| Some(*n) != roi_name.as_ref()).map(|n| (n, physical_box(&volumes[n]))).collect();
        for (a, box_a) in &boxes {
            for (b, box_b) in &boxes {
                if a < b && (0..3).any(|k| box_a[1][k] < box_b[0][k] || box_b[1][k] < box_a[0][k]) {
                    return Err(StageError::new(format!("patient {patient}: the fields of view of `{a}` and `{b}` do not overlap (check their origins and directions)")));
                }
            }
        }
        if let Some(roi) = &self.roi {
            let mask = &volumes[&image_name("roi", &roi.file)];
            let on = &volumes[&image_name(&roi.on, &self.sequences[&roi.on])];
            let (mb, ob) = (physical_box(mask), physical_box(on));
            if (0..3).any(|k| mb[1][k] < ob[0][k] || ob[1][k] < mb[0][k]) {
                return Err(StageError::new(format!("patient {patient}: the ROI `{}` lies outside the image `{}` (their fields of view do not overlap)", roi.file, roi.on)));
            }
            if !mask.same_grid(on, 1e-4) {
                return Err(StageError::new(format!("patient {patient}: the ROI `{}` is not on the grid of `{}` it is said to be drawn on", roi.file, roi.on)));
            }
            if !mask.data.iter().any(|v| *v > 0.5) {
                return Err(StageError::new(format!("patient {patient}: the ROI `{}` is empty", roi.file)));
            }
        }
        Ok(())
    }
}

/// The axis-aligned physical bounding box (min, max corners) of a volume's voxel centres.
fn physical_box(v: &radpipe_imaging::Volume) -> [[f64; 3]; 2] {
    let [nx, ny, nz] = v.size();
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for corner in 0..8 {
        let idx = [
            if corner & 1 == 0 { 0.0 } else { nx.saturating_sub(1) as f64 },
            if corner & 2 == 0 { 0.0 } else { ny.saturating_sub(1) as f64 },
            if corner & 4 == 0 { 0.0 } else { nz.saturating_sub(1) as f64 },
        ];
        let p = v.index_to_physical(&idx);
        for k in 0..3 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    [lo, hi]
}

impl Stage for Ingest {
    fn kind(&self) -> &'static str {
        "ingest"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn cohorts(&self) -> Vec<String> {
        self.cohorts.clone()
    }

    fn writes_clinical_table(&self) -> bool {
        true
    }

    fn label(&self, _ctx: &PlanContext) -> Option<String> {
        self.label.as_ref().map(|l| l.name.clone())
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        let schema = self.load_schema(ctx, stage)?;
        if let Some(label) = &self.label {
            if let Err(m) = label.parse() {
                return Err(Diagnostic::new(ctx.origin(stage, &["label", "rule"]), m).hint("write a rule such as \">= 20\"").into());
            }
        }
        let mut diags = self.check_landmarks(ctx, stage);
        let mut deps = Vec::new();
        let mut tabled = Vec::new();
        let mut unreadable = false;
        for (i, name) in self.cohorts.iter().enumerate() {
            let table = match ctx.cohort(name, ctx.origin(stage, &["cohorts", &i.to_string()])) {
                Ok(t) => t,
                Err(d) => {
                    // Empty when the table's own error was reported already.
                    diags.extend(d);
                    unreadable = true;
                    continue;
                }
            };
            if ctx.cohort_spec(name).is_some_and(|c| c.unlabelled) {
                continue;
            }
            tabled.push(name.clone());
            if let Some(schema) = &schema {
                diags.extend(table.check(schema));
            }
            if let Some(label) = &self.label {
                if let Err(d) = table.label(label) {
                    diags.extend(d);
                }
            }
            for rule in self.landmarks.iter().filter(|r| r.applies_to(name)) {
                if table.df.column(&rule.name).is_ok() {
                    diags.push(Diagnostic::new(ctx.origin(stage, &["landmarks"]), format!("the landmark label `{}` would replace the column of that name in cohort `{name}`'s table", rule.name)).hint("give the derived label another name"));
                } else if let Err(d) = table.landmark(rule) {
                    diags.extend(d);
                }
            }
            deps.push(ctx.cohort_spec(name).map(|c| c.table.clone()).unwrap_or_default());
        }
        // Root causes only: with a table unreadable, "no clinical table" would follow from it.
        if !diags.is_empty() || unreadable {
            return Err(diags);
        }
        deps.extend(self.schema.clone());
        if tabled.is_empty() {
            return Err(Diagnostic::new(ctx.origin(stage, &["cohorts"]), "every cohort is `unlabelled`: there is no clinical table to read").into());
        }
        let id_columns: Vec<String> = tabled.iter().filter_map(|c| ctx.cohort_spec(c)).map(|c| c.id_column.clone()).collect();
        // Only the cohorts with clinical tables: an `unlabelled` cohort changes
        // neither this node's key nor its outputs.
        let mut params = json!({ "cohorts": tabled, "label": self.label, "id_columns": id_columns, "schema": self.schema });
        if !self.landmarks.is_empty() {
            params["landmarks"] = json!(self.landmarks);
        }
        let mut node = NodeDecl::single(params);
        node.deps = deps;
        let mut nodes = vec![node];
        nodes.extend(self.patient_nodes(ctx, stage)?);
        Ok(nodes)
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        if ctx.decl.item.is_some() {
            return self.run_patient(ctx);
        }
        let ids: Vec<String> = serde_json::from_value(ctx.decl.params["id_columns"].clone()).unwrap_or_default();
        let cohorts: Vec<String> = serde_json::from_value(ctx.decl.params["cohorts"].clone()).unwrap_or_default();
        let tables = &ctx.decl.deps[..cohorts.len()];
        let schema: Option<ClinicalSchema> = match &self.schema {
            Some(file) => {
                let path = ctx.workspace.join(file);
                let tree = radpipe_engine::yaml::YNode::load(&path).map_err(|d| StageError::new(d.to_string()))?;
                Some(radpipe_engine::spec::typed(&tree, &[], tree.to_json()).map_err(|d| StageError::new(d.to_string()))?)
            }
            None => None,
        };
        let fail = |e: &dyn std::fmt::Display| StageError::new(e.to_string());
        let mut frames: Vec<DataFrame> = Vec::new();
        let mut summary = serde_json::Map::new();
        let mut unclassified = Vec::new();
        for ((cohort, table_path), id_column) in cohorts.iter().zip(tables).zip(&ids) {
            let table = Table::read(&ctx.workspace.join(table_path), id_column).map_err(|d| fail(&d))?;
            let mut df = table.typed(schema.as_ref()).map_err(|e| fail(&e))?;
            // One id column for all cohorts, whatever each table calls it.
            if id_column != "patient_id" {
                if df.column("patient_id").is_ok() {
                    return Err(StageError::new(format!("{table_path}: has both `{id_column}` (its id column) and `patient_id`; rename one")));
                }
                df.rename(id_column, "patient_id".into()).map_err(|e| fail(&e))?;
            }
            let n = df.height();
            df.with_column(Column::new("cohort".into(), vec![cohort.as_str(); n])).map_err(|e| fail(&e))?;
            let mut entry = json!({ "patients": n });
            if let Some(label) = &self.label {
                let y = table.label(label).map_err(|d| fail(&d))?;
                entry["positives"] = json!(y.iter().filter(|v| **v == 1).count());
                df.with_column(Column::new(label.name.as_str().into(), y)).map_err(|e| fail(&e))?;
            }
            for rule in &self.landmarks {
                let labels = if rule.applies_to(cohort) { table.landmark(rule).map_err(|d| fail(&d))? } else { vec![Err(Unclassified::Missing); n] };
                let values: Vec<Option<i32>> = labels.iter().map(|l| l.ok()).collect();
                if rule.applies_to(cohort) {
                    let count = |f: &dyn Fn(&Result<i32, Unclassified>) -> bool| labels.iter().filter(|l| f(l)).count();
                    entry[&rule.name] = json!({
                        "positives": count(&|l| *l == Ok(1)),
                        "negatives": count(&|l| *l == Ok(0)),
                        "censored_before_landmark": count(&|l| *l == Err(Unclassified::CensoredBefore)),
                        "missing": count(&|l| *l == Err(Unclassified::Missing)),
                    });
                    for (id, l) in table.ids.iter().zip(&labels) {
                        if let Err(why) = l {
                            unclassified.push([cohort.clone(), id.clone(), rule.name.clone(), why.reason().to_string()]);
                        }
                    }
                }
                df.with_column(Column::new(rule.name.as_str().into(), values)).map_err(|e| fail(&e))?;
            }
            let _ = writeln!(ctx.log, "{cohort}: {n} patients from {table_path}");
            summary.insert(cohort.clone(), entry);
            frames.push(df);
        }
        let mut all = stack(frames).map_err(|e| fail(&e))?;
        let file = std::fs::File::create(ctx.out_dir.join("clinical.parquet")).map_err(|e| fail(&e))?;
        ParquetWriter::new(file).finish(&mut all).map_err(|e| fail(&e))?;
        let text = serde_json::to_string_pretty(&summary).map_err(|e| fail(&e))?;
        std::fs::write(ctx.out_dir.join("summary.json"), text + "\n").map_err(|e| fail(&e))?;
        if !self.landmarks.is_empty() {
            let mut csv = csv::Writer::from_path(ctx.out_dir.join("unclassified.csv")).map_err(|e| fail(&e))?;
            csv.write_record(["cohort", "patient_id", "label", "reason"]).map_err(|e| fail(&e))?;
            for row in &unclassified {
                csv.write_record(row).map_err(|e| fail(&e))?;
            }
            csv.flush().map_err(|e| fail(&e))?;
        }
        Ok(())
    }
}

/// Stack cohort tables whose columns may differ (e.g. `dcb` only in the ICI
/// cohort): missing columns become nulls of the type another cohort gives them.
fn stack(frames: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    let mut names: Vec<(PlSmallStr, DataType)> = Vec::new();
    for df in &frames {
        for c in df.columns() {
            if !names.iter().any(|(n, _)| n == c.name()) {
                names.push((c.name().clone(), c.dtype().clone()));
            }
        }
    }
    let mut out: Option<DataFrame> = None;
    for df in frames {
        let n = df.height();
        let columns = names
            .iter()
            .map(|(name, dtype)| match df.column(name) {
                Ok(c) => c.cast(dtype),
                Err(_) => Ok(Column::full_null(name.clone(), n, dtype)),
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        let df = DataFrame::new_infer_height(columns)?;
        out = Some(match out {
            None => df,
            Some(acc) => acc.vstack(&df)?,
        });
    }
    Ok(out.unwrap_or_default())
}

