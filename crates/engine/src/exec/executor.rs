//! Executors run prepared units. The scheduler decides what is ready and
//! never how it runs: [`LocalExecutor`] runs a unit on a thread of this
//! process; [`SubprocessExecutor`] hands its serialised description to
//! `radpipe exec-node FILE` in a child process, which resolves the inputs
//! from the store by digest and commits the outputs there, as a job on a
//! cluster node will. Which executor ran a node never enters its key.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::unit::{execute_unit, Unit, UnitOutcome};
use crate::plan::Plan;
use crate::store::Store;

/// Runs units of work; one outcome per node of the unit, in order.
pub trait Executor: Sync {
    fn execute(&self, plan: &Plan, store: &Store, unit: &Unit) -> Vec<UnitOutcome>;
}

/// Runs a unit in this process.
pub struct LocalExecutor;

impl Executor for LocalExecutor {
    fn execute(&self, plan: &Plan, store: &Store, unit: &Unit) -> Vec<UnitOutcome> {
        execute_unit(plan, store, unit)
    }
}

/// Runs each unit as `PROGRAM exec-node FILE` in a child process that shares
/// the store (the same machine, or shared storage).
pub struct SubprocessExecutor {
    /// The `radpipe` executable.
    pub program: PathBuf,
}

impl SubprocessExecutor {
    fn run(&self, store: &Store, unit: &Unit) -> Result<Vec<UnitOutcome>, String> {
        let file = store.tmp_path("unit.json");
        let text = serde_json::to_vec_pretty(unit).map_err(|e| format!("cannot describe the unit: {e}"))?;
        store.write_atomic(&file, &text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let output = Command::new(&self.program)
            .arg("exec-node")
            .arg(&file)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot start `{} exec-node`: {e}", self.program.display()));
        let _ = std::fs::remove_file(&file);
        let output = output?;
        if !output.status.success() {
            return Err(format!("`{} exec-node` failed ({})", self.program.display(), output.status));
        }
        serde_json::from_slice(&output.stdout).map_err(|e| format!("`exec-node` answered no outcomes: {e}"))
    }
}

impl Executor for SubprocessExecutor {
    fn execute(&self, _plan: &Plan, store: &Store, unit: &Unit) -> Vec<UnitOutcome> {
        match self.run(store, unit) {
            Ok(outcomes) if outcomes.len() == unit.nodes.len() => outcomes,
            Ok(outcomes) => failed(unit, &format!("`exec-node` answered {} outcomes for {} nodes", outcomes.len(), unit.nodes.len())),
            Err(why) => failed(unit, &why),
        }
    }
}

/// Every node of the unit failed for one reason.
pub(super) fn failed(unit: &Unit, why: &str) -> Vec<UnitOutcome> {
    unit.nodes.iter().map(|n| UnitOutcome { node: n.node.clone(), result: Err(why.to_string()) }).collect()
}
