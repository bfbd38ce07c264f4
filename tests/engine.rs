//! Engine semantics through the CLI: what a run executes, and what it reuses.

mod common;
use common::*;

#[test]
fn a_second_run_executes_nothing_and_status_reports_nothing_stale() {
    let ws = chain_workspace(&["P1", "P2", "P3"]);
    let first = ws.run(&["p.yaml"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.executed.len(), 8);
    assert_eq!(ws.read("out/report.txt"), "5\n5\n5\n1\n");
    let second = ws.run(&["p.yaml"]);
    assert!(second.executed.is_empty(), "executed {:?}", second.executed);
    assert_eq!(second.cached.len(), 8);
    let status = ws.radpipe(&["status", "p.yaml", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["stale"].as_array().unwrap().len(), 0, "{json}");
    assert_eq!(json["fresh"], 8);
}

#[test]
fn changing_a_param_reruns_exactly_its_stage_and_downstream_and_changing_it_back_is_a_hit() {
    let ws = chain_workspace(&["P1", "P2"]);
    ws.run(&["p.yaml"]);
    let changed = ws.run(&["p.yaml", "--set", "params.factor=100"]);
    assert_eq!(changed.executed, set(&["a[P1]", "a[P2]", "b[P1]", "b[P2]", "total", "report"]));
    assert_eq!(ws.read("out/report.txt"), "7\n7\n1\n");
    let offset = ws.run(&["p.yaml", "--set", "params.factor=100", "--set", "params.offset=5"]);
    assert_eq!(offset.executed, set(&["report"]));
    let back = ws.run(&["p.yaml"]);
    assert!(back.executed.is_empty(), "executed {:?}", back.executed);
    assert_eq!(ws.read("out/report.txt"), "5\n5\n1\n", "outputs restored from the cache");
}

#[test]
fn status_names_the_changed_param_with_old_and_new_values() {
    let ws = chain_workspace(&["P1"]);
    ws.run(&["p.yaml"]);
    let out = ws.radpipe(&["status", "p.yaml", "--nodes", "--set", "params.offset=9"]);
    let text = stdout(&out);
    assert!(text.contains("report\n    param `params.offset` changed: 1 -> 9"), "{text}");
    assert!(!text.contains("a[P1]"), "{text}");
}

#[test]
fn early_cutoff_keeps_downstream_cached_when_outputs_are_byte_identical() {
    let ws = chain_workspace(&["P1", "P2"]);
    ws.run(&["p.yaml"]);
    // factor 2 -> 3 changes a's outputs but not their length, so b's outputs are identical.
    let r = ws.run(&["p.yaml", "--set", "params.factor=3"]);
    assert_eq!(r.executed, set(&["a[P1]", "a[P2]", "b[P1]", "b[P2]"]));
    assert_eq!(r.cached, set(&["total", "report"]));
}

#[test]
fn adding_a_patient_runs_its_nodes_and_the_cohort_level_ones_and_removing_one_reruns_only_cohort_level() {
    let ws = chain_workspace(&["P1", "P2"]);
    ws.run(&["p.yaml"]);
    ws.write("c1.csv", "patient_id,age\nP1,50\nP2,51\nP10,70\n");
    let status = stdout(&ws.radpipe(&["status", "p.yaml", "--nodes"]));
    assert!(status.contains("a[P10]\n    new patient P10 (cohort c1)"), "{status}");
    let added = ws.run(&["p.yaml"]);
    assert_eq!(added.executed, set(&["a[P10]", "b[P10]", "total", "report"]));
    assert_eq!(ws.read("out/total.txt"), "5\n5\n6\n");
    ws.write("c1.csv", "patient_id,age\nP1,50\nP10,70\n");
    let status = stdout(&ws.radpipe(&["status", "p.yaml", "--nodes"]));
    assert!(status.contains("patient P2 removed"), "{status}");
    let removed = ws.run(&["p.yaml"]);
    assert_eq!(removed.executed, set(&["total", "report"]));
    assert_eq!(ws.read("out/total.txt"), "5\n6\n", "the removed patient's outputs no longer feed the total");
}

#[test]
fn a_changed_source_file_reruns_the_nodes_that_read_it() {
    let ws = Workspace::new();
    ws.write(
        "p.yaml",
        r#"version: 1
name: sources
stages:
  up:
    kind: command
    foreach: [x, y]
    cmd: "tr a-z A-Z < raw/${item}.txt > out/${item}.txt"
    deps: ["raw/${item}.txt"]
    outs: ["out/${item}.txt"]
"#,
    );
    ws.write("raw/x.txt", "one\n");
    ws.write("raw/y.txt", "two\n");
    ws.run(&["p.yaml"]);
    ws.write("raw/y.txt", "three\n");
    let status = stdout(&ws.radpipe(&["status", "p.yaml", "--nodes"]));
    assert!(status.contains("up[y]\n    input file `raw/y.txt` changed"), "{status}");
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.executed, set(&["up[y]"]));
    assert_eq!(ws.read("out/y.txt"), "THREE\n");
}

#[test]
fn deleted_outputs_are_restored_from_the_cache_without_running() {
    let ws = chain_workspace(&["P1"]);
    ws.run(&["p.yaml"]);
    std::fs::remove_file(ws.path("out/report.txt")).unwrap();
    let r = ws.run(&["p.yaml"]);
    assert!(r.executed.is_empty());
    assert_eq!(ws.read("out/report.txt"), "5\n1\n");
}

#[test]
fn force_reexecutes_a_stage_and_early_cutoff_spares_its_downstream() {
    let ws = chain_workspace(&["P1", "P2"]);
    ws.run(&["p.yaml"]);
    let r = ws.run(&["p.yaml", "--force", "total"]);
    assert_eq!(r.executed, set(&["total"]));
    assert_eq!(r.cached.len(), 5);
}

#[test]
fn keep_going_lets_other_patients_finish_and_names_the_failing_one() {
    let ws = chain_workspace(&["P1", "BAD", "P3"]);
    let pipeline = CHAIN.replace("cmd: \"wc -c", "cmd: \"test ${patient} != BAD || { echo 'cannot read scan for BAD' >&2; exit 3; }; wc -c");
    ws.write("p.yaml", &pipeline);
    let stopped = ws.run(&["p.yaml", "--jobs", "1"]);
    assert_eq!(stopped.code, 1);
    assert_eq!(stopped.failed, set(&["b[BAD]"]));
    let r = ws.run(&["p.yaml", "--keep-going"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.failed, set(&["b[BAD]"]));
    assert!(r.cached.contains("b[P1]") || r.executed.contains("b[P1]"));
    assert!(r.cached.contains("b[P3]") || r.executed.contains("b[P3]"));
    let skipped: Vec<&str> = r.json["skipped"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(skipped, vec!["total", "report"], "a cohort-level node never runs on fewer patients by default");
    let error = r.json["errors"][0]["error"].as_str().unwrap();
    assert!(error.contains("cannot read scan for BAD") && error.contains("exit status: 3"), "{error}");
    let log = ws.read(".radpipe/logs/b[BAD].log");
    assert!(log.contains("cannot read scan for BAD"), "the failed node's log is kept: {log}");
    // Skipped nodes are summarised per stage, and the output ends with the failure and its log.
    assert!(!r.stderr.lines().any(|l| l.starts_with("skipped total") || l.starts_with("skipped report")), "{}", r.stderr);
    assert!(r.stderr.contains("skipped 2 nodes (total 1, report 1): an upstream node did not finish\n"), "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    assert!(last.starts_with("FAILED b[BAD]: ") && last.contains("(log: ") && last.contains("b[BAD].log"), "{}", r.stderr);
    assert!(stopped.stderr.lines().last().unwrap().starts_with("FAILED b[BAD]: "), "{}", stopped.stderr);
    assert!(!stopped.stderr.lines().any(|l| l.starts_with("skipped ") && l.contains("]: ")), "no line per skipped node: {}", stopped.stderr);
}

#[test]
fn on_missing_drop_runs_the_cohort_level_node_and_lists_the_dropped_patients() {
    let ws = chain_workspace(&["P1", "BAD", "P3"]);
    let pipeline = CHAIN
        .replace("cmd: \"wc -c", "cmd: \"test ${patient} != BAD || exit 3; wc -c")
        .replace("    deps: [out/b]\n", "    deps: [out/b]\n    on_missing: drop\n");
    ws.write("p.yaml", &pipeline);
    let r = ws.run(&["p.yaml", "--keep-going"]);
    assert_eq!(r.failed, set(&["b[BAD]"]));
    assert!(r.executed.contains("total") && r.executed.contains("report"));
    assert_eq!(ws.read("out/total.txt"), "5\n5\n");
    let lineage = ws.radpipe(&["lineage", "p.yaml", "total", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&lineage.stdout).unwrap();
    assert_eq!(json["steps"][0]["nodes"][0]["dropped"], serde_json::json!(["b[BAD]"]));
}

#[test]
fn lineage_walks_from_a_metric_to_the_source_files_with_their_digests() {
    let ws = Workspace::new();
    ws.write(
        "p.yaml",
        r#"version: 1
name: lineage
params: { k: 7 }
stages:
  count:
    kind: command
    foreach: [x, y]
    cmd: "wc -l < raw/${item}.csv | tr -d ' ' > out/${item}.n"
    deps: ["raw/${item}.csv"]
    outs: ["out/${item}.n"]
  score:
    kind: command
    cmd: "printf '{\"external\": {\"DLS\": {\"auc\": 0.%s}}}' $(cat out/x.n out/y.n | tr -d '\n') > out/score/metrics.json"
    params: { k: "${params.k}" }
    deps: [out/x.n, out/y.n]
    outs: [out/score/metrics.json]
"#,
    );
    ws.write("raw/x.csv", "1\n2\n");
    ws.write("raw/y.csv", "1\n2\n3\n");
    assert_eq!(ws.run(&["p.yaml"]).code, 0);
    let out = ws.radpipe(&["lineage", "p.yaml", "score/external/DLS/auc", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["value"], serde_json::json!(0.23));
    assert_eq!(json["steps"][0]["stage"], "score");
    assert_eq!(json["steps"][0]["params"]["params"]["k"], 7);
    assert_eq!(json["steps"][1]["stage"], "count");
    assert_eq!(json["steps"][1]["items"], 2);
    let digest = blake3::hash(b"1\n2\n3\n").to_hex().to_string();
    assert_eq!(json["steps"][1]["nodes"][1]["sources"]["raw/y.csv"], digest.as_str());
    let text = stdout(&ws.radpipe(&["lineage", "p.yaml", "score/external/DLS/auc"]));
    assert!(text.starts_with("score/external/DLS/auc = 0.23\n"), "{text}");
    assert!(text.contains(&format!("source raw/y.csv blake3:{}", &digest[..12])), "{text}");
}

#[test]
fn dag_prints_stages_in_order_in_three_formats() {
    let ws = chain_workspace(&["P1", "P2"]);
    let text = stdout(&ws.radpipe(&["dag", "p.yaml"]));
    assert_eq!(text, "a (command, 2 nodes)\nb (command, 2 nodes) <- a\ntotal (command, 1 node) <- b\nreport (command, 1 node) <- total\n");
    let dot = stdout(&ws.radpipe(&["dag", "p.yaml", "--format", "dot"]));
    assert!(dot.starts_with("digraph pipeline {") && dot.contains("n0 -> n1;") && dot.contains("n2 -> n3;"), "{dot}");
    let mermaid = stdout(&ws.radpipe(&["dag", "p.yaml", "--format", "mermaid", "--nodes"]));
    assert!(mermaid.starts_with("flowchart LR") && mermaid.contains("b[P2]"), "{mermaid}");
}

#[test]
fn foreach_glob_makes_one_node_per_matching_file() {
    let ws = Workspace::new();
    ws.write(
        "p.yaml",
        r#"version: 1
name: glob
stages:
  up:
    kind: command
    foreach: { glob: "raw/*.txt" }
    cmd: "tr a-z A-Z < ${item} > ${item}.up"
    deps: ["${item}"]
    outs: ["${item}.up"]
"#,
    );
    ws.write("raw/a.txt", "a\n");
    ws.write("raw/b.txt", "b\n");
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.executed, set(&["up[raw/a.txt]", "up[raw/b.txt]"]));
    assert_eq!(ws.read("raw/b.txt.up"), "B\n");
}

#[test]
fn status_prints_one_line_per_stage_and_each_node_with_nodes() {
    let ws = chain_workspace(&["P1", "P2", "P3"]);
    ws.run(&["p.yaml"]);
    let text = stdout(&ws.radpipe(&["status", "p.yaml", "--set", "params.factor=3"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "a, b, total, report and the count: {text}");
    assert!(lines[0].starts_with("a: 3 nodes; param `params.factor` changed: "), "{text}");
    assert_eq!(lines[1], "b: 3 nodes; upstream `a` will run", "{text}");
    assert!(lines[2].starts_with("total: upstream `b[P1]`, `b[P2]`, `b[P3]` will run"), "{text}");
    assert_eq!(lines[4], "8 stale, 0 cached");
    let detail = stdout(&ws.radpipe(&["status", "p.yaml", "--nodes", "--set", "params.factor=3"]));
    assert!(detail.contains("a[P2]\n    param `params.factor` changed: "), "{detail}");
    assert_eq!(detail.lines().count(), 17, "a node line and a reason line per stale node, and the count: {detail}");

    ws.write("c1.csv", "patient_id,age\nP1,50\nP2,51\nP3,52\nP10,70\nP11,71\nP12,72\nP13,73\n");
    let text = stdout(&ws.radpipe(&["status", "p.yaml"]));
    assert!(text.contains("a: 4 nodes; new patients (cohort c1): P10, P11, P12 and 1 more\n"), "{text}");
}
