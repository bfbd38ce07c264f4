//! What the engine tells the outside world while it works. The engine never
//! prints; the CLI renders these (progress bars, messages) on stderr.

/// How one node ended in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Executed,
    Cached,
    Failed(String),
    /// Not run because an upstream node failed (or the run stopped).
    Skipped(String),
}

#[derive(Debug, Clone)]
pub enum Event {
    /// Another process holds the store; this run waits for it.
    WaitingForLock {
        holder: String,
    },
    /// A run starts: node counts per stage, in pipeline order.
    Planned {
        stages: Vec<(String, usize)>,
    },
    NodeFinished {
        stage: String,
        node: String,
        outcome: Outcome,
    },
    Note(String),
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: Event);
}

/// A reporter that drops everything (tests, `--json` without progress).
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _: Event) {}
}
