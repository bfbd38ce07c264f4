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
//!
//! In memory it keeps the file's bytes and, per key, where its line is; a
//! line's outputs are parsed when its key is looked up (each one once per run),
//! so the index costs little more than the file's size.

use litemap::LiteMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::ops::Range;

use crate::store::{ActionRecord, FileRecord, Store};

/// The file name inside the store.
pub const FILE: &str = "index.jsonl";

/// A node's outputs by name, as its action recorded them: sorted, on a Vec
/// (a `BTreeMap` allocates room for 11 entries, and most nodes have one).
pub type Outputs = LiteMap<String, FileRecord>;

/// The outputs an action record holds, in the form the engine keeps them.
pub fn outputs_of(action: &ActionRecord) -> Outputs {
    action.outputs.iter().map(|(name, f)| (name.clone(), f.clone())).collect()
}

/// A line as written.
#[derive(Serialize)]
struct LineOut<'a> {
    key: &'a str,
    log: &'a str,
    outputs: &'a BTreeMap<String, FileRecord>,
}

/// A line as read (the log's digest only matters to the file's reader).
#[derive(Deserialize)]
struct Line {
    key: String,
    outputs: Outputs,
}

/// Only the key of a line, to place it without parsing the rest.
#[derive(Deserialize)]
struct KeyOnly<'a> {
    key: &'a str,
}

/// Where a key's line is: in the file as loaded, or among the lines added since.
#[derive(Clone)]
enum At {
    Loaded(Range<usize>),
    Added(Range<usize>),
}

#[derive(Default)]
pub struct ActionIndex {
    loaded: Vec<u8>,
    /// Lines of actions noted since loading, to append.
    added: Vec<u8>,
    entries: HashMap<blake3::Hash, At>,
    /// Lines in the file (entries plus the ones later lines replaced or that
    /// did not parse).
    lines: usize,
    /// The file ends inside a line (a crash while appending).
    torn: bool,
}

impl ActionIndex {
    /// The store's index; empty when it has none.
    pub fn load(store: &Store) -> Self {
        let Ok(loaded) = fs::read(store.root.join(FILE)) else { return ActionIndex::default() };
        let mut index = ActionIndex { torn: !loaded.is_empty() && !loaded.ends_with(b"\n"), ..ActionIndex::default() };
        let mut start = 0;
        for line in loaded.split(|&b| b == b'\n') {
            let range = start..start + line.len();
            start = range.end + 1;
            if line.is_empty() {
                continue;
            }
            index.lines += 1;
            let key = serde_json::from_slice::<KeyOnly>(line).ok().and_then(|k| blake3::Hash::from_hex(k.key).ok());
            if let Some(key) = key {
                index.entries.insert(key, At::Loaded(range));
            }
        }
        index.loaded = loaded;
        index
    }

    fn line(&self, at: &At) -> &[u8] {
        match at {
            At::Loaded(r) => &self.loaded[r.clone()],
            At::Added(r) => &self.added[r.clone()],
        }
    }

    /// The outputs the index lists for `key` (read-only: the file as loaded
    /// and what was added since).
    pub fn get(&self, key: &str) -> Option<Outputs> {
        let at = self.entries.get(&blake3::Hash::from_hex(key).ok()?)?;
        serde_json::from_slice::<Line>(self.line(at)).ok().filter(|l| l.key == key).map(|l| l.outputs)
    }

    /// The outputs of the action recorded for `key`, when its record and all
    /// its objects are in the store.
    pub fn present(&mut self, store: &Store, key: &str) -> Option<Outputs> {
        if let Some(outputs) = self.get(key) {
            return Some(outputs);
        }
        let action = store.read_action(key)?;
        let found = store.has_object(&action.log) && action.outputs.values().all(|f| store.has_object(&f.digest));
        if !found {
            return None;
        }
        self.add(&action);
        Some(action.outputs.into_iter().collect())
    }

    /// Note an action whose record and objects were just written.
    pub fn add(&mut self, action: &ActionRecord) {
        let Ok(hash) = blake3::Hash::from_hex(&action.key) else { return };
        let line = LineOut { key: &action.key, log: &action.log, outputs: &action.outputs };
        let text = serde_json::to_vec(&line).expect("an index line is JSON");
        if self.entries.get(&hash).is_some_and(|at| self.line(at) == text.as_slice()) {
            return;
        }
        let start = self.added.len();
        self.added.extend_from_slice(&text);
        self.entries.insert(hash, At::Added(start..self.added.len()));
        self.added.push(b'\n');
    }

    /// Append what was added; rewrite the file instead when replaced or bad
    /// lines would make up more than half of it.
    pub fn save(self, store: &Store) -> io::Result<()> {
        if self.added.is_empty() {
            return Ok(());
        }
        let new_lines = self.added.iter().filter(|&&b| b == b'\n').count();
        let path = store.root.join(FILE);
        if self.lines + new_lines > 2 * self.entries.len() {
            store.write_atomic_with(&path, |f| {
                for at in self.entries.values() {
                    f.write_all(self.line(at))?;
                    f.write_all(b"\n")?;
                }
                Ok(())
            })
        } else {
            let mut file = fs::OpenOptions::new().create(true).append(true).open(&path)?;
            if self.torn {
                // End the torn line first, so that it stays one bad line.
                file.write_all(b"\n")?;
            }
            file.write_all(&self.added)
        }
    }
}
