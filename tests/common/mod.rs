//! Test harness: a temporary workspace and the `radpipe` binary run in it.
#![allow(dead_code)]

pub mod s3;
pub mod slurm;
pub mod stats;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub fn radpipe_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_radpipe"))
}

/// The node ids of a `run --json` summary.
#[derive(Debug)]
pub struct RunResult {
    pub executed: BTreeSet<String>,
    pub cached: BTreeSet<String>,
    pub failed: BTreeSet<String>,
    pub json: Value,
    pub stderr: String,
    pub code: i32,
}

fn ids(v: &Value, field: &str) -> BTreeSet<String> {
    v[field].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Workspace {
    pub fn new() -> Self {
        Workspace { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(radpipe_bin());
        c.args(args).current_dir(self.dir.path());
        c
    }

    pub fn radpipe(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("radpipe runs")
    }

    /// `radpipe run --json ARGS`.
    pub fn run(&self, args: &[&str]) -> RunResult {
        self.run_env(&[], args)
    }

    /// `radpipe run --json ARGS` with extra environment variables.
    pub fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> RunResult {
        let mut all = vec!["run", "--json"];
        all.extend_from_slice(args);
        let out = self.cmd(&all).envs(env.iter().copied()).output().expect("radpipe runs");
        run_result(&out)
    }
}

/// The node ids and exit code of a finished `run --json`.
pub fn run_result(out: &Output) -> RunResult {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("run --json printed no JSON ({e}); stderr:\n{stderr}"));
    RunResult {
        executed: ids(&json, "executed"),
        cached: ids(&json, "cached"),
        failed: ids(&json, "failed"),
        json,
        stderr,
        code: out.status.code().unwrap_or(-1),
    }
}

impl Workspace {
    /// Every file under `rel`, with its content, for comparing two runs.
    pub fn snapshot(&self, rel: &str) -> Vec<(String, Vec<u8>)> {
        let root = self.path(rel);
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((p.strip_prefix(&root).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A small pipeline of command stages over one cohort:
/// `a[P]` -> `b[P]` (per patient) -> `total` -> `report` (cohort level).
pub const CHAIN: &str = r#"version: 1
name: chain
params: { factor: 2, offset: 1 }
cohorts:
  c1: { table: c1.csv }
stages:
  a:
    kind: command
    foreach: patient
    cohorts: [c1]
    cmd: "printf '%s\n%s\n' ${patient} $RADPIPE_PARAM_FACTOR > out/a/${patient}.txt"
    params: { factor: "${params.factor}" }
    outs: ["out/a/${patient}.txt"]
  b:
    kind: command
    foreach: patient
    cohorts: [c1]
    cmd: "wc -c < out/a/${patient}.txt | tr -d ' ' > out/b/${patient}.txt"
    deps: ["out/a/${patient}.txt"]
    outs: ["out/b/${patient}.txt"]
  total:
    kind: command
    cmd: "cat out/b/*.txt | sort -n > out/total.txt"
    deps: [out/b]
    outs: [out/total.txt]
  report:
    kind: command
    cmd: "cp out/total.txt out/report.txt && echo $RADPIPE_PARAM_OFFSET >> out/report.txt"
    params: { offset: "${params.offset}" }
    deps: [out/total.txt]
    outs: [out/report.txt]
"#;

pub fn chain_workspace(patients: &[&str]) -> Workspace {
    let ws = Workspace::new();
    ws.write("p.yaml", CHAIN);
    let mut table = String::from("patient_id,age\n");
    for (i, p) in patients.iter().enumerate() {
        table.push_str(&format!("{p},{}\n", 50 + i));
    }
    ws.write("c1.csv", &table);
    ws
}

/// `--set` overrides that shrink the reference pipeline (`pipelines/demo.yaml`) to the tiny cohorts.
pub const TINY: &[&str] = &[
    "params.data=data",
    "params.slice_size=32",
    "params.device=cpu",
    "stages.embed.train.epochs=2",
    "stages.pca.components=4",
    "stages.fuse.patch=4",
    "stages.fuse.d_model=16",
    "stages.fuse.train.epochs=3",
];

/// A file of the repository.
pub fn repo(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// The tiny synthetic cohorts and the reference pipeline, in a fresh workspace.
pub fn tiny_workspace() -> Workspace {
    let ws = Workspace::new();
    let out = ws.radpipe(&["synth", "--preset", "tiny", "--out", "data"]);
    assert!(out.status.success(), "{}", stderr(&out));
    ws.write("pipelines/demo.yaml", &repo("pipelines/demo.yaml"));
    ws.write("schemas/clinical.yaml", &repo("schemas/clinical.yaml"));
    ws
}

/// The reference pipeline with the tiny overrides.
pub fn tiny_args() -> Vec<&'static str> {
    let mut v = vec!["pipelines/demo.yaml"];
    for s in TINY {
        v.extend(["--set", s]);
    }
    v
}

/// node -> (key, output digest), and the output objects, from the store's action records.
pub fn actions(ws: &Workspace) -> (BTreeMap<String, (String, String)>, BTreeSet<String>) {
    let mut nodes = BTreeMap::new();
    let mut objects = BTreeSet::new();
    for (_, bytes) in ws.snapshot(".radpipe/actions") {
        let record: Value = serde_json::from_slice(&bytes).unwrap();
        let node = record["node"].as_str().unwrap().to_string();
        let key = record["key"].as_str().unwrap().to_string();
        let digest = record["output_digest"].as_str().unwrap().to_string();
        for f in record["outputs"].as_object().unwrap().values() {
            let d = f["digest"].as_str().unwrap().to_string();
            assert!(ws.path(&format!(".radpipe/objects/{}/{}", &d[..2], &d[2..])).is_file(), "{node}: object {d} is not stored");
            objects.insert(d);
        }
        assert!(nodes.insert(node.clone(), (key, digest)).is_none(), "{node} has two action records");
    }
    (nodes, objects)
}
