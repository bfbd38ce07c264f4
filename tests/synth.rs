//! `radpipe synth` through the CLI: the layout ingest reads, valid against the
//! reference clinical schema, deterministic by seed.

mod common;
use common::*;

#[test]
fn synth_tiny_writes_cohorts_that_the_reference_schema_accepts() {
    let ws = Workspace::new();
    let out = ws.radpipe(&["synth", "--preset", "tiny", "--out", "data", "--seed", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for cohort in ["institution1", "external", "ici"] {
        assert!(ws.path(&format!("data/{cohort}/clinical.parquet")).exists());
        assert!(ws.path(&format!("data/{cohort}/ground_truth.json")).exists());
    }
    let first = ws.read("data/external/clinical.csv");
    let id = first.lines().nth(1).unwrap().split(',').next().unwrap().to_string();
    for f in ["t1", "t2", "ce_t1", "roi"] {
        assert!(ws.path(&format!("data/external/images/{id}/{f}.nii.gz")).exists());
    }
    ws.write("schemas/clinical.yaml", &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/clinical.yaml")).unwrap());
    ws.write(
        "p.yaml",
        r#"version: 1
name: synth-check
cohorts:
  institution1: { table: data/institution1/clinical.parquet, images: data/institution1/images }
  external: { table: data/external/clinical.csv, images: data/external/images }
  ici: { table: data/ici/clinical.csv }
stages:
  ingest:
    kind: ingest
    cohorts: [institution1, external, ici]
    schema: schemas/clinical.yaml
    label: { name: pdl1_high, from: cps, rule: ">= 20" }
    sequences: { t1: t1.nii.gz, t2: t2.nii.gz, ce_t1: ce_t1.nii.gz }
    roi: { file: roi.nii.gz, on: ce_t1 }
"#,
    );
    // The pipeline must not see the generator's answers.
    for cohort in ["institution1", "external", "ici"] {
        std::fs::remove_file(ws.path(&format!("data/{cohort}/ground_truth.json"))).unwrap();
    }
    let validate = ws.radpipe(&["validate", "p.yaml"]);
    assert!(validate.status.success(), "{}", stderr(&validate));
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let summary: serde_json::Value = serde_json::from_str(&ws.read("results/ingest/summary.json")).unwrap();
    let (n, pos) = (summary["institution1"]["patients"].as_u64().unwrap(), summary["institution1"]["positives"].as_u64().unwrap());
    assert!(n > 0 && pos > 0 && pos < n);
    // Same seed, same bytes; another seed, another table.
    assert!(ws.radpipe(&["synth", "--preset", "tiny", "--out", "again", "--seed", "3"]).status.success());
    assert_eq!(ws.read("again/external/clinical.csv"), first);
    assert_eq!(std::fs::read(ws.path("again/external/clinical.parquet")).unwrap(), std::fs::read(ws.path("data/external/clinical.parquet")).unwrap());
    assert!(ws.radpipe(&["synth", "--preset", "tiny", "--out", "other", "--seed", "4"]).status.success());
    assert_ne!(ws.read("other/external/clinical.csv"), first);
}

#[test]
fn synth_describe_prints_the_design() {
    let ws = Workspace::new();
    let out = ws.radpipe(&["synth", "--preset", "paper", "--describe"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("382") && text.contains("134") && text.contains("94"), "{text}");
}
