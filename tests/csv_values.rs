//! Regression: CSV values with commas, quotes and a newline. The split's
//! partition file carries the stratification column and the labels; a value
//! like `high, "CPS" >= 20` followed by a newline once shifted the columns
//! (the file was read back with `split(',')`), so fit nodes trained on wrong
//! labels. Here the stratification column holds such values and `embed`
//! trains on it as its label; the partitions and labels that reach the fit
//! nodes are checked against the clinical table.

mod common;
use common::*;
use std::collections::{BTreeMap, BTreeSet};

const POSITIVE: &str = "high, \"CPS\" >= 20\nconfirmed";
const NEGATIVE: &str = "low, \"CPS\" < 20";

const PIPELINE: &str = r#"version: 1
name: csv-values
cohorts:
  institution1: { table: data/institution1/graded.csv, images: data/institution1/images }
stages:
  ingest:
    kind: ingest
    cohorts: [institution1]
    label: { name: pdl1_high, from: cps, rule: ">= 20" }
    sequences: { t1: t1.nii.gz }
    roi: { file: roi.nii.gz, on: t1 }
  split: { kind: split, input: ingest, cohort: institution1, fractions: { train: 0.7, internal: 0.3 }, seed: 5, stratify: grade }
  resample: { kind: resample, input: ingest, spacing: [3, 3, 3] }
  slice: { kind: slice, input: resample, size: 32, margin_mm: 8 }
  embed:
    kind: embed
    input: slice
    sequences: [t1]
    fit_on: train
    label: grade
    positive: "high, \"CPS\" >= 20\nconfirmed"
    backbone: resnet18
    train: { epochs: 1, batch_size: 4, seed: 1, crop_pad: 0 }
    device: cpu
    threads: 2
  pca: { kind: pca, input: embed, components: 2, fit_on: train }
"#;

/// Rewrite the tiny cohort's table with a `grade` column derived from CPS.
fn graded_table(ws: &Workspace) -> BTreeMap<String, String> {
    let mut reader = csv::Reader::from_path(ws.path("data/institution1/clinical.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let cps = header.iter().position(|h| h == "cps").unwrap();
    let mut writer = csv::Writer::from_path(ws.path("data/institution1/graded.csv")).unwrap();
    writer.write_record(header.iter().chain(["grade"])).unwrap();
    let mut grades = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        let grade = if record[cps].parse::<f64>().unwrap() >= 20.0 { POSITIVE } else { NEGATIVE };
        grades.insert(record[0].to_string(), grade.to_string());
        writer.write_record(record.iter().chain([grade])).unwrap();
    }
    writer.flush().unwrap();
    grades
}

fn patients_of(json: &str, field: &str) -> BTreeSet<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v[field].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
}

#[test]
fn commas_quotes_and_newlines_in_stratification_and_label_values_reach_the_fit_nodes_intact() {
    let ws = Workspace::new();
    let out = ws.radpipe(&["synth", "--preset", "tiny", "--out", "data"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let grades = graded_table(&ws);
    ws.write("p.yaml", PIPELINE);
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.executed.contains("embed.fit") && r.executed.contains("pca.fit"), "{:?}", r.executed);

    // Every patient of the cohort, with its grade intact, in one partition.
    let mut reader = csv::Reader::from_path(ws.path("results/split/partition.csv")).unwrap();
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), ["patient_id", "cohort", "partition", "grade", "pdl1_high"]);
    let mut train = BTreeSet::new();
    let mut seen = 0;
    for record in reader.records() {
        let record = record.unwrap();
        assert_eq!(record.len(), 5, "{record:?}");
        assert_eq!(grades[&record[0]], &record[3], "patient {}: the grade was altered", &record[0]);
        assert_eq!(record[4] == *"1", record[3] == *POSITIVE, "patient {}: label and grade disagree", &record[0]);
        if &record[2] == "train" {
            train.insert(record[0].to_string());
        }
        seen += 1;
    }
    assert_eq!(seen, grades.len());
    assert!(train.len() >= 8 && train.len() < grades.len(), "{} training patients", train.len());

    // The fit nodes saw exactly the training patients; embed learnt from both
    // classes of the grade (its worker refuses a single class, which a shifted
    // column, never equal to `positive`, would have given).
    assert_eq!(patients_of(&ws.read("results/embed/fit/fit.json"), "patients"), train);
    assert_eq!(patients_of(&ws.read("results/pca/fit/pca.json"), "training_patients"), train);
    let positives = train.iter().filter(|id| grades[*id] == POSITIVE).count();
    assert!(positives >= 2 && train.len() - positives >= 2, "{positives} of {} positive", train.len());
}
