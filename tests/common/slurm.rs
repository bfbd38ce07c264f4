//! A real one-host Slurm cluster for the Slurm executor's tests
//! (`tests/services/slurm.sh`: munged, slurmctld and slurmd on loopback,
//! Debian 12's packages, a fake `gpu` gres). One cluster per test binary,
//! started by the first test that asks and stopped by a watchdog when the
//! test process exits. Commands reach it through wrappers on PATH that log
//! every call, so that tests can count and inspect `sbatch` and `squeue`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Cluster {
    pub dir: PathBuf,
    pub conf: PathBuf,
    /// Wrappers of sbatch, squeue, scancel, scontrol and sacct that log each
    /// call to `$RADPIPE_SLURM_CALLS` and run the real command.
    pub wrappers: PathBuf,
}

const COMMANDS: &[&str] = &["sbatch", "squeue", "scancel", "scontrol", "sacct"];

fn start() -> Result<Cluster, String> {
    if Command::new("sh")
        .args(["-c", "command -v sbatch && (command -v slurmctld || test -x /usr/sbin/slurmctld)"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        return Err("Slurm is not installed (apt-get install slurmctld slurmd slurm-client munge; .ci/run does)".into());
    }
    let dir = std::env::temp_dir().join(format!("radpipe-slurm-{}", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/services/slurm.sh");
    let out = Command::new("sh").arg(&script).arg("start").arg(&dir).output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("the cluster did not start: {}", String::from_utf8_lossy(&out.stderr)));
    }
    // Stop the daemons when this test process is gone.
    let watchdog = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; sh '{}' stop '{}'; rm -rf '{}'",
        std::process::id(),
        script.display(),
        dir.display(),
        dir.display()
    );
    Command::new("sh").args(["-c", &watchdog]).spawn().map_err(|e| format!("cannot start the watchdog: {e}"))?;
    let wrappers = dir.join("bin");
    std::fs::create_dir_all(&wrappers).unwrap();
    for c in COMMANDS {
        let real = Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let text = format!("#!/bin/sh\n[ -n \"$RADPIPE_SLURM_CALLS\" ] && echo \"{c} $*\" >> \"$RADPIPE_SLURM_CALLS\"\nexec {real} \"$@\"\n");
        let path = wrappers.join(c);
        std::fs::write(&path, text).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    }
    Ok(Cluster { conf: dir.join("slurm.conf"), dir, wrappers })
}

/// The cluster; `None` (with the reason on stderr) when Slurm is missing,
/// unless `RADPIPE_REQUIRE_SERVICES` is set (as `make test` does), where
/// that fails the test.
pub fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(start) {
        Ok(c) => Some(c),
        Err(why) => {
            assert!(std::env::var_os("RADPIPE_REQUIRE_SERVICES").is_none(), "{why}");
            eprintln!("skipped: {why}");
            None
        }
    }
}

impl Cluster {
    /// The environment of a radpipe (or Slurm command) that uses the cluster
    /// and logs its Slurm calls to `calls`.
    pub fn env(&self, calls: &Path) -> Vec<(String, String)> {
        let path = format!("{}:{}", self.wrappers.display(), std::env::var("PATH").unwrap_or_default());
        vec![
            ("SLURM_CONF".into(), self.conf.display().to_string()),
            ("PATH".into(), path),
            ("RADPIPE_SLURM_CALLS".into(), calls.display().to_string()),
            ("RADPIPE_EXECUTOR".into(), "slurm".into()),
            ("RADPIPE_SLURM_POLL".into(), "0.5".into()),
        ]
    }

    /// Run a Slurm command against the cluster; its stdout.
    pub fn command(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program).args(args).env("SLURM_CONF", &self.conf).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until `check` holds, polling; panics with `what` after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
        let start = Instant::now();
        while !check() {
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The calls logged to a calls file, one per line (`sbatch --parsable ...`).
pub fn calls(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file).unwrap_or_default().lines().map(str::to_string).collect()
}
