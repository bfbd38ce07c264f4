//! The deep-learning stages through the CLI, on the `tiny` synthetic cohorts:
//! embed (ResNet-18 per sequence) -> pca -> fuse (transformer) -> evaluate,
//! run by the `radpipe-nn` worker (built by `make build` beside `radpipe`).
//! A wrapper named by RADPIPE_NN counts the worker's starts.

mod common;
use common::*;
use polars::prelude::*;
use std::path::PathBuf;

const PIPELINE: &str = include_str!("pipelines/dl_tiny.yaml");

fn worker() -> PathBuf {
    let w = radpipe_bin().parent().unwrap().join("radpipe-nn");
    assert!(w.is_file(), "{} is missing: run `make build` (or `make test`), which builds the worker with libtorch", w.display());
    w
}

/// A workspace with the tiny cohorts and a counting wrapper around the worker.
fn workspace() -> Workspace {
    let ws = Workspace::new();
    let out = ws.radpipe(&["synth", "--preset", "tiny", "--out", "data"]);
    assert!(out.status.success(), "{}", stderr(&out));
    ws.write("p.yaml", PIPELINE);
    ws.write("nn.sh", &format!("#!/bin/sh\necho \"$1\" >> \"{}\"\nexec \"{}\" \"$@\"\n", ws.path("starts.txt").display(), worker().display()));
    let mut perm = std::fs::metadata(ws.path("nn.sh")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(ws.path("nn.sh"), perm).unwrap();
    ws
}

fn run(ws: &Workspace, args: &[&str]) -> RunResult {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let out = ws.cmd(&all).env("RADPIPE_NN", ws.path("nn.sh")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {stderr}"));
    let ids = |f: &str| json[f].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default();
    RunResult { executed: ids("executed"), cached: ids("cached"), failed: ids("failed"), json: json.clone(), stderr, code: out.status.code().unwrap_or(-1) }
}

fn starts(ws: &Workspace) -> usize {
    std::fs::read_to_string(ws.path("starts.txt")).map(|s| s.lines().count()).unwrap_or(0)
}

fn training_patients(ws: &Workspace) -> Vec<String> {
    let mut v: Vec<String> = ws
        .read("results/split/partition.csv")
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2) == Some("train"))
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn embed_pca_fuse_learn_on_the_training_partition_and_score_every_patient() {
    let ws = workspace();
    let r = run(&ws, &["p.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // One worker start per batch: embed fit, embed apply (all patients), fuse fit, fuse apply.
    assert_eq!(starts(&ws), 4, "worker starts: {}", ws.read("starts.txt"));
    let patients: Vec<String> = r.executed.iter().filter_map(|n| n.strip_prefix("embed[").map(|p| p.trim_end_matches(']').to_string())).collect();
    assert_eq!(patients.len(), 36 + 14, "every patient of both cohorts is embedded");

    // The fit saw exactly the training partition.
    let fit: serde_json::Value = serde_json::from_str(&ws.read("results/embed/fit/fit.json")).unwrap();
    let mut seen: Vec<String> = fit["patients"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    seen.sort();
    assert_eq!(seen, training_patients(&ws));
    for seq in ["t1", "t2", "ce_t1"] {
        let curves = ws.read(&format!("results/embed/fit/curves.{seq}.csv"));
        assert_eq!(curves.lines().count(), 1 + 2, "{seq}: two epochs of curves");
        assert!(ws.path(&format!("results/embed/fit/{seq}.safetensors")).is_file());
    }

    // Per patient: probabilities, 512-d features (ResNet-18), Grad-CAM overlays.
    let p = &patients[0];
    let scores: serde_json::Value = serde_json::from_str(&ws.read(&format!("results/embed/{p}/scores.json"))).unwrap();
    for seq in ["t1", "t2", "ce_t1"] {
        let s = scores[seq].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&s), "{seq}: {s}");
        for plane in ["axial", "sagittal", "coronal"] {
            let png = std::fs::read(ws.path(&format!("results/embed/{p}/gradcam/{seq}_{plane}.png"))).unwrap();
            assert_eq!(&png[1..4], b"PNG");
        }
    }
    let bytes = std::fs::read(ws.path(&format!("results/embed/{p}/features.safetensors"))).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("ce_t1").unwrap().shape(), &[512]);

    // Cohort-level Arrow IPC: one row per patient, ids and cohorts, 512 features.
    let df = IpcReader::new(std::fs::File::open(ws.path("results/embed_features/ce_t1.arrow")).unwrap()).finish().unwrap();
    assert_eq!(df.shape(), (50, 2 + 512));
    assert_eq!(df.column("patient_id").unwrap().str().unwrap().get(0), Some("E-0001"));

    // The DLS is a probability for every patient, and evaluate reads it.
    let dls: serde_json::Value = serde_json::from_str(&ws.read(&format!("results/fuse/{p}/scores.json"))).unwrap();
    assert!((0.0..=1.0).contains(&dls["dls"].as_f64().unwrap()));
    let metrics: serde_json::Value = serde_json::from_str(&ws.read("results/table2/metrics.json")).unwrap();
    let text = metrics.to_string();
    assert!(text.contains("table2/external/DLS/auc"), "{text}");

    // A rerun is fully cached and never starts the worker.
    let again = run(&ws, &["p.yaml"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.executed.is_empty(), "{:?}", again.executed);
    assert_eq!(starts(&ws), 4);

    // Swapping the external cohort (a patient removed) never retrains.
    let table = ws.read("data/external/clinical.csv");
    let fewer: Vec<&str> = table.lines().filter(|l| !l.starts_with("E-0014")).collect();
    ws.write("data/external/clinical.csv", &(fewer.join("\n") + "\n"));
    let swapped = run(&ws, &["p.yaml"]);
    assert_eq!(swapped.code, 0, "{}", swapped.stderr);
    for fit in ["embed.fit", "pca.fit", "fuse.fit"] {
        assert!(swapped.cached.contains(fit), "{fit} must stay cached: executed {:?}", swapped.executed);
    }
    assert!(!swapped.executed.iter().any(|n| n.starts_with("embed[")), "no patient is re-embedded: {:?}", swapped.executed);

    // Another seed retrains embed, and everything after it (new features).
    let more = run(&ws, &["p.yaml", "--set", "stages.embed.train.seed=2"]);
    assert_eq!(more.code, 0, "{}", more.stderr);
    for fit in ["embed.fit", "pca.fit", "fuse.fit"] {
        assert!(more.executed.contains(fit), "{fit} must rerun: cached {:?}", more.cached);
    }
    assert!(more.cached.contains("slice[I1-0001]"));
}

#[test]
fn worker_failures_fail_their_nodes_clearly_and_keep_everything_else() {
    let ws = workspace();
    // CUDA requested on a machine without it: a clear message, no CPU fallback.
    if !std::process::Command::new(worker()).arg("doctor").output().map(|o| String::from_utf8_lossy(&o.stdout).contains("\"cuda\":true")).unwrap_or(false) {
        let r = run(&ws, &["p.yaml", "--set", "stages.embed.device=cuda", "--only", "embed"]);
        assert_eq!(r.code, 1);
        let why = r.json["errors"].to_string();
        assert!(why.contains("device `cuda` was requested") && why.contains("device: auto"), "{why}");
        assert!(r.cached.contains("slice[I1-0001]") || r.executed.contains("slice[I1-0001]"));
    }
    // Weights of another architecture: the first differing tensor is named.
    let wrong = ws.path("r34.safetensors");
    let out = std::process::Command::new(worker()).args(["init", "--arch", "resnet34", "--out"]).arg(&wrong).output().unwrap();
    assert!(out.status.success());
    let r = run(&ws, &["p.yaml", "--set", "stages.embed.weights=r34.safetensors", "--only", "embed"]);
    assert_eq!(r.code, 1);
    let why = r.json["errors"].to_string();
    assert!(why.contains("r34.safetensors") && why.contains("layer1.2.bn1.bias") && why.contains("another architecture"), "{why}");
    // A worker that dies fails its nodes and nothing else: the slices stay cached.
    ws.write("dead.sh", "#!/bin/sh\necho 'simulated crash' >&2\nexit 3\n");
    let mut perm = std::fs::metadata(ws.path("dead.sh")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(ws.path("dead.sh"), perm).unwrap();
    let out = ws.cmd(&["run", "--json", "p.yaml", "--only", "embed"]).env("RADPIPE_NN", ws.path("dead.sh")).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let why = json["errors"].to_string();
    assert!(why.contains("stopped") && why.contains("simulated crash"), "{why}");
    assert!(json["cached"].to_string().contains("slice[I1-0001]"), "{}", json["cached"]);
}

#[test]
fn the_engine_binary_never_links_libtorch() {
    let bytes = std::fs::read(radpipe_bin()).unwrap();
    let needle = b"libtorch_cpu.so";
    assert!(!bytes.windows(needle.len()).any(|w| w == needle), "radpipe must not link libtorch");
    let worker_bytes = std::fs::read(worker()).unwrap();
    assert!(worker_bytes.windows(needle.len()).any(|w| w == needle), "the worker does");
    // `doctor` goes through the worker and reports its libtorch.
    let out = std::process::Command::new(radpipe_bin()).args(["doctor", "--json"]).env("RADPIPE_NN", worker()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["libtorch"].as_str().unwrap().starts_with("2.11.0"), "{v}");
    assert!(v["cuda"].is_boolean());
}
