//! A unit of work: one node, or a batch of nodes of one batching stage, whose
//! key is computed and whose inputs are named by content digest. It is
//! serialisable, so that a unit can run in another process or on another
//! machine that sees the same store (`radpipe exec-node FILE`). Executing a
//! unit resolves the inputs from the store into a private folder (links under
//! their own names, so that readers which look at extensions work), runs the
//! stage once for the batch, and commits each node: objects first, the action
//! record last.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use super::material::{output_digest, walk};
use super::outputs::{output_path, recorded_results_dir};
use crate::key::KeyMaterial;
use crate::plan::{Node, Plan};
use crate::remote::sync::{publish, Published};
use crate::stage::{InputArtifact, Records, RunContext, StageError};
use crate::store::{now_unix, ActionRecord, Environment, FileRecord, InputRecord, Store};

/// A prepared unit of work.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unit {
    /// The pipeline file and the `--set` overrides its plan was built with.
    pub pipeline: PathBuf,
    pub overrides: Vec<String>,
    /// The workspace (its `.radpipe/` is the store).
    pub workspace: PathBuf,
    /// The remote cache the store publishes to (its URL; credentials come
    /// from the environment of whoever executes the unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Nodes of one stage; more than one only for a batching stage.
    pub nodes: Vec<UnitNode>,
}

/// One node of a unit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitNode {
    /// The node id in the plan.
    pub node: String,
    pub material: KeyMaterial,
    /// The upstream actions it reads (for its record).
    pub reads: Vec<InputRecord>,
    /// Upstream nodes left out (`on_missing: drop`).
    pub dropped: Vec<String>,
    pub inputs: Vec<UnitInput>,
}

/// The outputs of one upstream node that a node reads, by digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitInput {
    pub node: String,
    /// The upstream action's key.
    pub key: String,
    pub files: BTreeMap<String, FileRecord>,
}

/// How one node of a unit ended: its committed action record, or why not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitOutcome {
    pub node: String,
    pub result: Result<ActionRecord, String>,
}

/// A node about to run: its private folder with the inputs resolved.
struct Prepared<'p> {
    node: &'p Node,
    spec: &'p UnitNode,
    key: String,
    tmp: PathBuf,
    out_dir: PathBuf,
    inputs: Vec<InputArtifact>,
    log: Vec<u8>,
}

fn prepare<'p>(plan: &'p Plan, store: &Store, spec: &'p UnitNode) -> Result<Prepared<'p>, String> {
    let node = plan.node(&spec.node).ok_or_else(|| format!("`{}` is not a node of {}", spec.node, plan.spec.file.display()))?;
    let tmp = store.tmp_path("node");
    let out_dir = tmp.join("out");
    fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create a work folder: {e}"))?;
    let mut inputs = Vec::new();
    for (k, input) in spec.inputs.iter().enumerate() {
        let up = plan.node(&input.node).ok_or_else(|| format!("`{}` reads `{}`, which is not a node of the plan", spec.node, input.node))?;
        let dir = tmp.join("in").join(k.to_string());
        let mut files = Vec::new();
        for (name, f) in &input.files {
            let link = dir.join(name);
            let object = store.object_path(&f.digest);
            if !object.is_file() {
                return Err(format!("the input `{name}` of `{}` (object {}) is not in the store", up.id, f.digest));
            }
            let linked = link
                .parent()
                .map(fs::create_dir_all)
                .transpose()
                .and_then(|_| std::path::absolute(&object).and_then(|target| std::os::unix::fs::symlink(target, &link)));
            linked.map_err(|e| format!("cannot stage the input `{name}` of `{}`: {e}", up.id))?;
            files.push((name.clone(), link));
        }
        inputs.push(InputArtifact { node: up.id.clone(), stage: plan.stage_name(up).to_string(), item: up.decl.item.clone(), key: input.key.clone(), files });
    }
    Ok(Prepared { node, spec, key: spec.material.key(), tmp, out_dir, inputs, log: Vec::new() })
}

/// Execute a unit against the store: one outcome per node, in order.
pub fn execute_unit(plan: &Plan, store: &Store, unit: &Unit) -> Vec<UnitOutcome> {
    let mut outcomes = Vec::new();
    let mut prepared = Vec::new();
    for spec in &unit.nodes {
        match prepare(plan, store, spec) {
            Ok(p) => prepared.push(p),
            Err(e) => outcomes.push(UnitOutcome { node: spec.node.clone(), result: Err(e) }),
        }
    }
    let Some(first) = prepared.first() else { return outcomes };
    let stage = plan.stage(first.node);
    let started = Instant::now();
    let results = {
        let mut ctxs: Vec<RunContext<'_>> = prepared
            .iter_mut()
            .map(|p| RunContext {
                workspace: &plan.workspace,
                records: Records(store),
                node_id: &p.node.id,
                key: &p.key,
                decl: &p.node.decl,
                inputs: &p.inputs,
                out_dir: &p.out_dir,
                log: &mut p.log,
            })
            .collect();
        stage.run_batch(&mut ctxs)
    };
    // A batch shares its time among its nodes.
    let duration_s = started.elapsed().as_secs_f64() / prepared.len() as f64;
    for (p, result) in prepared.into_iter().zip(results) {
        let node = p.node.id.clone();
        outcomes.push(UnitOutcome { node, result: commit(plan, store, p, result, duration_s) });
    }
    outcomes
}

/// Record a node that ran: published to the remote first, when there is
/// one (the remote may answer with another writer's result, which is then
/// this node's too), then the local record.
fn record(plan: &Plan, store: &Store, node: &Node, action: ActionRecord) -> Result<ActionRecord, String> {
    let action = match &store.remote {
        None => action,
        Some(remote) => match publish(store, remote, action).map_err(|e| e.to_string())? {
            Published::Ours(a) => a,
            Published::Adopted(winner) => {
                // Workspace `outs` show the adopted result, as the results folder will.
                if !node.decl.outs.is_empty() {
                    for (name, f) in &winner.outputs {
                        let dest = output_path(plan, node, name);
                        if !store.restore(&f.digest, &dest).map_err(|e| format!("cannot restore `{name}` adopted from {}: {e}", remote.url()))? {
                            return Err(format!("the adopted output `{name}` ({}) vanished from the store", f.digest));
                        }
                    }
                }
                winner
            }
        },
    };
    store.write_action(&action).map_err(|e| format!("cannot store the outputs: {e}"))?;
    Ok(action)
}

/// The outputs of a node that ran: its output folder, or its workspace `outs`.
fn collect_outputs(plan: &Plan, store: &Store, node: &Node, out_dir: &std::path::Path) -> std::io::Result<BTreeMap<String, FileRecord>> {
    let mut outputs = BTreeMap::new();
    if node.decl.outs.is_empty() {
        for f in walk(out_dir)? {
            let rel = f.strip_prefix(out_dir).unwrap_or(&f).to_string_lossy().into_owned();
            outputs.insert(rel, store.put_file(&f, true)?);
        }
        return Ok(outputs);
    }
    for out in &node.decl.outs {
        let path = plan.workspace.join(out);
        if path.is_dir() {
            for f in walk(&path)? {
                let rel = f.strip_prefix(&plan.workspace).unwrap_or(&f).to_string_lossy().into_owned();
                outputs.insert(rel, store.put_file(&f, false)?);
            }
        } else {
            outputs.insert(out.trim_start_matches("./").to_string(), store.put_file(&path, false)?);
        }
    }
    Ok(outputs)
}

fn commit(plan: &Plan, store: &Store, p: Prepared<'_>, result: Result<(), StageError>, duration_s: f64) -> Result<ActionRecord, String> {
    let Prepared { node, spec, key, tmp, out_dir, log, .. } = p;
    let commit = || -> std::io::Result<ActionRecord> {
        let log_rec = store.put_bytes(&log)?;
        let outputs = collect_outputs(plan, store, node, &out_dir)?;
        let action = ActionRecord {
            key: key.clone(),
            node: node.id.clone(),
            stage: plan.stage_name(node).to_string(),
            cohort: node.decl.item.as_ref().and_then(|i| i.cohort.clone()),
            output_digest: output_digest(&outputs),
            material: spec.material.clone(),
            inputs: spec.reads.clone(),
            outputs,
            results_dir: node.decl.outs.is_empty().then(|| recorded_results_dir(plan, node)),
            dropped: spec.dropped.clone(),
            log: log_rec.digest,
            duration_s,
            finished_unix: now_unix(),
            environment: Environment::current(),
        };
        Ok(action)
    };
    let outcome = match result {
        Ok(()) => commit().map_err(|e| format!("cannot store the outputs: {e}")).and_then(|action| record(plan, store, node, action)),
        Err(e) if log.is_empty() => Err(e.to_string()),
        Err(e) => {
            // Keep the log of a failure where users can read it.
            let name: String = node.id.chars().map(|c| if c.is_ascii_alphanumeric() || "._-[]".contains(c) { c } else { '_' }).collect();
            let path = store.root.join("logs").join(format!("{name}.log"));
            match store.write_atomic(&path, &log) {
                Ok(()) => Err(format!("{e} (log: {})", path.display())),
                Err(_) => Err(e.to_string()),
            }
        }
    };
    let _ = fs::remove_dir_all(&tmp);
    outcome
}
