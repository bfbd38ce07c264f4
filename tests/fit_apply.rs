//! Fit and apply nodes: a learning stage (`pca`) fits on the training partition
//! of a split only, applies to every patient, and never refits when validation
//! cohorts grow, change or are swapped.

mod common;
use common::*;

const PIPELINE: &str = r#"version: 1
name: fit-apply
params: { seed: 5 }
cohorts:
  inst: { table: inst.csv }
  external: { table: external.csv }
stages:
  ingest: { kind: ingest, cohorts: [inst, external], label: { name: high, from: cps, rule: ">= 20" } }
  split: { kind: split, input: ingest, cohort: inst, fractions: { train: 0.7, internal: 0.3 }, seed: "${params.seed}" }
  features:
    kind: command
    foreach: patient
    cohorts: [inst, external]
    cmd: "cp raw/${patient}.txt out/f/${patient}/features.csv"
    deps: ["raw/${patient}.txt"]
    outs: ["out/f/${patient}/features.csv"]
  pca: { kind: pca, input: features, components: 2, fit_on: train }
"#;

/// A clinical table, and one feature file per patient in `raw/`.
fn table(ws: &Workspace, prefix: &str, n: usize, offset: usize) -> String {
    let mut s = String::from("patient_id,cps\n");
    for i in 0..n {
        let x = (i + offset) as f64;
        s.push_str(&format!("{prefix}{i:02},{}\n", if i % 3 == 0 { 30 } else { 5 }));
        ws.write(&format!("raw/{prefix}{i:02}.txt"), &format!("{},{},{}\n", x, (x * 0.7).sin() * 3.0, x * x * 0.01));
    }
    s
}

fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write("p.yaml", PIPELINE);
    let inst = table(&ws, "I", 20, 0);
    ws.write("inst.csv", &inst);
    let external = table(&ws, "E", 6, 50);
    ws.write("external.csv", &external);
    ws
}

#[test]
fn the_fit_node_sees_only_the_training_partition_and_every_patient_is_projected() {
    let ws = workspace();
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.executed.contains("pca.fit") && r.executed.contains("pca[E05]") && r.executed.contains("pca[I00]"));
    let partition = ws.read("results/split/partition.csv");
    let mut train: Vec<&str> = partition.lines().skip(1).filter(|l| l.split(',').nth(2) == Some("train")).map(|l| l.split(',').next().unwrap()).collect();
    train.sort();
    assert_eq!(train.len(), 14);
    let info: serde_json::Value = serde_json::from_str(&ws.read("results/pca/fit/pca.json")).unwrap();
    let mut seen: Vec<&str> = info["training_patients"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    seen.sort();
    assert_eq!(seen, train);
    let lineage: serde_json::Value = serde_json::from_slice(&ws.radpipe(&["lineage", "p.yaml", "pca.fit", "--json"]).stdout).unwrap();
    let features = lineage["steps"].as_array().unwrap().iter().find(|s| s["stage"] == "features").unwrap();
    assert_eq!(features["items"], 14, "the fit's lineage holds the training patients only");
}

#[test]
fn growing_or_editing_validation_cohorts_never_refits() {
    let ws = workspace();
    ws.run(&["p.yaml"]);
    // A new external patient: its own nodes, nothing else (ingest re-reads the table).
    ws.write("raw/E99.txt", "1,2,3\n");
    ws.write("external.csv", &(ws.read("external.csv") + "E99,25\n"));
    let status = stdout(&ws.radpipe(&["status", "p.yaml", "--nodes"]));
    assert!(status.contains("pca.fit\n    upstream `split` will run (this node stays cached if their outputs come out unchanged)"), "{status}");
    let r = ws.run(&["p.yaml"]);
    assert!(!r.executed.contains("pca.fit"), "{:?}", r.executed);
    assert!(r.executed.contains("features[E99]") && r.executed.contains("pca[E99]"));
    assert!(!r.executed.iter().any(|n| n.starts_with("pca[E0")), "{:?}", r.executed);
    // An internal-validation patient's features change: its projection only.
    let partition = ws.read("results/split/partition.csv");
    let internal = partition.lines().find(|l| l.split(',').nth(2) == Some("internal")).unwrap().split(',').next().unwrap().to_string();
    ws.write(&format!("raw/{internal}.txt"), "100,100,100\n");
    let r = ws.run(&["p.yaml"]);
    assert!(!r.executed.contains("pca.fit"), "{:?}", r.executed);
    assert!(r.executed.contains(&format!("pca[{internal}]")));
    // Swapping the external cohort for another table: no training node runs.
    let other = table(&ws, "X", 4, 80);
    ws.write("other.csv", &other);
    let r = ws.run(&["p.yaml", "--set", "cohorts.external.table=other.csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.executed.contains("pca.fit") && r.executed.contains("pca[X03]"), "{:?}", r.executed);
}

#[test]
fn a_training_patient_change_refits() {
    let ws = workspace();
    ws.run(&["p.yaml"]);
    let partition = ws.read("results/split/partition.csv");
    let trainee = partition.lines().find(|l| l.split(',').nth(2) == Some("train")).unwrap().split(',').next().unwrap().to_string();
    ws.write(&format!("raw/{trainee}.txt"), "-40,7,9\n");
    let r = ws.run(&["p.yaml"]);
    assert!(r.executed.contains("pca.fit"));
}
