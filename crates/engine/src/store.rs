//! The store, `.radpipe/` in the workspace: `objects/` content-addressed blobs
//! (immutable, named by their blake3 digest), `actions/` one record per executed
//! key, `runs/` one record per run, `memo.json` the source-hash memo,
//! `index.jsonl` the action index (a cache of which records have all their
//! objects, see [`crate::action_index`]), `tmp/` for writes in progress,
//! `quarantine/` for corrupt objects `verify` found.
//!
//! Every write goes to a temporary file in `tmp/` and is renamed into place; an
//! action record is written only after all its objects, so a crash never leaves
//! a half-visible result. `lock` guards the store against two writers.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::key::KeyMaterial;
use crate::action_index;
use crate::remote::Remote;

/// A stored file: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub digest: String,
    pub size: u64,
}

/// An upstream node that fed an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    pub node: String,
    pub key: String,
}

/// What ran where: radpipe's version and the platform (the deep-learning
/// worker adds libtorch and the device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub radpipe: String,
    pub os: String,
    pub arch: String,
}

impl Environment {
    pub fn current() -> Self {
        Environment { radpipe: env!("CARGO_PKG_VERSION").into(), os: std::env::consts::OS.into(), arch: std::env::consts::ARCH.into() }
    }
}

/// One executed key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionRecord {
    pub key: String,
    pub node: String,
    pub stage: String,
    pub material: KeyMaterial,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
    pub inputs: Vec<InputRecord>,
    /// Output files: workspace paths for `outs`, else paths inside the node's output folder.
    pub outputs: BTreeMap<String, FileRecord>,
    /// The workspace folder of the outputs (`results/<stage>/...`), or `None`
    /// when they are workspace paths (`outs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_dir: Option<String>,
    pub output_digest: String,
    /// Per-patient inputs left out under `on_missing: drop`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    pub log: String,
    pub duration_s: f64,
    pub finished_unix: u64,
    pub environment: Environment,
}

/// One run of a pipeline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub pipeline: String,
    pub overrides: Vec<String>,
    /// The workspace folder its outputs appear in: `results`, or a sweep
    /// member's `results/sweeps/<sweep>/<member>`.
    #[serde(default = "plain_results")]
    pub results: String,
    pub started_unix: u64,
    pub finished_unix: u64,
    /// Node id -> action key, for every node that has a result in this run.
    pub nodes: BTreeMap<String, String>,
    pub executed: Vec<String>,
    pub cached: Vec<String>,
    /// The cached nodes that came from the remote cache.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetched: Vec<String>,
    pub failed: Vec<String>,
    pub skipped: Vec<String>,
}

fn plain_results() -> String {
    crate::plan::RESULTS.into()
}

/// The source-hash memo: (path, size, mtime, inode) -> digest. It saves rehashing
/// unchanged files; it never replaces the hash (a changed stat means rehash).
/// Hashed, not sorted: a no-op run of 10^5 patients looks up 600,000 paths
/// that share long prefixes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Memo {
    entries: HashMap<String, MemoEntry>,
    #[serde(skip)]
    dirty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MemoEntry {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    digest: String,
}

fn stat_entry(meta: &fs::Metadata) -> (u64, i128, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.len(), meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128, meta.ino())
}

impl Memo {
    /// The digest of a file, from the memo when its stat is unchanged.
    pub fn file_digest(&mut self, path: &Path) -> io::Result<String> {
        self.file_digest_as(path, &fs::metadata(path)?)
    }

    /// [`Memo::file_digest`] of a file whose `meta` the caller has already read.
    pub fn file_digest_as(&mut self, path: &Path, meta: &fs::Metadata) -> io::Result<String> {
        let (size, mtime_ns, inode) = stat_entry(meta);
        if let Some(e) = self.entries.get(path.to_string_lossy().as_ref()) {
            if e.size == size && e.mtime_ns == mtime_ns && e.inode == inode {
                return Ok(e.digest.clone());
            }
        }
        let digest = hash_file(path)?;
        self.record(path, &digest);
        Ok(digest)
    }

    /// The digest the memo holds for the file `path`, when the file is as
    /// the memo saw it (no hashing).
    pub fn remembered(&self, path: &Path) -> Option<&str> {
        let meta = fs::metadata(path).ok().filter(fs::Metadata::is_file)?;
        let (size, mtime_ns, inode) = stat_entry(&meta);
        let e = self.entries.get(path.to_string_lossy().as_ref())?;
        (e.size == size && e.mtime_ns == mtime_ns && e.inode == inode).then_some(e.digest.as_str())
    }

    /// Whether the memo knows `path` to hold `digest` now (no hashing).
    pub fn matches(&self, path: &Path, digest: &str) -> bool {
        self.remembered(path) == Some(digest)
    }

    /// Remember that `path`, as it is now, holds `digest`.
    pub fn record(&mut self, path: &Path, digest: &str) {
        if let Ok(meta) = fs::metadata(path) {
            let (size, mtime_ns, inode) = stat_entry(&meta);
            self.entries.insert(path.to_string_lossy().into_owned(), MemoEntry { size, mtime_ns, inode, digest: digest.into() });
            self.dirty = true;
        }
    }
}

/// Hash a file's content.
pub fn hash_file(path: &Path) -> io::Result<String> {
    let mut h = blake3::Hasher::new();
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_hex().to_string())
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub struct Store {
    pub root: PathBuf,
    /// The shared remote cache, when one is configured (see [`crate::remote`]).
    pub remote: Option<Arc<Remote>>,
}

/// Held while a run writes the store; released on drop.
pub struct StoreLock {
    _file: File,
}

impl Store {
    /// Open (and create) the store of a workspace.
    pub fn open(workspace: &Path) -> io::Result<Store> {
        let root = workspace.join(".radpipe");
        for dir in ["objects", "actions", "runs", "tmp"] {
            fs::create_dir_all(root.join(dir))?;
        }
        Ok(Store { root, remote: None })
    }

    /// Open an existing store without creating it (read-only commands).
    pub fn existing(workspace: &Path) -> Option<Store> {
        let root = workspace.join(".radpipe");
        root.join("objects").is_dir().then_some(Store { root, remote: None })
    }

    /// The same store, with a remote cache behind it.
    pub fn with_remote(self, remote: Option<Arc<Remote>>) -> Store {
        Store { remote, ..self }
    }

    /// Take the writer lock. When another process holds it, `waiting` is called
    /// with what the holder wrote about itself, then this blocks until it is free.
    pub fn lock(&self, waiting: impl FnOnce(&str)) -> io::Result<StoreLock> {
        let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(self.root.join("lock"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(self.root.join("lock.owner")).unwrap_or_else(|_| "another radpipe process".into());
                waiting(holder.trim());
                file.lock()?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let me = format!("pid {} ({})", std::process::id(), std::env::args().collect::<Vec<_>>().join(" "));
        self.write_atomic(&self.root.join("lock.owner"), me.as_bytes())?;
        Ok(StoreLock { _file: file })
    }

    pub fn object_path(&self, digest: &str) -> PathBuf {
        let (a, b) = digest.split_at(2.min(digest.len()));
        self.root.join("objects").join(a).join(b)
    }

    /// A fresh path in `tmp/` (a file or folder name nobody else uses).
    pub fn tmp_path(&self, hint: &str) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        // Nanoseconds as well as the process id: cluster jobs on other hosts
        // share `tmp/` and may have the same process id.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        self.root.join("tmp").join(format!("{}-{nanos}-{n}-{hint}", std::process::id()))
    }

    /// Write bytes to `dest` through a temporary file and a rename.
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> io::Result<()> {
        self.write_atomic_with(dest, |f| f.write_all(bytes))
    }

    /// [`Store::write_atomic`] of what `write` writes, buffered: a record of
    /// 300,006 nodes is never all in memory as text.
    pub fn write_atomic_with(&self, dest: &Path, write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) -> io::Result<()> {
        let tmp = self.tmp_path("w");
        {
            let mut f = BufWriter::new(File::create(&tmp)?);
            write(&mut f)?;
            f.into_inner().map_err(io::IntoInnerError::into_error)?.sync_all()?;
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&tmp, dest)
    }

    /// Store bytes as an object.
    pub fn put_bytes(&self, bytes: &[u8]) -> io::Result<FileRecord> {
        let digest = super::key::digest(bytes);
        let dest = self.object_path(&digest);
        if !dest.exists() {
            self.write_atomic(&dest, bytes)?;
        }
        Ok(FileRecord { digest, size: bytes.len() as u64 })
    }

    /// Store a file as an object; `take` moves it (it must be in the store's
    /// file system, e.g. under `tmp/`), otherwise it is copied.
    pub fn put_file(&self, path: &Path, take: bool) -> io::Result<FileRecord> {
        let digest = hash_file(path)?;
        let size = fs::metadata(path)?.len();
        let dest = self.object_path(&digest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        if take {
            fs::rename(path, &dest)?;
        } else if !dest.exists() {
            let tmp = self.tmp_path("obj");
            fs::copy(path, &tmp)?;
            fs::rename(&tmp, &dest)?;
        }
        Ok(FileRecord { digest, size })
    }

    /// Move a file whose content is known to hash to `digest` (it must be in
    /// the store's file system, e.g. under `tmp/`) into `objects/`.
    pub fn adopt_object(&self, path: &Path, digest: &str) -> io::Result<()> {
        let dest = self.object_path(digest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(path, dest)
    }

    /// Copy an object to `dest` (atomically), checking its content on the way.
    /// `Ok(false)`: the object is missing or corrupt (and was quarantined).
    pub fn restore(&self, digest: &str, dest: &Path) -> io::Result<bool> {
        let src = self.object_path(digest);
        let Ok(bytes) = fs::read(&src) else { return Ok(false) };
        if super::key::digest(&bytes) != digest {
            self.quarantine(digest)?;
            return Ok(false);
        }
        self.write_atomic(dest, &bytes)?;
        Ok(true)
    }

    /// Move a corrupt object out of `objects/` so that nothing uses it again.
    pub fn quarantine(&self, digest: &str) -> io::Result<PathBuf> {
        let dir = self.root.join("quarantine");
        fs::create_dir_all(&dir)?;
        let dest = dir.join(digest);
        fs::rename(self.object_path(digest), &dest)?;
        self.drop_index()?;
        Ok(dest)
    }

    /// Delete the action index, after objects or records left the store
    /// (quarantine, `gc`, `verify`): the next run rebuilds it from `actions/`.
    pub fn drop_index(&self) -> io::Result<()> {
        match fs::remove_file(self.root.join(action_index::FILE)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn has_object(&self, digest: &str) -> bool {
        self.object_path(digest).is_file()
    }

    fn action_path(&self, key: &str) -> PathBuf {
        self.root.join("actions").join(format!("{key}.json"))
    }

    /// The bytes of the output `name` of an action, from the objects.
    pub fn read_output(&self, action: &ActionRecord, name: &str) -> Option<Vec<u8>> {
        fs::read(self.object_path(&action.outputs.get(name)?.digest)).ok()
    }

    pub fn read_action(&self, key: &str) -> Option<ActionRecord> {
        let text = fs::read(self.action_path(key)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn write_action(&self, record: &ActionRecord) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        self.write_atomic(&self.action_path(&record.key), &text)
    }

    /// Action records, by key.
    pub fn action_keys(&self) -> io::Result<Vec<String>> {
        let mut keys = Vec::new();
        for entry in fs::read_dir(self.root.join("actions"))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(k) = name.strip_suffix(".json") {
                keys.push(k.to_string());
            }
        }
        Ok(keys)
    }

    pub fn remove_action(&self, key: &str) -> io::Result<()> {
        fs::remove_file(self.action_path(key))?;
        self.drop_index()
    }

    pub fn new_run_id(&self) -> String {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        format!("{t:015}-{}", std::process::id())
    }

    /// Compact JSON: at 10^5 patients a record names 300,006 nodes, and a
    /// no-op run reads the latest one back.
    pub fn write_run(&self, run: &RunRecord) -> io::Result<()> {
        self.write_atomic_with(&self.root.join("runs").join(format!("{}.json", run.id)), |f| serde_json::to_writer(f, run).map_err(io::Error::other))
    }

    /// Run ids, newest first.
    pub fn run_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(self.root.join("runs"))
            .map(|d| d.filter_map(Result::ok).filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".json").map(str::to_string)).collect())
            .unwrap_or_default();
        ids.sort();
        ids.reverse();
        ids
    }

    pub fn read_run(&self, id: &str) -> Option<RunRecord> {
        let text = fs::read(self.root.join("runs").join(format!("{id}.json"))).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// The latest run whose outputs appear in `results` (workspace-relative):
    /// the plain `results`, or a sweep member's folder.
    pub fn latest_run(&self, results: &str) -> Option<RunRecord> {
        self.run_ids().iter().filter_map(|id| self.read_run(id)).find(|r| r.results == results)
    }

    /// The latest action recorded for a node id, searching runs newest first.
    pub fn previous_action(&self, runs: &[RunRecord], node: &str) -> Option<ActionRecord> {
        runs.iter().find_map(|r| r.nodes.get(node)).and_then(|k| self.read_action(k))
    }

    pub fn load_memo(&self) -> Memo {
        fs::read(self.root.join("memo.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    pub fn save_memo(&self, memo: &Memo) -> io::Result<()> {
        if !memo.dirty {
            return Ok(());
        }
        self.write_atomic_with(&self.root.join("memo.json"), |f| serde_json::to_writer(f, memo).map_err(io::Error::other))
    }

    /// Every object digest in the store.
    pub fn object_digests(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for dir in fs::read_dir(self.root.join("objects"))? {
            let dir = dir?;
            if !dir.file_type()?.is_dir() {
                continue;
            }
            let prefix = dir.file_name().to_string_lossy().into_owned();
            for f in fs::read_dir(dir.path())? {
                out.push(format!("{prefix}{}", f?.file_name().to_string_lossy()));
            }
        }
        out.sort();
        Ok(out)
    }
}
