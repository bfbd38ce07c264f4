//! `kind: evaluate` through the CLI: the committed fixtures' inputs are written as
//! clinical tables (and as score outputs of `command` stages), and the numbers in
//! metrics.json are compared with the fixtures' SciPy / scikit-learn / NumPy
//! DeLong values (tests/fixtures/generate/stats.py). Bad inputs fail with the
//! stage, cohort, column and patients named, and write nothing.

mod common;
use common::stats::*;
use common::*;
use serde_json::Value;

/// The fixture case as a table: patient_id,y,a,b (a = `scores`, b = `scores_b`).
fn case_table(case: &Value, prefix: &str) -> String {
    let (a, b, y) = (vf(&case["scores"]), vf(&case["scores_b"]), vf(&case["labels"]));
    let mut t = String::from("patient_id,y,a,b\n");
    for i in 0..y.len() {
        t.push_str(&format!("{prefix}{i:03},{},{},{}\n", y[i], cell(a[i]), cell(b[i])));
    }
    t
}

fn roc_case(name: &str) -> Value {
    fixture("roc.json")["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone()
}

fn threshold_case(name: &str) -> Value {
    fixture("threshold.json")["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone()
}

const PIPELINE: &str = r#"version: 1
name: ev
cohorts:
  c1: { table: c1.csv }
stages:
  ingest: { kind: ingest, cohorts: [c1] }
  model:
    kind: command
    cmd: "mkdir -p out && cut -d, -f1,4 c1.csv | sed '1s/.*/patient_id,b/' > out/scores.csv"
    deps: [c1.csv]
    outs: [out/scores.csv]
  ev:
    kind: evaluate
    input: [ingest, model]
    label: y
    scores: { A: a, B: model.b }
    cohorts: [c1]
    threshold: { rule: fixed, value: 1.309 }
    compare: delong
"#;

#[test]
fn auc_delong_and_threshold_metrics_match_the_fixtures() {
    let case = roc_case("correlated_300");
    let ws = Workspace::new();
    ws.write("c1.csv", &case_table(&case, "P"));
    ws.write("p.yaml", PIPELINE);
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, error_of(&r));
    let m = metrics(&ws, "ev");
    // AUC and DeLong variance / CI (fixture: NumPy DeLong after Sun & Xu 2014, sklearn AUC).
    close(value(&m, "ev/c1/A/auc"), f(&case["auc"]), 1e-12, "auc A");
    close(value(&m, "ev/c1/A/auc_var"), f(&case["delong"]["var"]), 1e-9, "delong var");
    let (lo, hi) = ci(&m, "ev/c1/A/auc");
    close(lo, f(&case["delong"]["lower"]), 1e-9, "auc lower");
    close(hi, f(&case["delong"]["upper"]), 1e-9, "auc upper");
    assert_eq!(m["ev/c1/A/auc"]["n"], 300);
    // B came from the command stage's scores.csv.
    close(value(&m, "ev/c1/B/auc"), f(&case["paired"]["auc_b"]), 1e-12, "auc B");
    close(value(&m, "ev/c1/A_vs_B/delong_z"), f(&case["paired"]["z"]), 1e-9, "paired z");
    close(value(&m, "ev/c1/A_vs_B/delong_p"), f(&case["paired"]["p_two"]), 1e-9, "paired p");
    let (dlo, dhi) = ci(&m, "ev/c1/A_vs_B/auc_diff");
    close(dlo, f(&case["paired"]["lower"]), 1e-9, "diff lower");
    close(dhi, f(&case["paired"]["upper"]), 1e-9, "diff upper");
    // Metrics at the fixed threshold, Wilson CIs (fixture: statsmodels-free closed form in stats.py).
    let t = threshold_case("correlated_300");
    let at = t["metrics"].as_array().unwrap().iter().find(|x| f(&x["threshold"]) == 1.309).unwrap();
    for metric in ["accuracy", "sensitivity", "specificity", "ppv", "npv"] {
        let want = vf(&at[metric]);
        let id = format!("ev/c1/A/{metric}");
        close(value(&m, &id), want[0], 1e-12, &id);
        let (lo, hi) = ci(&m, &id);
        close(lo, want[1], 1e-9, &format!("{id} lower"));
        close(hi, want[2], 1e-9, &format!("{id} upper"));
    }
    assert_eq!(value(&m, "ev/c1/A/threshold"), 1.309);
    // Scores outside [0, 1] are not probabilities: no Brier score, said in the table.
    assert!(!m.contains_key("ev/c1/A/brier"));
    let md = ws.read("results/ev/table.md");
    assert!(
        md.contains("| c1 | A | 300 | 0.323 (0.273–0.378) | 0.791 (0.735–0.847) | 1.309 | 0.753 (0.702–0.799) | 0.433 (0.339–0.532) | 0.906 (0.858–0.939) | 0.689 (0.564–0.791) | 0.770 (0.712–0.819) |"),
        "{md}"
    );
    assert!(md.contains("| c1 | A | 42 | 19 | 184 | 55 | – | – | – |"), "the 2x2 counts: {md}");
    assert!(md.contains("not declared a probability of `y`"), "{md}");
    assert!(md.contains("| c1 | A vs B | 0.052 (0.005–0.099) | 2.18 | 0.029 |"), "the DeLong comparison: {md}");
    assert!(md.contains("P (paired DeLong, unadjusted)"), "{md}");
    let csv = ws.read("results/ev/table.csv");
    assert!(csv.starts_with("cohort,score,in_sample,n,positives,auc,auc_lower,auc_upper,threshold,tp,fp,tn,fn,prevalence"), "{csv}");
    // The typed tables the report reads: the same cells, each number citing its metric.
    let doc: Value = serde_json::from_str(&ws.read("results/ev/table.json")).unwrap();
    let table = &doc["blocks"][0]["table"];
    assert_eq!(table["columns"][4]["content"][0]["text"], "AUC (95% CI, DeLong)", "{doc}");
    let auc = &table["rows"][0][4]["content"];
    assert_eq!(auc[0]["cited"], serde_json::json!({ "text": "0.791", "metric": "ev/c1/A/auc" }), "{doc}");
    assert!(ws
        .read("results/ev/table.linked.md")
        .contains("| [[m:ev/c1/A/auc|0.791]] ([[m:ev/c1/A/auc|0.735]]–[[m:ev/c1/A/auc|0.847]]) | [[m:ev/c1/A/threshold|1.309]] |"));
    // ROC data: the fixture's sklearn roc_curve (drop_intermediate=False) points.
    let roc = ws.read("results/ev/roc.csv");
    let rows: Vec<&str> = roc.lines().filter(|l| l.starts_with("c1,A,")).collect();
    let fpr = vf(&case["roc"]["fpr"]);
    let tpr = vf(&case["roc"]["tpr"]);
    assert_eq!(rows.len(), fpr.len());
    for (row, (x, y)) in rows.iter().zip(fpr.iter().zip(&tpr)) {
        let fields: Vec<f64> = row.split(',').skip(3).map(|s| s.parse().unwrap()).collect();
        close(fields[0], *x, 1e-12, "fpr");
        close(fields[1], *y, 1e-12, "tpr");
    }
    let svg = ws.read("results/ev/roc_c1.svg");
    assert!(svg.starts_with("<svg") && svg.contains("A (AUC 0.791)"), "{svg}");
    // Every metric id has a lineage back to the table and the command stage.
    let out = ws.radpipe(&["lineage", "p.yaml", "ev/c1/B/auc", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lineage: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(lineage["value"]["value"], m["ev/c1/B/auc"]["value"]);
    assert_eq!(m["ev/c1/B/auc"]["lineage"], lineage["steps"][0]["nodes"][0]["key"], "each metric names the action that produced it");
    assert!(ws.path(&format!(".radpipe/actions/{}.json", m["ev/c1/B/auc"]["lineage"].as_str().unwrap())).exists());
    let text = lineage["steps"].to_string();
    assert!(text.contains("model") && text.contains("c1.csv"), "{text}");
    // A misspelt metric id: the nearest metric ids are suggested, not just the node.
    let out = ws.radpipe(&["lineage", "p.yaml", "ev/c1/B/aucc"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("(did you mean `ev/c1/B/auc`"), "{}", stderr(&out));
    // Rerun: nothing to do.
    let again = ws.run(&["p.yaml"]);
    assert!(again.executed.is_empty(), "{:?}", again.executed);
}

#[test]
fn youden_on_a_partition_is_applied_to_the_other_and_per_patient_scores_json_is_read() {
    // ordinal_ties: 60 patients, heavy ties; its Youden threshold is 3.5 (pROC rule).
    let case = roc_case("ordinal_ties");
    let ws = Workspace::new();
    ws.write("c1.csv", &case_table(&case, "P"));
    ws.write(
        "p.yaml",
        r#"version: 1
name: ev
cohorts:
  c1: { table: c1.csv }
stages:
  ingest: { kind: ingest, cohorts: [c1] }
  split: { kind: split, input: ingest, cohort: c1, fractions: { train: 0.7, internal: 0.3 }, seed: 3, stratify: y }
  model:
    kind: command
    foreach: patient
    cohorts: [c1]
    cmd: "mkdir -p out/${patient} && grep '^${patient},' c1.csv | cut -d, -f3 | sed 's/.*/{\"s\": &}/' > out/${patient}/scores.json"
    deps: [c1.csv]
    outs: ["out/${patient}/scores.json"]
  whole:
    kind: evaluate
    input: [ingest, model]
    label: y
    scores: { S: model.s }
    cohorts: [c1]
    threshold: { rule: youden, fit_on: c1 }
  parts:
    kind: evaluate
    input: [ingest, split, model]
    label: y
    scores: { S: model.s }
    cohorts: [train, internal]
    threshold: { rule: youden, fit_on: train }
"#,
    );
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, error_of(&r));
    let m = metrics(&ws, "whole");
    close(value(&m, "whole/c1/S/auc"), f(&case["auc"]), 1e-12, "auc from per-patient scores.json");
    let t = threshold_case("ordinal_ties");
    close(value(&m, "whole/c1/S/threshold"), f(&t["youden"]["threshold"]), 0.0, "Youden threshold");
    close(value(&m, "whole/c1/S/sensitivity"), f(&t["youden"]["sensitivity"]), 1e-12, "sensitivity at Youden");
    let p = metrics(&ws, "parts");
    let partition = ws.read("results/split/partition.csv");
    let n_train = partition.lines().filter(|l| l.split(',').nth(2) == Some("train")).count();
    let n_internal = partition.lines().filter(|l| l.split(',').nth(2) == Some("internal")).count();
    assert_eq!(p["parts/train/S/auc"]["n"], n_train);
    assert_eq!(p["parts/internal/S/auc"]["n"], n_internal);
    assert_eq!(value(&p, "parts/train/S/threshold"), value(&p, "parts/internal/S/threshold"), "the training cut-off is applied unchanged");
    assert_eq!(p["parts/internal/S/threshold"]["method"], "Youden on train");
}

#[test]
fn brier_calibration_and_decision_curve_match_the_fixtures() {
    let fx = fixture("calibration.json");
    let (p, y) = (vf(&fx["probs"]), vf(&fx["labels"]));
    let mut t = String::from("patient_id,y,p\n");
    for i in 0..p.len() {
        t.push_str(&format!("Q{i:03},{},{}\n", y[i], cell(p[i])));
    }
    let ws = Workspace::new();
    ws.write("c1.csv", &t);
    ws.write(
        "p.yaml",
        "version: 1\nname: cal\ncohorts:\n  c1: { table: c1.csv }\nstages:\n  ingest: { kind: ingest, cohorts: [c1] }\n  ev: { kind: evaluate, input: ingest, label: y, scores: [p], probabilities: [p], cohorts: [c1], threshold: { rule: fixed, value: 0.5 }, calibration: { bins: 10 } }\n",
    );
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, error_of(&r));
    let m = metrics(&ws, "ev");
    close(value(&m, "ev/c1/p/brier"), f(&fx["brier"]), 1e-12, "brier (sklearn brier_score_loss)");
    // Logistic recalibration (fixture: statsmodels-free Newton fit in stats.py; sklearn agrees to 1e-10).
    close(value(&m, "ev/c1/p/calibration_slope"), f(&fx["recal"]["slope"]), 1e-8, "calibration slope");
    close(value(&m, "ev/c1/p/calibration_intercept"), f(&fx["recal"]["intercept"]), 1e-8, "calibration intercept");
    // Calibration curve: sklearn calibration_curve(n_bins=10, strategy="uniform").
    let cal = ws.read("results/ev/calibration.csv");
    let rows: Vec<Vec<&str>> = cal.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let (pt, pp) = (vf(&fx["curve"]["uniform"]["prob_true"]), vf(&fx["curve"]["uniform"]["prob_pred"]));
    assert_eq!(rows.len(), pt.len());
    for (row, (t, pr)) in rows.iter().zip(pt.iter().zip(&pp)) {
        close(row[5].parse().unwrap(), *pr, 1e-12, "mean predicted");
        close(row[6].parse().unwrap(), *t, 1e-12, "observed fraction");
    }
    // Decision curve: net benefit of the model and of treat-all.
    let dca = ws.read("results/ev/decision_curve.csv");
    let grid = vf(&fx["dca"]["thresholds"]);
    let (model, all) = (vf(&fx["dca"]["model"]), vf(&fx["dca"]["treat_all"]));
    for (k, th) in grid.iter().enumerate() {
        let row: Vec<f64> = dca
            .lines()
            .skip(1)
            .map(|l| l.split(',').skip(2).map(|x| x.parse::<f64>().unwrap()).collect::<Vec<f64>>())
            .find(|r| (r[0] - th).abs() < 1e-12)
            .unwrap_or_else(|| panic!("no decision-curve row at {th}"));
        close(row[1], model[k], 1e-9, "net benefit");
        close(row[2], all[k], 1e-9, "treat all");
    }
    for fig in ["roc_c1.svg", "calibration_c1.svg", "decision_curve_c1.svg"] {
        assert!(ws.read(&format!("results/ev/{fig}")).contains("</svg>"), "{fig}");
    }
}

/// A small table for the error cases.
fn small(table: &str, ev: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write("c1.csv", table);
    ws.write("p.yaml", &format!("version: 1\nname: bad\ncohorts:\n  c1: {{ table: c1.csv }}\nstages:\n  ingest: {{ kind: ingest, cohorts: [c1] }}\n  ev: {{ kind: evaluate, input: ingest, label: y, scores: [a], cohorts: [c1]{ev} }}\n"));
    ws
}

const GOOD: &str = "patient_id,y,a\nP1,0,0.1\nP2,1,0.8\nP3,0,0.3\nP4,1,0.6\nP5,0,0.5\nP6,1,0.4\n";

fn fails_with(ws: &Workspace, needle: &str) {
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.failed.contains("ev"), "{:?}", r.failed);
    let e = error_of(&r);
    assert!(e.contains(needle), "expected `{needle}` in: {e}");
    assert!(!ws.path("results/ev").exists(), "nothing is written for a failed stage");
}

#[test]
fn bad_scores_and_labels_are_named_with_stage_cohort_column_and_patients() {
    fails_with(&small(&GOOD.replace("P3,0,0.3", "P3,0,abc"), ""), "stage `ev`, cohort `c1`, column `a`: not a number for 1 patient(s): P3 (`abc`)");
    fails_with(&small(&GOOD.replace("P3,0,0.3", "P3,0,"), ""), "stage `ev`, cohort `c1`: missing values in column `a` for 1 patient(s): P3");
    fails_with(&small(&GOOD.replace("P3,0,0.3", "P3,2,0.3"), ""), "stage `ev`, cohort `c1`, column `y`: a binary label has more than two values");
    fails_with(&small(&GOOD.replace(",1,", ",0,"), ""), "stage `ev`, cohort `c1`, column `y`: need both classes, got 0 positive (`1`) and 6 negative patients");
    fails_with(&small(GOOD, ", positive: yes"), "stage `ev`, cohort `c1`, column `y`: the positive value `yes` is not among the label's values (`0`, `1`)");
}

#[test]
fn missing_drop_leaves_patients_out_and_lists_them() {
    let ws = small(&GOOD.replace("P3,0,0.3", "P3,0,").replace("P5,0,0.5", "P5,,0.5"), ", missing: drop, threshold: { rule: fixed, value: 0.5 }");
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    assert_eq!(ws.read("results/ev/dropped.csv"), "cohort,patient_id,missing\nc1,P3,a\nc1,P5,y\n");
    let m = metrics(&ws, "ev");
    assert_eq!(m["ev/c1/a/auc"]["n"], 4);
    // Remaining: y = 0,1,1,1 with a = 0.1,0.8,0.6,0.4: AUC 1.
    assert_eq!(value(&m, "ev/c1/a/auc"), 1.0);
    assert!(ws.read("results/ev/table.md").contains("2 patient(s) left out for missing values"));
}

#[test]
fn an_unknown_threshold_cohort_is_refused_before_running() {
    let ws = small(GOOD, ", threshold: { rule: youden, fit_on: trian }");
    let out = ws.radpipe(&["validate", "p.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("stage `ev`: cohort `trian` is neither a cohort of the ingest stage nor a partition of a split stage among its inputs"), "{err}");
    assert!(err.contains("p.yaml:7:"), "the position in the pipeline file: {err}");
}

fn r_case<'a>(fx: &'a Value, section: &str, pick: impl Fn(&Value) -> bool) -> &'a Value {
    fx[section].as_array().unwrap().iter().find(|c| pick(c)).unwrap_or_else(|| panic!("no such case in r_reference.json/{section}"))
}

#[test]
fn table2_is_complete_with_clopper_pearson_cis_counts_and_in_sample_rows() {
    // 17 positives (3 at or above the cut-off) and 50 negatives (1 above): the
    // sensitivity is 3/17 and the specificity 49/50, both cases of R's binom.test.
    let mut t = String::from("patient_id,y,a,split\n");
    for i in 0..17 {
        t.push_str(&format!("P{i:02},1,{},{}\n", if i < 3 { 0.9 } else { 0.2 + 0.01 * i as f64 }, if i % 2 == 0 { "fit" } else { "check" }));
    }
    for i in 0..50 {
        t.push_str(&format!("N{i:02},0,{},{}\n", if i == 0 { 0.8 } else { 0.1 + 0.001 * i as f64 }, if i % 2 == 0 { "fit" } else { "check" }));
    }
    let ws = Workspace::new();
    ws.write("c1.csv", &t);
    ws.write(
        "p.yaml",
        "version: 1\nname: cp\ncohorts:\n  c1: { table: c1.csv }\nstages:\n  ingest: { kind: ingest, cohorts: [c1] }\n  ev: { kind: evaluate, input: ingest, label: y, scores: [a], probabilities: [a], cohorts: [c1], threshold: { rule: fixed, value: 0.5 }, proportion_ci: clopper_pearson }\n",
    );
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    let m = metrics(&ws, "ev");
    let fx = fixture("r_reference.json");
    for (metric, k, n) in [("sensitivity", 3, 17), ("specificity", 49, 50)] {
        let want = r_case(&fx, "binom_test", |c| c["k"] == k && c["n"] == n && c["level"] == 0.95);
        let id = format!("ev/c1/a/{metric}");
        close(value(&m, &id), f(&want["estimate"]), 1e-12, &id);
        let (lo, hi) = ci(&m, &id);
        close(lo, f(&want["lower"]), 1e-9, &format!("{id} lower (R binom.test)"));
        close(hi, f(&want["upper"]), 1e-9, &format!("{id} upper (R binom.test)"));
        assert_eq!(m[&id]["method"], "Clopper-Pearson", "the method is recorded");
    }
    for (metric, want) in [("tp", 3.0), ("fp", 1.0), ("tn", 49.0), ("fn", 14.0), ("positives", 17.0)] {
        assert_eq!(value(&m, &format!("ev/c1/a/{metric}")), want, "{metric}");
    }
    close(value(&m, "ev/c1/a/prevalence"), 17.0 / 67.0, 1e-12, "prevalence");
    let md = ws.read("results/ev/table.md");
    assert!(md.contains("| Sensitivity (95% CI, Clopper-Pearson) |"), "the method is named in the table: {md}");
    assert!(md.contains("| c1 | a | 67 | 0.254 ("), "n and prevalence: {md}");
    assert!(md.contains("| 0.500 | "), "the threshold: {md}");
    assert!(md.contains("| c1 | a | 3 | 1 | 49 | 14 | "), "the 2x2 counts: {md}");
    assert!(!md.contains("in-sample"), "a fixed threshold and a column score: nothing fitted here: {md}");
    let csv = ws.read("results/ev/table.csv");
    assert!(csv.lines().next().unwrap().contains("sensitivity,sensitivity_lower,sensitivity_upper"), "{csv}");
    // The same cohort with a threshold fitted on part of it: the `fit` rows are in-sample.
    ws.write("c1.csv", &t);
    ws.write(
        "p.yaml",
        "version: 1\nname: cp\ncohorts:\n  fit: { table: fit.csv }\n  check: { table: check.csv }\nstages:\n  ingest: { kind: ingest, cohorts: [fit, check] }\n  ev: { kind: evaluate, input: ingest, label: y, scores: [a], cohorts: [fit, check], threshold: { rule: youden, fit_on: fit } }\n",
    );
    let part = |name: &str| -> String {
        let mut lines = t.lines();
        let mut out = format!("{}\n", lines.next().unwrap());
        for l in lines.filter(|l| l.ends_with(&format!(",{name}"))) {
            out.push_str(l);
            out.push('\n');
        }
        out
    };
    ws.write("fit.csv", &part("fit"));
    ws.write("check.csv", &part("check"));
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    let md = ws.read("results/ev/table.md");
    assert!(md.contains("| fit (in-sample) | a |") && md.contains("| check | a |"), "{md}");
    assert!(md.contains("not declared a probability of `y`"), "a column not declared a probability gets no Brier score, and the note says why: {md}");
    assert!(!metrics(&ws, "ev").contains_key("ev/fit/a/brier"));
}

#[test]
fn the_class_test_is_r_wilcox_and_a_threshold_can_be_fitted_for_another_label() {
    let fx = fixture("r_reference.json");
    for (case, exact) in [("no_ties_small", true), ("ties_60_45", false)] {
        let want = r_case(&fx, "wilcox_test", |c| c["name"] == case && c["exact"] == exact);
        let (a, b) = (vf(&want["a"]), vf(&want["b"]));
        // `z` is a second label: the threshold is fitted for it on cohort c0.
        let mut t = String::from("patient_id,y,z,s\n");
        for (i, x) in a.iter().enumerate() {
            t.push_str(&format!("A{i:03},1,{},{x}\n", (i % 2 == 0) as u8));
        }
        for (i, x) in b.iter().enumerate() {
            t.push_str(&format!("B{i:03},0,{},{x}\n", (i % 3 == 0) as u8));
        }
        let ws = Workspace::new();
        ws.write("c1.csv", &t);
        ws.write("c0.csv", &t.replace(",1,0,", ",1,1,").replace("A0", "X0").replace("B0", "Y0"));
        ws.write(
            "p.yaml",
            "version: 1\nname: mw\ncohorts:\n  c0: { table: c0.csv }\n  c1: { table: c1.csv }\nstages:\n  ingest: { kind: ingest, cohorts: [c0, c1] }\n  ev: { kind: evaluate, input: ingest, label: y, scores: [s], cohorts: [c1], class_test: mann_whitney, threshold: { rule: youden, fit_on: c0, label: z } }\n  own: { kind: evaluate, input: ingest, label: z, scores: [s], cohorts: [c0] }\n",
        );
        let r = ws.run(&["p.yaml"]);
        assert_eq!(r.code, 0, "{}", error_of(&r));
        let m = metrics(&ws, "ev");
        // R's W is the U statistic of the first sample (the positives here).
        close(value(&m, "ev/c1/s/mwu_u"), f(&want["W"]), 1e-12, &format!("{case}: U (R wilcox.test W)"));
        close(value(&m, "ev/c1/s/mwu_p"), f(&want["p"]), 1e-9, &format!("{case}: p (R wilcox.test, {})", want["method"]));
        let md = ws.read("results/ev/table.md");
        assert!(md.contains("| y = 1, median (IQR) | y other, median (IQR) | U | P (Mann-Whitney, two-sided) |"), "{md}");
        // The cut-off is z's Youden point on c0, which `own` computes directly.
        assert_eq!(value(&m, "ev/c1/s/threshold"), value(&metrics(&ws, "own"), "own/c0/s/threshold"), "{case}");
        assert_eq!(m["ev/c1/s/threshold"]["method"], "Youden on c0 for z = 1", "the threshold names the label it was fitted for");
        assert!(ws.read("results/ev/table.md").contains("(Youden index on c0 for z = 1)"));
        assert!(ws.read("results/own/table.md").contains("| c0 (in-sample) | s |"), "each cohort's own Youden point is fitted in-sample");
    }
}

#[test]
fn a_label_of_booleans_as_r_writes_them_is_evaluated_with_positive_true() {
    let ws = Workspace::new();
    let mut t = String::from("patient_id,y,a\n");
    for (i, (y, a)) in [("TRUE", 0.9), ("FALSE", 0.2), ("TRUE", 0.7), ("FALSE", 0.4), ("TRUE", 0.3), ("FALSE", 0.1)].iter().enumerate() {
        t.push_str(&format!("P{i},{y},{a}\n"));
    }
    ws.write("c1.csv", &t);
    ws.write(
        "p.yaml",
        "version: 1\nname: ev\ncohorts:\n  c1: { table: c1.csv }\nstages:\n  ingest: { kind: ingest, cohorts: [c1] }\n  ev:\n    kind: evaluate\n    input: [ingest]\n    label: y\n    positive: true\n    scores: { A: a }\n    cohorts: [c1]\n    threshold: { rule: fixed, value: 0.5 }\n",
    );
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, error_of(&r));
    // Positives 0.9, 0.7, 0.3 against negatives 0.2, 0.4, 0.1: 8 of 9 pairs ordered.
    close(value(&metrics(&ws, "ev"), "ev/c1/A/auc"), 8.0 / 9.0, 1e-12, "auc");
}
