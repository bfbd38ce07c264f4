//! Where a node's outputs appear for users (its workspace `outs`, or
//! `results/<stage>/...`), restoring a cached node's outputs there, and
//! removing those of nodes the plan no longer has.

use std::path::{Path, PathBuf};

use crate::action_index::Outputs;
use crate::events::{Event, Reporter};
use crate::plan::{Node, Plan, RESULTS};
use crate::store::{hash_file, Memo, Store};

/// A node's folder inside the results folder: `<stage>/` (single node),
/// `<stage>/<item>/`, and for a fit node `<stage>/fit/`.
fn results_subdir(plan: &Plan, node: &Node) -> PathBuf {
    let mut dir = PathBuf::from(plan.stage_name(node));
    if node.decl.fit_on.is_some() {
        dir = dir.join("fit");
    }
    match &node.decl.item {
        Some(item) => dir.join(&item.id),
        None => dir,
    }
}

/// Where this run shows a node's outputs: the plan's results folder (plain
/// `results/`, or a sweep member's) joined with the node's subfolder.
pub(super) fn results_dir(plan: &Plan, node: &Node) -> PathBuf {
    plan.results.join(results_subdir(plan, node))
}

/// The folder an action records (`results/<stage>/...`, workspace-relative):
/// where a plain run shows the node, whichever run executed it, so that an
/// action shared by sweep members and plain runs has one record.
pub(super) fn recorded_results_dir(plan: &Plan, node: &Node) -> String {
    Path::new(RESULTS).join(results_subdir(plan, node)).to_string_lossy().into_owned()
}

/// Where this run shows an output recorded under `recorded` (an action's
/// `results_dir`, see [`recorded_results_dir`]).
fn shown_dir(plan: &Plan, recorded: &str) -> PathBuf {
    match Path::new(recorded).strip_prefix(RESULTS) {
        Ok(rest) => plan.results.join(rest),
        Err(_) => plan.workspace.join(recorded),
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
pub(super) fn restore(plan: &Plan, node: &Node, outputs: &Outputs, store: &Store, memo: &mut Memo) -> std::io::Result<bool> {
    for (name, file) in outputs {
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

/// Outputs of nodes that the last run into the same results folder had and
/// this plan no longer has (a patient removed from a table, a cohort swapped):
/// removed from the workspace and the results folder, so that folder-level
/// deps do not read them. They stay in the store, and come back from it if
/// the node returns.
pub(super) fn remove_vanished_outputs(plan: &Plan, store: &Store, reporter: &dyn Reporter) {
    let Some(last) = store.latest_run(&plan.results_in_workspace()) else { return };
    for (node, key) in &last.nodes {
        if plan.node_index.contains_key(node) {
            continue;
        }
        let Some(action) = store.read_action(key) else { continue };
        for name in action.outputs.keys() {
            let path = match &action.results_dir {
                Some(dir) => shown_dir(plan, dir).join(name),
                None => plan.workspace.join(name),
            };
            if std::fs::remove_file(&path).is_ok() {
                reporter.event(Event::Note(format!("removed `{}`: node `{node}` is no longer in the pipeline", path.display())));
            }
        }
    }
}
