//! The Slurm executor on a real one-host Slurm cluster (Debian 12's
//! slurmctld, slurmd and munge, started by `tests/common/slurm.rs`): the tiny
//! reference pipeline gives the same keys and output digests as a local run,
//! with per-patient stages as job arrays and GPU requests on deep-learning
//! jobs; a job cancelled with scancel fails its node and the rerun completes;
//! a job over its memory is reported as out of memory with its stage; Ctrl-C
//! cancels the run's jobs; a run after a crash adopts the live jobs instead of
//! submitting them again. Every Slurm call goes through logging wrappers.

mod common;
use common::slurm::{calls, cluster, Cluster};
use common::*;
use std::process::{Child, Stdio};
use std::time::Duration;

/// One per-patient stage that sleeps, then writes its patient's file (and
/// appends a line to `counts/<patient>.txt` each time it really runs).
const SLOW: &str = r#"version: 1
name: slow
params: { sleep: 4 }
cohorts:
  c1: { table: c1.csv }
stages:
  work:
    kind: command
    foreach: patient
    cohorts: [c1]
    cmd: "mkdir -p counts && echo run >> counts/${patient}.txt && sleep ${params.sleep} && echo ${patient} > out/${patient}.txt"
    outs: ["out/${patient}.txt"]
    resources: { mem_gb: 0.5 }
  total:
    kind: command
    cmd: "cat out/*.txt > total.txt"
    deps: [out]
    outs: [total.txt]
"#;

fn slow_workspace(patients: usize) -> Workspace {
    let ws = Workspace::new();
    ws.write("p.yaml", SLOW);
    let rows: String = (0..patients).map(|i| format!("P{i},{}\n", 50 + i)).collect();
    ws.write("c1.csv", &format!("patient_id,age\n{rows}"));
    ws
}

fn env(cluster: &Cluster, ws: &Workspace) -> Vec<(String, String)> {
    cluster.env(&ws.path("calls.log"))
}

fn run_on(cluster: &Cluster, ws: &Workspace, args: &[&str]) -> RunResult {
    let env = env(cluster, ws);
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    run_result(&ws.cmd(&all).envs(env).output().unwrap())
}

fn spawn_on(cluster: &Cluster, ws: &Workspace, args: &[&str]) -> Child {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    ws.cmd(&all).envs(env(cluster, ws)).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// The job records of the workspace's Slurm sessions.
fn jobs(ws: &Workspace) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(ws.path(".radpipe/slurm")).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path().join("jobs.jsonl")).unwrap_or_default();
        out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    out
}

/// The states squeue lists for a job (its array tasks one per line).
fn job_states(cluster: &Cluster, job: &str) -> Vec<String> {
    cluster.command("squeue", &["--noheader", "--array", "--states=all", &format!("--jobs={job}"), "--format=%T"]).lines().map(str::to_string).collect()
}

fn active(state: &str) -> bool {
    matches!(state, "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING")
}

fn sbatch_calls(ws: &Workspace) -> Vec<String> {
    calls(&ws.path("calls.log")).into_iter().filter(|c| c.starts_with("sbatch ")).collect()
}

#[test]
fn the_tiny_reference_pipeline_on_slurm_gives_the_local_keys_and_digests() {
    let Some(cluster) = cluster() else { return };
    let local = tiny_workspace();
    let a = local.run(&tiny_args());
    assert_eq!(a.code, 0, "{}", a.stderr);

    let ws = tiny_workspace();
    std::fs::write(ws.path("radpipe.toml"), "[slurm]\ngpu_partition = \"gpu\"\n").unwrap();
    let b = run_on(cluster, &ws, &tiny_args());
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!(a.executed, b.executed, "the same nodes execute");

    let (nodes_a, objects_a) = actions(&local);
    let (nodes_b, objects_b) = actions(&ws);
    for (node, (key, digest)) in &nodes_a {
        let other = nodes_b.get(node).unwrap_or_else(|| panic!("{node} has no action record after the Slurm run"));
        assert_eq!(other.0, *key, "{node}: another key");
        assert_eq!(other.1, *digest, "{node}: other outputs");
    }
    assert_eq!(objects_a, objects_b, "the same output objects");

    // Per-patient stages went as arrays: far fewer jobs than nodes.
    let sbatch = sbatch_calls(&ws);
    let arrays = sbatch.iter().filter(|c| c.contains("--array=0-")).count();
    assert!(arrays >= 4, "per-patient stages go as job arrays: {sbatch:#?}");
    assert!(sbatch.len() * 3 < b.executed.len(), "{} jobs for {} nodes", sbatch.len(), b.executed.len());
    // Deep-learning batches ask for a GPU on the GPU partition; the others do not.
    for stage in ["embed", "fuse"] {
        let dl: Vec<&String> = sbatch.iter().filter(|c| c.contains(&format!("--comment=radpipe stage {stage} "))).collect();
        assert!(!dl.is_empty(), "no job for `{stage}`: {sbatch:#?}");
        assert!(dl.iter().all(|c| c.contains("--gres=gpu:1") && c.contains("--partition=gpu")), "{dl:#?}");
    }
    assert!(sbatch.iter().filter(|c| c.contains("stage ingest ")).all(|c| !c.contains("--gres")), "{sbatch:#?}");
    // Status: one squeue call per round for the whole run, by its job name.
    let squeue: Vec<String> = calls(&ws.path("calls.log")).into_iter().filter(|c| c.starts_with("squeue ") && c.contains("--name=radpipe-")).collect();
    assert!(!squeue.is_empty() && squeue.len() < b.executed.len(), "{} squeue calls for {} nodes", squeue.len(), b.executed.len());

    // A rerun submits nothing.
    let before = sbatch.len();
    let again = run_on(cluster, &ws, &tiny_args());
    assert!(again.executed.is_empty(), "{:?}", again.executed);
    assert_eq!(sbatch_calls(&ws).len(), before);
}

#[test]
fn a_job_cancelled_with_scancel_fails_its_node_and_the_rerun_completes() {
    let Some(cluster) = cluster() else { return };
    let ws = slow_workspace(3);
    let child = spawn_on(cluster, &ws, &["p.yaml", "--keep-going"]);
    cluster.wait_for("the array job", Duration::from_secs(60), || !jobs(&ws).is_empty());
    let job = jobs(&ws)[0].clone();
    let id = job["job"].as_str().unwrap().to_string();
    let victim = job["tasks"][0]["nodes"][0].as_str().unwrap().to_string();
    cluster.wait_for("its first task to run", Duration::from_secs(60), || {
        cluster.command("squeue", &["--noheader", &format!("--jobs={id}_0"), "--format=%T"]).trim() == "RUNNING"
    });
    cluster.command("scancel", &[&format!("{id}_0")]);
    let r = run_result(&child.wait_with_output().unwrap());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.failed, set(&[&victim]), "{}", r.stderr);
    let error = r.json["errors"][0]["error"].as_str().unwrap();
    assert!(error.contains(&format!("slurm job {id}_0 of stage `work` ended CANCELLED")) && error.contains("log: "), "{error}");
    assert_eq!(r.executed.len(), 2, "the other patients finished (--keep-going)");

    let again = run_on(cluster, &ws, &["p.yaml"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.executed, set(&[&victim, "total"]));
}

#[test]
fn a_job_over_its_memory_is_reported_out_of_memory_with_its_stage() {
    let Some(cluster) = cluster() else { return };
    let ws = Workspace::new();
    ws.write(
        "p.yaml",
        "version: 1\nname: hog\nstages:\n  hog:\n    kind: command\n    cmd: \"tail /dev/zero\"\n    outs: [never.txt]\n    resources: { mem_gb: 0.25 }\n",
    );
    let r = run_on(cluster, &ws, &["p.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let error = r.json["errors"][0]["error"].as_str().unwrap();
    assert!(error.contains("of stage `hog` ended") && error.contains("out of memory (it asked for 256 MB"), "{error}");
    assert!(ws.path(".radpipe/actions").read_dir().map(|mut d| d.next().is_none()).unwrap_or(true), "nothing was committed");
}

#[test]
fn a_job_slurm_cannot_place_fails_its_nodes_with_sbatchs_reason() {
    let Some(cluster) = cluster() else { return };
    let ws = slow_workspace(2);
    let r = run_on(cluster, &ws, &["p.yaml", "--set", "params.sleep=0", "--set", "stages.work.resources.cpus=512"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let error = r.json["errors"][0]["error"].as_str().unwrap();
    assert!(error.contains("stage `work`: the job was not submitted: `sbatch") && error.contains("--cpus-per-task=512"), "{error}");
}

/// Wait until every task of the workspace's first job is listed by squeue;
/// the job's id.
fn wait_until_queued(cluster: &Cluster, ws: &Workspace, tasks: usize) -> String {
    cluster.wait_for("the array job", Duration::from_secs(60), || !jobs(ws).is_empty());
    let id = jobs(ws)[0]["job"].as_str().unwrap().to_string();
    cluster.wait_for("its tasks", Duration::from_secs(60), || {
        let states = job_states(cluster, &id);
        states.len() == tasks && states.iter().any(|s| s == "RUNNING")
    });
    id
}

#[test]
fn ctrl_c_cancels_the_runs_jobs_and_status_showed_them_queued() {
    let Some(cluster) = cluster() else { return };
    let ws = slow_workspace(3);
    let child = spawn_on(cluster, &ws, &["p.yaml", "--set", "params.sleep=60"]);
    let id = wait_until_queued(cluster, &ws, 3);

    let status = ws.cmd(&["status", "p.yaml", "--set", "params.sleep=60"]).envs(env(cluster, &ws)).output().unwrap();
    let text = stdout(&status);
    assert!(text.contains("work: 3 nodes on Slurm (") && text.contains(&format!("job {id}")), "{text}");

    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let r = run_result(&out);
    assert!(r.json["errors"][0]["error"].as_str().unwrap().contains("the run was interrupted: its Slurm jobs"), "{}", r.stderr);
    cluster.wait_for("the jobs to end", Duration::from_secs(30), || job_states(cluster, &id).iter().all(|s| !active(s)));
    assert!(job_states(cluster, &id).iter().all(|s| s == "CANCELLED"), "{:?}", job_states(cluster, &id));
    let verify = ws.radpipe(&["verify"]);
    assert!(verify.status.success(), "the store is consistent: {}", stderr(&verify));
}

#[test]
fn a_run_after_a_crash_adopts_the_live_jobs_and_runs_no_node_twice() {
    let Some(cluster) = cluster() else { return };
    let ws = slow_workspace(3);
    let mut child = spawn_on(cluster, &ws, &["p.yaml", "--set", "params.sleep=6"]);
    let id = wait_until_queued(cluster, &ws, 3);
    child.kill().unwrap();
    child.wait().unwrap();
    let submitted = sbatch_calls(&ws).len();

    let r = run_on(cluster, &ws, &["p.yaml", "--set", "params.sleep=6"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.executed, set(&["work[P0]", "work[P1]", "work[P2]", "total"]));
    // Only `total` was submitted: the three tasks of job `id` were adopted.
    let after = sbatch_calls(&ws);
    assert_eq!(after.len(), submitted + 1, "{after:#?}");
    assert!(after.last().unwrap().contains("stage total "), "{after:#?}");
    for p in ["P0", "P1", "P2"] {
        assert_eq!(ws.read(&format!("counts/{p}.txt")), "run\n", "work[{p}] ran once (job {id})");
    }
}

#[test]
fn resources_are_checked_and_never_enter_a_key() {
    let ws = slow_workspace(1);
    let bad = |resources: &str| {
        ws.write("bad.yaml", &SLOW.replace("resources: { mem_gb: 0.5 }", resources));
        ws.radpipe(&["validate", "bad.yaml"])
    };
    let out = bad("resources: { mem_gb: -1 }");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.yaml:13:") && stderr(&out).contains("`stages.work.resources`: `mem_gb` must be a positive"), "{}", stderr(&out));
    let out = bad("resources: { cpu: 2 }");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad.yaml:13:") && stderr(&out).contains("unknown key `cpu`") && stderr(&out).contains("did you mean `cpus`?"),
        "{}",
        stderr(&out)
    );
    let out = bad("resources: { time: 2h }");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`time` `2h` is not a Slurm time"), "{}", stderr(&out));

    let first = ws.run(&["p.yaml", "--set", "params.sleep=0"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let again = ws.run(&["p.yaml", "--set", "params.sleep=0", "--set", "stages.work.resources.mem_gb=4", "--set", "stages.work.resources.time=10"]);
    assert!(again.executed.is_empty(), "resources changed no key: {:?}", again.executed);
}
