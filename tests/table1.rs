//! `kind: table1` through the CLI, on the fixtures' samples written as tables:
//! the test chosen by the normality rule and its p-value against SciPy
//! (tests/fixtures/stats/hypothesis.json), summaries against values computed
//! here, and the missing-values policy.

mod common;
use common::stats::*;
use common::*;
use serde_json::Value;

fn hyp() -> Value {
    fixture("hypothesis.json")
}

/// c1: the ANOVA and Kruskal-Wallis fixture samples (4 groups of 12, 15, 9, 20)
/// as columns `xa` and `xk` with the group in `arm`. c2, c3, c4: patients whose
/// cross-tabulation of `arm` by `v` is the fixture's chi-square, Fisher and r x c table.
fn workspace(stages: &str) -> Workspace {
    let h = hyp();
    let (ga, gk) = (h["anova"]["groups"].as_array().unwrap(), h["kruskal"]["groups"].as_array().unwrap());
    let mut c1 = String::from("patient_id,arm,xa,xk,v\n");
    let mut k = 0;
    for (g, (a, b)) in ga.iter().zip(gk).enumerate() {
        for (x, y) in vf(a).iter().zip(vf(b)) {
            c1.push_str(&format!("A{k:03},g{},{},{},\n", g + 1, cell(*x), cell(y)));
            k += 1;
        }
    }
    let crosstab = |prefix: &str, table: &Value| {
        let mut t = String::from("patient_id,arm,xa,xk,v\n");
        let mut k = 0;
        for (level, row) in table.as_array().unwrap().iter().enumerate() {
            for (arm, count) in row.as_array().unwrap().iter().enumerate() {
                for _ in 0..count.as_u64().unwrap() {
                    t.push_str(&format!("{prefix}{k:03},arm{arm},,,L{level}\n"));
                    k += 1;
                }
            }
        }
        t
    };
    let chi = h["chi2"].as_array().unwrap().iter().find(|c| c["name"] == "2x2" && c["yates"] == true).unwrap().clone();
    let ws = Workspace::new();
    ws.write("c1.csv", &c1);
    ws.write("c2.csv", &crosstab("B", &chi["table"]));
    ws.write("c3.csv", &crosstab("C", &h["fisher"][0]["table"]));
    ws.write("c4.csv", &crosstab("D", &h["rxc"][0]["table"]));
    ws.write(
        "p.yaml",
        &format!("version: 1\nname: t1\ncohorts:\n  c1: {{ table: c1.csv }}\n  c2: {{ table: c2.csv }}\n  c3: {{ table: c3.csv }}\n  c4: {{ table: c4.csv }}\nstages:\n  ingest: {{ kind: ingest, cohorts: [c1, c2, c3, c4] }}\n{stages}"),
    );
    ws
}

const CONTINUOUS: &str = "    variables: [{ column: xa, name: \"X (ANOVA sample)\", type: continuous }, { column: xk, type: continuous }]\n";

#[test]
fn continuous_variables_use_the_test_the_normality_rule_picks() {
    let stages = format!(
        "  t04:\n    kind: table1\n    input: ingest\n    by: arm\n    cohorts: [c1]\n    normality_alpha: 0.04\n{CONTINUOUS}  t05:\n    kind: table1\n    input: ingest\n    by: arm\n    cohorts: [c1]\n{CONTINUOUS}"
    );
    let ws = workspace(&stages);
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, error_of(&r));
    let h = hyp();
    // Shapiro-Wilk p of the ANOVA sample's groups (SciPy): 0.0493, 0.518, 0.0581, 0.531;
    // of the Kruskal sample's: 0.0018, 0.421, 0.0039, 0.0249.
    let m = metrics(&ws, "t04");
    assert_eq!(m["t04/all/xa/p_value"]["method"], "one-way ANOVA");
    close(value(&m, "t04/all/xa/statistic"), f(&h["anova"]["statistic"]), 1e-9, "F (scipy f_oneway)");
    close(value(&m, "t04/all/xa/p_value"), f(&h["anova"]["p"]), 1e-9, "ANOVA p");
    assert_eq!(m["t04/all/xk/p_value"]["method"], "Kruskal-Wallis test");
    close(value(&m, "t04/all/xk/statistic"), f(&h["kruskal"]["statistic"]), 1e-9, "H (scipy kruskal)");
    close(value(&m, "t04/all/xk/p_value"), f(&h["kruskal"]["p"]), 1e-9, "Kruskal-Wallis p");
    // At the usual 0.05, group 1 of the ANOVA sample is not normal: Kruskal-Wallis,
    // p = scipy.stats.kruskal(*groups).pvalue = 0.005815845565319216 (SciPy 1.x).
    let m5 = metrics(&ws, "t05");
    assert_eq!(m5["t05/all/xa/p_value"]["method"], "Kruskal-Wallis test");
    close(value(&m5, "t05/all/xa/p_value"), 0.005815845565319216, 1e-9, "Kruskal-Wallis p of the ANOVA sample");
    // Summaries, computed here: mean, sample SD, and quartiles by linear interpolation.
    let g1 = vf(&h["anova"]["groups"][0]);
    let n = g1.len() as f64;
    let mean = g1.iter().sum::<f64>() / n;
    let sd = (g1.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    close(value(&m, "t04/g1/xa/mean"), mean, 1e-12, "mean");
    close(value(&m, "t04/g1/xa/sd"), sd, 1e-12, "sd");
    let mut s = g1.clone();
    s.sort_by(f64::total_cmp);
    let h25 = (s.len() - 1) as f64 * 0.25;
    let q1 = s[h25.floor() as usize] + (h25 - h25.floor()) * (s[h25.ceil() as usize] - s[h25.floor() as usize]);
    close(value(&m, "t04/g1/xa/q1"), q1, 1e-12, "q1");
    assert_eq!(m["t04/g1/xa/n"]["value"], 12.0);
    let md = ws.read("results/t04/table.md");
    assert!(md.contains("| Characteristic | g1 (n=12) | g2 (n=15) | g3 (n=9) | g4 (n=20) | P value |"), "{md}");
    assert!(md.contains(&format!("| X (ANOVA sample), mean ± SD | {mean:.2} ± {sd:.2} |")), "{md}");
    assert!(md.contains("| xk, median (IQR) |"), "{md}");
    assert!(md.contains("<sup>b</sup> one-way ANOVA.") && md.contains("<sup>d</sup> Kruskal-Wallis test."), "{md}");
}

#[test]
fn categorical_variables_use_chi_square_or_fisher_by_the_expected_counts() {
    let t = |name: &str, cohort: &str| {
        format!("  {name}: {{ kind: table1, input: ingest, by: arm, cohorts: [{cohort}], variables: [{{ column: v, name: Stage, type: categorical }}] }}\n")
    };
    let ws = workspace(&(t("chi", "c2") + &t("fisher", "c3") + &t("rxc", "c4")));
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, error_of(&r));
    let h = hyp();
    let chi = h["chi2"].as_array().unwrap().iter().find(|c| c["name"] == "2x2" && c["yates"] == true).unwrap().clone();
    let m = metrics(&ws, "chi");
    assert_eq!(m["chi/all/v/p_value"]["method"], "chi-square test (Yates' correction for 2x2 tables)");
    close(value(&m, "chi/all/v/statistic"), f(&chi["statistic"]), 1e-9, "chi2 (scipy chi2_contingency, correction=True)");
    close(value(&m, "chi/all/v/p_value"), f(&chi["p"]), 1e-9, "chi2 p");
    // Table [[12, 5], [7, 15]]: rows are levels L0, L1; columns arms.
    assert_eq!(value(&m, "chi/arm0/v/L0"), 12.0);
    assert_eq!(m["chi/arm0/v/L0"]["n"], 19);
    close(value(&m, "chi/arm0/v/L0_pct"), 100.0 * 12.0 / 19.0, 1e-12, "percent");
    let m = metrics(&ws, "fisher");
    assert_eq!(m["fisher/all/v/p_value"]["method"], "Fisher's exact test");
    close(value(&m, "fisher/all/v/p_value"), f(&h["fisher"][0]["p"]), 1e-9, "Fisher p (scipy fisher_exact)");
    let m = metrics(&ws, "rxc");
    assert_eq!(m["rxc/all/v/p_value"]["method"], "Fisher-Freeman-Halton exact test");
    close(value(&m, "rxc/all/v/p_value"), f(&h["rxc"][0]["p"]), 1e-7, "Freeman-Halton p (R fisher.test tolerance 1e-7 on table probabilities)");
    let md = ws.read("results/chi/table.md");
    assert!(md.contains("| &nbsp;&nbsp;L0 | 12 (63.16%) | 5 (25.00%) | |"), "{md}");
}

#[test]
fn partitions_as_groups_and_the_missing_policy() {
    let ws = workspace(
        "  split: { kind: split, input: ingest, cohort: c1, fractions: { train: 0.7, internal: 0.3 }, seed: 5 }\n  t:\n    kind: table1\n    input: [ingest, split]\n    by: [train, internal, c2]\n    variables: [{ column: xk, type: continuous }]\n",
    );
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 1);
    assert!(error_of(&r).contains("stage `t`, cohort `c2`, column `xk`: missing values for 39 patient(s): B000, B001"), "{}", error_of(&r));
    assert!(!ws.path("results/t").exists());
    // Partitions only: runs, with the split's counts.
    let yaml = ws.read("p.yaml").replace("by: [train, internal, c2]", "by: [train, internal]");
    ws.write("p.yaml", &yaml);
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    let partition = ws.read("results/split/partition.csv");
    let n_train = partition.lines().filter(|l| l.split(',').nth(2) == Some("train")).count();
    let m = metrics(&ws, "t");
    assert_eq!(value(&m, "t/train/xk/n"), n_train as f64);
    assert_eq!(value(&m, "t/internal/xk/n"), (56 - n_train) as f64);
    assert!(m["t/all/xk/p_value"]["value"].as_f64().is_some());
    // A missing value under `drop`: left out of that variable, counted and listed.
    let c1 = ws.read("c1.csv");
    let first = c1.lines().nth(1).unwrap().to_string();
    let id = first.split(',').next().unwrap().to_string();
    let blank: Vec<&str> = first.split(',').collect();
    let blanked = format!("{},{},{},,{}", blank[0], blank[1], blank[2], blank[4]);
    ws.write("c1.csv", &c1.replace(&first, &blanked));
    ws.write("p.yaml", &(yaml.replace("by: [train, internal, c2]", "by: [train, internal]") + "    missing: drop\n"));
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    let dropped = ws.read("results/t/dropped.csv");
    assert!(dropped.contains(&format!(",{id},xk\n")), "{dropped}");
    let m = metrics(&ws, "t");
    let total = value(&m, "t/train/xk/n") + value(&m, "t/internal/xk/n");
    assert_eq!(total, 55.0);
    assert_eq!(value(&m, "t/train/xk/missing") + value(&m, "t/internal/xk/missing"), 1.0);
    assert!(ws.read("results/t/table.md").contains("missing"));
}

/// R 4.2's results (tests/fixtures/generate/reference.R) on samples written as cohorts:
/// `tt` (t.test case `unequal_n`), `mw` (wilcox.test case `ties_small`), `an` (oneway.test
/// case `three`), each with the group in `arm` and the value in `x`; `f2`, `c2`, `f3`:
/// patients whose cross-tabulation of `v` (rows) by `arm` (columns) is fisher.test's
/// `f2x2_zero` (an expected count below 5), chisq.test's `t2x2` (all at least 5) and
/// fisher.test's `f3x3`.
fn study_workspace(stages: &str) -> Workspace {
    let r = fixture("r_reference.json");
    let case = |key: &str, name: &str| r[key].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    let samples = |prefix: &str, groups: &[Vec<f64>]| {
        let mut t = String::from("patient_id,arm,x,v\n");
        let mut k = 0;
        for (g, xs) in groups.iter().enumerate() {
            for x in xs {
                t.push_str(&format!("{prefix}{k:03},g{},{},\n", g + 1, cell(*x)));
                k += 1;
            }
        }
        t
    };
    let crosstab = |prefix: &str, table: &Value| {
        let mut t = String::from("patient_id,arm,x,v\n");
        let mut k = 0;
        for (level, row) in table.as_array().unwrap().iter().enumerate() {
            for (arm, count) in row.as_array().unwrap().iter().enumerate() {
                for _ in 0..count.as_u64().unwrap() {
                    t.push_str(&format!("{prefix}{k:03},arm{arm},,L{level}\n"));
                    k += 1;
                }
            }
        }
        t
    };
    let tt = case("t_test", "unequal_n");
    let mw = case("wilcox_test", "ties_small");
    let an = case("oneway", "three");
    let ws = Workspace::new();
    ws.write("tt.csv", &samples("T", &[vf(&tt["a"]), vf(&tt["b"])]));
    ws.write("mw.csv", &samples("M", &[vf(&mw["a"]), vf(&mw["b"])]));
    ws.write("an.csv", &samples("A", &an["groups"].as_array().unwrap().iter().map(vf).collect::<Vec<_>>()));
    ws.write("f2.csv", &crosstab("F", &case("fisher_test", "f2x2_zero")["table"]));
    ws.write("c2.csv", &crosstab("C", &case("chisq_test", "t2x2")["table"]));
    ws.write("f3.csv", &crosstab("G", &case("fisher_test", "f3x3")["table"]));
    let cohorts: String = ["tt", "mw", "an", "f2", "c2", "f3"].iter().map(|c| format!("  {c}: {{ table: {c}.csv }}\n")).collect();
    ws.write("p.yaml", &format!("version: 1\nname: t1\ncohorts:\n{cohorts}stages:\n  ingest: {{ kind: ingest, cohorts: [tt, mw, an, f2, c2, f3] }}\n{stages}"));
    ws
}

/// A `table1` stage over one cohort grouped by `arm`.
fn by_arm(name: &str, cohort: &str, tests: &str, variables: &str) -> String {
    format!("  {name}: {{ kind: table1, input: ingest, by: arm, cohorts: [{cohort}], tests: {tests}, variables: [{variables}] }}\n")
}

#[test]
fn study_policy_takes_the_test_from_the_summary_and_matches_r() {
    let x = |summary: &str| format!("{{ column: x, name: X, type: continuous, summary: {summary} }}");
    let v = "{ column: v, name: Stage, type: categorical }";
    let stages = [
        by_arm("tt", "tt", "study", &x("mean_sd")),
        by_arm("mw", "mw", "study", &x("median_iqr")),
        by_arm("an", "an", "study", &x("mean_sd")),
        by_arm("kw", "an", "study", &x("median_iqr")),
        by_arm("f2", "f2", "study", v),
        by_arm("c2", "c2", "study", v),
        by_arm("f3", "f3", "study", v),
        by_arm("auto_median", "tt", "auto", &x("median_iqr")),
    ]
    .concat();
    let ws = study_workspace(&stages);
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, error_of(&r));
    let rr = fixture("r_reference.json");
    let case = |key: &str, name: &str| rr[key].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    // p-values against R 4.2, 1e-9 relative (the stats crate's own R comparisons).
    let check = |stage: &str, column: &str, method: &str, p: f64, what: &str| {
        let m = metrics(&ws, stage);
        assert_eq!(m[&format!("{stage}/all/{column}/p_value")]["method"], method, "{stage}");
        close(value(&m, &format!("{stage}/all/{column}/p_value")), p, 1e-9, what);
        m
    };
    let tt = case("t_test", "unequal_n");
    let m = check("tt", "x", "Student's t-test", f(&tt["p"]), "Student t p vs R t.test(var.equal = TRUE)");
    close(value(&m, "tt/all/x/statistic"), f(&tt["t"]), 1e-9, "Student t vs R");
    let mw = case("wilcox_test", "ties_small");
    let m = check("mw", "x", "Mann-Whitney U test", f(&mw["p"]), "Mann-Whitney p vs R wilcox.test(exact = FALSE, correct = TRUE), ties");
    assert_eq!(value(&m, "mw/all/x/statistic"), f(&mw["W"]), "U = R's W");
    let an = case("oneway", "three");
    check("an", "x", "one-way ANOVA", f(&an["p"]), "ANOVA p vs R oneway.test(var.equal = TRUE)");
    let m = check("kw", "x", "Kruskal-Wallis test", f(&an["kw_p"]), "Kruskal-Wallis p vs R kruskal.test");
    close(value(&m, "kw/all/x/statistic"), f(&an["kw_H"]), 1e-9, "Kruskal-Wallis H vs R");
    check("f2", "v", "Fisher's exact test", f(&case("fisher_test", "f2x2_zero")["p"]), "Fisher p vs R fisher.test");
    let c2 = case("chisq_test", "t2x2");
    assert_eq!(c2["correct"], true);
    check("c2", "v", "chi-square test (Yates' correction for 2x2 tables)", f(&c2["p"]), "chi-square p vs R chisq.test (Yates)");
    check("f3", "v", "Fisher-Freeman-Halton exact test", f(&case("fisher_test", "f3x3")["p"]), "Freeman-Halton p vs R fisher.test");
    // Summaries as configured, the test's mark and the rules under the table.
    let md = ws.read("results/tt/table.md");
    assert!(md.contains("| X, mean ± SD |") && md.contains("<sup>h</sup> Student's t-test."), "{md}");
    assert!(md.contains("Continuous variables: mean ± SD compared by Student's t-test (two groups) or one-way ANOVA, median (IQR) by the Mann-Whitney U test or the Kruskal-Wallis test; the summary as set per variable."), "{md}");
    assert!(ws.read("results/kw/table.md").contains("| X, median (IQR) |"));
    assert!(ws.read("results/tt/table.csv").contains(",Student's t-test\n"));
    // Under `auto`, a set summary changes the summary only: the pretest still picks the test.
    let m = metrics(&ws, "auto_median");
    let method = m["auto_median/all/x/p_value"]["method"].as_str().unwrap();
    // The t-test case's samples are normal draws, which Shapiro-Wilk does not reject: Welch's t-test, not the summary's Mann-Whitney U.
    assert_eq!(method, "Welch's t-test", "the pretest, not the summary, picks the test under `auto`");
    let md = ws.read("results/auto_median/table.md");
    assert!(md.contains("| X, median (IQR) |") && md.contains("the summary set per variable"), "{md}");
}

#[test]
fn study_policy_needs_a_summary_for_continuous_variables_only() {
    let stages = by_arm("t", "tt", "study", "{ column: x, type: continuous }, { column: v, type: categorical, summary: mean_sd }");
    let ws = study_workspace(&stages);
    let out = ws.radpipe(&["validate", "p.yaml"]);
    assert_eq!(out.status.code(), Some(2), "validate: a plan error");
    let e = stderr(&out);
    assert!(e.contains("stage `t`, variable `x`: `tests: study` takes the test from the summary; set `summary: mean_sd`"), "{e}");
    assert!(e.contains("stage `t`, variable `v`: `summary` applies to continuous variables"), "{e}");
    // `summary: normality` asks for the pretest: the summary follows Shapiro-Wilk and decides the test.
    let ws = study_workspace(&by_arm("t", "tt", "study", "{ column: x, type: continuous, summary: normality }"));
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    let m = metrics(&ws, "t");
    let md = ws.read("results/t/table.md");
    let method = m["t/all/x/p_value"]["method"].as_str().unwrap();
    assert!(
        (method == "Student's t-test" && md.contains("| x, mean ± SD |")) || (method == "Mann-Whitney U test" && md.contains("| x, median (IQR) |")),
        "{method}\n{md}"
    );
    assert!(md.contains("(`normality`: mean ± SD when Shapiro-Wilk does not reject normality, p >= 0.05, in any group)"), "{md}");
}

#[test]
fn patients_without_a_group_value_are_counted_under_drop() {
    let ws = study_workspace(&by_arm("t", "tt", "study", "{ column: x, type: continuous, summary: mean_sd }").replace(" }\n", ", missing: drop }\n"));
    let tt = ws.read("tt.csv");
    ws.write("tt.csv", &tt.replacen("T000,g1,", "T000,,", 1));
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", error_of(&r));
    let m = metrics(&ws, "t");
    assert_eq!(value(&m, "t/all/arm/missing"), 1.0);
    assert_eq!(value(&m, "t/g1/patients") + value(&m, "t/g2/patients"), (tt.lines().count() - 2) as f64);
    assert!(ws.read("results/t/dropped.csv").contains("tt,T000,arm\n"));
    assert!(ws.read("results/t/table.md").contains("1 patient(s) without a value of `arm` are in no group (listed in `dropped.csv`)."));
}
