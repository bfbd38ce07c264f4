//! Renders engine events on stderr: one progress bar per stage (hidden when
//! stderr is not a terminal), failures as they happen.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;

use radpipe_engine::events::{Event, Outcome, Reporter};

pub struct Progress {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress {
    pub fn new() -> Self {
        Progress { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()), bars: Mutex::new(HashMap::new()) }
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
                    Outcome::Skipped(why) if !why.starts_with("not selected") => self.say(&format!("skipped {node}: {why}")),
                    _ => {}
                }
            }
            Event::Note(line) => self.say(&line),
        }
    }
}
