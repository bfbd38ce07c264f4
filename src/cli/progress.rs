//! Renders engine events on stderr: one progress bar per stage (hidden when
//! stderr is not a terminal), failures as they happen; skipped nodes are
//! counted per stage and reason and summarised once, at the end of the run.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;

use radpipe_engine::events::{Event, Outcome, Reporter};

pub struct Progress {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Skipped nodes by reason, in the order the reasons first happened.
    skipped: Mutex<Vec<Skipped>>,
}

/// Nodes skipped for one reason: (stage, how many), per stage.
type Skipped = (String, Vec<(String, usize)>);

impl Progress {
    pub fn new() -> Self {
        Progress { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()), bars: Mutex::new(HashMap::new()), skipped: Mutex::new(Vec::new()) }
    }

    fn skip(&self, stage: String, why: &str) {
        // Reasons that name an upstream node are counted together.
        let why = if why.starts_with("needs ") { "an upstream node did not finish" } else { why };
        let mut skipped = self.skipped.lock().expect("skipped");
        let i = skipped.iter().position(|(w, _)| w == why).unwrap_or_else(|| {
            skipped.push((why.to_string(), Vec::new()));
            skipped.len() - 1
        });
        match skipped[i].1.iter_mut().find(|(s, _)| *s == stage) {
            Some((_, n)) => *n += 1,
            None => skipped[i].1.push((stage, 1)),
        }
    }

    /// One line per reason: how many nodes of which stages were skipped
    /// since the last call (a sweep summarises each member's run).
    pub fn skipped_summary(&self) -> Vec<String> {
        let skipped = std::mem::take(&mut *self.skipped.lock().expect("skipped"));
        skipped
            .iter()
            .map(|(why, stages)| {
                let total: usize = stages.iter().map(|(_, n)| n).sum();
                let per_stage: Vec<String> = stages.iter().map(|(s, n)| format!("{s} {n}")).collect();
                format!("skipped {total} node{} ({}): {why}", if total == 1 { "" } else { "s" }, per_stage.join(", "))
            })
            .collect()
    }

    fn say(&self, line: &str) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }
}

impl Reporter for Progress {
    fn event(&self, event: Event) {
        match event {
            Event::WaitingForLock { holder } => self.say(&format!("waiting for the store lock, held by {holder}")),
            Event::Planned { stages } => {
                let style = ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg}").expect("valid template").progress_chars("=> ");
                let mut bars = self.bars.lock().expect("bars");
                for (name, count) in stages {
                    let bar = self.multi.add(ProgressBar::new(count as u64).with_style(style.clone()).with_prefix(name.clone()));
                    bars.insert(name, bar);
                }
            }
            Event::NodeFinished { stage, node, outcome } => {
                if let Some(bar) = self.bars.lock().expect("bars").get(&stage) {
                    bar.inc(1);
                    if bar.position() == bar.length().unwrap_or(0) {
                        bar.finish();
                    }
                }
                match outcome {
                    Outcome::Failed(why) => self.say(&format!("FAILED {node}: {why}")),
                    Outcome::Skipped(why) if !why.starts_with("not selected") => self.skip(stage, &why),
                    _ => {}
                }
            }
            Event::Note(line) => self.say(&line),
        }
    }
}
