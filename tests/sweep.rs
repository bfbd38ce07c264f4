//! `radpipe sweep`: a seed sweep over the `tiny` cohorts shares every cached
//! node that does not depend on the seed (preprocessing runs in the first
//! member only, training in every member), keeps each member's outputs in its
//! own folder (the plain `results/` untouched), summarises every metric over
//! the members with the keys behind the values, and executes nothing the
//! second time.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

const PIPELINE: &str = include_str!("pipelines/dl_tiny.yaml");
const SWEEP: &str = "p--stages.embed.train.seed";

fn workspace() -> Workspace {
    let ws = Workspace::new();
    let out = ws.radpipe(&["synth", "--preset", "tiny", "--out", "data"]);
    assert!(out.status.success(), "{}", stderr(&out));
    ws.write("p.yaml", PIPELINE);
    ws
}

fn sweep(ws: &Workspace, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["sweep", "p.yaml", "--vary", "stages.embed.train.seed=1..3", "--json"];
    args.extend_from_slice(extra);
    let out = ws.radpipe(&args);
    let json = serde_json::from_str(&stdout(&out)).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr(&out))
}

fn names(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

fn stage_of(node: &str) -> &str {
    node.split(['[', '.']).next().unwrap()
}

/// metric id -> (value, lineage key) of a member's `table2/metrics.json`, read from its folder.
fn member_metrics(ws: &Workspace, member: &str) -> BTreeMap<String, (f64, String)> {
    let text = ws.read(&format!("results/sweeps/{SWEEP}/{member}/table2/metrics.json"));
    let entries: Vec<Value> = serde_json::from_str(&text).unwrap();
    entries.iter().filter_map(|e| Some((e["id"].as_str()?.to_string(), (e["value"].as_f64()?, e["lineage"].as_str()?.to_string())))).collect()
}

#[test]
fn a_seed_sweep_shares_preprocessing_and_summarises_each_metric_over_its_members() {
    let ws = workspace();
    let (code, out, err) = sweep(&ws, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["sweep"], SWEEP);
    let members = out["members"].as_array().unwrap();
    let member_names: Vec<&str> = members.iter().map(|m| m["member"].as_str().unwrap()).collect();
    assert_eq!(member_names, ["seed=1", "seed=2", "seed=3"]);
    let preprocessing = ["ingest", "split", "resample", "slice"];
    for (i, m) in members.iter().enumerate() {
        let executed = names(&m["executed"]);
        let ran = |stage: &str| executed.iter().any(|n| stage_of(n) == stage);
        for stage in preprocessing {
            assert_eq!(ran(stage), i == 0, "member {i}: {stage} executed {}", ran(stage));
        }
        for stage in ["embed", "pca", "fuse", "table2"] {
            assert!(ran(stage), "member {i}: {stage} did not execute: {executed:?}");
        }
        assert!(executed.iter().any(|n| n == "embed.fit"), "member {i} trains: {executed:?}");
        assert!(names(&m["failed"]).is_empty());
        if i > 0 {
            let cached = names(&m["cached"]);
            assert!(cached.iter().any(|n| stage_of(n) == "slice"), "member {i}: slices come from the cache");
        }
        assert_eq!(m["overrides"], serde_json::json!([format!("stages.embed.train.seed={}", i + 1)]));
    }
    assert!(!ws.path("results/table2").exists(), "a sweep leaves the plain results/ alone");

    // The summary: every member's value with its key, mean and SD as computed from the members' files.
    let summary: Value = serde_json::from_str(&ws.read(&format!("results/sweeps/{SWEEP}/summary.json"))).unwrap();
    let per_member: Vec<BTreeMap<String, (f64, String)>> = member_names.iter().map(|m| member_metrics(&ws, m)).collect();
    let rows: BTreeMap<String, &Value> = summary["metrics"].as_array().unwrap().iter().map(|r| (r["id"].as_str().unwrap().to_string(), r)).collect();
    let auc = "table2/external/DLS/auc";
    assert!(rows.contains_key(auc), "{:?}", rows.keys().take(5).collect::<Vec<_>>());
    let ids: std::collections::BTreeSet<&String> = per_member.iter().flat_map(|m| m.keys()).collect();
    assert_eq!(ids.len(), rows.keys().filter(|id| id.starts_with("table2/")).count(), "one summary row per metric id with a number in some member");
    for id in ids {
        let row = rows.get(id.as_str()).unwrap_or_else(|| panic!("{id} is not in the summary"));
        // A metric that is undefined in a member (a NaN calibration slope) is left out of its spread.
        let present: Vec<(usize, f64, &String)> = per_member.iter().enumerate().filter_map(|(j, m)| m.get(id).map(|(v, key)| (j, *v, key))).collect();
        let k = present.len() as f64;
        let mean = present.iter().map(|p| p.1).sum::<f64>() / k;
        assert_eq!(row["k"], present.len(), "{id}");
        assert!((row["mean"].as_f64().unwrap() - mean).abs() < 1e-12, "{id}: mean");
        if present.len() > 1 {
            let sd = (present.iter().map(|p| (p.1 - mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
            assert!((row["sd"].as_f64().unwrap() - sd).abs() < 1e-12, "{id}: sd");
        }
        let values = row["values"].as_array().unwrap();
        assert_eq!(values.len(), present.len(), "{id}");
        for (v, (j, value, key)) in values.iter().zip(&present) {
            assert_eq!(v["member"], member_names[*j]);
            assert_eq!(v["value"].as_f64().unwrap(), *value, "{id}");
            assert_eq!(v["key"].as_str().unwrap(), key.as_str(), "{id}: the key is the action that wrote the value");
        }
    }
    let distinct: std::collections::BTreeSet<String> = per_member.iter().map(|m| format!("{}", m[auc].0)).collect();
    assert!(distinct.len() > 1, "three training seeds give one AUC: {distinct:?}");
    let csv = ws.read(&format!("results/sweeps/{SWEEP}/summary.csv"));
    assert!(csv.starts_with("metric,seed=1,seed=2,seed=3,k,mean,sd,min,max,ci95_low,ci95_high,key seed=1"), "{}", csv.lines().next().unwrap());
    assert!(ws.read(&format!("results/sweeps/{SWEEP}/summary.md")).contains("95% CI of the mean"));

    // Lineage per member: the member's run gives the member's value, from its own folder too.
    let run2 = summary["members"][1]["run"].as_str().unwrap().to_string();
    let l = ws.radpipe(&["lineage", "p.yaml", auc, "--run", &run2, "--json"]);
    assert!(l.status.success(), "{}", stderr(&l));
    let lineage: Value = serde_json::from_str(&stdout(&l)).unwrap();
    assert_eq!(lineage["value"]["value"].as_f64().unwrap(), per_member[1][auc].0);
    let file = format!("results/sweeps/{SWEEP}/seed=2/table2/metrics.json");
    let l = ws.radpipe(&["lineage", "p.yaml", &file, "--json"]);
    assert!(l.status.success(), "lineage of a member's file, its run found from the folder: {}", stderr(&l));
    let lineage: Value = serde_json::from_str(&stdout(&l)).unwrap();
    assert_eq!((lineage["run"].as_str().unwrap(), lineage["file"].as_str().unwrap()), (run2.as_str(), file.as_str()));
    let status = ws.radpipe(&["status", "p.yaml", "--set", "stages.embed.train.seed=2"]);
    assert!(stdout(&status).contains("up to date"), "status of a member: {}", stdout(&status));

    // The same sweep again executes nothing and writes the same summary.
    let before = ws.read(&format!("results/sweeps/{SWEEP}/summary.csv"));
    let (code, again, err) = sweep(&ws, &[]);
    assert_eq!(code, 0, "{err}");
    for m in again["members"].as_array().unwrap() {
        assert!(names(&m["executed"]).is_empty(), "{}: {:?}", m["member"], m["executed"]);
    }
    assert_eq!(ws.read(&format!("results/sweeps/{SWEEP}/summary.csv")), before);

    // A plain run afterwards trains nothing the sweep already trained (seed 1 is the pipeline's own).
    let plain = ws.run(&["p.yaml"]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(plain.executed.is_empty(), "{:?}", plain.executed);
    assert!(ws.path("results/table2/metrics.json").is_file());
}

#[test]
fn bad_vary_arguments_are_refused_before_anything_runs() {
    let ws = workspace();
    for (args, says) in [
        (vec!["--vary", "stages.embed.train.seed"], "expected PATH=V1,V2"),
        (vec!["--vary", "stages.embed.train.seed=3..1"], "expected PATH=V1,V2"),
        (vec!["--vary", "stages.embed.train.seed=1,1"], "appears twice"),
        (vec!["--vary", "params.seed=1,2", "--set", "params.seed=4"], "both varied and `--set`"),
        (vec!["--vary", "stages.embed.train.seed=1,x"], "member `seed=x`"),
    ] {
        let mut all = vec!["sweep", "p.yaml"];
        all.extend(args.iter());
        let out = ws.radpipe(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert!(!ws.path(".radpipe/runs").exists() || ws.snapshot(".radpipe/runs").is_empty(), "nothing ran");
}
