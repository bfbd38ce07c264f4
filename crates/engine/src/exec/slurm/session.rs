//! A Slurm run's folder in the store, `.radpipe/slurm/<session>/`: one
//! folder per submitted job with the units' descriptions, the batch script,
//! the task logs and the outcomes `exec-node` writes, and `jobs.jsonl`, one
//! line per job, appended as it is submitted. A session without its
//! `finished` file belongs to a run that is going on or that crashed: the
//! next run adopts its live jobs instead of submitting them again, and
//! `radpipe status` shows them.

use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::commands::{self, SlurmError};
use super::state::JobState;
use crate::store::{now_unix, Store};

const JOBS: &str = "jobs.jsonl";
const FINISHED: &str = "finished";

/// One submitted job (a single job, or an array of tasks).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// Slurm's job id.
    pub job: String,
    /// The job name the run's squeue calls ask for.
    pub name: String,
    pub stage: String,
    /// The job's folder.
    pub dir: PathBuf,
    /// Whether it is an array (task ids `JOB_INDEX`).
    pub array: bool,
    /// Per task, in index order: its nodes and their keys.
    pub tasks: Vec<TaskRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub nodes: Vec<String>,
    pub keys: Vec<String>,
}

impl JobRecord {
    /// The id Slurm lists task `index` under.
    pub fn task_id(&self, index: usize) -> String {
        if self.array {
            format!("{}_{index}", self.job)
        } else {
            self.job.clone()
        }
    }
}

/// The files of task `index` of a job folder.
pub fn unit_file(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("unit-{index}.json"))
}

pub fn outcome_file(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("outcome-{index}.json"))
}

pub fn log_file(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("log-{index}.txt"))
}

/// The signature of a unit: its nodes' keys (a job of an earlier run with
/// the same signature computes the same thing).
pub fn signature(keys: &[String]) -> String {
    keys.join(",")
}

/// This run's session folder.
pub struct Session {
    pub name: String,
    pub dir: PathBuf,
}

fn sessions_dir(store: &Store) -> PathBuf {
    store.root.join("slurm")
}

impl Session {
    /// A new session in the store (named by time and process, so that job
    /// names differ between runs).
    pub fn create(store: &Store) -> std::io::Result<Session> {
        let id = format!("{}-{}", now_unix(), std::process::id());
        // Absolute: jobs start in their folder on another machine.
        let dir = std::path::absolute(sessions_dir(store).join(&id))?;
        fs::create_dir_all(&dir)?;
        Ok(Session { name: format!("radpipe-{id}"), dir })
    }

    /// A new job folder.
    pub fn job_dir(&self, seq: usize) -> std::io::Result<PathBuf> {
        let dir = self.dir.join(format!("job-{seq}"));
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Append a job to `jobs.jsonl` (one line, so that a crash loses at most
    /// the line being written).
    pub fn append(&self, job: &JobRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(job).map_err(std::io::Error::other)?;
        line.push(b'\n');
        fs::OpenOptions::new().create(true).append(true).open(self.dir.join(JOBS))?.write_all(&line)
    }

    /// Mark the session over: its jobs have all ended or been taken over.
    pub fn finish(&self) {
        let _ = fs::write(self.dir.join(FINISHED), b"");
    }
}

/// The jobs of sessions that did not finish, other than `except`.
pub fn unfinished(store: &Store, except: Option<&Session>) -> Vec<(PathBuf, Vec<JobRecord>)> {
    let Ok(entries) = fs::read_dir(sessions_dir(store)) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir.join(FINISHED).exists() || except.is_some_and(|s| s.dir.file_name() == dir.file_name()) {
            continue;
        }
        let jobs = fs::read_to_string(dir.join(JOBS)).unwrap_or_default();
        // A torn last line (a crash while appending) is left out.
        out.push((dir, jobs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()));
    }
    out
}

/// A task of an unfinished session that Slurm still lists as active.
#[derive(Debug, Clone)]
pub struct LiveTask {
    pub job: JobRecord,
    pub index: usize,
    pub state: String,
}

/// The live tasks of unfinished sessions (one squeue call); the sessions
/// themselves, by folder.
pub fn live_tasks(store: &Store, except: Option<&Session>) -> Result<(Vec<LiveTask>, Vec<PathBuf>), SlurmError> {
    let sessions = unfinished(store, except);
    let ids: Vec<String> = sessions.iter().flat_map(|(_, jobs)| jobs.iter().map(|j| j.job.clone())).collect();
    let states = if ids.is_empty() { Default::default() } else { commands::squeue_jobs(&ids)? };
    let mut live = Vec::new();
    for (_, jobs) in &sessions {
        for job in jobs {
            for index in 0..job.tasks.len() {
                if let Some(JobState::Active { state, .. }) = states.get(&job.task_id(index)) {
                    live.push(LiveTask { job: job.clone(), index, state: state.clone() });
                }
            }
        }
    }
    Ok((live, sessions.into_iter().map(|(dir, _)| dir).collect()))
}

/// Mark an earlier session over (its live jobs now belong to this run).
pub fn finish_dir(dir: &Path) {
    let _ = fs::write(dir.join(FINISHED), b"");
}
