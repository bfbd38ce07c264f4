//! What a stage's jobs ask a cluster for: `resources: { cpus, mem_gb, gpus,
//! time }` on any stage of the pipeline file, over the defaults of the
//! stage's kind ([`crate::stage::Stage::resources`]). Resources go into the
//! jobs a cluster executor submits and never into a cache key: the same node
//! gives the same bytes on any allocation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A stage's resources; absent fields take the kind's defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU cores per job (`--cpus-per-task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub cpus: Option<u32>,
    /// Memory per job in GB (`--mem`); fractions are allowed (`0.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_gb: Option<f64>,
    /// GPUs per job (`--gres=gpu:N`); a job with GPUs goes to the GPU partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// Wall-time limit: minutes (`30`) or Slurm's notation (`2:00:00`, `1-00:00:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeLimit>,
}

/// A wall-time limit as written: a number of minutes or Slurm's text.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TimeLimit {
    Minutes(u32),
    Text(String),
}

impl TimeLimit {
    /// As sbatch's `--time` takes it.
    pub fn slurm(&self) -> String {
        match self {
            TimeLimit::Minutes(m) => m.to_string(),
            TimeLimit::Text(t) => t.clone(),
        }
    }
}

/// Resources with every field decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allocation {
    pub cpus: u32,
    pub mem_gb: f64,
    pub gpus: u32,
    pub time: Option<String>,
}

impl Resources {
    /// These resources where given, else `defaults`, else one core and 2 GB.
    pub fn over(&self, defaults: &Resources) -> Allocation {
        Allocation {
            cpus: self.cpus.or(defaults.cpus).unwrap_or(1),
            mem_gb: self.mem_gb.or(defaults.mem_gb).unwrap_or(2.0),
            gpus: self.gpus.or(defaults.gpus).unwrap_or(0),
            time: self.time.as_ref().or(defaults.time.as_ref()).map(TimeLimit::slurm),
        }
    }

    /// What is wrong with these values, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.cpus == Some(0) {
            return Some("`cpus` must be at least 1".into());
        }
        if let Some(m) = self.mem_gb {
            if !(m.is_finite() && m > 0.0) {
                return Some(format!("`mem_gb` must be a positive number of gigabytes, not {m}"));
            }
        }
        if let Some(TimeLimit::Text(t)) = &self.time {
            let ok = !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '-');
            if !ok {
                return Some(format!("`time` `{t}` is not a Slurm time (`MINUTES`, `HH:MM:SS` or `DAYS-HH:MM:SS`)"));
            }
        }
        None
    }
}

impl Allocation {
    /// Memory in whole megabytes, at least one.
    pub fn mem_mb(&self) -> u64 {
        ((self.mem_gb * 1024.0).ceil() as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_fields_win_over_the_kinds_defaults() {
        let given = Resources { mem_gb: Some(0.05), ..Resources::default() };
        let defaults = Resources { cpus: Some(2), gpus: Some(1), mem_gb: Some(8.0), time: None };
        let a = given.over(&defaults);
        assert_eq!((a.cpus, a.gpus, a.mem_mb()), (2, 1, 52));
        assert_eq!(Resources::default().over(&Resources::default()).mem_mb(), 2048);
    }

    #[test]
    fn bad_values_are_named() {
        assert!(Resources { cpus: Some(0), ..Resources::default() }.problem().unwrap().contains("cpus"));
        assert!(Resources { mem_gb: Some(-1.0), ..Resources::default() }.problem().unwrap().contains("mem_gb"));
        let time = |t: &str| Resources { time: Some(TimeLimit::Text(t.into())), ..Resources::default() };
        assert!(time("2h").problem().unwrap().contains("`2h`"));
        assert!(time("1-02:00:00").problem().is_none());
        assert_eq!(Resources { time: Some(TimeLimit::Minutes(30)), ..Resources::default() }.over(&Resources::default()).time.as_deref(), Some("30"));
    }
}
