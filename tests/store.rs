//! The store under stress: SIGKILL mid-run, two concurrent runs, corrupt objects.

mod common;
use common::*;
use std::time::Duration;

/// 24 patients x 2 per-patient stages + 2 cohort-level stages, each node a little slow.
fn slow_workspace() -> Workspace {
    let patients: Vec<String> = (1..=24).map(|i| format!("P{i:02}")).collect();
    let refs: Vec<&str> = patients.iter().map(String::as_str).collect();
    let ws = chain_workspace(&refs);
    let slow = CHAIN.replace("cmd: \"printf", "cmd: \"sleep 0.02; printf").replace("cmd: \"wc -c", "cmd: \"sleep 0.02; wc -c");
    ws.write("p.yaml", &slow);
    ws
}

#[test]
fn sigkill_at_random_points_leaves_a_verifiable_store_and_the_rerun_matches_a_clean_run() {
    let reference = slow_workspace();
    assert_eq!(reference.run(&["p.yaml", "--jobs", "2"]).code, 0);
    let expected = reference.snapshot("out");

    let ws = slow_workspace();
    // Deterministic pseudo-random kill times over the length of a run (~0.6 s).
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut killed_mid_run = 0;
    for trial in 0..12 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay_ms = 20 + (state >> 33) % 400;
        // A new factor each trial, so that every trial has work to interrupt.
        let factor = format!("params.factor={}", 2 + trial * 7);
        let mut child = ws
            .cmd(&["run", "p.yaml", "--jobs", "2", "--set", &factor])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Commands the killed run started may still be finishing; let them.
        std::thread::sleep(Duration::from_millis(150));
        let verify = ws.radpipe(&["verify"]);
        assert!(verify.status.success(), "trial {trial} (kill after {delay_ms} ms): verify failed:\n{}", stdout(&verify));
        if trial % 4 == 3 {
            // Sometimes the store is cleared of everything a completed run does not use.
            assert!(ws.radpipe(&["gc"]).status.success());
        }
    }
    assert!(killed_mid_run >= 10, "only {killed_mid_run} kills landed mid-run");
    let last = ws.run(&["p.yaml"]);
    assert_eq!(last.code, 0, "{}", last.stderr);
    assert_eq!(ws.snapshot("out"), expected);
    assert!(ws.run(&["p.yaml"]).executed.is_empty());
}

#[test]
fn two_concurrent_runs_on_one_workspace_both_finish_correctly_and_one_waits() {
    let ws = slow_workspace();
    let first = ws.cmd(&["run", "p.yaml", "--json"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let second = ws.cmd(&["run", "p.yaml", "--json"]).output().unwrap();
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success() && second.status.success());
    let err = stderr(&second);
    assert!(err.contains("waiting for the store lock, held by pid"), "{err}");
    let a: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(a["executed"].as_array().unwrap().len(), 50);
    assert_eq!(b["executed"].as_array().unwrap().len(), 0, "the second run reuses what the first stored");
    assert_eq!(ws.read("out/report.txt").lines().count(), 25);
}

#[test]
fn a_flipped_byte_in_an_object_is_reported_by_verify_and_recomputed_by_run() {
    let ws = chain_workspace(&["P1", "P2"]);
    ws.run(&["p.yaml"]);
    let clean = ws.snapshot("out");
    // The object holding out/total.txt.
    let digest = blake3::hash(ws.read("out/total.txt").as_bytes()).to_hex().to_string();
    let object = ws.path(&format!(".radpipe/objects/{}/{}", &digest[..2], &digest[2..]));
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[0] ^= 0x01;
    std::fs::write(&object, bytes).unwrap();

    let verify = ws.radpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(stdout(&verify).contains(&format!("corrupt object {digest}")), "{}", stdout(&verify));
    let again = ws.radpipe(&["verify"]);
    assert!(stdout(&again).contains("out/total.txt") && stdout(&again).contains("is missing"), "{}", stdout(&again));

    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.executed, set(&["total"]), "the node whose object was corrupt runs again");
    assert_eq!(ws.snapshot("out"), clean);
    assert!(ws.radpipe(&["verify"]).status.success());
}

#[test]
fn a_corrupt_object_is_never_restored_into_the_workspace() {
    let ws = chain_workspace(&["P1"]);
    ws.run(&["p.yaml"]);
    let digest = blake3::hash(ws.read("out/report.txt").as_bytes()).to_hex().to_string();
    let object = ws.path(&format!(".radpipe/objects/{}/{}", &digest[..2], &digest[2..]));
    std::fs::write(&object, b"garbage").unwrap();
    std::fs::remove_file(ws.path("out/report.txt")).unwrap();
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.executed, set(&["report"]));
    assert_eq!(ws.read("out/report.txt"), "5\n1\n");
}

#[test]
fn gc_keeps_what_recent_runs_use_and_removes_the_rest() {
    let ws = chain_workspace(&["P1"]);
    ws.run(&["p.yaml", "--set", "params.offset=2"]);
    ws.run(&["p.yaml"]);
    let out = ws.radpipe(&["gc", "--keep-runs", "1"]);
    assert!(stdout(&out).starts_with("removed 1 run records, 1 action records"), "{}", stdout(&out));
    assert!(ws.run(&["p.yaml"]).executed.is_empty());
    assert_eq!(ws.run(&["p.yaml", "--set", "params.offset=2"]).executed, set(&["report"]));
}

/// The action index is a cache: a torn last line (a run killed while
/// appending), a missing file, or a `--force` run never change what runs, and
/// each leaves a complete index behind.
#[test]
fn a_torn_or_missing_action_index_is_rebuilt_without_running_anything() {
    let ws = chain_workspace(&["P1", "P2", "P3"]);
    assert_eq!(ws.run(&["p.yaml"]).executed.len(), 8);
    let index = ws.path(".radpipe/index.jsonl");
    let lines = |ws: &Workspace| ws.read(".radpipe/index.jsonl").lines().filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()).count();
    assert_eq!(lines(&ws), 8, "one line per executed action");

    let text = ws.read(".radpipe/index.jsonl");
    let torn = &text[..text.len() - text.lines().last().unwrap().len() / 2 - 1];
    std::fs::write(&index, torn).unwrap();
    assert!(ws.run(&["p.yaml"]).executed.is_empty());
    assert_eq!(lines(&ws), 8, "the torn action is looked up in actions/ and added again");

    std::fs::remove_file(&index).unwrap();
    assert!(ws.run(&["p.yaml"]).executed.is_empty());
    assert_eq!(lines(&ws), 8);

    assert_eq!(ws.run(&["p.yaml", "--force", "total"]).executed, set(&["total"]));
    assert_eq!(lines(&ws), 8, "a forced run rebuilds the index");
    assert!(ws.run(&["p.yaml"]).executed.is_empty());
}

/// The index trusts that an object stays until `gc`, `verify` or a quarantine
/// removes it. An object deleted by hand is found by `verify`, which drops the
/// index, so that the node runs again (and `status` says so first).
#[test]
fn verify_finds_an_object_deleted_by_hand_and_its_node_runs_again() {
    let ws = chain_workspace(&["P1", "P2"]);
    ws.run(&["p.yaml"]);
    let digest = blake3::hash(ws.read("out/total.txt").as_bytes()).to_hex().to_string();
    std::fs::remove_file(ws.path(&format!(".radpipe/objects/{}/{}", &digest[..2], &digest[2..]))).unwrap();
    let verify = ws.radpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(stdout(&verify).contains("out/total.txt") && stdout(&verify).contains("is missing"), "{}", stdout(&verify));
    let status = ws.radpipe(&["status", "p.yaml"]);
    assert!(stdout(&status).contains("outputs missing from the store"), "{}", stdout(&status));
    assert_eq!(ws.run(&["p.yaml"]).executed, set(&["total"]));
    assert!(ws.radpipe(&["verify"]).status.success());
}
