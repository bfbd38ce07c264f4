//! The Slurm executor: units become jobs of a real cluster, and Slurm
//! schedules them. Units that reach the executor together (within
//! [`GATHER`] of each other) and share a stage and an allocation go as one
//! job array (split at the cluster's `MaxArraySize`); a lone unit (a
//! cohort-level or fit node, a deep-learning batch) as a single job. Each task
//! runs `radpipe exec-node UNIT --outcomes FILE` against the workspace's store
//! on shared storage (or the remote cache the unit names), which commits the
//! nodes (objects first, the record last) before it writes the outcomes.
//!
//! One driver thread submits and polls: one `squeue` call per round for
//! every job of the run (by job name), the interval growing from
//! `slurm.poll` to 60 s while nothing ends. End states are read from
//! `squeue` (which lists ended jobs for `MinJobAge`), so no accounting is
//! needed. A job that ends other than COMPLETED fails its nodes with Slurm's
//! state and reason, the stage and the log path (or is resubmitted,
//! `--retries`). [`Canceller::cancel`] (Ctrl-C) cancels every job of the run
//! with one `scancel`; a run after a crash adopts the live jobs of the crashed
//! one ([`session`]).

mod commands;
mod session;
mod state;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use commands::SlurmError;
use session::{JobRecord, LiveTask, Session, TaskRecord};
use state::JobState;

use super::executor::{failed, Executor};
use super::unit::{Unit, UnitOutcome};
use crate::plan::Plan;
use crate::resources::Allocation;
use crate::store::Store;

/// How long the executor waits for more units before it submits what it has.
pub const GATHER: Duration = Duration::from_millis(300);
/// The longest interval between two squeue calls.
const MAX_POLL: Duration = Duration::from_secs(60);
/// squeue failures in a row after which the run's jobs are given up.
const SQUEUE_FAILURES: usize = 5;

/// What the settings say about jobs.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// The `radpipe` executable the jobs run (on shared storage).
    pub program: PathBuf,
    pub partition: Option<String>,
    pub gpu_partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// More sbatch flags for every job.
    pub flags: Vec<String>,
    /// Array tasks of one job running at once.
    pub throttle: Option<usize>,
    /// The first interval between squeue calls.
    pub poll: Duration,
    /// Resubmissions of a job that Slurm ended (FAILED, TIMEOUT, NODE_FAIL...).
    pub retries: usize,
}

/// A unit waiting to be submitted, or a task submitted or adopted.
struct Work {
    unit: Unit,
    stage: String,
    allocation: Allocation,
    attempt: usize,
    reply: mpsc::Sender<Vec<UnitOutcome>>,
}

struct Task {
    work: Work,
    /// Its id in squeue (`JOB` or `JOB_INDEX`) and its job's id.
    id: String,
    job: String,
    dir: PathBuf,
    index: usize,
}

#[derive(Default)]
struct State {
    queue: Vec<Work>,
    last_arrival: Option<Instant>,
    tasks: Vec<Task>,
    /// Job names this run polls (its own, and those of adopted jobs).
    names: BTreeSet<String>,
    /// Live tasks of a crashed run, by unit signature.
    adoptable: Vec<LiveTask>,
    /// The live jobs of crashed runs, taken over (recorded in this session).
    adopted_jobs: BTreeSet<String>,
    /// Whether squeue failed so often that the run's jobs were cancelled.
    given_up: bool,
    stop: bool,
    cancel_requested: bool,
    cancelled: bool,
    submitted_jobs: usize,
}

struct Shared {
    options: SlurmOptions,
    session: Session,
    max_array: usize,
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs units as Slurm jobs.
pub struct SlurmExecutor {
    shared: Arc<Shared>,
    driver: Option<JoinHandle<()>>,
}

/// Cancels a run's jobs from another thread (a signal handler).
#[derive(Clone)]
pub struct Canceller(Arc<Shared>);

impl Canceller {
    /// Cancel every job of the run and fail what is left; returns whether
    /// a cancel was already requested.
    pub fn cancel(&self) -> bool {
        let mut state = self.0.lock();
        let again = state.cancel_requested;
        state.cancel_requested = true;
        self.0.wake.notify_all();
        again
    }

    /// Whether a cancel was requested (the run was interrupted).
    pub fn interrupted(&self) -> bool {
        self.0.lock().cancel_requested
    }
}

impl SlurmExecutor {
    /// Start a session in the store: ask the cluster for its `MaxArraySize`
    /// and for the jobs of a crashed run that are still alive.
    pub fn start(store: &Store, options: SlurmOptions) -> Result<SlurmExecutor, String> {
        let max_array = commands::max_array_size().map_err(|e| e.to_string())?;
        let session = Session::create(store).map_err(|e| format!("cannot create a Slurm session in {}: {e}", store.root.display()))?;
        let (adoptable, earlier) = session::live_tasks(store, Some(&session)).map_err(|e| e.to_string())?;
        let mut state = State { names: BTreeSet::from([session.name.clone()]), ..State::default() };
        // Their live jobs are this session's now: recorded here before the
        // earlier sessions are closed, so that a crash of this run still finds them.
        for live in &adoptable {
            if state.adopted_jobs.insert(live.job.job.clone()) {
                session.append(&live.job).map_err(|e| format!("cannot record the live jobs of an earlier run in {}: {e}", session.dir.display()))?;
            }
        }
        state.adoptable = adoptable;
        earlier.iter().for_each(|dir| session::finish_dir(dir));
        let shared = Arc::new(Shared { options, session, max_array: max_array.max(1), state: Mutex::new(state), wake: Condvar::new() });
        let driver = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new().name("slurm".into()).spawn(move || drive(&shared)).map_err(|e| format!("cannot start the Slurm driver: {e}"))?
        };
        Ok(SlurmExecutor { shared, driver: Some(driver) })
    }

    pub fn canceller(&self) -> Canceller {
        Canceller(Arc::clone(&self.shared))
    }
}

impl Drop for SlurmExecutor {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(driver) = self.driver.take() {
            let _ = driver.join();
        }
        // A session that submitted and adopted nothing (a cached run) leaves no folder.
        let state = self.shared.lock();
        if state.submitted_jobs == 0 && state.adopted_jobs.is_empty() {
            let _ = std::fs::remove_dir_all(&self.shared.session.dir);
        } else if !state.given_up {
            self.shared.session.finish();
        }
    }
}

impl Executor for SlurmExecutor {
    fn execute(&self, plan: &Plan, _store: &Store, unit: &Unit) -> Vec<UnitOutcome> {
        let Some(node) = unit.nodes.first().and_then(|n| plan.node(&n.node)) else {
            return failed(unit, "the unit names no node of the plan");
        };
        let (tx, rx) = mpsc::channel();
        let work = Work { unit: unit.clone(), stage: plan.stage_name(node).to_string(), allocation: plan.allocation(node), attempt: 0, reply: tx };
        {
            let mut state = self.shared.lock();
            if state.cancel_requested {
                return failed(unit, "not submitted: the run was interrupted");
            }
            let keys: Vec<String> = unit.nodes.iter().map(|n| n.material.key()).collect();
            let sig = session::signature(&keys);
            let live = state.adoptable.iter().position(|t| session::signature(&t.job.tasks[t.index].keys) == sig);
            match live {
                Some(i) => {
                    let live = state.adoptable.swap_remove(i);
                    adopt(&mut state, work, live);
                }
                None => {
                    state.queue.push(work);
                    state.last_arrival = Some(Instant::now());
                }
            }
        }
        self.shared.wake.notify_all();
        rx.recv().unwrap_or_else(|_| failed(unit, "the Slurm driver stopped before the job ended"))
    }
}

/// Take over a live task of a crashed run: poll it instead of submitting.
fn adopt(state: &mut State, work: Work, live: LiveTask) {
    let job = &live.job;
    if !state.names.contains(&job.name) {
        state.names.insert(job.name.clone());
    }
    state.tasks.push(Task { id: job.task_id(live.index), job: job.job.clone(), dir: job.dir.clone(), index: live.index, work });
}

fn drive(shared: &Shared) {
    let first = shared.options.poll;
    let mut delay = first;
    let mut next_poll = Instant::now() + delay;
    let mut squeue_failures = 0usize;
    let mut state = shared.lock();
    loop {
        if state.cancel_requested && !state.cancelled {
            state.cancelled = true;
            let (tasks, queue) = (std::mem::take(&mut state.tasks), std::mem::take(&mut state.queue));
            drop(state);
            cancel(tasks, queue);
            state = shared.lock();
            continue;
        }
        if state.stop && state.queue.is_empty() && state.tasks.is_empty() {
            return;
        }
        let now = Instant::now();
        let gathered = state.last_arrival.is_some_and(|t| now >= t + GATHER);
        if !state.queue.is_empty() && gathered {
            let queue = std::mem::take(&mut state.queue);
            let seq = state.submitted_jobs;
            drop(state);
            let (tasks, jobs) = submit(shared, queue, seq);
            state = shared.lock();
            state.submitted_jobs += jobs;
            state.tasks.extend(tasks);
            // New jobs are looked at within `first`; a steady trickle of
            // submissions never postpones the next poll.
            let soon = Instant::now() + first;
            if soon < next_poll {
                delay = first;
                next_poll = soon;
            }
            continue;
        }
        if !state.tasks.is_empty() && now >= next_poll {
            let names: Vec<String> = state.names.iter().cloned().collect();
            drop(state);
            let states = commands::squeue(&names);
            state = shared.lock();
            let ended = match states {
                Ok(states) => {
                    squeue_failures = 0;
                    settle(shared, &mut state, &states)
                }
                Err(e) => {
                    squeue_failures += 1;
                    if squeue_failures >= SQUEUE_FAILURES {
                        let tasks = std::mem::take(&mut state.tasks);
                        state.given_up = true;
                        drop(state);
                        give_up(tasks, &format!("{e} ({squeue_failures} times in a row)"));
                        squeue_failures = 0;
                        state = shared.lock();
                    }
                    false
                }
            };
            delay = if ended { first } else { delay.mul_f64(1.5).min(MAX_POLL) };
            next_poll = Instant::now() + delay;
            continue;
        }
        let mut wait = Duration::from_secs(1);
        if let (false, Some(t)) = (state.queue.is_empty(), state.last_arrival) {
            wait = wait.min((t + GATHER).saturating_duration_since(now));
        }
        if !state.tasks.is_empty() {
            wait = wait.min(next_poll.saturating_duration_since(now));
        }
        state = shared.wake.wait_timeout(state, wait.max(Duration::from_millis(10))).unwrap_or_else(|e| e.into_inner()).0;
    }
}

/// Cancel the run's jobs (one scancel) and fail every unit it still had.
fn cancel(tasks: Vec<Task>, queue: Vec<Work>) {
    let jobs: BTreeSet<String> = tasks.iter().map(|t| t.job.clone()).collect();
    let ids: Vec<String> = jobs.into_iter().collect();
    let why = match commands::scancel(&ids) {
        Ok(()) if ids.is_empty() => "the run was interrupted".to_string(),
        Ok(()) => format!("the run was interrupted: its Slurm jobs ({}) were cancelled", ids.join(", ")),
        Err(e) => format!("the run was interrupted, but its Slurm jobs could not be cancelled: {e}"),
    };
    for task in tasks {
        let _ = task.work.reply.send(failed(&task.work.unit, &why));
    }
    for work in queue {
        let _ = work.reply.send(failed(&work.unit, "not submitted: the run was interrupted"));
    }
}

/// Cancel the jobs of tasks whose states cannot be read, and fail them.
fn give_up(tasks: Vec<Task>, cause: &str) {
    let ids: Vec<String> = tasks.iter().map(|t| t.job.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let cancelled = match commands::scancel(&ids) {
        Ok(()) => format!("they were cancelled ({})", ids.join(", ")),
        Err(e) => format!("cancelling them failed too ({e}); check `squeue` for jobs {}", ids.join(", ")),
    };
    let why = format!("squeue failed: {cause}: the run's jobs are given up and {cancelled}");
    for task in tasks {
        let _ = task.work.reply.send(failed(&task.work.unit, &why));
    }
}

/// The sbatch flags of a job of this allocation.
fn flags(options: &SlurmOptions, name: &str, stage: &str, a: &Allocation, dir: &std::path::Path, array: Option<usize>) -> Vec<String> {
    let mut flags = vec![
        format!("--job-name={name}"),
        format!("--chdir={}", dir.display()),
        format!("--output={}", dir.join(if array.is_some() { "log-%a.txt" } else { "log-0.txt" }).display()),
        format!("--cpus-per-task={}", a.cpus),
        format!("--mem={}M", a.mem_mb()),
        format!("--comment=radpipe stage {stage}"),
    ];
    if a.gpus > 0 {
        flags.push(format!("--gres=gpu:{}", a.gpus));
    }
    flags.extend(a.time.as_ref().map(|t| format!("--time={t}")));
    let partition = if a.gpus > 0 { options.gpu_partition.as_ref().or(options.partition.as_ref()) } else { options.partition.as_ref() };
    flags.extend(partition.map(|p| format!("--partition={p}")));
    flags.extend(options.account.as_ref().map(|x| format!("--account={x}")));
    flags.extend(options.qos.as_ref().map(|x| format!("--qos={x}")));
    if let Some(n) = array {
        let throttle = options.throttle.map(|t| format!("%{t}")).unwrap_or_default();
        flags.push(format!("--array=0-{}{throttle}", n - 1));
    }
    flags.extend(options.flags.iter().cloned());
    flags
}

/// A shell word.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Submit the gathered units: grouped by stage, allocation and attempt, each
/// group as arrays of at most `MaxArraySize` tasks (a group of one as a
/// single job). Returns the submitted tasks and the number of jobs; the units
/// of a job that could not be submitted fail at once.
fn submit(shared: &Shared, queue: Vec<Work>, mut seq: usize) -> (Vec<Task>, usize) {
    let mut groups: Vec<(String, Vec<Work>)> = Vec::new();
    for work in queue {
        let a = &work.allocation;
        let key = format!("{}|{}|{}|{}|{:?}|{}", work.stage, a.cpus, a.mem_mb(), a.gpus, a.time, work.attempt);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(work),
            None => groups.push((key, vec![work])),
        }
    }
    let first_seq = seq;
    let mut tasks = Vec::new();
    for (_, group) in groups {
        let mut group = group;
        while !group.is_empty() {
            let rest = group.split_off(group.len().min(shared.max_array));
            let chunk = std::mem::replace(&mut group, rest);
            match submit_job(shared, chunk, seq) {
                Ok(submitted) => tasks.extend(submitted),
                Err((chunk, why)) => {
                    for work in chunk {
                        let _ = work.reply.send(failed(&work.unit, &why));
                    }
                }
            }
            seq += 1;
        }
    }
    (tasks, seq - first_seq)
}

type Refused = (Vec<Work>, String);

fn submit_job(shared: &Shared, chunk: Vec<Work>, seq: usize) -> Result<Vec<Task>, Refused> {
    let s = &shared.session;
    let stage = chunk[0].stage.clone();
    let dir = match s.job_dir(seq) {
        Ok(d) => d,
        Err(e) => return Err((chunk, format!("cannot create a job folder in {}: {e}", s.dir.display()))),
    };
    for (i, work) in chunk.iter().enumerate() {
        let written = serde_json::to_vec_pretty(&work.unit).map_err(std::io::Error::other).and_then(|b| std::fs::write(session::unit_file(&dir, i), b));
        if let Err(e) = written {
            return Err((chunk, format!("cannot write a unit into {}: {e}", dir.display())));
        }
    }
    let script = dir.join("job.sh");
    let program = quoted(&shared.options.program.display().to_string());
    // A single job reads no array index (one inherited from a surrounding array job would be wrong).
    let index = if chunk.len() > 1 { "${SLURM_ARRAY_TASK_ID}" } else { "0" };
    let text = format!(
        "#!/bin/sh\n# radpipe: stage `{stage}`, {n} unit(s)\ni={index}\nexec {program} exec-node \"unit-$i.json\" --outcomes \"outcome-$i.json\"\n",
        n = chunk.len()
    );
    if let Err(e) = std::fs::write(&script, text) {
        return Err((chunk, format!("cannot write {}: {e}", script.display())));
    }
    let array = (chunk.len() > 1).then_some(chunk.len());
    let flags = flags(&shared.options, &s.name, &stage, &chunk[0].allocation, &dir, array);
    let job = match commands::sbatch(&flags, &script) {
        Ok(id) => id,
        Err(e) => return Err((chunk, format!("stage `{stage}`: the job was not submitted: {e}"))),
    };
    let record = JobRecord {
        job: job.clone(),
        name: s.name.clone(),
        stage,
        dir: dir.clone(),
        array: array.is_some(),
        tasks: chunk
            .iter()
            .map(|w| TaskRecord { nodes: w.unit.nodes.iter().map(|n| n.node.clone()).collect(), keys: w.unit.nodes.iter().map(|n| n.material.key()).collect() })
            .collect(),
    };
    // Without the record a crash could not adopt the job; the job still runs.
    let _ = s.append(&record);
    Ok(chunk.into_iter().enumerate().map(|(index, work)| Task { id: record.task_id(index), job: job.clone(), dir: dir.clone(), index, work }).collect())
}

/// Settle the tasks that squeue lists as ended (or no longer lists);
/// whether any ended.
fn settle(shared: &Shared, state: &mut State, states: &std::collections::HashMap<String, JobState>) -> bool {
    let mut any = false;
    let tasks = std::mem::take(&mut state.tasks);
    for task in tasks {
        let outcomes = session::outcome_file(&task.dir, task.index);
        let log = session::log_file(&task.dir, task.index);
        // A task squeue no longer lists, without outcomes, ended unseen (its end state aged out).
        let unseen = JobState::Ended { state: "UNKNOWN".into(), reason: "no longer listed by squeue".into() };
        let listed = match states.get(&task.id) {
            None if !outcomes.exists() => Some(&unseen),
            other => other,
        };
        match listed {
            Some(s @ JobState::Active { reason, .. }) if s.never_runs() => {
                let _ = commands::scancel(std::slice::from_ref(&task.job));
                let why = format!(
                    "slurm job {} of stage `{}` can never start ({reason}): it asks for more than its partition, account or QOS allows; it was cancelled",
                    task.id, task.work.stage
                );
                let _ = task.work.reply.send(failed(&task.work.unit, &why));
            }
            Some(JobState::Active { .. }) => {
                state.tasks.push(task);
                continue;
            }
            Some(JobState::Ended { state: end, reason }) => {
                let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                if task.work.attempt < shared.options.retries && end != "CANCELLED" {
                    let Task { mut work, .. } = task;
                    work.attempt += 1;
                    state.queue.push(work);
                    state.last_arrival = Some(Instant::now());
                } else {
                    let why = ended_message(&task, end, reason, &log_text, &log);
                    let _ = task.work.reply.send(failed(&task.work.unit, &why));
                }
            }
            // COMPLETED, or gone from squeue's memory with its outcomes written.
            _ => {
                let read =
                    std::fs::read(&outcomes).map_err(|e| e.to_string()).and_then(|b| serde_json::from_slice::<Vec<UnitOutcome>>(&b).map_err(|e| e.to_string()));
                let n = task.work.unit.nodes.len();
                let result = match read {
                    Ok(o) if o.len() == n => o,
                    Ok(o) => {
                        let why = format!(
                            "slurm job {} of stage `{}` answered {} outcomes for {n} nodes ({}); log: {}",
                            task.id,
                            task.work.stage,
                            o.len(),
                            outcomes.display(),
                            log.display()
                        );
                        failed(&task.work.unit, &why)
                    }
                    Err(e) => {
                        let why = format!(
                            "slurm job {} of stage `{}` completed without outcomes ({}: {e}); log: {}",
                            task.id,
                            task.work.stage,
                            outcomes.display(),
                            log.display()
                        );
                        failed(&task.work.unit, &why)
                    }
                };
                let _ = task.work.reply.send(result);
            }
        }
        any = true;
    }
    any
}

/// Why a job that Slurm ended failed its nodes.
fn ended_message(task: &Task, end: &str, reason: &str, log_text: &str, log: &std::path::Path) -> String {
    let mut why = format!("slurm job {} of stage `{}` ended {end}", task.id, task.work.stage);
    if !reason.is_empty() && reason != "None" {
        why.push_str(&format!(" ({reason})"));
    }
    if state::out_of_memory(end, log_text) {
        why.push_str(&format!(": out of memory (it asked for {} MB; raise `resources.mem_gb` of `{}`)", task.work.allocation.mem_mb(), task.work.stage));
    } else if end == "TIMEOUT" {
        why.push_str(&format!(": over its time limit (raise `resources.time` of `{}`)", task.work.stage));
    } else if let Some(last) = log_text.lines().rev().find(|l| !l.trim().is_empty()) {
        why.push_str(&format!(": {}", last.trim()));
    }
    why.push_str(&format!("; log: {}", log.display()));
    why
}

/// A node of a Slurm run that is queued or running, for `radpipe status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueuedNode {
    pub node: String,
    pub stage: String,
    pub job: String,
    pub state: String,
}

/// The nodes of unfinished Slurm runs of this store that Slurm lists as
/// pending or running (one squeue call; none when no run is unfinished).
pub fn queued_nodes(store: &Store) -> Result<Vec<QueuedNode>, SlurmError> {
    let (live, _) = session::live_tasks(store, None)?;
    Ok(live
        .into_iter()
        .flat_map(|t| {
            let id = t.job.task_id(t.index);
            t.job.tasks[t.index].nodes.clone().into_iter().map(move |node| QueuedNode {
                node,
                stage: t.job.stage.clone(),
                job: id.clone(),
                state: t.state.clone(),
            })
        })
        .collect())
}
