//! Spawning the `radpipe-nn` worker (ARCHITECTURE.md §7). The engine never
//! links libtorch: deep-learning nodes are run by one worker process per batch
//! (all ready nodes of a stage), with the job as JSON on stdin and progress as
//! JSON lines on stdout (the protocol's types are the `radpipe-protocol` crate's). Each
//! line goes to its node's log; a node is done only when the worker says so,
//! so a crash fails the unfinished nodes and nothing else. Jobs that may use a
//! GPU run one at a time (the device semaphore).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use radpipe_protocol::{Event, Job, ProgressLine};
use serde_json::Value;

/// Held while a job that may use the GPU runs.
static DEVICE: Mutex<()> = Mutex::new(());

/// The worker executable: `$RADPIPE_NN`, else `radpipe-nn` beside this executable.
pub fn locate() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RADPIPE_NN") {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(format!("RADPIPE_NN names `{}`, which is not a file", p.display())) };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
    let dir = exe.parent().ok_or("this executable has no folder")?;
    // Test binaries live in target/<profile>/deps; the worker beside them.
    for candidate in [dir.join("radpipe-nn"), dir.join("../radpipe-nn")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "the deep-learning worker `radpipe-nn` is not beside `{}`; build it with `make build` (it needs libtorch, see the README) or name it with RADPIPE_NN",
        exe.display()
    ))
}

/// Run one job; each node's progress is appended to its log (`logs` in the
/// order of `job.nodes`). One result per node, in that order.
pub fn run(job: &Job, logs: &mut [&mut dyn Write]) -> Vec<Result<(), String>> {
    let all = |e: String| job.nodes.iter().map(|_| Err(e.clone())).collect();
    let exe = match locate() {
        Ok(p) => p,
        Err(e) => return all(e),
    };
    let text = match serde_json::to_string(job) {
        Ok(t) => t,
        Err(e) => return all(format!("cannot write the job for the worker: {e}")),
    };
    let may_use_gpu = job.device != "cpu";
    let _device = may_use_gpu.then(|| DEVICE.lock().unwrap_or_else(|e| e.into_inner()));
    let mut child = match Command::new(&exe).arg("job").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => return all(format!("cannot start `{}`: {e}", exe.display())),
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let index: HashMap<&str, usize> = job.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
    let mut outcome: Vec<Option<Result<(), String>>> = vec![None; job.nodes.len()];
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let Ok(line) = line else { break };
        // Anything but a progress line (a library printing to stdout) goes to every log.
        let Ok(progress) = serde_json::from_str::<ProgressLine>(&line) else {
            for log in logs.iter_mut() {
                let _ = writeln!(log, "{line}");
            }
            continue;
        };
        let Some(&i) = index.get(progress.node.as_str()) else { continue };
        match progress.event {
            Event::Message(m) => {
                let _ = writeln!(logs[i], "{m}");
            }
            Event::Done(_) => outcome[i] = Some(Ok(())),
            Event::Error(e) => {
                let _ = writeln!(logs[i], "error: {e}");
                outcome[i] = Some(Err(e));
            }
        }
    }
    let status = child.wait();
    let _ = writer.join();
    let stderr = errors.join().unwrap_or_default();
    if !stderr.trim().is_empty() {
        for log in logs.iter_mut() {
            let _ = writeln!(log, "--- radpipe-nn stderr ---\n{}", stderr.trim_end());
        }
    }
    let last: String = stderr.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" | ");
    let how = match status {
        Ok(s) => s.to_string(),
        Err(e) => e.to_string(),
    };
    outcome
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(format!(
                    "the worker `{}` stopped ({how}) before finishing this node{}",
                    exe.display(),
                    if last.is_empty() { String::new() } else { format!(": {last}") }
                ))
            })
        })
        .collect()
}

/// `radpipe-nn doctor`'s report (libtorch version, CUDA), as JSON.
pub fn doctor() -> Result<Value, String> {
    let exe = locate()?;
    let out = Command::new(&exe).arg("doctor").output().map_err(|e| format!("cannot start `{}`: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!("`{} doctor` failed ({}): {}", exe.display(), out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let mut v: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("`{} doctor` printed no JSON: {e}", exe.display()))?;
    v["worker"] = Value::String(exe.display().to_string());
    Ok(v)
}
