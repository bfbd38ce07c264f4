//! `kind: survival` through the CLI, on the fixtures' data written as tables:
//! log-rank against lifelines (the Rossi recidivism data by financial aid; R's
//! `survdiff(Surv(week, arrest) ~ fin, data = Rossi)` prints the same
//! Chisq = 3.8 on 1 df, p = 0.05), Kaplan-Meier median and reverse-KM median
//! follow-up against lifelines, the Cox HR and C-index against the `stats`
//! library called directly (itself checked against lifelines in crates/stats).
//! The follow-up, the log-rank and Wald p side by side, the adjusted Cox model
//! and the KM bands against lifelines on two simulated cohorts
//! (tests/fixtures/stats/survival_multi.json, by
//! tests/fixtures/generate/survival_stage.py).

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
    assert!(ws.read("results/km/table.md").contains("`score` >= 0.500 is high"), "the cut-off with the table's 3 decimals");
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

/// The cohorts of survival_multi.json as tables `a.csv` and `b.csv` (patient B007 lacks `age`).
fn multi_workspace(stage: &str) -> (Workspace, Value) {
    let fx = fixture("survival_multi.json");
    let ws = Workspace::new();
    let columns: Vec<&str> = fx["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for (name, c) in fx["cohorts"].as_object().unwrap() {
        let mut text = columns.join(",") + "\n";
        for row in c["rows"].as_array().unwrap() {
            let cells: Vec<String> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| if v.is_null() { String::new() } else { v.to_string() }))
                .collect();
            text.push_str(&(cells.join(",") + "\n"));
        }
        ws.write(&format!("{name}.csv"), &text);
    }
    ws.write("p.yaml", &format!("version: 1\nname: multi\ncohorts:\n  a: {{ table: a.csv }}\n  b: {{ table: b.csv }}\nstages:\n  ingest: {{ kind: ingest, cohorts: [a, b] }}\n  km:\n    kind: survival\n    input: ingest\n    time: months\n    event: {{ column: progression }}\n    score: dls\n    threshold: {{ rule: fixed, value: 0.5 }}\n    cohorts: [a, b]\n{stage}"));
    (ws, fx)
}

const ADJUSTED: &str = "    covariates: [age, t_stage, n_stage]\n    confidence_bands: true\n";

#[test]
fn follow_up_log_rank_and_wald_p_and_the_adjusted_cox_model_match_lifelines() {
    let (ws, fx) = multi_workspace(&format!("{ADJUSTED}    missing: drop\n"));
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, error_of(&r));
    let m = metrics(&ws, "km");
    for c in ["a", "b"] {
        let re = &fx["cohorts"][c]["reference"];
        let id = |s: &str| format!("km/{c}/{s}");
        // Reverse Kaplan-Meier quantiles are observed times: exact.
        close(value(&m, &id("all/median_followup")), f(&re["fu_median"]), 0.0, "median follow-up (lifelines reverse KM)");
        close(value(&m, &id("all/followup_q1")), f(&re["fu_q1"]), 0.0, "follow-up q1");
        close(value(&m, &id("all/followup_q3")), f(&re["fu_q3"]), 0.0, "follow-up q3");
        close(value(&m, &id("all/logrank_chisq")), f(&re["logrank_chisq"]), 1e-9, "log-rank chi2 (lifelines)");
        close(value(&m, &id("all/logrank_p")), f(&re["logrank_p"]), 1e-9, "log-rank p");
        // Both Newton fits converge to 1e-11 or better: HR, CI and p agree to 1e-7 (relative).
        close(value(&m, &id("high_vs_low/hr")), f(&re["hr"]), 1e-7, "unadjusted HR (lifelines)");
        let (lo, hi) = ci(&m, &id("high_vs_low/hr"));
        close(lo, f(&re["hr_lower"]), 1e-7, "unadjusted HR lower");
        close(hi, f(&re["hr_upper"]), 1e-7, "unadjusted HR upper");
        close(value(&m, &id("high_vs_low/cox_p")), f(&re["wald_p"]), 1e-7, "Wald p");
        assert_eq!(value(&m, &id("adjusted/all/n")), f(&re["n"]), "{c}: complete cases");
        assert_eq!(value(&m, &id("adjusted/all/events")), f(&re["events"]));
        let terms = re["adjusted"].as_array().unwrap();
        assert_eq!(terms.len(), 6, "group, age, T2-T4 vs T1, n_stage");
        for t in terms {
            let term = t["term"].as_str().unwrap();
            let hr = id(&format!("adjusted/{term}/hr"));
            close(value(&m, &hr), f(&t["hr"]), 1e-7, &format!("{c} adjusted HR {term} (lifelines)"));
            close(value(&m, &hr).ln(), f(&t["coef"]), 1e-7, &format!("{c} adjusted coef {term}"));
            let (lo, hi) = ci(&m, &hr);
            close(lo, f(&t["lower"]), 1e-7, &format!("{c} adjusted HR lower {term}"));
            close(hi, f(&t["upper"]), 1e-7, &format!("{c} adjusted HR upper {term}"));
            close(value(&m, &id(&format!("adjusted/{term}/cox_p"))), f(&t["p"]), 1e-7, &format!("{c} adjusted Wald p {term}"));
        }
        assert_eq!(m[&id("adjusted/age/hr")]["method"], "Cox PH adjusted for age, t_stage, n_stage, Efron ties, Wald CI");
    }
    assert_eq!(m["km/b/all/logrank_p"]["n"], 89, "B007 (no age) is left out of every analysis of b");
    assert_eq!(ws.read("results/km/dropped.csv"), "cohort,patient_id,missing\nb,B007,age\n");

    // The page: Wald p, log-rank p and follow-up side by side, each named.
    let md = ws.read("results/km/table.md");
    assert!(md.contains("| HR (95% CI) | Wald p<sup>a</sup> | Log-rank p<sup>b</sup> | Median follow-up (IQR)<sup>c</sup> |"), "{md}");
    let fu = &fx["cohorts"]["a"]["reference"];
    assert!(md.contains(&format!("| {:.2} ({:.2}–{:.2}) |", f(&fu["fu_median"]), f(&fu["fu_q1"]), f(&fu["fu_q3"]))), "{md}");
    assert!(md.contains("<sup>a</sup> Wald test of the Cox coefficient") && md.contains("<sup>b</sup> Log-rank test of equal survival"), "{md}");
    assert!(md.contains("| a | `t_stage` T3 vs T1 | | | "), "{md}");
    let linked = ws.read("results/km/table.linked.md");
    assert!(linked.contains(&format!("[[m:km/a/all/median_followup|{:.2}]] ([[m:km/a/all/followup_q1|", f(&fu["fu_median"]))), "{linked}");
    assert!(linked.contains("| a | high | [[m:km/a/high/n|"), "{linked}");
    // Every number of table.json cites a metric of metrics.json.
    let doc: Value = serde_json::from_str(&ws.read("results/km/table.json")).unwrap();
    assert_eq!(doc["blocks"][2]["table"]["title"], "Multivariable Cox model by cohort: the groups adjusted for age, t_stage, n_stage");
    let mut cited = Vec::new();
    collect_citations(&doc, &mut cited);
    assert!(cited.len() > 80, "{}", cited.len());
    for c in &cited {
        assert!(m.contains_key(c), "{c} is cited but not in metrics.json");
    }
    for t in ["adjusted/high_vs_low/hr", "adjusted/t_stage=T4_vs_T1/cox_p", "adjusted/all/n", "all/logrank_p", "all/followup_q3"] {
        assert!(cited.contains(&format!("km/a/{t}")), "km/a/{t} is not shown");
    }
    let csv = ws.read("results/km/adjusted.csv");
    assert!(csv.starts_with("cohort,term,n,events,coef,se,hr,hr_lower,hr_upper,cox_p\na,high_vs_low,160,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 2 * 6);

    // The bands: km.csv's log-log CI as lifelines', drawn as one shaded polygon per group.
    let km = ws.read("results/km/km.csv");
    for g in ["low", "high"] {
        let band = &fx["cohorts"]["a"]["reference"]["bands"][g];
        let rows: Vec<Vec<f64>> = km
            .lines()
            .filter(|l| l.starts_with(&format!("a,{g},")) && !l.starts_with(&format!("a,{g},0,")))
            .map(|l| l.split(',').skip(2).map(|x| x.parse().unwrap()).collect())
            .collect();
        assert_eq!(rows.len(), vf(&band["time"]).len(), "{g}: one row per distinct time");
        for (k, row) in rows.iter().enumerate() {
            close(row[0], vf(&band["time"])[k], 0.0, "time");
            close(row[6], vf(&band["lower"])[k], 1e-10, &format!("{g} lower (lifelines log-log)"));
            close(row[7], vf(&band["upper"])[k], 1e-10, &format!("{g} upper (lifelines log-log)"));
        }
    }
    let svg = ws.read("results/km/km_a.svg");
    assert_eq!(svg.matches("<polygon fill=").count(), 2, "a band per group");
    assert!(svg.contains("shaded: 95% CI"));
}

fn collect_citations(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Object(c)) = o.get("cited") {
                out.push(c["metric"].as_str().unwrap().to_string());
            }
            o.values().for_each(|x| collect_citations(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_citations(x, out)),
        _ => {}
    }
}

#[test]
fn without_the_new_options_no_bands_and_no_adjusted_model() {
    let (ws, _) = multi_workspace("    missing: drop\n");
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    assert!(!ws.read("results/km/km_a.svg").contains("<polygon"));
    assert!(!ws.path("results/km/adjusted.csv").exists());
    assert!(!metrics(&ws, "km").keys().any(|k| k.contains("/adjusted/")));
    assert!(!ws.read("results/km/table.md").contains("Multivariable"));
}

#[test]
fn bad_covariates_are_located_errors_and_a_singular_design_is_not_estimable() {
    // A missing covariate value under `missing: refuse` names the patient and column.
    let (ws, _) = multi_workspace(ADJUSTED);
    fails_with(&ws, "stage `km`, cohort `b`: missing values in column `age` for 1 patient(s): B007");
    let table = "patient_id,t,e,g,s,k,s2,site\nA1,5,1,x,0.1,1,0.2,u\nA2,7,0,y,0.9,1,1.8,u\nA3,3,1,x,0.2,1,0.4,u\nA4,9,1,y,0.8,1,1.6,u\nA5,4,0,x,0.3,1,0.6,u\nA6,6,1,y,0.7,1,1.4,u\n";
    let g = ", group: g, covariates";
    assert_eq!(small(table, &format!("{g}: [s]")).run(&["p.yaml"]).code, 0);
    fails_with(&small(table, &format!("{g}: [sx]")), "stage `km`: column `sx` is not in the ingested table; did you mean `s`? (a column of `covariates`)");
    fails_with(
        &small(table, &format!("{g}: [s, k]")),
        "stage `km`, cohort `c1`, column `k`: every patient has the value `1`, so the adjusted Cox model is singular; leave `k` out of `covariates`",
    );
    fails_with(&small(table, &format!("{g}: [site]")), "stage `km`, cohort `c1`, column `site`: every patient has the value `u`");
    // A term in the span of the others (here `s2` = 2 `s`): that cohort's model is not estimable, named.
    let ws = small(table, &format!("{g}: [s, s2]"));
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    let why = "not estimable: the design is singular: the term `s2` is a linear combination of the terms before it (columns `g`, `s`, `s2`)";
    assert!(ws.read("results/km/table.md").contains(&format!("Note: cohort `c1`: the adjusted model is {why}.")), "{}", ws.read("results/km/table.md"));
    assert_eq!(metrics(&ws, "km")["km/c1/adjusted/s/cox_p"]["method"], format!("Cox PH adjusted for s, s2, Efron ties, {why}"));
    assert!(metrics(&ws, "km")["km/c1/all/logrank_p"]["value"].is_number(), "the unadjusted analysis stands");
    for (cov, msg) in [
        ("[s, s]", "stage `km`: covariate `s` is listed twice"),
        ("[t]", "stage `km`: covariate `t` is the time column"),
        ("[g]", "stage `km`: covariate `g` is the group column"),
    ] {
        let out = small(table, &format!("{g}: {cov}")).radpipe(&["validate", "p.yaml"]);
        assert_eq!(out.status.code(), Some(2), "{cov}");
        assert!(stderr(&out).contains(msg), "{}", stderr(&out));
    }
}

#[test]
fn an_adjusted_model_without_a_finite_maximum_is_not_estimable_not_a_failure() {
    // A group without events: the likelihood grows without bound, adjusted as unadjusted.
    let three = case("logrank", "three_groups_one_without_events");
    let (t, e, g) = (vf(&three["times"]), vf(&three["events"]), vf(&three["groups"]));
    let mut c1 = String::from("patient_id,time,event,arm,x\n");
    for i in 0..t.len() {
        c1.push_str(&format!("T{i:02},{},{},arm{},{}\n", t[i], e[i], g[i], (i * 7 % 11) as f64 / 10.0));
    }
    let ws = Workspace::new();
    ws.write("c1.csv", &c1);
    ws.write("p.yaml", "version: 1\nname: s\ncohorts:\n  c1: { table: c1.csv }\nstages:\n  ingest: { kind: ingest, cohorts: [c1] }\n  km: { kind: survival, input: ingest, time: time, event: { column: event }, group: arm, covariates: [x], cohorts: [c1] }\n");
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    let m = metrics(&ws, "km");
    assert!(m["km/c1/adjusted/x/hr"]["value"].is_null());
    assert!(m["km/c1/adjusted/x/hr"]["method"].as_str().unwrap().contains("not estimable"), "{:?}", m["km/c1/adjusted/x/hr"]);
    let md = ws.read("results/km/table.md");
    assert!(md.contains("Note: cohort `c1`: the adjusted model is not estimable"), "{md}");
}
