//! Execution: nodes in topological order, at most `--jobs` at once, each on its
//! own thread (a node's internal parallelism uses the global rayon pool; nodes
//! are not rayon tasks, so a waiting node never runs another one inside its own
//! time). For each ready node the key is computed from its
//! material; a recorded action with all its objects present is a cache hit
//! (outputs are restored into the workspace or `results/` if they differ), else
//! the node runs in a private temporary folder and its outputs are committed:
//! objects first, the action record last. A node whose upstream failed is
//! skipped; a cohort-level node with `on_missing: drop` runs on what is left and
//! lists the dropped patients.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use super::events::{Event, Outcome, Reporter};
use super::key::{set_digest, InputDigest, KeyMaterial};
use super::plan::{Node, Plan, Upstream};
use super::store::{now_unix, ActionRecord, Environment, FileRecord, InputRecord, Memo, RunRecord, Store};
use crate::stages::{InputArtifact, RunContext};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub jobs: usize,
    pub keep_going: bool,
    /// Stages to re-execute even when cached.
    pub force: Vec<String>,
    /// Run only these stages or nodes (and what they need).
    pub only: Vec<String>,
    /// Write the run record (`radpipe predict` does not: its nodes are not a run of the pipeline).
    pub record: bool,
    pub overrides: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    pub executed: Vec<String>,
    pub cached: Vec<String>,
    /// (node, why)
    pub failed: Vec<(String, String)>,
    pub skipped: Vec<String>,
    pub results: PathBuf,
}

/// A finished node's outputs, as downstream nodes see them.
#[derive(Debug, Clone)]
struct Done {
    key: String,
    outputs: BTreeMap<String, FileRecord>,
}

impl Done {
    fn selected(&self, select: Option<&str>) -> BTreeMap<String, FileRecord> {
        match select {
            None => self.outputs.clone(),
            Some(sel) => self
                .outputs
                .iter()
                .filter(|(name, _)| name.as_str() == sel || name.starts_with(&format!("{sel}/")))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

fn output_digest(outputs: &BTreeMap<String, FileRecord>) -> String {
    set_digest(outputs.iter().map(|(k, v)| (k, &v.digest)))
}

/// Where a node's outputs appear for users: its workspace `outs`, or
/// `results/<stage>/` (single node), `results/<stage>/<item>/`, and for a fit
/// node `results/<stage>/fit/`.
pub fn results_dir(plan: &Plan, node: &Node) -> PathBuf {
    let mut dir = plan.workspace.join("results").join(plan.stage_name(node));
    if node.decl.fit_on.is_some() {
        dir = dir.join("fit");
    }
    match &node.decl.item {
        Some(item) => dir.join(&item.id),
        None => dir,
    }
}

fn output_path(plan: &Plan, node: &Node, name: &str) -> PathBuf {
    if node.decl.outs.is_empty() {
        results_dir(plan, node).join(name)
    } else {
        plan.workspace.join(name)
    }
}

/// The upstream edges a node uses: all of them, or for a fit node the
/// per-patient ones of patients in its partitions (read from the split's
/// `partition.csv`, so the split must have finished) plus its single-node inputs.
pub(crate) fn active_upstream<'p>(
    plan: &'p Plan,
    node: &'p Node,
    outputs_of: &dyn Fn(usize) -> Option<&'p BTreeMap<String, FileRecord>>,
    store: &Store,
) -> Result<Vec<&'p Upstream>, String> {
    let Some(on) = &node.decl.fit_on else { return Ok(node.upstream.iter().collect()) };
    let split = node
        .upstream
        .iter()
        .find(|u| plan.stage_name(&plan.nodes[u.node]) == on.split)
        .ok_or_else(|| format!("`{}` has no edge to its split `{}`", node.id, on.split))?;
    let outputs = outputs_of(split.node).ok_or_else(|| format!("needs `{}`, which did not finish", on.split))?;
    let file = outputs.get("partition.csv").ok_or_else(|| format!("`{}` wrote no partition.csv", on.split))?;
    let text = std::fs::read_to_string(store.object_path(&file.digest)).map_err(|e| format!("cannot read the partition of `{}`: {e}", on.split))?;
    let partition = crate::stages::read_partition(&text);
    let kept: HashSet<&str> = partition.iter().filter(|(_, p)| on.partitions.contains(p)).map(|(id, _)| id.as_str()).collect();
    if kept.is_empty() {
        return Err(format!("no patient of `{}` is in {}", on.split, on.partitions.join(", ")));
    }
    Ok(node
        .upstream
        .iter()
        .filter(|u| plan.nodes[u.node].decl.item.as_ref().is_none_or(|i| kept.contains(i.id.as_str())))
        .collect())
}

/// The material of a node's key, given its finished upstream nodes. Sources
/// are hashed through the memo. `dropped`: upstream nodes left out.
fn material(plan: &Plan, node: &Node, active: &[&Upstream], done: &[Option<Done>], memo: &mut Memo) -> Result<(KeyMaterial, Vec<InputRecord>, Vec<String>), String> {
    let stage = plan.stage(node);
    let mut sources = BTreeMap::new();
    for s in &node.sources {
        let path = plan.workspace.join(s);
        let digest = source_digest(&path, memo).map_err(|e| format!("cannot read input `{s}`: {e}"))?;
        sources.insert(s.clone(), digest);
    }
    let mut inputs = Vec::new();
    let mut records = Vec::new();
    let mut dropped = Vec::new();
    for u in active {
        let up = &plan.nodes[u.node];
        match &done[u.node] {
            Some(d) => {
                let sel = d.selected(u.select.as_deref());
                inputs.push(InputDigest { node: up.id.clone(), select: u.select.clone(), digest: output_digest(&sel) });
                records.push(InputRecord { node: up.id.clone(), key: d.key.clone() });
            }
            None => dropped.push(up.id.clone()),
        }
    }
    inputs.sort();
    records.sort_by(|a, b| a.node.cmp(&b.node));
    records.dedup();
    let m = KeyMaterial {
        kind: stage.kind().to_string(),
        version: stage.version(),
        item: node.decl.item.as_ref().map(|i| i.id.clone()),
        params: node.decl.params.clone(),
        sources,
        inputs,
    };
    Ok((m, records, dropped))
}

/// A source's digest: a file's content hash, or a folder's over its files.
pub fn source_digest(path: &Path, memo: &mut Memo) -> std::io::Result<String> {
    if path.is_dir() {
        let files = walk(path)?;
        let mut digests = BTreeMap::new();
        for f in files {
            let rel = f.strip_prefix(path).unwrap_or(&f).to_string_lossy().into_owned();
            digests.insert(rel, memo.file_digest(&f)?);
        }
        Ok(set_digest(digests.iter()))
    } else {
        memo.file_digest(path)
    }
}

/// Files under a folder, sorted.
pub fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Make a cached node's outputs present where users expect them. `false`: an
/// object is missing or corrupt, so the node must run again.
fn restore(plan: &Plan, node: &Node, action: &ActionRecord, store: &Store, memo: &mut Memo) -> std::io::Result<bool> {
    for (name, file) in &action.outputs {
        let dest = output_path(plan, node, name);
        if memo.matches(&dest, &file.digest) {
            continue;
        }
        if dest.is_file() && super::store::hash_file(&dest).ok().as_deref() == Some(file.digest.as_str()) {
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

struct Executed {
    action: ActionRecord,
}

/// A node about to run: its private folder with the inputs staged.
struct Prepared {
    ni: usize,
    key: String,
    material: KeyMaterial,
    inputs_rec: Vec<InputRecord>,
    dropped: Vec<String>,
    tmp: PathBuf,
    out_dir: PathBuf,
    inputs: Vec<InputArtifact>,
    log: Vec<u8>,
}

/// What `execute` needs to know of a node whose key is computed.
type Job = (usize, KeyMaterial, Vec<InputRecord>, Vec<String>, Vec<(Upstream, Option<Done>)>);

fn prepare(plan: &Plan, store: &Store, (ni, material, inputs_rec, dropped, ups): Job) -> Result<Prepared, String> {
    let key = material.key();
    let tmp = store.tmp_path("node");
    let out_dir = tmp.join("out");
    fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create a work folder: {e}"))?;
    // Inputs appear under their own names (links to the stored objects), so
    // that readers which look at file extensions (.nii.gz) work.
    let mut inputs: Vec<InputArtifact> = Vec::new();
    for (k, (u, d)) in ups.iter().enumerate() {
        let Some(d) = d else { continue };
        let up = &plan.nodes[u.node];
        let dir = tmp.join("in").join(k.to_string());
        let mut files = Vec::new();
        for (name, f) in d.selected(u.select.as_deref()) {
            let link = dir.join(&name);
            let linked = link.parent().map(fs::create_dir_all).transpose().and_then(|_| std::path::absolute(store.object_path(&f.digest)).and_then(|target| std::os::unix::fs::symlink(target, &link)));
            linked.map_err(|e| format!("cannot stage the input `{name}` of `{}`: {e}", up.id))?;
            files.push((name, link));
        }
        inputs.push(InputArtifact { node: up.id.clone(), stage: plan.stage_name(up).to_string(), item: up.decl.item.clone(), key: d.key.clone(), files });
    }
    Ok(Prepared { ni, key, material, inputs_rec, dropped, tmp, out_dir, inputs, log: Vec::new() })
}

/// Run nodes of one stage in private folders (one `run_batch` call when the
/// stage batches, else one `run` each) and commit each node's outputs.
fn execute(plan: &Plan, store: &Store, jobs: Vec<Job>) -> Vec<(usize, Result<Executed, String>)> {
    let mut results = Vec::new();
    let mut prepared = Vec::new();
    for job in jobs {
        let ni = job.0;
        match prepare(plan, store, job) {
            Ok(p) => prepared.push(p),
            Err(e) => results.push((ni, Err(e))),
        }
    }
    let Some(first) = prepared.first() else { return results };
    let stage = plan.stage(&plan.nodes[first.ni]);
    let started = Instant::now();
    let outcomes = {
        let mut ctxs: Vec<RunContext<'_>> = prepared
            .iter_mut()
            .map(|p| {
                let node = &plan.nodes[p.ni];
                RunContext { workspace: &plan.workspace, node_id: &node.id, key: &p.key, decl: &node.decl, inputs: &p.inputs, out_dir: &p.out_dir, log: &mut p.log }
            })
            .collect();
        stage.run_batch(&mut ctxs)
    };
    // A batch shares its time among its nodes.
    let duration_s = started.elapsed().as_secs_f64() / prepared.len() as f64;
    for (p, result) in prepared.into_iter().zip(outcomes) {
        let ni = p.ni;
        results.push((ni, commit(plan, store, p, result, duration_s)));
    }
    results
}

fn commit(plan: &Plan, store: &Store, p: Prepared, result: Result<(), crate::stages::StageError>, duration_s: f64) -> Result<Executed, String> {
    let node = &plan.nodes[p.ni];
    let Prepared { key, material, inputs_rec, dropped, tmp, out_dir, log, .. } = p;
    let commit = || -> std::io::Result<ActionRecord> {
        let log_rec = store.put_bytes(&log)?;
        let mut outputs = BTreeMap::new();
        if node.decl.outs.is_empty() {
            for f in walk(&out_dir)? {
                let rel = f.strip_prefix(&out_dir).unwrap_or(&f).to_string_lossy().into_owned();
                outputs.insert(rel, store.put_file(&f, true)?);
            }
        } else {
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
        }
        let action = ActionRecord {
            key: key.clone(),
            node: node.id.clone(),
            stage: plan.stage_name(node).to_string(),
            cohort: node.decl.item.as_ref().and_then(|i| i.cohort.clone()),
            output_digest: output_digest(&outputs),
            material,
            inputs: inputs_rec,
            outputs,
            results_dir: node.decl.outs.is_empty().then(|| {
                let dir = results_dir(plan, node);
                dir.strip_prefix(&plan.workspace).unwrap_or(&dir).to_string_lossy().into_owned()
            }),
            dropped,
            log: log_rec.digest,
            duration_s,
            finished_unix: now_unix(),
            environment: Environment::current(),
        };
        store.write_action(&action)?;
        Ok(action)
    };
    let outcome = match result {
        Ok(()) => commit().map_err(|e| format!("cannot store the outputs: {e}")),
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
    outcome.map(|action| Executed { action })
}

/// Nodes a run covers: all, or with `--only` those stages and their upstream.
fn selected_nodes(plan: &Plan, only: &[String]) -> Vec<bool> {
    if only.is_empty() {
        return vec![true; plan.nodes.len()];
    }
    let mut keep = vec![false; plan.nodes.len()];
    let mut stack: Vec<usize> = plan.nodes.iter().enumerate().filter(|(_, n)| only.contains(&plan.stages[n.stage].name) || only.contains(&n.id)).map(|(i, _)| i).collect();
    while let Some(i) = stack.pop() {
        if !keep[i] {
            keep[i] = true;
            stack.extend(plan.nodes[i].upstream.iter().map(|u| u.node));
        }
    }
    keep
}

/// Outputs of nodes that the last run had and this plan no longer has (a
/// patient removed from a table, a cohort swapped): removed from the workspace
/// and `results/`, so that folder-level deps do not read them. They stay in the
/// store, and come back from it if the node returns.
fn remove_vanished_outputs(plan: &Plan, store: &Store, reporter: &dyn Reporter) {
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

/// Run the plan. The caller holds the store lock.
pub fn run(plan: &Plan, store: &Store, options: &RunOptions, reporter: &dyn Reporter) -> std::io::Result<RunSummary> {
    let started_unix = now_unix();
    let run_id = store.new_run_id();
    if options.only.is_empty() {
        remove_vanished_outputs(plan, store, reporter);
    }
    let mut memo = store.load_memo();
    let selected = selected_nodes(plan, &options.only);
    let dependents = plan.dependents();
    let force: HashSet<&str> = options.force.iter().map(String::as_str).collect();
    reporter.event(Event::Planned {
        stages: plan.stages.iter().map(|s| (s.name.clone(), s.nodes.iter().filter(|&&n| selected[n]).count())).collect(),
    });

    let n = plan.nodes.len();
    let mut done: Vec<Option<Done>> = vec![None; n];
    let mut finished = vec![false; n];
    let mut waiting: Vec<usize> = plan.nodes.iter().map(|node| {
        let mut ups: Vec<usize> = node.upstream.iter().map(|u| u.node).collect();
        ups.sort();
        ups.dedup();
        ups.len()
    }).collect();
    let mut ready: VecDeque<usize> = plan.order.iter().copied().filter(|&i| waiting[i] == 0).collect();
    let mut summary = RunSummary { run_id: run_id.clone(), executed: vec![], cached: vec![], failed: vec![], skipped: vec![], results: plan.workspace.join("results") };
    let mut stop = false;
    let jobs = options.jobs.max(1);
    let (tx, rx) = mpsc::channel::<Vec<(usize, Result<Executed, String>)>>();
    let mut running = 0usize;
    // Nodes whose key is known and that must execute, waiting for a free job.
    let mut to_run: VecDeque<Job> = VecDeque::new();

    std::thread::scope(|scope| {
        let mut finish = |i: usize, outcome: Outcome, out: Option<Done>, ready: &mut VecDeque<usize>, summary: &mut RunSummary, done: &mut Vec<Option<Done>>| {
            let node = &plan.nodes[i];
            match &outcome {
                Outcome::Executed => summary.executed.push(node.id.clone()),
                Outcome::Cached => summary.cached.push(node.id.clone()),
                Outcome::Failed(why) => summary.failed.push((node.id.clone(), why.clone())),
                Outcome::Skipped(_) => summary.skipped.push(node.id.clone()),
            }
            done[i] = out;
            finished[i] = true;
            reporter.event(Event::NodeFinished { stage: plan.stage_name(node).to_string(), node: node.id.clone(), outcome });
            for &d in &dependents[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push_back(d);
                }
            }
        };
        loop {
            while let Some(i) = ready.pop_front() {
                let node = &plan.nodes[i];
                if !selected[i] {
                    finish(i, Outcome::Skipped("not selected by --only".into()), None, &mut ready, &mut summary, &mut done);
                    summary.skipped.pop();
                    continue;
                }
                if stop {
                    finish(i, Outcome::Skipped("the run stopped after a failure".into()), None, &mut ready, &mut summary, &mut done);
                    continue;
                }
                let outputs_of = |u: usize| done[u].as_ref().map(|d| &d.outputs);
                let active = match active_upstream(plan, node, &outputs_of, store) {
                    Ok(a) => a,
                    Err(why) => {
                        finish(i, Outcome::Skipped(why), None, &mut ready, &mut summary, &mut done);
                        continue;
                    }
                };
                let missing: Vec<&str> = active.iter().filter(|u| done[u.node].is_none()).map(|u| plan.nodes[u.node].id.as_str()).collect();
                if !missing.is_empty() {
                    let may_drop = node.is_single() && plan.stage(node).drops_missing() && missing.len() < active.len();
                    if !may_drop {
                        let why = format!("needs {} that did not finish", missing.join(", "));
                        finish(i, Outcome::Skipped(why), None, &mut ready, &mut summary, &mut done);
                        continue;
                    }
                }
                let (m, inputs_rec, dropped) = match material(plan, node, &active, &done, &mut memo) {
                    Ok(v) => v,
                    Err(why) => {
                        finish(i, Outcome::Failed(why), None, &mut ready, &mut summary, &mut done);
                        stop = !options.keep_going;
                        continue;
                    }
                };
                let key = m.key();
                if !force.contains(plan.stage_name(node)) {
                    if let Some(action) = store.read_action(&key) {
                        let present = store.has_object(&action.log) && action.outputs.values().all(|f| store.has_object(&f.digest));
                        if present && restore(plan, node, &action, store, &mut memo).unwrap_or(false) {
                            let d = Done { key, outputs: action.outputs };
                            finish(i, Outcome::Cached, Some(d), &mut ready, &mut summary, &mut done);
                            continue;
                        }
                    }
                }
                let ups: Vec<(Upstream, Option<Done>)> = active.iter().map(|u| ((*u).clone(), done[u.node].clone())).collect();
                to_run.push_back((i, m, inputs_rec, dropped, ups));
            }
            if stop {
                while let Some((i, ..)) = to_run.pop_front() {
                    finish(i, Outcome::Skipped("the run stopped after a failure".into()), None, &mut ready, &mut summary, &mut done);
                }
            }
            while running < jobs {
                let Some(job) = to_run.pop_front() else { break };
                // A batching stage takes all its ready nodes in one call.
                let stage = plan.nodes[job.0].stage;
                let mut batch = vec![job];
                if plan.stage(&plan.nodes[batch[0].0]).batched() {
                    let (same, rest): (VecDeque<Job>, VecDeque<Job>) = to_run.drain(..).partition(|j| plan.nodes[j.0].stage == stage);
                    batch.extend(same);
                    to_run = rest;
                }
                running += 1;
                let tx = tx.clone();
                scope.spawn(move || {
                    let _ = tx.send(execute(plan, store, batch));
                });
            }
            if running == 0 {
                if ready.is_empty() {
                    break;
                }
                continue;
            }
            let Ok(results) = rx.recv() else { break };
            running -= 1;
            for (i, result) in results {
                match result {
                    Ok(ex) => {
                        let node = &plan.nodes[i];
                        for (name, f) in &ex.action.outputs {
                            let dest = output_path(plan, node, name);
                            if node.decl.outs.is_empty() {
                                let _ = store.restore(&f.digest, &dest);
                            }
                            memo.record(&dest, &f.digest);
                        }
                        let d = Done { key: ex.action.key.clone(), outputs: ex.action.outputs };
                        finish(i, Outcome::Executed, Some(d), &mut ready, &mut summary, &mut done);
                    }
                    Err(why) => {
                        finish(i, Outcome::Failed(why), None, &mut ready, &mut summary, &mut done);
                        stop = !options.keep_going;
                    }
                }
            }
        }
    });
    debug_assert!(finished.iter().all(|f| *f));

    store.save_memo(&memo)?;
    let record = RunRecord {
        id: run_id,
        pipeline: plan.spec.file.to_string_lossy().into_owned(),
        overrides: options.overrides.clone(),
        started_unix,
        finished_unix: now_unix(),
        nodes: plan.nodes.iter().zip(&done).filter_map(|(node, d)| d.as_ref().map(|d| (node.id.clone(), d.key.clone()))).collect(),
        executed: summary.executed.clone(),
        cached: summary.cached.clone(),
        failed: summary.failed.iter().map(|(n, _)| n.clone()).collect(),
        skipped: summary.skipped.clone(),
    };
    if options.record {
        store.write_run(&record)?;
    }
    Ok(summary)
}
