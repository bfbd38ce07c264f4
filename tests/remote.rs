//! The shared cache with real parts: moto's S3 server on loopback (started
//! here; it enforces create-once writes) and the `file://` store on a
//! temporary folder. Two workspaces share results through the remote; racing
//! runs end with one result per key; corrupt remote objects are found and
//! recomputed; a remote that dies mid-run fails the run cleanly; credentials
//! never reach anything radpipe writes; settings resolve in their order.

mod common;
use common::s3::{Moto, BUCKET, SECRET, TOKEN};
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

/// The environment every radpipe call of these tests gets: hermetic
/// settings (no user config folder) plus `extra`.
fn env(extra: &[(&'static str, String)], config: &Path) -> Env {
    let mut v = vec![("XDG_CONFIG_HOME", config.to_string_lossy().into_owned())];
    v.extend_from_slice(extra);
    v
}

/// Environment variables of a radpipe call.
type Env = Vec<(&'static str, String)>;

/// The S3 server, a hermetic config folder, and the environment of radpipe calls against it.
fn s3() -> Option<(Moto, tempfile::TempDir, Env)> {
    let moto = Moto::start()?;
    let config = tempfile::tempdir().unwrap();
    let e = env(&moto.env(), config.path());
    Some((moto, config, e))
}

fn command(ws: &Workspace, env: &[(&'static str, String)], args: &[&str]) -> Command {
    let mut c = ws.cmd(args);
    c.envs(env.iter().map(|(k, v)| (*k, v.as_str()))).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn run(ws: &Workspace, env: &[(&'static str, String)], args: &[&str]) -> RunResult {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    run_result(&command(ws, env, &all).output().unwrap())
}

/// node -> output digest, from the local action records of a workspace's latest run.
fn results_of(ws: &Workspace) -> BTreeMap<String, String> {
    let runs = ws.path(".radpipe/runs");
    let mut ids: Vec<_> = std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().path()).collect();
    ids.sort();
    let run: Value = serde_json::from_slice(&std::fs::read(ids.last().unwrap()).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for (node, key) in run["nodes"].as_object().unwrap() {
        let key = key.as_str().unwrap();
        let record: Value = serde_json::from_slice(&std::fs::read(ws.path(&format!(".radpipe/actions/{key}.json"))).unwrap()).unwrap();
        out.insert(node.clone(), record["output_digest"].as_str().unwrap().to_string());
    }
    out
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn the_s3_server_refuses_a_second_create_of_one_key() {
    let Some(moto) = Moto::start() else { return };
    let put = |body: &str| moto.curl(&["-X", "PUT", "-H", "If-None-Match: *", "--data-binary", body], &format!("/{BUCKET}/probe")).0;
    assert_eq!(put("first"), 200);
    assert_eq!(put("second"), 412, "the server must enforce create-once writes, or the race test proves nothing");
    assert_eq!(moto.get("probe"), b"first");
}

#[test]
fn a_second_workspace_restores_the_tiny_reference_pipeline_from_s3_and_no_credential_is_written() {
    let Some((mut moto, _config, e)) = s3() else { return };
    let remote = format!("s3://{BUCKET}/team");
    let mut args = tiny_args();
    args.extend(["--cache", &remote]);

    let first = tiny_workspace();
    let r1 = run(&first, &e, &args);
    assert_eq!(r1.code, 0, "{}", r1.stderr);
    assert!(r1.executed.len() > 50, "the first run executes the pipeline: {:?}", r1.executed);
    assert!(r1.json["fetched"].as_array().unwrap().is_empty());

    // Another member of the team: the same data, an empty store.
    let second = tiny_workspace();
    let r2 = run(&second, &e, &args);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    assert!(r2.executed.is_empty(), "everything comes from the remote: {:?}", r2.executed);
    let fetched: BTreeSet<String> = r2.json["fetched"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(fetched, r1.executed, "every node the first run executed is fetched");
    assert!(r2.stderr.contains(&format!("from {remote}")), "{}", r2.stderr);
    assert_eq!(first.snapshot("results"), second.snapshot("results"), "restored outputs are byte-identical");
    assert_eq!(results_of(&first), results_of(&second));

    let verify = command(&second, &e, &["verify", "--remote", "--cache", &remote]).output().unwrap();
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));
    assert!(stdout(&verify).starts_with("ok: "), "{}", stdout(&verify));

    // The planted secrets appear nowhere: stores, results, logs, output, the remote.
    for needle in [SECRET, TOKEN] {
        for ws in [&first, &second] {
            let hits = files_containing(ws.dir.path(), needle.as_bytes());
            assert!(hits.is_empty(), "{needle} written to {hits:?}");
        }
        for r in [&r1, &r2] {
            assert!(!r.stderr.contains(needle) && !r.json.to_string().contains(needle));
        }
        for key in moto.keys("team/") {
            assert!(!moto.get(&key).windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} uploaded in {key}");
        }
    }

    // A no-op rerun with a warm local store asks the remote nothing: it
    // succeeds with the server gone.
    moto.kill();
    let r3 = run(&first, &e, &args);
    assert_eq!(r3.code, 0, "{}", r3.stderr);
    assert!(r3.executed.is_empty() && r3.json["fetched"].as_array().unwrap().is_empty(), "{:?}", r3.json);
}

/// A command pipeline whose first stage is not deterministic (random bytes),
/// so that only adoption of the first writer's result makes two racing
/// workspaces agree.
const RANDOM: &str = r#"version: 1
name: random
cohorts:
  c1: { table: c1.csv }
stages:
  a:
    kind: command
    foreach: patient
    cohorts: [c1]
    cmd: "sleep 0.5; head -c 16 /dev/urandom | od -An -tx1 > out/a/${patient}.txt"
    outs: ["out/a/${patient}.txt"]
  b:
    kind: command
    foreach: patient
    cohorts: [c1]
    cmd: "sha1sum < out/a/${patient}.txt > out/b/${patient}.txt"
    deps: ["out/a/${patient}.txt"]
    outs: ["out/b/${patient}.txt"]
  total:
    kind: command
    cmd: "cat out/b/*.txt > out/total.txt"
    deps: [out/b]
    outs: [out/total.txt]
"#;

fn random_workspace(patients: usize) -> Workspace {
    let ws = Workspace::new();
    ws.write("p.yaml", RANDOM);
    let mut table = String::from("patient_id,age\n");
    for i in 0..patients {
        table.push_str(&format!("p{i:02},{}\n", 50 + i));
    }
    ws.write("c1.csv", &table);
    ws
}

#[test]
fn racing_runs_on_one_s3_remote_end_with_one_result_per_key() {
    let Some((moto, _config, e)) = s3() else { return };
    let remote = format!("s3://{BUCKET}/race");
    let (w1, w2) = (random_workspace(8), random_workspace(8));
    let start = |ws: &Workspace| command(ws, &e, &["run", "--json", "p.yaml", "--jobs", "2", "--cache", &remote]).spawn().unwrap();
    let (c1, c2) = (start(&w1), start(&w2));
    let (r1, r2) = (run_result(&c1.wait_with_output().unwrap()), run_result(&c2.wait_with_output().unwrap()));
    assert_eq!((r1.code, r2.code), (0, 0), "{}\n{}", r1.stderr, r2.stderr);
    let both: Vec<_> = r1.executed.intersection(&r2.executed).collect();
    assert!(!both.is_empty(), "the runs raced on no node: {:?} / {:?}", r1.executed, r2.executed);
    // Both computed those nodes, with different random bytes; one result won.
    assert_eq!(w1.snapshot("out"), w2.snapshot("out"), "both workspaces show the winner's outputs");
    assert_eq!(results_of(&w1), results_of(&w2));
    let records = moto.keys("race/actions/");
    assert_eq!(records.len(), 8 + 8 + 1, "one record per key: {records:?}");
    for key in &records {
        let remote_record: Value = serde_json::from_slice(&moto.get(key)).unwrap();
        let name = key.rsplit('/').next().unwrap();
        for ws in [&w1, &w2] {
            let local: Value = serde_json::from_slice(&std::fs::read(ws.path(&format!(".radpipe/actions/{name}"))).unwrap()).unwrap();
            assert_eq!(local["output_digest"], remote_record["output_digest"], "{name}");
        }
    }
    let verify = command(&w1, &e, &["verify", "--remote", "--cache", &remote]).output().unwrap();
    assert!(verify.status.success(), "{}", stdout(&verify));
}

#[test]
fn a_corrupt_object_on_a_shared_folder_is_found_and_recomputed() {
    let config = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let remote = format!("file://{}", shared.path().join("cache").display());
    let e = env(&[("RADPIPE_CACHE_REMOTE", remote.clone())], config.path());
    // Patient ids of different lengths, so that `b`'s outputs (byte counts) differ.
    let patients = ["p1", "p22", "p333"];
    let w1 = chain_workspace(&patients);
    let r1 = run(&w1, &e, &["p.yaml"]);
    assert_eq!(r1.code, 0, "{}", r1.stderr);
    assert_eq!(r1.executed.len(), 8);

    // Two objects go bad on the shared folder: `b[p1]`'s (found by verify,
    // which quarantines it) and `b[p22]`'s (found by the next run's download).
    let digest_of = |node: &str| -> String {
        let run: Value =
            serde_json::from_slice(&std::fs::read(std::fs::read_dir(w1.path(".radpipe/runs")).unwrap().next().unwrap().unwrap().path()).unwrap()).unwrap();
        let key = run["nodes"][node].as_str().unwrap();
        let record: Value = serde_json::from_slice(&std::fs::read(w1.path(&format!(".radpipe/actions/{key}.json"))).unwrap()).unwrap();
        let patient = node.trim_start_matches("b[").trim_end_matches(']');
        record["outputs"][format!("out/b/{patient}.txt")]["digest"].as_str().unwrap().to_string()
    };
    let corrupt = |digest: &str| std::fs::write(shared.path().join("cache/objects").join(&digest[..2]).join(&digest[2..]), b"bit rot").unwrap();
    let (d1, d2) = (digest_of("b[p1]"), digest_of("b[p22]"));
    corrupt(&d1);
    let verify = command(&w1, &e, &["verify", "--remote"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(1), "{}", stdout(&verify));
    assert!(stdout(&verify).contains(&format!("corrupt remote object {d1}")), "{}", stdout(&verify));
    corrupt(&d2);

    // A new workspace: the two nodes whose objects are bad run again, the rest is fetched.
    let w2 = chain_workspace(&patients);
    let r2 = run(&w2, &e, &["p.yaml"]);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    assert_eq!(r2.executed, set(&["b[p1]", "b[p22]"]), "{}", r2.stderr);
    assert!(r2.stderr.contains(&format!("the remote object {d2} of `b[p22]` is corrupt")), "{}", r2.stderr);
    assert_eq!(w1.snapshot("out"), w2.snapshot("out"));
    let verify = command(&w2, &e, &["verify", "--remote"]).output().unwrap();
    assert!(verify.status.success(), "the rerun repaired the remote: {}", stdout(&verify));

    // Local garbage collection never touches the remote.
    let gc = command(&w1, &e, &["gc", "--keep-runs", "0"]).output().unwrap();
    assert!(gc.status.success(), "{}", stderr(&gc));
    let w3 = chain_workspace(&patients);
    let r3 = run(&w3, &e, &["p.yaml"]);
    assert!(r3.code == 0 && r3.executed.is_empty(), "{}", r3.stderr);
}

#[test]
fn a_remote_that_dies_mid_run_fails_the_run_cleanly_and_the_rerun_completes() {
    let Some((mut moto, _config, e)) = s3() else { return };
    let remote = format!("s3://{BUCKET}/dies");
    let ws = random_workspace(8);
    let child = command(&ws, &e, &["run", "--json", "p.yaml", "--jobs", "1", "--cache", &remote]).spawn().unwrap();
    let started = std::time::Instant::now();
    while moto.keys("dies/actions/").is_empty() {
        assert!(started.elapsed().as_secs() < 60, "no record reached the remote");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    moto.kill();
    let r = run_result(&child.wait_with_output().unwrap());
    assert_eq!(r.code, 1, "{}", r.stderr);
    let errors = r.json["errors"].to_string();
    assert!(errors.contains(&format!("remote cache {remote}")), "the error names the remote: {errors}");
    // The local store is consistent: every record it has is whole.
    let verify = command(&ws, &e, &["verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", stdout(&verify));

    // The rerun's units go to `exec-node` child processes, which publish
    // to the remote the unit names, with the credentials of their environment.
    moto.restart();
    let again = run(&ws, &e, &["p.yaml", "--cache", &remote, "--executor", "subprocess"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.failed.is_empty());
    assert!(!again.executed.is_empty());
    assert_eq!(moto.keys("dies/actions/").len(), again.executed.len(), "every node executed is on the (restarted) remote");
}

#[test]
fn settings_resolve_command_line_over_environment_over_files_over_defaults() {
    let config = tempfile::tempdir().unwrap();
    let ws = Workspace::new();
    let dir = |name: &str| format!("file://{}", ws.path(name).display());
    ws.write("radpipe.toml", &format!("[cache]\nremote = \"{}\"\n[run]\njobs = 3\n", dir("from-workspace-file")));
    std::fs::create_dir_all(config.path().join("radpipe")).unwrap();
    std::fs::write(
        config.path().join("radpipe/radpipe.toml"),
        format!("[cache]\nremote = \"{}\"\n[run]\nexecutor = \"subprocess\"\njobs = 7\n", dir("from-user-file")),
    )
    .unwrap();
    let doctor = |extra: &[(&'static str, String)], args: &[&str]| -> Value {
        let mut all = vec!["doctor", "--json"];
        all.extend_from_slice(args);
        let out = command(&ws, &env(extra, config.path()), &all).output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)))
    };
    let setting = |report: &Value, name: &str| -> (String, String) {
        let s = report["settings"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone();
        (s["value"].as_str().unwrap_or("-").to_string(), s["source"].as_str().unwrap().to_string())
    };
    let files = doctor(&[], &[]);
    assert_eq!(setting(&files, "cache.remote"), (dir("from-workspace-file"), ws.path("radpipe.toml").display().to_string()));
    assert_eq!(setting(&files, "run.jobs").0, "3", "the workspace's file wins over the user's");
    assert_eq!(setting(&files, "run.executor"), ("subprocess".into(), config.path().join("radpipe/radpipe.toml").display().to_string()));
    assert_eq!(files["remote"]["ok"], true, "{}", files["remote"]);
    assert_eq!(files["remote"]["kind"], "shared folder");

    let env_and_flag = doctor(&[("RADPIPE_JOBS", "5".into()), ("RADPIPE_CACHE_REMOTE", dir("from-env"))], &["--cache", &dir("from-flag")]);
    assert_eq!(setting(&env_and_flag, "run.jobs"), ("5".into(), "environment RADPIPE_JOBS".into()));
    assert_eq!(setting(&env_and_flag, "cache.remote"), (dir("from-flag"), "command line --cache".into()));

    // Bad values are refused with where they came from, exit 2.
    let out = command(&ws, &env(&[("RADPIPE_JOBS", "many".into())], config.path()), &["doctor"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("run.jobs: `many` from environment RADPIPE_JOBS"), "{}", stderr(&out));
    let out = command(&ws, &env(&[], config.path()), &["run", "p.yaml", "--cache", "http://example.org/cache"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cache.remote: `http://example.org/cache` from command line --cache"), "{}", stderr(&out));
}

#[test]
fn a_large_output_goes_up_in_parts_and_comes_back_whole() {
    let Some((moto, _config, e)) = s3() else { return };
    let remote = format!("s3://{BUCKET}/large");
    let pipeline =
        "version: 1\nname: large\nstages:\n  big:\n    kind: command\n    cmd: \"head -c 20000000 /dev/urandom > out/big.bin\"\n    outs: [out/big.bin]\n";
    let (w1, w2) = (Workspace::new(), Workspace::new());
    for ws in [&w1, &w2] {
        ws.write("p.yaml", pipeline);
    }
    let r1 = run(&w1, &e, &["p.yaml", "--cache", &remote]);
    assert!(r1.code == 0 && r1.executed == set(&["big"]), "{}", r1.stderr);
    let r2 = run(&w2, &e, &["p.yaml", "--cache", &remote]);
    assert!(r2.code == 0 && r2.executed.is_empty(), "{}", r2.stderr);
    assert_eq!(std::fs::read(w1.path("out/big.bin")).unwrap(), std::fs::read(w2.path("out/big.bin")).unwrap());
    // An S3 object written by a multipart upload has an ETag `"<md5>-<parts>"`.
    let digest = hash_of(&w1.path("out/big.bin"));
    let (status, head) = moto.curl(&["-I"], &format!("/{BUCKET}/large/objects/{}/{}", &digest[..2], &digest[2..]));
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert_eq!(status, 200, "{head}");
    assert!(head.lines().any(|l| l.starts_with("etag:") && l.trim_end().ends_with("-3\"")), "20 MB in 8 MiB parts: {head}");
}

fn hash_of(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap()).to_hex().to_string()
}
