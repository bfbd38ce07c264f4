//! The executor seam: a pipeline with deep-learning stages (the `tiny`
//! cohorts) run once by the local executor and once with every unit executed
//! by `radpipe exec-node` in a child process gives the same action keys with
//! the same output digests and the same stored output objects.

mod common;
use common::*;

const PIPELINE: &str = include_str!("pipelines/dl_tiny.yaml");

fn workspace() -> Workspace {
    let ws = Workspace::new();
    let out = ws.radpipe(&["synth", "--preset", "tiny", "--out", "data"]);
    assert!(out.status.success(), "{}", stderr(&out));
    ws.write("p.yaml", PIPELINE);
    ws
}

#[test]
fn units_executed_by_exec_node_in_child_processes_give_the_same_keys_digests_and_objects() {
    let local = workspace();
    let a = local.run(&["p.yaml", "--executor", "local"]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    let child = workspace();
    let b = child.run(&["p.yaml", "--executor", "subprocess"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!(a.executed, b.executed, "the same nodes execute");
    assert!(b.executed.iter().any(|n| n.starts_with("embed.fit")) && b.executed.iter().any(|n| n.starts_with("fuse[")), "{:?}", b.executed);

    let (nodes_a, objects_a) = actions(&local);
    let (nodes_b, objects_b) = actions(&child);
    assert_eq!(nodes_a.len(), a.executed.len());
    for (node, (key, digest)) in &nodes_a {
        let other = nodes_b.get(node).unwrap_or_else(|| panic!("{node} has no action record after the subprocess run"));
        assert_eq!(other.0, *key, "{node}: another key");
        assert_eq!(other.1, *digest, "{node}: other outputs");
    }
    assert_eq!(objects_a, objects_b, "the same output objects");
    assert_eq!(local.read("results/table2/metrics.json"), child.read("results/table2/metrics.json"), "the same metrics, with the same lineage keys");

    // A rerun through the subprocess executor is fully cached: nothing is handed to a child.
    let again = child.run(&["p.yaml", "--executor", "subprocess"]);
    assert!(again.executed.is_empty(), "{:?}", again.executed);
}

#[test]
fn exec_node_refuses_a_file_that_is_not_a_unit() {
    let ws = Workspace::new();
    ws.write("unit.json", "{\"nodes\": 3}");
    let out = ws.radpipe(&["exec-node", "unit.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unit.json: not a unit of work"), "{}", stderr(&out));
}
