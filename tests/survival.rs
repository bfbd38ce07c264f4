//! `kind: survival` through the CLI, on the fixtures' data written as tables:
//! log-rank against lifelines (the Rossi recidivism data by financial aid; R's
//! `survdiff(Surv(week, arrest) ~ fin, data = Rossi)` prints the same
//! Chisq = 3.8 on 1 df, p = 0.05), Kaplan-Meier median and reverse-KM median
//! follow-up against lifelines, the Cox HR and C-index against the `stats`
//! library called directly (itself checked against lifelines in crates/stats).

mod common;
use common::stats::*;
use common::*;
use radpipe_stats::survival::{cox_ph, harrell_c, CoxOptions};
use serde_json::Value;

fn case(group: &str, name: &str) -> Value {
    fixture("survival.json")[group].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone()
}

/// Rossi (432 patients) as cohort c1 with `fin` as group and score; the small
/// tied-times KM case as cohort c2 with an alternating arm.
fn workspace(stage: &str) -> Workspace {
    let rossi = case("logrank", "rossi_fin");
    let (t, e, g) = (vf(&rossi["times"]), vf(&rossi["events"]), vf(&rossi["groups"]));
    let mut c1 = String::from("patient_id,week,arrest,fin,score\n");
    for i in 0..t.len() {
        c1.push_str(&format!("R{i:03},{},{},{},{}\n", t[i], e[i], g[i], g[i] * 0.6 + 0.2));
    }
    let small = case("km", "synthetic_ties");
    let (t2, e2) = (vf(&small["times"]), vf(&small["events"]));
    let mut c2 = String::from("patient_id,week,arrest,fin,score\n");
    for i in 0..t2.len() {
        c2.push_str(&format!("S{i:02},{},{},{},{}\n", t2[i], e2[i], i % 2, (i % 2) as f64 * 0.6 + 0.2));
    }
    let ws = Workspace::new();
    ws.write("c1.csv", &c1);
    ws.write("c2.csv", &c2);
    ws.write("p.yaml", &format!("version: 1\nname: surv\ncohorts:\n  c1: {{ table: c1.csv }}\n  c2: {{ table: c2.csv }}\nstages:\n  ingest: {{ kind: ingest, cohorts: [c1, c2] }}\n{stage}"));
    ws
}

#[test]
fn logrank_km_median_follow_up_hr_and_c_index_match_the_references() {
    let ws = workspace("  km: { kind: survival, input: ingest, time: week, event: { column: arrest }, group: fin, cohorts: [c1, c2] }\n");
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, error_of(&r));
    let m = metrics(&ws, "km");
    let rossi = case("logrank", "rossi_fin");
    close(value(&m, "km/c1/all/logrank_chisq"), f(&rossi["statistic"]), 1e-9, "log-rank chi2 (lifelines)");
    close(value(&m, "km/c1/all/logrank_p"), f(&rossi["p"]), 1e-9, "log-rank p (lifelines)");
    assert_eq!(m["km/c1/all/logrank_p"]["n"], 432);
    // Rossi: fewer than half rearrested, so no median; follow-up by reverse KM is 52 weeks.
    assert!(m["km/c1/all/median_survival"]["value"].is_null());
    let km = case("km", "rossi");
    close(value(&m, "km/c1/all/median_followup"), f(&km["fu_median"]), 0.0, "median follow-up");
    // Cox HR of fin = 1 vs 0 and Harrell's C of its linear predictor.
    let (t, e, g) = (vf(&rossi["times"]), vf(&rossi["events"]), vf(&rossi["groups"]));
    let ev: Vec<bool> = e.iter().map(|x| *x == 1.0).collect();
    let fit = cox_ph(&t, &ev, &[g.as_slice()], &CoxOptions::default()).unwrap();
    close(value(&m, "km/c1/1_vs_0/hr"), fit.hazard_ratio[0], 1e-12, "HR");
    let (lo, hi) = ci(&m, "km/c1/1_vs_0/hr");
    close(lo, fit.hr_lower[0], 1e-12, "HR lower");
    close(hi, fit.hr_upper[0], 1e-12, "HR upper");
    close(value(&m, "km/c1/1_vs_0/cox_p"), fit.p_value[0], 1e-12, "Cox p");
    assert!(value(&m, "km/c1/1_vs_0/hr") < 1.0, "financial aid lowers the hazard");
    let c = harrell_c(&t, &fit.linear_predictor(&[g.as_slice()]), &ev).unwrap().c_index;
    close(value(&m, "km/c1/all/c_index"), c, 1e-12, "C-index");
    // c2: lifelines KM of all 14 patients: median 8 (log-log CI 2-10), follow-up 9 (IQR 6-10).
    let small = case("km", "synthetic_ties");
    close(value(&m, "km/c2/all/median_survival"), f(&small["median"]), 0.0, "median");
    assert_eq!(ci(&m, "km/c2/all/median_survival"), (f(&small["median_lower"]), f(&small["median_upper"])));
    close(value(&m, "km/c2/all/median_followup"), f(&small["fu_median"]), 0.0, "median follow-up");
    close(value(&m, "km/c2/all/followup_q1"), f(&small["fu_q1"]), 0.0, "follow-up q1");
    close(value(&m, "km/c2/all/followup_q3"), f(&small["fu_q3"]), 0.0, "follow-up q3");
    // KM data and figure.
    let kmcsv = ws.read("results/km/km.csv");
    assert!(kmcsv.starts_with("cohort,group,time,n_at_risk,n_events,n_censored,survival,se,lower,upper\nc1,0,0,216,0,0,1,0,1,1\n"), "{kmcsv}");
    let svg = ws.read("results/km/km_c1.svg");
    assert!(svg.contains("Number at risk") && svg.contains(">216<"), "numbers at risk under the curves");
    let md = ws.read("results/km/table.md");
    assert!(md.contains("| c1 | 1 | 216 | 48 | NR | 0."), "{md}");
    assert!(md.contains("| c2 | 0 | 7 |"), "{md}");
}

#[test]
fn a_score_split_at_the_training_youden_cut_off_gives_high_and_low_groups() {
    // The score is 0.2 (fin = 0) or 0.8 (fin = 1); Youden for label `fin` on c1 cuts at 0.5.
    let ws = workspace(
        "  a: { kind: survival, input: ingest, time: week, event: { column: arrest }, group: fin, cohorts: [c1] }\n  km:\n    kind: survival\n    input: ingest\n    time: week\n    event: { column: arrest, value: 1, censored: 0 }\n    score: score\n    threshold: { rule: youden, fit_on: c1, label: fin }\n    cohorts: [c1, c2]\n",
    );
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, error_of(&r));
    let (by_score, by_group) = (metrics(&ws, "km"), metrics(&ws, "a"));
    assert_eq!(value(&by_score, "km/c1/high_vs_low/hr"), value(&by_group, "a/c1/1_vs_0/hr"));
    assert_eq!(value(&by_score, "km/c1/all/logrank_p"), value(&by_group, "a/c1/all/logrank_p"));
    assert_eq!(by_score["km/c1/high/median_survival"]["n"], 216);
    assert!(ws.read("results/km/table.md").contains("`score` >= 0.5 is high"));
}

#[test]
fn a_group_without_events_gives_an_undefined_hazard_ratio_not_a_failure() {
    let three = case("logrank", "three_groups_one_without_events");
    let (t, e, g) = (vf(&three["times"]), vf(&three["events"]), vf(&three["groups"]));
    let mut c1 = String::from("patient_id,time,event,arm\n");
    for i in 0..t.len() {
        c1.push_str(&format!("T{i:02},{},{},arm{}\n", t[i], e[i], g[i]));
    }
    let ws = Workspace::new();
    ws.write("c1.csv", &c1);
    ws.write("p.yaml", "version: 1\nname: s\ncohorts:\n  c1: { table: c1.csv }\nstages:\n  ingest: { kind: ingest, cohorts: [c1] }\n  km: { kind: survival, input: ingest, time: time, event: { column: event }, group: arm, cohorts: [c1] }\n");
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    let m = metrics(&ws, "km");
    close(value(&m, "km/c1/all/logrank_chisq"), f(&three["statistic"]), 1e-9, "3-group log-rank (lifelines multivariate_logrank_test)");
    close(value(&m, "km/c1/all/logrank_p"), f(&three["p"]), 1e-9, "3-group log-rank p");
    assert_eq!(m["km/c1/all/logrank_chisq"]["method"], "log-rank, 2 df");
}

fn fails_with(ws: &Workspace, needle: &str) {
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = error_of(&r);
    assert!(e.contains(needle), "expected `{needle}` in: {e}");
    assert!(!ws.path("results/km").exists(), "nothing is written for a failed stage");
}

const SMALL: &str = "patient_id,t,e,g,s\nA1,5,1,x,0.1\nA2,7,0,y,0.9\nA3,3,1,x,0.2\nA4,9,1,y,0.8\nA5,4,0,x,0.3\nA6,6,1,y,0.7\n";

fn small(table: &str, extra: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write("c1.csv", table);
    ws.write("p.yaml", &format!("version: 1\nname: s\ncohorts:\n  c1: {{ table: c1.csv }}\nstages:\n  ingest: {{ kind: ingest, cohorts: [c1] }}\n  km: {{ kind: survival, input: ingest, time: t, event: {{ column: e }}, cohorts: [c1]{extra} }}\n"));
    ws
}

#[test]
fn bad_survival_inputs_name_stage_cohort_column_and_patients() {
    let g = ", group: g";
    assert_eq!(small(SMALL, g).run(&["p.yaml"]).code, 0);
    fails_with(&small(&SMALL.replace("A3,3,", "A3,-3,"), g), "stage `km`, cohort `c1`, column `t`: survival times must be finite and non-negative: A3 (-3)");
    fails_with(&small(&SMALL.replace("A3,3,", "A3,NaN,"), g), "stage `km`, cohort `c1`: missing values in column `t` for 1 patient(s): A3");
    fails_with(
        &small(&SMALL.replace("A4,9,1", "A4,9,2"), g),
        "stage `km`, cohort `c1`, column `e`: values other than the event value `1` and the censored value `0`: A4 (`2`)",
    );
    fails_with(
        &small(SMALL, ", score: s, threshold: { rule: fixed, value: 0.95 }"),
        "stage `km`, cohort `c1`, column `s`: group `high` is empty (threshold 0.95)",
    );
    fails_with(&small(&SMALL.replace(",y,", ",x,"), g), "stage `km`, cohort `c1`, column `g`: need at least two groups, found x");
    let ws = small(SMALL, ", score: s, threshold: { rule: youden, fit_on: training, label: e }");
    let out = ws.radpipe(&["validate", "p.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("stage `km`: cohort `training` is neither a cohort of the ingest stage nor a partition"), "{}", stderr(&out));
}

#[test]
fn a_cut_off_fitted_elsewhere_that_leaves_a_cohort_on_one_side_is_a_note_not_a_failure() {
    // Youden on c1 (label e) puts the cut-off inside c1's scores; every
    // patient of c2 scores above it.
    let ws = Workspace::new();
    ws.write("c1.csv", "patient_id,t,e,g,s\nA1,5,1,x,0.9\nA2,7,0,y,0.1\nA3,3,1,x,0.8\nA4,9,0,y,0.2\nA5,4,1,x,0.7\nA6,6,0,y,0.3\n");
    ws.write("c2.csv", "patient_id,t,e,g,s\nB1,5,1,x,0.95\nB2,7,0,y,0.96\nB3,3,1,x,0.97\n");
    ws.write("p.yaml", "version: 1\nname: s\ncohorts:\n  c1: { table: c1.csv }\n  c2: { table: c2.csv }\nstages:\n  ingest: { kind: ingest, cohorts: [c1, c2] }\n  km: { kind: survival, input: ingest, time: t, event: { column: e }, score: s, threshold: { rule: youden, fit_on: c1, label: e }, cohorts: [c1, c2] }\n");
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, error_of(&r));
    let table = ws.read("results/km/table.md");
    assert!(table.contains("Note: cohort `c2`: group `low` is empty"), "{table}");
    let m = metrics(&ws, "km");
    assert!(m.contains_key("km/c1/all/logrank_p") && !m.contains_key("km/c2/all/logrank_p"));
}
