//! The Slurm commands radpipe calls: `sbatch`, `squeue`, `scancel` and
//! `scontrol show config`, found on PATH (the cluster's `SLURM_CONF` and
//! credentials come from the environment). Every failure names the command
//! and what it printed.

use std::path::Path;
use std::process::{Command, Stdio};

use super::state::{parse_squeue, JobState, SQUEUE_FORMAT};
use std::collections::HashMap;

/// A Slurm command that could not run or refused.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("cannot run `{command}`: {source} (is Slurm installed and on PATH?)")]
    Start { command: String, source: std::io::Error },
    #[error("`{command}` failed ({status}): {stderr}")]
    Refused { command: String, status: String, stderr: String },
    #[error("`{command}` printed no job id of this cluster: {stdout} (radpipe submits to the cluster its squeue sees; drop --clusters)")]
    NoJobId { command: String, stdout: String },
}

fn run(program: &str, args: &[String]) -> Result<String, SlurmError> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().map_err(|source| SlurmError::Start { command: command.clone(), source })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(SlurmError::Refused { command, status: out.status.to_string(), stderr });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submit a batch script with these flags; the job id.
pub fn sbatch(flags: &[String], script: &Path) -> Result<String, SlurmError> {
    let mut args = vec!["--parsable".to_string()];
    args.extend(flags.iter().cloned());
    args.push(script.display().to_string());
    let stdout = run("sbatch", &args)?;
    // `--parsable` prints `ID`, or `ID;CLUSTER` for a job sent to another
    // cluster, which this run's squeue and scancel would not see.
    let id = stdout.trim().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(SlurmError::NoJobId { command: format!("sbatch {}", args.join(" ")), stdout });
    }
    Ok(id)
}

/// The states of every job of these names, array tasks one by one, ended
/// ones included while Slurm still lists them (`MinJobAge`): one call.
pub fn squeue(names: &[String]) -> Result<HashMap<String, JobState>, SlurmError> {
    run("squeue", &squeue_args(format!("--name={}", names.join(",")))).map(|text| parse_squeue(&text))
}

/// squeue's flags for every job (hidden partitions too), array tasks one by one, ended ones included, selected by `selector`.
fn squeue_args(selector: String) -> Vec<String> {
    vec!["--noheader".into(), "--all".into(), "--array".into(), "--states=all".into(), selector, format!("--format={SQUEUE_FORMAT}")]
}

/// The states of these jobs (by id), as [`squeue`]: one call.
pub fn squeue_jobs(ids: &[String]) -> Result<HashMap<String, JobState>, SlurmError> {
    let args = squeue_args(format!("--jobs={}", ids.join(",")));
    match run("squeue", &args) {
        Ok(text) => Ok(parse_squeue(&text)),
        // squeue refuses a list whose jobs have all left its memory.
        Err(SlurmError::Refused { stderr, .. }) if stderr.contains("Invalid job id") => Ok(HashMap::new()),
        Err(e) => Err(e),
    }
}

/// Cancel these jobs (by id, whole arrays): one call.
pub fn scancel(ids: &[String]) -> Result<(), SlurmError> {
    if ids.is_empty() {
        return Ok(());
    }
    run("scancel", ids).map(|_| ())
}

/// `MaxArraySize` of the cluster (arrays hold indices below it).
pub fn max_array_size() -> Result<usize, SlurmError> {
    let text = run("scontrol", &["show".into(), "config".into()])?;
    Ok(text.lines().find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == "MaxArraySize").and_then(|(_, v)| v.trim().parse().ok())).unwrap_or(1001))
}
