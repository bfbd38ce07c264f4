//! Settings that resolve once, each value with where it came from: the
//! command line over the environment (`RADPIPE_*`) over a settings file
//! (`radpipe.toml` in the workspace, then `radpipe/radpipe.toml` in the
//! user's config folder, `$XDG_CONFIG_HOME` or `~/.config`) over defaults.
//! `radpipe doctor` prints them with their sources. A settings file holds
//! tables of the dotted names:
//!
//! ```toml
//! [cache]
//! remote = "s3://study-bucket/radpipe"
//! [run]
//! jobs = 8
//! executor = "local"
//! [slurm]
//! partition = "cpu"
//! gpu_partition = "gpu"
//! ```

use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// One setting: its dotted name, its variable, its flag and what it is.
pub struct Def {
    pub name: &'static str,
    pub env: &'static str,
    pub flag: &'static str,
    pub help: &'static str,
}

pub const CACHE_REMOTE: &str = "cache.remote";
pub const RUN_JOBS: &str = "run.jobs";
pub const RUN_EXECUTOR: &str = "run.executor";
pub const SLURM_PARTITION: &str = "slurm.partition";
pub const SLURM_GPU_PARTITION: &str = "slurm.gpu_partition";
pub const SLURM_ACCOUNT: &str = "slurm.account";
pub const SLURM_QOS: &str = "slurm.qos";
pub const SLURM_FLAGS: &str = "slurm.flags";
pub const SLURM_THROTTLE: &str = "slurm.throttle";
pub const SLURM_POLL: &str = "slurm.poll";

/// How many units a Slurm run keeps submitted at once unless `run.jobs` says.
pub const SLURM_DEFAULT_JOBS: usize = 1000;

/// Every setting radpipe knows.
pub const DEFS: &[Def] = &[
    Def {
        name: CACHE_REMOTE,
        env: "RADPIPE_CACHE_REMOTE",
        flag: "--cache",
        help: "the shared remote cache: s3://BUCKET/PREFIX or file:///FOLDER (default: none)",
    },
    Def { name: RUN_JOBS, env: "RADPIPE_JOBS", flag: "--jobs", help: "nodes to run at once (default: the number of CPUs)" },
    Def { name: RUN_EXECUTOR, env: "RADPIPE_EXECUTOR", flag: "--executor", help: "where units of work run: local, subprocess or slurm (default: local)" },
    Def { name: SLURM_PARTITION, env: "RADPIPE_SLURM_PARTITION", flag: "", help: "the partition of CPU jobs (default: the cluster's default)" },
    Def { name: SLURM_GPU_PARTITION, env: "RADPIPE_SLURM_GPU_PARTITION", flag: "", help: "the partition of jobs that ask for GPUs (default: slurm.partition)" },
    Def { name: SLURM_ACCOUNT, env: "RADPIPE_SLURM_ACCOUNT", flag: "", help: "the account jobs are charged to (--account; default: none)" },
    Def { name: SLURM_QOS, env: "RADPIPE_SLURM_QOS", flag: "", help: "the quality of service of jobs (--qos; default: none)" },
    Def { name: SLURM_FLAGS, env: "RADPIPE_SLURM_FLAGS", flag: "", help: "more sbatch flags for every job, separated by spaces (default: none)" },
    Def { name: SLURM_THROTTLE, env: "RADPIPE_SLURM_THROTTLE", flag: "", help: "array tasks of one job running at once (--array=...%N; default: no limit)" },
    Def {
        name: SLURM_POLL,
        env: "RADPIPE_SLURM_POLL",
        flag: "",
        help: "seconds between the first squeue calls of a round; the interval grows to 60 s while nothing ends (default: 5)",
    },
];

/// The executors a setting may name.
pub const EXECUTORS: &[&str] = &["local", "subprocess", "slurm"];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "at")]
pub enum Source {
    CommandLine(String),
    Environment(String),
    File(PathBuf),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::CommandLine(flag) => write!(f, "command line {flag}"),
            Source::Environment(var) => write!(f, "environment {var}"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A resolved setting; `value` is `None` for an unset setting without a
/// default (no remote).
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub name: &'static str,
    pub value: Option<String>,
    pub source: Source,
}

/// Values given on the command line, by setting name.
#[derive(Debug, Clone, Default)]
pub struct CommandLine(pub Vec<(&'static str, String)>);

/// The settings of one invocation.
#[derive(Debug, Clone)]
pub struct Settings {
    entries: Vec<Resolved>,
}

/// A settings file, flattened to dotted names.
struct SettingsFile {
    path: PathBuf,
    values: Vec<(String, String)>,
}

fn flatten(prefix: &str, table: &toml::Table, path: &Path, out: &mut Vec<(String, String)>) -> Result<(), String> {
    for (k, v) in table {
        let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten(&name, t, path, out)?,
            toml::Value::String(s) => out.push((name, s.clone())),
            toml::Value::Integer(i) => out.push((name, i.to_string())),
            toml::Value::Boolean(b) => out.push((name, b.to_string())),
            other => return Err(format!("{}: `{name}` is a {}, expected a string or a number", path.display(), other.type_str())),
        }
    }
    Ok(())
}

impl SettingsFile {
    fn read(path: PathBuf) -> Result<Option<SettingsFile>, String> {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: cannot read the settings file: {e}", path.display())),
        };
        let table: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: not a settings file: {e}", path.display()))?;
        let mut values = Vec::new();
        flatten("", &table, &path, &mut values)?;
        for (name, _) in &values {
            if !DEFS.iter().any(|d| d.name == name) {
                let known: Vec<&str> = DEFS.iter().map(|d| d.name).collect();
                return Err(format!("{}: unknown setting `{name}` (known: {})", path.display(), known.join(", ")));
            }
        }
        Ok(Some(SettingsFile { path, values }))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The user's settings file: `$XDG_CONFIG_HOME/radpipe/radpipe.toml`, else `~/.config/radpipe/radpipe.toml`.
fn user_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("radpipe").join("radpipe.toml"))
}

impl Settings {
    /// Resolve every setting for a workspace. `Err`: a settings file that
    /// cannot be read, an unknown setting, or a value that is not valid
    /// (named with where it came from).
    pub fn resolve(workspace: &Path, command_line: &CommandLine) -> Result<Settings, String> {
        let mut files = Vec::new();
        let here = workspace.join("radpipe.toml");
        for path in std::iter::once(std::path::absolute(&here).unwrap_or(here)).chain(user_file()) {
            files.extend(SettingsFile::read(path)?);
        }
        let mut entries = Vec::new();
        for def in DEFS {
            let given = command_line.0.iter().find(|(n, _)| *n == def.name).map(|(_, v)| (v.clone(), Source::CommandLine(def.flag.into())));
            let resolved = given
                .or_else(|| std::env::var(def.env).ok().filter(|v| !v.is_empty()).map(|v| (v, Source::Environment(def.env.into()))))
                .or_else(|| files.iter().find_map(|f| f.get(def.name).map(|v| (v.to_string(), Source::File(f.path.clone())))));
            let entry = match resolved {
                Some((value, source)) => {
                    check(def.name, &value).map_err(|why| format!("{def}: `{value}` from {source}: {why}", def = def.name))?;
                    Resolved { name: def.name, value: Some(value), source }
                }
                None => Resolved { name: def.name, value: default(def.name), source: Source::Default },
            };
            entries.push(entry);
        }
        Ok(Settings { entries })
    }

    /// Every setting, in [`DEFS`] order.
    pub fn entries(&self) -> &[Resolved] {
        &self.entries
    }

    /// The value of a setting, when it has one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|e| e.name == name).and_then(|e| e.value.as_deref())
    }

    /// The remote cache's URL, when one is set.
    pub fn remote(&self) -> Option<&str> {
        self.value(CACHE_REMOTE)
    }

    /// Nodes to run at once: on Slurm, unless set, [`SLURM_DEFAULT_JOBS`]
    /// (the cluster decides how many of them run).
    pub fn jobs(&self) -> usize {
        let defaulted = self.entries.iter().any(|e| e.name == RUN_JOBS && e.source == Source::Default);
        if defaulted && self.executor() == "slurm" {
            return SLURM_DEFAULT_JOBS;
        }
        self.value(RUN_JOBS).and_then(|v| v.parse().ok()).unwrap_or(1)
    }

    /// The executor's name (one of [`EXECUTORS`]).
    pub fn executor(&self) -> &str {
        self.value(RUN_EXECUTOR).unwrap_or("local")
    }
}

/// The default of a setting; `None` where unset means "none" (no remote).
fn default(name: &str) -> Option<String> {
    match name {
        RUN_JOBS => Some(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).to_string()),
        RUN_EXECUTOR => Some("local".into()),
        SLURM_POLL => Some("5".into()),
        _ => None,
    }
}

/// Whether `value` is valid for the setting `name`.
fn check(name: &str, value: &str) -> Result<(), String> {
    match name {
        RUN_JOBS => match value.parse::<usize>() {
            Ok(n) if n > 0 => Ok(()),
            _ => Err("expected a whole number of jobs, at least 1".into()),
        },
        SLURM_THROTTLE => match value.parse::<usize>() {
            Ok(n) if n > 0 => Ok(()),
            _ => Err("expected a whole number of array tasks, at least 1".into()),
        },
        SLURM_POLL => match value.parse::<f64>() {
            Ok(s) if (0.1..=60.0).contains(&s) => Ok(()),
            _ => Err("expected seconds between 0.1 and 60".into()),
        },
        RUN_EXECUTOR if !EXECUTORS.contains(&value) => Err(format!("expected one of {}", EXECUTORS.join(", "))),
        CACHE_REMOTE if !(value.starts_with("s3://") || value.starts_with("file://")) => Err("expected s3://BUCKET/PREFIX or file:///FOLDER".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_value_is_refused_naming_the_file_and_setting() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("radpipe.toml"), "[cache]\nremot = \"s3://b/p\"\n").unwrap();
        let err = Settings::resolve(dir.path(), &CommandLine::default()).unwrap_err();
        assert!(err.contains("radpipe.toml: unknown setting `cache.remot`"), "{err}");
        std::fs::write(dir.path().join("radpipe.toml"), "[run]\njobs = 0\n").unwrap();
        let err = Settings::resolve(dir.path(), &CommandLine::default()).unwrap_err();
        assert!(err.contains("run.jobs: `0` from") && err.contains("radpipe.toml"), "{err}");
        std::fs::write(dir.path().join("radpipe.toml"), "[run\n").unwrap();
        let err = Settings::resolve(dir.path(), &CommandLine::default()).unwrap_err();
        assert!(err.contains("not a settings file"), "{err}");
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("radpipe.toml"), "[cache]\nremote = \"file:///a\"\n[run]\nexecutor = \"subprocess\"\n").unwrap();
        let s = Settings::resolve(dir.path(), &CommandLine(vec![(CACHE_REMOTE, "file:///b".into())])).unwrap();
        assert_eq!(s.remote(), Some("file:///b"));
        assert_eq!(s.executor(), "subprocess");
        assert_eq!(s.entries()[2].source, Source::File(dir.path().join("radpipe.toml")));
    }
}
