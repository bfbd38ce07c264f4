//! `kind: ingest` and cohort tables: reading CSV and Parquet, schema checks
//! with row and column, duplicate and clashing ids, the derived label.

mod common;
use common::stats::{error_of, metrics};
use common::*;
use polars::prelude::*;

const PIPELINE: &str = r#"version: 1
name: ingest
cohorts:
  inst1: { table: inst1.csv }
  external: { table: external.parquet, id_column: pid }
stages:
  ingest:
    kind: ingest
    cohorts: [inst1, external]
    schema: clinical.yaml
    label: { name: pdl1_high, from: cps, rule: ">= 20" }
"#;

const SCHEMA: &str = "columns:\n  age: { type: number, min: 18, max: 100 }\n  sex: { type: category, values: [male, female] }\n  cps: { type: number, min: 0, max: 100 }\n  dcb: { type: integer, values: [0, 1], required: false }\n";

fn write_parquet(ws: &Workspace, rel: &str, mut df: DataFrame) {
    let file = std::fs::File::create(ws.path(rel)).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();
}

fn workspace(inst1: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write("p.yaml", PIPELINE);
    ws.write("clinical.yaml", SCHEMA);
    ws.write("inst1.csv", inst1);
    let df = df!(
        "pid" => ["E1", "E2"],
        "age" => [61.0, 70.0],
        "sex" => ["female", "male"],
        "cps" => [25.0, 1.0],
        "dcb" => [1i64, 0],
    )
    .unwrap();
    write_parquet(&ws, "external.parquet", df);
    ws
}

const GOOD: &str = "patient_id,age,sex,cps\nP1,50,male,20\nP2,64.5,female,19.9\nP3,80,male,95\n";

#[test]
fn ingest_reads_csv_and_parquet_derives_the_label_and_stacks_the_cohorts() {
    let ws = workspace(GOOD);
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.executed, set(&["ingest"]));
    let file = std::fs::File::open(ws.path("results/ingest/clinical.parquet")).unwrap();
    let df = ParquetReader::new(file).finish().unwrap();
    assert_eq!(df.height(), 5);
    let label: Vec<Option<i32>> = df.column("pdl1_high").unwrap().i32().unwrap().iter().collect();
    assert_eq!(label, vec![Some(1), Some(0), Some(1), Some(1), Some(0)], "cps >= 20, at the boundary too");
    let cohort: Vec<Option<&str>> = df.column("cohort").unwrap().str().unwrap().iter().collect();
    assert_eq!(cohort, vec![Some("inst1"), Some("inst1"), Some("inst1"), Some("external"), Some("external")]);
    let ids: Vec<Option<&str>> = df.column("patient_id").unwrap().str().unwrap().iter().collect();
    assert_eq!(ids, vec![Some("P1"), Some("P2"), Some("P3"), Some("E1"), Some("E2")], "each cohort's id column becomes patient_id");
    let dcb = df.column("dcb").unwrap();
    assert_eq!(dcb.null_count(), 3, "a column only one cohort has is null elsewhere");
    let summary: serde_json::Value = serde_json::from_str(&ws.read("results/ingest/summary.json")).unwrap();
    assert_eq!(summary["inst1"], serde_json::json!({"patients": 3, "positives": 2}));
    assert_eq!(summary["external"], serde_json::json!({"patients": 2, "positives": 1}));
}

#[test]
fn a_corrected_clinical_value_reruns_ingest_only() {
    let ws = workspace(GOOD);
    ws.run(&["p.yaml"]);
    ws.write("inst1.csv", &GOOD.replace("P3,80,male,95", "P3,80,male,96"));
    let status = stdout(&ws.radpipe(&["status", "p.yaml"]));
    assert!(status.contains("input file `inst1.csv` changed"), "{status}");
    assert_eq!(ws.run(&["p.yaml"]).executed, set(&["ingest"]));
}

#[test]
fn schema_violations_name_file_row_column_and_are_all_reported() {
    let ws = workspace("patient_id,age,sex,cps\nP1,50,male,20\nP2,abc,female,19.9\nP3,80,mail,195\n");
    let out = ws.radpipe(&["validate", "p.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("inst1.csv:3:2: error: row 2 (patient P2), column `age`: `abc` is not a number"), "{err}");
    assert!(err.contains("inst1.csv:4:3: error: row 3 (patient P3), column `sex`: `mail` is not one of male, female"), "{err}");
    assert!(err.contains("inst1.csv:4:4: error: row 3 (patient P3), column `cps`: 195 is above the maximum 100"), "{err}");
    assert!(err.ends_with("3 problems found\n"), "{err}");
    assert_eq!(ws.radpipe(&["run", "p.yaml"]).status.code(), Some(2), "run refuses invalid inputs before running anything");
    assert!(!ws.path(".radpipe/actions").exists() || std::fs::read_dir(ws.path(".radpipe/actions")).unwrap().count() == 0);
}

#[test]
fn a_missing_required_column_is_named() {
    let ws = workspace("patient_id,age,cps\nP1,50,20\n");
    let err = stderr(&ws.radpipe(&["validate", "p.yaml"]));
    assert!(err.contains("inst1.csv: error: required column `sex` is missing"), "{err}");
}

#[test]
fn duplicate_patient_ids_are_refused_with_both_rows() {
    let ws = workspace("patient_id,age,sex,cps\nP1,50,male,20\nP2,51,male,20\nP1,52,male,20\n");
    let err = stderr(&ws.radpipe(&["validate", "p.yaml"]));
    assert!(err.contains("inst1.csv:4:1: error: patient `P1` appears twice (rows 1 and 3)"), "{err}");
}

#[test]
fn a_patient_in_two_cohorts_is_refused() {
    let ws = workspace("patient_id,age,sex,cps\nE1,50,male,20\n");
    let err = stderr(&ws.radpipe(&["validate", "p.yaml"]));
    assert!(err.contains("p.yaml:5:22: error: patient `E1` is in both cohort `inst1` and cohort `external`"), "{err}");
}

#[test]
fn a_missing_id_column_and_a_missing_table_are_explained() {
    let ws = workspace(GOOD);
    ws.write("p.yaml", &PIPELINE.replace("id_column: pid", "id_column: patient"));
    let err = stderr(&ws.radpipe(&["validate", "p.yaml"]));
    assert!(err.contains("external.parquet: error: no patient id column `patient`"), "{err}");
    assert!(err.contains("hint: set the cohort's `id_column:`; the table has: pid, age, sex, cps, dcb"), "{err}");
    let out = ws.radpipe(&["validate", "p.yaml", "--set", "cohorts.inst1.table=nope.csv", "--set", "cohorts.external.id_column=pid"]);
    assert!(stderr(&out).contains("--set cohorts.inst1.table=nope.csv: error: cohort `inst1`: the table `nope.csv` does not exist"), "{}", stderr(&out));
}

#[test]
fn a_label_source_without_a_value_names_the_row() {
    let ws = workspace("patient_id,age,sex,cps\nP1,50,male,\n");
    ws.write("clinical.yaml", &SCHEMA.replace("cps: { type: number, min: 0, max: 100 }", "cps: { type: number, nullable: true }"));
    let err = stderr(&ws.radpipe(&["validate", "p.yaml"]));
    assert!(err.contains("inst1.csv:2:4: error: row 1 (patient P1), column `cps`: no numeric value to derive `pdl1_high`"), "{err}");
}

const LANDMARK: &str = r#"version: 1
name: landmark
cohorts:
  ici: { table: ici.csv }
stages:
  ingest:
    kind: ingest
    cohorts: [ici]
    landmarks:
      - { name: pfs_gt_6m, time: pfs, event: { column: progressed, value: "yes", censored: "no" }, after: 6 }
  dcb:
    kind: evaluate
    input: ingest
    label: pfs_gt_6m
    scores: [s]
    cohorts: [ici]
    missing: drop
"#;

/// Beyond 6 months (either way), progressed at or before it, censored at or before it, no time.
const ICI: &str = "patient_id,pfs,progressed,s\nI1,7.5,yes,0.9\nI2,12,no,0.7\nI3,6,yes,0.2\nI4,2.5,yes,0.4\nI5,6,no,0.8\nI6,3,no,0.1\nI7,,yes,0.5\n";

#[test]
fn a_landmark_label_is_derived_and_patients_censored_before_it_are_counted_and_dropped() {
    let ws = Workspace::new();
    ws.write("p.yaml", LANDMARK);
    ws.write("ici.csv", ICI);
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    let df = ParquetReader::new(std::fs::File::open(ws.path("results/ingest/clinical.parquet")).unwrap()).finish().unwrap();
    let dcb: Vec<Option<i32>> = df.column("pfs_gt_6m").unwrap().i32().unwrap().iter().collect();
    assert_eq!(dcb, vec![Some(1), Some(1), Some(0), Some(0), None, None, None], "PFS > 6 months: 1; progressed by 6: 0; censored by 6 or no time: unknown");
    let summary: serde_json::Value = serde_json::from_str(&ws.read("results/ingest/summary.json")).unwrap();
    assert_eq!(summary["ici"]["pfs_gt_6m"], serde_json::json!({"positives": 2, "negatives": 2, "censored_before_landmark": 2, "missing": 1}));
    assert_eq!(
        ws.read("results/ingest/unclassified.csv"),
        "cohort,patient_id,label,reason\nici,I5,pfs_gt_6m,censored before the landmark\nici,I6,pfs_gt_6m,censored before the landmark\nici,I7,pfs_gt_6m,no time or event value\n"
    );
    // Evaluated under `missing: drop`: the unclassifiable patients are left out and listed.
    assert_eq!(ws.read("results/dcb/dropped.csv"), "cohort,patient_id,missing\nici,I5,pfs_gt_6m\nici,I6,pfs_gt_6m\nici,I7,pfs_gt_6m\n");
    assert_eq!(metrics(&ws, "dcb")["dcb/ici/s/auc"]["n"], 4);
}

#[test]
fn bad_landmark_settings_and_values_are_named() {
    let ws = Workspace::new();
    ws.write("p.yaml", LANDMARK);
    ws.write("ici.csv", &ICI.replace("I4,2.5,yes", "I4,2.5,maybe"));
    let err = stderr(&ws.radpipe(&["validate", "p.yaml"]));
    assert!(
        err.contains("ici.csv:5:3: error: row 4 (patient I4), column `progressed`: `maybe` is neither the event value `yes` nor the censored value `no`"),
        "{err}"
    );
    ws.write("ici.csv", &ICI.replace("I4,2.5,yes", "I4,-1,yes"));
    let err = stderr(&ws.radpipe(&["validate", "p.yaml"]));
    assert!(err.contains("row 4 (patient I4), column `pfs`: -1 is not a follow-up time"), "{err}");
    ws.write("ici.csv", &ICI.replace("I4,2.5,yes", "I4,2.5m,yes").replace("I2,12,no", "I2,12,lost"));
    let err = stderr(&ws.radpipe(&["validate", "p.yaml"]));
    assert!(err.contains("row 4 (patient I4), column `pfs`: `2.5m` is not a number"), "{err}");
    assert!(err.contains("row 2 (patient I2), column `progressed`: `lost` is neither"), "an event value is checked beyond the landmark too: {err}");
    ws.write("ici.csv", ICI);
    ws.write("p.yaml", &LANDMARK.replace("after: 6 }", "after: 6, cohorts: [icu] }"));
    let out = ws.radpipe(&["validate", "p.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("p.yaml:10:") && stderr(&out).contains("`icu` is not among this stage's cohorts (ici)"), "{}", stderr(&out));
    ws.write("p.yaml", &LANDMARK.replace("name: pfs_gt_6m, time", "name: s, time"));
    let err = stderr(&ws.radpipe(&["validate", "p.yaml"]));
    assert!(err.contains("the landmark label `s` would replace the column of that name in cohort `ici`'s table"), "{err}");
}

#[test]
fn missing_tables_are_reported_without_a_follow_on_error() {
    let ws = Workspace::new();
    ws.write(
        "p.yaml",
        "version: 1\nname: gone\ncohorts:\n  a: { table: a.csv }\n  b: { table: b.csv }\nstages:\n  ingest: { kind: ingest, cohorts: [a, b] }\n",
    );
    let out = ws.radpipe(&["validate", "p.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("a.csv") && err.contains("b.csv"), "both missing tables are named: {err}");
    assert!(!err.contains("unlabelled"), "no follow-on error after the root causes: {err}");
}
