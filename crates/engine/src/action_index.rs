//! The action index, `.radpipe/index.jsonl`: one line per action key whose
//! record was read from `actions/` and whose objects (log and outputs) were
//! found in `objects/`, with its outputs. A no-op run or a `status` of a large
//! plan reads this one file instead of one record and two `stat`s per node
//! (300,006 nodes at 10^5 patients).
//!
//! It is a cache of those lookups, never the truth: a key it lacks is looked
//! up in `actions/` and added; a line that does not parse (a crash while
//! appending) is skipped; a later line for a key replaces an earlier one (a
//! `--force` rerun rewrote the record). What it trusts is that an object found
//! once stays in the store until `gc`, `verify` or a quarantine removes it;
//! those delete the index ([`Store::drop_index`]), and the next run rebuilds it.
//! Only the process that holds the store lock appends to it.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};

use crate::store::{ActionRecord, FileRecord, Store};

/// The file name inside the store.
pub const FILE: &str = "index.jsonl";

/// A node's outputs by name, as its action recorded them.
pub type Outputs = BTreeMap<String, FileRecord>;

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    log: String,
    outputs: Outputs,
}

#[derive(Default)]
pub struct ActionIndex {
    entries: HashMap<String, (String, Outputs)>,
    /// Lines in the file (entries plus the ones later lines replaced or that
    /// did not parse).
    lines: usize,
    /// The file ends inside a line (a crash while appending).
    torn: bool,
    /// Keys added since loading, to append.
    added: Vec<String>,
}

impl ActionIndex {
    /// The store's index; empty when it has none.
    pub fn load(store: &Store) -> Self {
        let mut index = ActionIndex::default();
        let Ok(bytes) = fs::read(store.root.join(FILE)) else { return index };
        index.torn = !bytes.is_empty() && !bytes.ends_with(b"\n");
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(Line { key, log, outputs }) = serde_json::from_slice(line) {
                index.entries.insert(key, (log, outputs));
            }
            index.lines += 1;
        }
        index
    }

    /// The outputs of the action recorded for `key`, when its record and all
    /// its objects are in the store.
    pub fn present(&mut self, store: &Store, key: &str) -> Option<&Outputs> {
        if !self.entries.contains_key(key) {
            let action = store.read_action(key)?;
            let found = store.has_object(&action.log) && action.outputs.values().all(|f| store.has_object(&f.digest));
            if !found {
                return None;
            }
            self.add(&action);
        }
        self.entries.get(key).map(|(_, outputs)| outputs)
    }

    /// Note an action whose record and objects were just written.
    pub fn add(&mut self, action: &ActionRecord) {
        let entry = (action.log.clone(), action.outputs.clone());
        if self.entries.get(&action.key) != Some(&entry) {
            self.entries.insert(action.key.clone(), entry);
            self.added.push(action.key.clone());
        }
    }

    /// Append what was added; rewrite the file instead when replaced lines
    /// would make up more than half of it.
    pub fn save(&mut self, store: &Store) -> io::Result<()> {
        if self.added.is_empty() {
            return Ok(());
        }
        let line = |key: &String| {
            let (log, outputs) = &self.entries[key];
            let mut text = serde_json::to_vec(&Line { key: key.clone(), log: log.clone(), outputs: outputs.clone() }).map_err(io::Error::other)?;
            text.push(b'\n');
            Ok::<_, io::Error>(text)
        };
        let path = store.root.join(FILE);
        if self.lines + self.added.len() > 2 * self.entries.len() {
            let mut text = Vec::new();
            for key in self.entries.keys() {
                text.extend(line(key)?);
            }
            store.write_atomic(&path, &text)?;
            self.lines = self.entries.len();
        } else {
            // A torn last line is ended first, so that it stays one bad line.
            let mut text = if self.torn { b"\n".to_vec() } else { Vec::new() };
            for key in &self.added {
                text.extend(line(key)?);
            }
            fs::OpenOptions::new().create(true).append(true).open(&path)?.write_all(&text)?;
            self.lines += self.added.len();
        }
        self.torn = false;
        self.added.clear();
        Ok(())
    }
}
