//! The scheduler: nodes in topological order, at most `--jobs` units at once,
//! each on its own thread (a node's internal parallelism uses the global rayon
//! pool; units are not rayon tasks, so a waiting node never runs another one
//! inside its own time). A batching stage's ready nodes go as one unit.

use rayon::prelude::*;
use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc;

use super::executor::Executor;
use super::material::{active_upstream, material, remembered_sources, selected, source_digests, Done, Material};
use super::outputs::{output_path, remove_vanished_outputs, restore};
use super::unit::{Unit, UnitInput, UnitNode, UnitOutcome};
use crate::action_index::{outputs_of, ActionIndex};
use crate::events::{Event, Outcome, Reporter};
use crate::plan::{Node, Plan};
use crate::remote::sync::{self as remote_sync, Pulled};
use crate::store::{now_unix, Memo, RunRecord, Store};

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
    /// The cached nodes whose results came from the remote cache.
    pub fetched: Vec<String>,
    /// (node, why)
    pub failed: Vec<(String, String)>,
    pub skipped: Vec<String>,
    pub results: PathBuf,
}

/// A node whose key is known and that must execute.
struct Pending {
    ni: usize,
    unit: UnitNode,
}

/// The state of one run.
struct Scheduler<'a> {
    plan: &'a Plan,
    store: &'a Store,
    options: &'a RunOptions,
    reporter: &'a dyn Reporter,
    memo: Memo,
    index: ActionIndex,
    selected: Vec<bool>,
    dependents: Vec<Vec<usize>>,
    done: Vec<Option<Done>>,
    waiting: Vec<usize>,
    ready: VecDeque<usize>,
    to_run: VecDeque<Pending>,
    summary: RunSummary,
    stop: bool,
}

impl<'a> Scheduler<'a> {
    fn new(plan: &'a Plan, store: &'a Store, options: &'a RunOptions, reporter: &'a dyn Reporter) -> std::io::Result<Self> {
        if !options.force.is_empty() {
            // Forced nodes rewrite their records under the same keys; were
            // this run killed before it saves the index, the old lines would
            // outlive the records. Without a file, it is rebuilt.
            store.drop_index()?;
        }
        let waiting: Vec<usize> = plan.nodes.iter().map(|node| node.upstream.iter().map(|u| u.node).collect::<HashSet<_>>().len()).collect();
        let ready = plan.order.iter().copied().filter(|&i| waiting[i] == 0).collect();
        Ok(Scheduler {
            plan,
            store,
            options,
            reporter,
            memo: store.load_memo(),
            index: ActionIndex::load(store),
            selected: selected_nodes(plan, &options.only),
            dependents: plan.dependents(),
            done: vec![None; plan.nodes.len()],
            waiting,
            ready,
            to_run: VecDeque::new(),
            summary: RunSummary {
                run_id: store.new_run_id(),
                executed: vec![],
                cached: vec![],
                fetched: vec![],
                failed: vec![],
                skipped: vec![],
                results: plan.results.clone(),
            },
            stop: false,
        })
    }

    /// Record how node `i` ended and release its dependents.
    fn finish(&mut self, i: usize, outcome: Outcome, out: Option<Done>) {
        let node = &self.plan.nodes[i];
        match &outcome {
            Outcome::Executed => self.summary.executed.push(node.id.clone()),
            Outcome::Cached => self.summary.cached.push(node.id.clone()),
            Outcome::Failed(why) => {
                self.summary.failed.push((node.id.clone(), why.clone()));
                self.stop |= !self.options.keep_going;
            }
            Outcome::Skipped(_) => self.summary.skipped.push(node.id.clone()),
        }
        self.done[i] = out;
        self.reporter.event(Event::NodeFinished { stage: self.plan.stage_name(node).to_string(), node: node.id.clone(), outcome });
        for &d in &self.dependents[i] {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                self.ready.push_back(d);
            }
        }
    }

    /// Decide every ready node: skipped, cached, or pending execution. The
    /// ready nodes are first probed for a cache hit in parallel
    /// ([`Scheduler::probe`]); the others go through [`Scheduler::prepare`]
    /// one by one. Nodes that become ready meanwhile make the next batch.
    fn settle_ready(&mut self) {
        while !self.ready.is_empty() {
            let batch: Vec<usize> = self.ready.drain(..).collect();
            let hits: Vec<Option<Done>> = batch.par_iter().map(|&i| self.probe(i)).collect();
            for (i, hit) in batch.into_iter().zip(hits) {
                self.settle(i, hit);
            }
        }
        if self.stop {
            while let Some(p) = self.to_run.pop_front() {
                self.finish(p.ni, Outcome::Skipped("the run stopped after a failure".into()), None);
            }
        }
    }

    /// One ready node: skipped, cached (`hit`, or found by `prepare`), or pending.
    fn settle(&mut self, i: usize, hit: Option<Done>) {
        if !self.selected[i] {
            self.finish(i, Outcome::Skipped("not selected by --only".into()), None);
            self.summary.skipped.pop();
            return;
        }
        if self.stop {
            self.finish(i, Outcome::Skipped("the run stopped after a failure".into()), None);
            return;
        }
        if let Some(done) = hit {
            self.finish(i, Outcome::Cached, Some(done));
            return;
        }
        match self.prepare(i) {
            Ok(Some(pending)) => self.to_run.push_back(pending),
            Ok(None) => {}
            Err(outcome) => self.finish(i, outcome, None),
        }
    }

    fn forced(&self, node: &Node) -> bool {
        self.options.force.iter().any(|f| f == self.plan.stage_name(node))
    }

    /// A ready node's result when the index lists its key and its outputs
    /// are in place as the memo saw them, as are its sources: nothing to
    /// hash, copy or write, so this only reads and runs in parallel. `None`:
    /// [`Scheduler::prepare`] decides (and reports what is wrong).
    fn probe(&self, i: usize) -> Option<Done> {
        let (plan, done) = (self.plan, &self.done);
        let node = &plan.nodes[i];
        if !self.selected[i] || self.forced(node) {
            return None;
        }
        let outputs_of = |u: usize| done[u].as_ref().map(|d| &d.outputs);
        let active = active_upstream(plan, node, &outputs_of, self.store).ok()?;
        if active.iter().any(|u| done[u.node].is_none()) {
            return None;
        }
        let sources = remembered_sources(plan, node, &self.memo)?;
        let key = material(plan, node, &active, done, sources).material.key();
        let outputs = self.index.get(&key)?;
        outputs.iter().all(|(name, f)| self.memo.matches(&output_path(plan, node, name), &f.digest)).then_some(Done { key, outputs })
    }

    /// A ready node's key; a cache hit finishes it (`Ok(None)`), else it is
    /// described as a unit node. `Err`: how it ends without running.
    fn prepare(&mut self, i: usize) -> Result<Option<Pending>, Outcome> {
        let (plan, store, done) = (self.plan, self.store, &self.done);
        let node = &plan.nodes[i];
        let outputs_of = |u: usize| done[u].as_ref().map(|d| &d.outputs);
        let active = active_upstream(plan, node, &outputs_of, store).map_err(Outcome::Skipped)?;
        let missing: Vec<&str> = active.iter().filter(|u| done[u.node].is_none()).map(|u| plan.nodes[u.node].id.as_str()).collect();
        if !missing.is_empty() {
            let may_drop = node.is_single() && plan.stage(node).drops_missing() && missing.len() < active.len();
            if !may_drop {
                return Err(Outcome::Skipped(format!("needs {} that did not finish", missing.join(", "))));
            }
        }
        let sources = source_digests(plan, node, &mut self.memo).map_err(Outcome::Failed)?;
        let Material { material, inputs: reads, dropped } = material(plan, node, &active, done, sources);
        let key = material.key();
        if !self.forced(node) {
            if let Some(outputs) = self.index.present(store, &key) {
                if restore(plan, node, &outputs, store, &mut self.memo).unwrap_or(false) {
                    self.finish(i, Outcome::Cached, Some(Done { key, outputs }));
                    return Ok(None);
                }
            }
        }
        let inputs = active
            .iter()
            .filter_map(|u| {
                done[u.node].as_ref().map(|d| UnitInput {
                    node: plan.nodes[u.node].id.clone(),
                    key: d.key.clone(),
                    files: selected(&d.outputs, u.select.as_deref()).map(|(name, f)| (name.clone(), f.clone())).collect(),
                })
            })
            .collect();
        Ok(Some(Pending { ni: i, unit: UnitNode { node: node.id.clone(), material, reads, dropped, inputs } }))
    }

    /// The next unit: the first pending node, with the other pending nodes of
    /// its stage when the stage batches; and whether its nodes may come from
    /// the remote cache (not when `--force` names the stage).
    fn next_unit(&mut self) -> Option<(Vec<usize>, Unit, bool)> {
        let first = self.to_run.pop_front()?;
        let stage = self.plan.nodes[first.ni].stage;
        let mut batch = vec![first];
        if self.plan.stage(&self.plan.nodes[batch[0].ni]).batched() {
            let (same, rest): (VecDeque<Pending>, VecDeque<Pending>) = self.to_run.drain(..).partition(|p| self.plan.nodes[p.ni].stage == stage);
            batch.extend(same);
            self.to_run = rest;
        }
        let indices = batch.iter().map(|p| p.ni).collect();
        let unit = Unit {
            pipeline: std::path::absolute(&self.plan.spec.file).unwrap_or_else(|_| self.plan.spec.file.clone()),
            overrides: self.options.overrides.clone(),
            workspace: std::path::absolute(&self.plan.workspace).unwrap_or_else(|_| self.plan.workspace.clone()),
            remote: self.store.remote.as_ref().map(|r| r.url().to_string()),
            nodes: batch.into_iter().map(|p| p.unit).collect(),
        };
        let forced = self.options.force.iter().any(|f| f == &self.plan.stages[stage].name);
        Some((indices, unit, self.store.remote.is_some() && !forced))
    }

    /// Take in the outcomes of a unit's nodes (`indices`); a node without an
    /// outcome failed. `fetched` nodes came from the remote cache.
    fn absorb(&mut self, indices: Vec<usize>, outcomes: Vec<UnitOutcome>, fetched: &HashSet<String>) {
        let mut by_node: std::collections::HashMap<String, Result<_, String>> = outcomes.into_iter().map(|o| (o.node, o.result)).collect();
        for i in indices {
            let result = by_node.remove(&self.plan.nodes[i].id).unwrap_or_else(|| Err("the executor reported no outcome for this node".into()));
            match result {
                Ok(action) if fetched.contains(&self.plan.nodes[i].id) => {
                    let node = &self.plan.nodes[i];
                    let outputs = outputs_of(&action);
                    match restore(self.plan, node, &outputs, self.store, &mut self.memo) {
                        Ok(true) => {
                            self.index.add(&action);
                            self.summary.fetched.push(node.id.clone());
                            self.finish(i, Outcome::Cached, Some(Done { key: action.key, outputs }));
                        }
                        Ok(false) => self.finish(i, Outcome::Failed("an object fetched from the remote cache vanished from the store".into()), None),
                        Err(e) => self.finish(i, Outcome::Failed(format!("cannot restore the outputs fetched from the remote cache: {e}")), None),
                    }
                }
                Ok(action) => {
                    let node = &self.plan.nodes[i];
                    for (name, f) in &action.outputs {
                        let dest = output_path(self.plan, node, name);
                        if node.decl.outs.is_empty() {
                            let _ = self.store.restore(&f.digest, &dest);
                        }
                        self.memo.record(&dest, &f.digest);
                    }
                    self.index.add(&action);
                    self.finish(i, Outcome::Executed, Some(Done { key: action.key, outputs: action.outputs.into_iter().collect() }));
                }
                Err(why) => self.finish(i, Outcome::Failed(why), None),
            }
        }
    }

    /// The run's record. It takes the nodes' keys: the scheduler is done with them.
    fn record(&mut self, started_unix: u64) -> RunRecord {
        let done = std::mem::take(&mut self.done);
        let s = &self.summary;
        RunRecord {
            id: s.run_id.clone(),
            pipeline: self.plan.spec.file.to_string_lossy().into_owned(),
            overrides: self.options.overrides.clone(),
            results: self.plan.results_in_workspace(),
            started_unix,
            finished_unix: now_unix(),
            nodes: self.plan.nodes.iter().zip(done).filter_map(|(node, d)| d.map(|d| (node.id.clone(), d.key))).collect(),
            executed: s.executed.clone(),
            cached: s.cached.clone(),
            fetched: s.fetched.clone(),
            failed: s.failed.iter().map(|(n, _)| n.clone()).collect(),
            skipped: s.skipped.clone(),
        }
    }
}

/// Run a unit on a scheduler thread: with `pull`, the nodes the remote cache
/// has come from there (into the local store, recorded there), and only the
/// others go to the executor. Also returns the ids of the fetched nodes.
fn run_unit(plan: &Plan, store: &Store, executor: &dyn Executor, mut unit: Unit, pull: bool, reporter: &dyn Reporter) -> (Vec<UnitOutcome>, HashSet<String>) {
    let mut outcomes = Vec::new();
    let mut fetched = HashSet::new();
    if let (true, Some(remote)) = (pull, &store.remote) {
        let mut rest = Vec::new();
        for node in std::mem::take(&mut unit.nodes) {
            let pulled = remote_sync::pull(store, remote, &node.material.key());
            let result = match pulled {
                Ok(Pulled::Hit(action)) => {
                    store.write_action(&action).map(|()| *action).map_err(|e| format!("cannot store the record fetched from the remote cache: {e}"))
                }
                Ok(Pulled::Miss) => {
                    rest.push(node);
                    continue;
                }
                Ok(Pulled::Broken(why)) => {
                    reporter.event(Event::Note(format!("{why}: `{}` runs again and repairs the remote", node.node)));
                    rest.push(node);
                    continue;
                }
                Err(e) => Err(e.to_string()),
            };
            if result.is_ok() {
                fetched.insert(node.node.clone());
            }
            outcomes.push(UnitOutcome { node: node.node, result });
        }
        unit.nodes = rest;
    }
    if !unit.nodes.is_empty() {
        outcomes.extend(executor.execute(plan, store, &unit));
    }
    (outcomes, fetched)
}

/// Nodes a run covers: all, or with `--only` those stages and their upstream.
fn selected_nodes(plan: &Plan, only: &[String]) -> Vec<bool> {
    if only.is_empty() {
        return vec![true; plan.nodes.len()];
    }
    let mut keep = vec![false; plan.nodes.len()];
    let mut stack: Vec<usize> =
        plan.nodes.iter().enumerate().filter(|(_, n)| only.contains(&plan.stages[n.stage].name) || only.contains(&n.id)).map(|(i, _)| i).collect();
    while let Some(i) = stack.pop() {
        if !keep[i] {
            keep[i] = true;
            stack.extend(plan.nodes[i].upstream.iter().map(|u| u.node));
        }
    }
    keep
}

/// Run the plan, executing units with `executor`. The caller holds the store lock.
pub fn run(plan: &Plan, store: &Store, options: &RunOptions, executor: &dyn Executor, reporter: &dyn Reporter) -> std::io::Result<RunSummary> {
    let started_unix = now_unix();
    if options.only.is_empty() {
        remove_vanished_outputs(plan, store, reporter);
    }
    let mut s = Scheduler::new(plan, store, options, reporter)?;
    reporter.event(Event::Planned { stages: plan.stages.iter().map(|st| (st.name.clone(), st.nodes.iter().filter(|&&n| s.selected[n]).count())).collect() });
    let jobs = options.jobs.max(1);
    let (tx, rx) = mpsc::channel::<(Vec<usize>, (Vec<UnitOutcome>, HashSet<String>))>();
    let mut running = 0usize;
    std::thread::scope(|scope| loop {
        s.settle_ready();
        while running < jobs {
            let Some((indices, unit, pull)) = s.next_unit() else { break };
            running += 1;
            let tx = tx.clone();
            scope.spawn(move || {
                let _ = tx.send((indices, run_unit(plan, store, executor, unit, pull, reporter)));
            });
        }
        if running == 0 {
            if s.ready.is_empty() {
                break;
            }
            continue;
        }
        let Ok((indices, (outcomes, fetched))) = rx.recv() else { break };
        running -= 1;
        s.absorb(indices, outcomes, &fetched);
    });
    store.save_memo(&s.memo)?;
    std::mem::take(&mut s.index).save(store)?;
    if options.record {
        store.write_run(&s.record(started_unix))?;
    }
    Ok(s.summary)
}
