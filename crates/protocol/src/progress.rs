//! The worker's answer: one JSON object per line on its stdout, each about one
//! node: `{"node": ID, "message": TEXT}` (a line for the node's log, as many as
//! the worker likes), then exactly one of `{"node": ID, "done": true}` or
//! `{"node": ID, "error": TEXT}`. A problem that concerns the whole batch (no
//! CUDA, an unreadable model) is one error line per node. A node is finished
//! only when its `done` line came: a crash of the worker fails the nodes that
//! have none, and nothing else.

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// One line of the worker's stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressLine {
    /// The node id, as in the job.
    pub node: String,
    #[serde(flatten)]
    pub event: Event,
}

/// What a line says about its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A line for the node's log (progress, timings, the device used).
    Message(String),
    /// The node's outputs are complete.
    Done(Done),
    /// The node failed; the text says why.
    Error(String),
}

/// The value of `"done"`, which is always `true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done;

impl Serialize for Done {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

impl<'de> Deserialize<'de> for Done {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if bool::deserialize(d)? {
            Ok(Done)
        } else {
            Err(de::Error::custom("`done` is only ever `true`"))
        }
    }
}

impl ProgressLine {
    /// A line for `node`'s log.
    pub fn message(node: &str, text: impl Into<String>) -> Self {
        ProgressLine { node: node.into(), event: Event::Message(text.into()) }
    }

    /// `node` is finished.
    pub fn done(node: &str) -> Self {
        ProgressLine { node: node.into(), event: Event::Done(Done) }
    }

    /// `node` failed.
    pub fn error(node: &str, text: impl Into<String>) -> Self {
        ProgressLine { node: node.into(), event: Event::Error(text.into()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_lines_have_their_documented_shape() {
        let lines = [
            (ProgressLine::message("embed.fit", "t1: epoch 1 (0.4 s)"), r#"{"node":"embed.fit","message":"t1: epoch 1 (0.4 s)"}"#),
            (ProgressLine::done("embed[P1]"), r#"{"node":"embed[P1]","done":true}"#),
            (ProgressLine::error("embed[P2]", "no tensor `t1`"), r#"{"node":"embed[P2]","error":"no tensor `t1`"}"#),
        ];
        for (line, text) in lines {
            assert_eq!(serde_json::to_string(&line).unwrap(), text);
            assert_eq!(serde_json::from_str::<ProgressLine>(text).unwrap(), line);
        }
    }

    #[test]
    fn other_json_is_not_a_progress_line() {
        for text in [r#"{"node":"a","done":false}"#, r#"{"node":"a"}"#, r#"{"message":"x"}"#, r#"[1]"#, "not json"] {
            assert!(serde_json::from_str::<ProgressLine>(text).is_err(), "{text}");
        }
    }
}
