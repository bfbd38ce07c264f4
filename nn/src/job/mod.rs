//! Running a job (ARCHITECTURE.md §7): the protocol's types, the tasks and
//! what each writes are documented in the `radpipe-protocol` crate
//! (`radpipe_protocol::job`, `radpipe_protocol::progress`). Every node of the
//! job gets exactly one `done` or `error` line; a problem that concerns the
//! whole batch (no CUDA, an unreadable model) is one error line per node.
//! Timings go to the nodes' logs (progress messages), never into their
//! outputs. A deterministic job first pins its settings (`crate::determinism`),
//! and every fit records them. This module dispatches a job to its task: `embed` (fit and
//! apply of the per-sequence backbones), `fuse` (fit and apply of the fusion
//! model); `inputs` reads the samples' tensors and labels, `files` the files
//! a fit writes and an apply reads back, `progress` the lines on stdout.

mod embed;
mod files;
mod fuse;
mod inputs;
mod progress;

use std::io::Write;

use radpipe_protocol::{Job, JobNode, Work};

use crate::determinism::{self, Pinned};
use crate::{device, Error};

pub use progress::Progress;

/// Run a job; every node gets a `done` or an `error` line. A deterministic
/// job pins its settings first, before any tensor operation.
pub fn run<W: Write>(job: &Job, progress: &mut Progress<W>) {
    let outcome = determinism::settle(job.threads, job.deterministic).and_then(|pinned| {
        let dev = device::parse(&job.device)?;
        let settings = settings_line(dev, &pinned);
        for n in &job.nodes {
            progress.message(&n.id, settings.as_str());
        }
        let env = files::environment(dev, &pinned);
        match &job.work {
            Work::EmbedFit(p) => p
                .train
                .check()
                .map_err(|e| Error::new(format!("train: {e}")))
                .and_then(|()| each_node(job, progress, |n, pr| embed::embed_fit(p, dev, &env, n, pr))),
            Work::FuseFit(p) => p
                .train
                .check()
                .map_err(|e| Error::new(format!("train: {e}")))
                .and_then(|()| each_node(job, progress, |n, pr| fuse::fuse_fit(p, dev, &env, n, pr))),
            Work::EmbedApply(p) => embed::embed_apply(p, dev, job, progress),
            Work::FuseApply(p) => fuse::fuse_apply(p, dev, job, progress),
        }
    });
    if let Err(e) = outcome {
        for n in &job.nodes {
            progress.error(&n.id, e.to_string());
        }
    }
}

/// The first log line of a job: the device, libtorch and the settings that change results.
fn settings_line(dev: tch::Device, pinned: &Pinned) -> String {
    format!(
        "device {dev:?}, libtorch {}, {}, {} threads, CPU kernels {}",
        env!("RADPIPE_LIBTORCH_VERSION"),
        if pinned.deterministic { "deterministic" } else { "not deterministic" },
        pinned.threads,
        pinned.cpu_capability
    )
}

fn each_node<W: Write>(job: &Job, progress: &mut Progress<W>, mut f: impl FnMut(&JobNode, &mut Progress<W>) -> Result<(), Error>) -> Result<(), Error> {
    for n in &job.nodes {
        match f(n, progress) {
            Ok(()) => progress.done(&n.id),
            Err(e) => progress.error(&n.id, e.to_string()),
        }
    }
    Ok(())
}
