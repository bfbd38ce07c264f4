//! The progress-line writer: one JSON `ProgressLine` per line on the
//! worker's stdout (a `message`, `done` or `error` for a node), flushed one
//! by one so that the engine sees each as it happens. Also the wording of
//! the log messages the fits share (an epoch's line, a class balance), whose
//! timings stay in the log and out of the outputs.

use std::io::Write;
use std::time::Duration;

use radpipe_protocol::ProgressLine;

use crate::train;

/// Progress lines (JSON, one per line) on `out`, flushed one by one so that
/// the engine sees each as it happens.
pub struct Progress<W: Write> {
    out: W,
}

impl<W: Write> Progress<W> {
    pub fn new(out: W) -> Self {
        Progress { out }
    }

    /// Write one line. A closed stdout means the engine is gone: nothing is
    /// left to tell, so write errors are dropped.
    fn line(&mut self, line: &ProgressLine) {
        if let Ok(text) = serde_json::to_string(line) {
            let _ = writeln!(self.out, "{text}");
            let _ = self.out.flush();
        }
    }

    pub fn message(&mut self, node: &str, text: impl Into<String>) {
        self.line(&ProgressLine::message(node, text));
    }

    pub fn done(&mut self, node: &str) {
        self.line(&ProgressLine::done(node));
    }

    pub fn error(&mut self, node: &str, text: impl Into<String>) {
        self.line(&ProgressLine::error(node, text));
    }
}

/// An epoch's line in the node's log, with the time it took (which stays out of the outputs).
pub(super) fn epoch_line(e: &train::Epoch, took: Duration) -> String {
    format!("epoch {} train loss {:.4} val loss {:.4} val AUC {:.3} ({:.1} s)", e.epoch, e.train_loss, e.val_loss, e.val_auc, took.as_secs_f64())
}

pub(super) fn class_balance(y: &[i64]) -> String {
    let pos = y.iter().filter(|&&v| v == 1).count();
    format!("{} rows, {pos} positive", y.len())
}
