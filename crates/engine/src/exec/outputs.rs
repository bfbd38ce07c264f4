//! Where a node's outputs appear for users (its workspace `outs`, or
//! `results/<stage>/...`), restoring a cached node's outputs there, and
//! removing those of nodes the plan no longer has.

use std::path::PathBuf;

use crate::events::{Event, Reporter};
use crate::plan::{Node, Plan};
use crate::store::{hash_file, ActionRecord, Memo, Store};

/// `results/<stage>/` (single node), `results/<stage>/<item>/`, and for a fit
/// node `results/<stage>/fit/`.
pub(super) fn results_dir(plan: &Plan, node: &Node) -> PathBuf {
    let mut dir = plan.workspace.join("results").join(plan.stage_name(node));
    if node.decl.fit_on.is_some() {
        dir = dir.join("fit");
    }
    match &node.decl.item {
        Some(item) => dir.join(&item.id),
        None => dir,
    }
}

/// Where the output `name` of a node appears.
pub(super) fn output_path(plan: &Plan, node: &Node, name: &str) -> PathBuf {
    if node.decl.outs.is_empty() {
        results_dir(plan, node).join(name)
    } else {
        plan.workspace.join(name)
    }
}

/// Make a cached node's outputs present where users expect them. `false`: an
/// object is missing or corrupt, so the node must run again.
pub(super) fn restore(plan: &Plan, node: &Node, action: &ActionRecord, store: &Store, memo: &mut Memo) -> std::io::Result<bool> {
    for (name, file) in &action.outputs {
        let dest = output_path(plan, node, name);
        if memo.matches(&dest, &file.digest) {
            continue;
        }
        if dest.is_file() && hash_file(&dest).ok().as_deref() == Some(file.digest.as_str()) {
            memo.record(&dest, &file.digest);
            continue;
        }
        if !store.restore(&file.digest, &dest)? {
            return Ok(false);
        }
        memo.record(&dest, &file.digest);
    }
    Ok(true)
}

/// Outputs of nodes that the last run had and this plan no longer has (a
/// patient removed from a table, a cohort swapped): removed from the workspace
/// and `results/`, so that folder-level deps do not read them. They stay in the
/// store, and come back from it if the node returns.
pub(super) fn remove_vanished_outputs(plan: &Plan, store: &Store, reporter: &dyn Reporter) {
    let Some(last) = store.run_ids().first().and_then(|id| store.read_run(id)) else { return };
    for (node, key) in &last.nodes {
        if plan.node_index.contains_key(node) {
            continue;
        }
        let Some(action) = store.read_action(key) else { continue };
        for name in action.outputs.keys() {
            let path = match &action.results_dir {
                Some(dir) => plan.workspace.join(dir).join(name),
                None => plan.workspace.join(name),
            };
            if std::fs::remove_file(&path).is_ok() {
                reporter.event(Event::Note(format!("removed `{}`: node `{node}` is no longer in the pipeline", path.display())));
            }
        }
    }
}
