//! Job states as `squeue` reports them, and what each means for a node.

use std::collections::HashMap;

/// How far a job (or an array task) has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Pending, running, completing, suspended: wait (Slurm's state and reason).
    Active { state: String, reason: String },
    /// Ended well: its outcomes file holds the nodes' results.
    Completed,
    /// Ended otherwise: Slurm's state and reason (`FAILED`, `NonZeroExitCode`).
    Ended { state: String, reason: String },
}

/// Slurm's end states other than COMPLETED.
const ENDED: &[&str] = &["FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"];

impl JobState {
    fn from_squeue(state: &str, reason: &str) -> JobState {
        // `CANCELLED by 0` is how some versions print a cancelled job.
        let state = state.split_whitespace().next().unwrap_or(state);
        match state {
            "COMPLETED" => JobState::Completed,
            s if ENDED.contains(&s) => JobState::Ended { state: s.to_string(), reason: reason.to_string() },
            s => JobState::Active { state: s.to_string(), reason: reason.to_string() },
        }
    }

    /// Whether a pending job's reason says it can never start as submitted
    /// (a limit of its partition, account or QOS that sbatch let through
    /// without `EnforcePartLimits`).
    pub fn never_runs(&self) -> bool {
        matches!(self, JobState::Active { state, reason } if state == "PENDING" && NEVER_RUNS.iter().any(|r| reason.starts_with(r)))
    }
}

/// Pending reasons that no waiting cures.
const NEVER_RUNS: &[&str] = &[
    "PartitionConfig",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "BadConstraints",
    "InvalidAccount",
    "InvalidQOS",
    "DependencyNeverSatisfied",
    "QOSMaxWallDurationPerJobLimit",
    "QOSMaxCpuPerJobLimit",
    "QOSMaxMemoryPerJob",
];

/// The `--format` that [`parse_squeue`] reads: job id (`123` or `123_4`), state, reason.
pub const SQUEUE_FORMAT: &str = "%i|%T|%r";

/// Job states by id from `squeue --noheader --array --format=SQUEUE_FORMAT`.
/// Lines that are not in that shape are ignored.
pub fn parse_squeue(text: &str) -> HashMap<String, JobState> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.trim().splitn(3, '|');
            let (id, state, reason) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
            (!id.is_empty()).then(|| (id.to_string(), JobState::from_squeue(state, reason)))
        })
        .collect()
}

/// Whether a job's log says that Slurm killed it for its memory: the state
/// `OUT_OF_MEMORY` (task/cgroup), or slurmstepd's "exceeded memory limit"
/// line (jobacct_gather with `OverMemoryKill`, which ends the job FAILED).
pub fn out_of_memory(state: &str, log: &str) -> bool {
    state == "OUT_OF_MEMORY" || log.contains("Exceeded job memory limit") || log.contains("exceeded memory limit") || log.contains("oom-kill")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_become_states() {
        let states = parse_squeue("1_1|PENDING|Resources\n1_0|COMPLETED|None\n2|FAILED|JobLaunchFailure\n3|CANCELLED by 0|None\nnoise\n");
        assert_eq!(states["1_1"], JobState::Active { state: "PENDING".into(), reason: "Resources".into() });
        assert!(!states["1_1"].never_runs());
        assert!(parse_squeue("5|PENDING|PartitionTimeLimit\n")["5"].never_runs());
        assert_eq!(states["1_0"], JobState::Completed);
        assert_eq!(states["2"], JobState::Ended { state: "FAILED".into(), reason: "JobLaunchFailure".into() });
        assert!(matches!(&states["3"], JobState::Ended { state, .. } if state == "CANCELLED"));
        assert_eq!(states.len(), 4, "a line without states is ignored");
    }

    #[test]
    fn memory_kills_are_recognised_from_state_or_log() {
        assert!(out_of_memory("OUT_OF_MEMORY", ""));
        assert!(out_of_memory("FAILED", "slurmstepd-vm: error: Exceeded job memory limit\n"));
        assert!(!out_of_memory("FAILED", "error: the stage failed"));
    }
}
