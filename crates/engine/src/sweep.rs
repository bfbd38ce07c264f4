//! Sweeps: one pipeline run per combination of varied values (the cartesian
//! product of `--vary PATH=V1,V2,...` or `PATH=A..B`), each an ordinary run
//! with the combination as extra `--set` overrides. Nothing here runs a node:
//! members are planned and executed by the scheduler like any run, so every
//! node whose key does not depend on a varied value is a cache hit after the
//! first member. A sweep's outputs live in `results/sweeps/<sweep>/<member>/`;
//! its name comes from the pipeline file and the varied paths (and a digest
//! of the fixed `--set` values, if any), a member's from its values, so the
//! same sweep lands in the same folders again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::plan::RESULTS;

/// One varied path and its values, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vary {
    pub path: String,
    pub values: Vec<String>,
}

/// Why a `--vary` argument or a set of them is not a sweep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaryError {
    #[error("`--vary {0}`: expected PATH=V1,V2,... or PATH=A..B (integers, A <= B)")]
    Syntax(String),
    #[error("`--vary {arg}`: the value `{value}` appears twice")]
    Repeated { arg: String, value: String },
    #[error("`{0}` is varied twice; give all its values in one `--vary`")]
    TwicePath(String),
    #[error("`{0}` is both varied and `--set`; drop one")]
    AlsoSet(String),
    #[error("a sweep needs at least one `--vary`")]
    Nothing,
}

impl FromStr for Vary {
    type Err = VaryError;

    fn from_str(arg: &str) -> Result<Self, Self::Err> {
        let syntax = || VaryError::Syntax(arg.to_string());
        let (path, spec) = arg.split_once('=').ok_or_else(syntax)?;
        let path = path.trim();
        if path.is_empty() || spec.trim().is_empty() {
            return Err(syntax());
        }
        // A range is two integers around `..`; anything else (`../a.csv`) is a list.
        let range = spec.split_once("..").and_then(|(a, b)| Some((a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?)));
        let values: Vec<String> = match range {
            Some((a, b)) if a > b => return Err(syntax()),
            Some((a, b)) => (a..=b).map(|v| v.to_string()).collect(),
            None => spec.split(',').map(|v| v.trim().to_string()).collect(),
        };
        if values.iter().any(String::is_empty) {
            return Err(syntax());
        }
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                return Err(VaryError::Repeated { arg: arg.to_string(), value: v.clone() });
            }
        }
        Ok(Vary { path: path.to_string(), values })
    }
}

/// One combination of the varied values: its name and its overrides (`PATH=VALUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub overrides: Vec<String>,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A sweep: its name, its members in order (the last `--vary` changes fastest).
#[derive(Debug, Clone)]
pub struct Sweep {
    pub name: String,
    pub varied: Vec<Vary>,
    pub members: Vec<Member>,
}

impl Sweep {
    /// The sweep of `pipeline` over `varied`; `sets` are the fixed overrides,
    /// which may not name a varied path.
    pub fn new(pipeline: &Path, varied: Vec<Vary>, sets: &[String]) -> Result<Sweep, VaryError> {
        if varied.is_empty() {
            return Err(VaryError::Nothing);
        }
        for (i, v) in varied.iter().enumerate() {
            if varied[..i].iter().any(|w| w.path == v.path) {
                return Err(VaryError::TwicePath(v.path.clone()));
            }
            if sets.iter().any(|s| s.split_once('=').is_some_and(|(k, _)| k.trim() == v.path)) {
                return Err(VaryError::AlsoSet(v.path.clone()));
            }
        }
        let labels: Vec<&str> = varied
            .iter()
            .map(|v| {
                let last = v.path.rsplit('.').next().unwrap_or(&v.path);
                let unique = varied.iter().filter(|w| w.path.rsplit('.').next() == Some(last)).count() == 1;
                if unique {
                    last
                } else {
                    v.path.as_str()
                }
            })
            .collect();
        let mut members = vec![Member { name: String::new(), overrides: Vec::new() }];
        for (v, label) in varied.iter().zip(&labels) {
            members = members
                .into_iter()
                .flat_map(|m| {
                    v.values.iter().map(move |value| {
                        let part = format!("{label}={}", file_safe(value));
                        let name = if m.name.is_empty() { part } else { format!("{}_{part}", m.name) };
                        let mut overrides = m.overrides.clone();
                        overrides.push(format!("{}={value}", v.path));
                        Member { name, overrides }
                    })
                })
                .collect();
        }
        // Values that differ only in characters a folder name cannot hold.
        for i in 0..members.len() {
            if members[..i].iter().any(|m| m.name == members[i].name) {
                members[i].name = format!("{}_{}", members[i].name, i + 1);
            }
        }
        let stem = pipeline.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "pipeline".into());
        let mut name = format!("{stem}--{}", varied.iter().map(|v| v.path.as_str()).collect::<Vec<_>>().join("+"));
        // Sweeps of the same paths under other fixed values get folders of their own.
        if !sets.is_empty() {
            let mut fixed: Vec<&str> = sets.iter().map(|s| s.trim()).collect();
            fixed.sort_unstable();
            name = format!("{name}--set-{}", &blake3::hash(fixed.join("\n").as_bytes()).to_hex()[..8]);
        }
        let name = file_safe(&name);
        Ok(Sweep { name, varied, members })
    }

    /// `results/sweeps/<sweep>` in the workspace.
    pub fn dir(&self, workspace: &Path) -> PathBuf {
        workspace.join(RESULTS).join("sweeps").join(&self.name)
    }

    /// Where a member's outputs appear.
    pub fn member_dir(&self, workspace: &Path, member: &Member) -> PathBuf {
        self.dir(workspace).join(&member.name)
    }

    /// Folders in the sweep's folder that are no member of this sweep (left
    /// by an earlier run over more values); their results stay in the store.
    pub fn stale_member_dirs(&self, workspace: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.dir(workspace)) else { return Vec::new() };
        let mut stale: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir() && !self.members.iter().any(|m| e.file_name().to_str() == Some(m.name.as_str())))
            .map(|e| e.path())
            .collect();
        stale.sort();
        stale
    }
}

/// `s` with every character a portable file name cannot hold replaced by `_`.
fn file_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-=+".contains(c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vary(s: &str) -> Vary {
        s.parse().unwrap()
    }

    #[test]
    fn lists_and_ranges_parse() {
        assert_eq!(vary("stages.embed.train.seed=1..3").values, ["1", "2", "3"]);
        assert_eq!(vary("params.lr = 0.01, 0.02").values, ["0.01", "0.02"]);
        assert_eq!(vary("params.seed=-1..1").values, ["-1", "0", "1"]);
        assert_eq!(vary("cohorts.external.table=../a.csv,../b.csv").values, ["../a.csv", "../b.csv"]);
        for bad in ["seed", "=1,2", "seed=", "seed=1,,2", "seed=3..1"] {
            assert!(matches!(bad.parse::<Vary>(), Err(VaryError::Syntax(_))), "{bad}");
        }
        assert!(matches!("seed=1,1".parse::<Vary>(), Err(VaryError::Repeated { .. })));
    }

    #[test]
    fn members_are_the_cartesian_product_with_stable_names() {
        let s = Sweep::new(Path::new("pipelines/demo.yaml"), vec![vary("params.seed=1..2"), vary("stages.embed.train.lr=0.1,0.2")], &[]).unwrap();
        assert_eq!(s.name, "demo--params.seed+stages.embed.train.lr");
        let names: Vec<&str> = s.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["seed=1_lr=0.1", "seed=1_lr=0.2", "seed=2_lr=0.1", "seed=2_lr=0.2"]);
        assert_eq!(s.members[1].overrides, ["params.seed=1", "stages.embed.train.lr=0.2"]);
        assert_eq!(s.member_dir(Path::new("ws"), &s.members[0]), Path::new("ws/results/sweeps/demo--params.seed+stages.embed.train.lr/seed=1_lr=0.1"));
        let fixed = Sweep::new(Path::new("pipelines/demo.yaml"), vec![vary("params.seed=1..2")], &["params.lr=0.1".into()]).unwrap();
        let other = Sweep::new(Path::new("pipelines/demo.yaml"), vec![vary("params.seed=1..2")], &["params.lr=0.2".into()]).unwrap();
        assert!(fixed.name.starts_with("demo--params.seed--set-") && fixed.name != other.name, "{} {}", fixed.name, other.name);
    }

    #[test]
    fn folders_of_values_no_longer_swept_are_stale() {
        let ws = tempfile::tempdir().unwrap();
        let long = Sweep::new(Path::new("p.yaml"), vec![vary("params.seed=1..3")], &[]).unwrap();
        for m in &long.members {
            std::fs::create_dir_all(long.member_dir(ws.path(), m)).unwrap();
        }
        std::fs::write(long.dir(ws.path()).join("summary.md"), "").unwrap();
        let short = Sweep::new(Path::new("p.yaml"), vec![vary("params.seed=1..2")], &[]).unwrap();
        assert_eq!(short.stale_member_dirs(ws.path()), [long.dir(ws.path()).join("seed=3")]);
    }

    #[test]
    fn same_last_segments_use_full_paths_and_odd_values_stay_distinct() {
        let s = Sweep::new(Path::new("p.yaml"), vec![vary("stages.embed.train.seed=1"), vary("stages.fuse.train.seed=2")], &[]).unwrap();
        assert_eq!(s.members[0].name, "stages.embed.train.seed=1_stages.fuse.train.seed=2");
        let s = Sweep::new(Path::new("p.yaml"), vec![vary("params.x=a/b,a:b")], &[]).unwrap();
        assert_eq!(s.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["x=a_b", "x=a_b_2"]);
    }

    #[test]
    fn a_path_is_varied_once_and_never_also_set() {
        let p = Path::new("p.yaml");
        assert_eq!(Sweep::new(p, vec![], &[]).unwrap_err(), VaryError::Nothing);
        assert_eq!(Sweep::new(p, vec![vary("a=1"), vary("a=2")], &[]).unwrap_err(), VaryError::TwicePath("a".into()));
        assert_eq!(Sweep::new(p, vec![vary("a=1")], &["a=3".into()]).unwrap_err(), VaryError::AlsoSet("a".into()));
    }
}
