//! Moving results between the local store and the remote, and the
//! consistency rule: one record per key, the first writer's.
//!
//! - [`pull`] (a local miss): the remote's record of the key and every object
//!   it names come into the local store, each object checked against its
//!   digest; a record whose objects are missing or corrupt is not used (a
//!   corrupt object is quarantined on the remote), so the node runs again and
//!   [`publish`] repairs the remote.
//! - [`publish`] (after a node ran, before its local record is written):
//!   objects first, then the record, created once. A writer that finds a
//!   record already there adopts it: the winner's outputs come into the local
//!   store and replace its own, so every workspace sees one result of a key
//!   even when training is not deterministic.
//!
//! A local record therefore implies the remote has the record too, so a rerun
//! whose nodes are all in the local store asks the remote nothing.

use super::{Fetched, Remote, RemoteError};
use crate::store::{ActionRecord, Store};

/// What the remote has for a key.
pub enum Pulled {
    /// Its record, with every object now in the local store.
    Hit(Box<ActionRecord>),
    Miss,
    /// A record that cannot be used (why); the node runs again.
    Broken(String),
}

/// How a published node ended.
pub enum Published {
    /// This writer's record is the remote's.
    Ours(ActionRecord),
    /// Another writer was first; its record and outputs are adopted.
    Adopted(ActionRecord),
}

/// Every object a record names, with its name (`log` for the log).
pub fn named_objects(action: &ActionRecord) -> impl Iterator<Item = (&str, &str)> {
    std::iter::once(("log", action.log.as_str())).chain(action.outputs.iter().map(|(n, f)| (n.as_str(), f.digest.as_str())))
}

fn digests(action: &ActionRecord) -> impl Iterator<Item = &str> {
    named_objects(action).map(|(_, d)| d)
}

fn parse(remote: &Remote, key: &str, bytes: &[u8]) -> Result<ActionRecord, String> {
    let action = match serde_json::from_slice::<ActionRecord>(bytes) {
        Ok(a) if a.key == key => a,
        Ok(a) => return Err(format!("the record {key} of {} describes the key {}", remote.url(), a.key)),
        Err(e) => return Err(format!("the record {key} of {} is not an action record: {e}", remote.url())),
    };
    sound(&action).map_err(|why| format!("the record {key} of {} {why}", remote.url()))?;
    Ok(action)
}

/// A record from elsewhere is data, not trust: its digests must be digests
/// and its output names relative paths that stay inside their folder, or
/// restoring it would read or write files outside the store and workspace.
fn sound(action: &ActionRecord) -> Result<(), String> {
    let is_digest = |d: &str| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if let Some(bad) = digests(action).find(|d| !is_digest(d)) {
        return Err(format!("names `{bad}`, which is not a blake3 digest"));
    }
    let inside = |p: &str| {
        let path = std::path::Path::new(p);
        !p.is_empty() && path.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
    };
    match action.outputs.keys().chain(action.results_dir.iter()).find(|p| !inside(p)) {
        Some(bad) => Err(format!("names the output path `{bad}`, which leaves its folder")),
        None => Ok(()),
    }
}

/// Bring every object of `action` into the local store. `Err(why)`: an
/// object is missing or corrupt on the remote.
fn pull_objects(store: &Store, remote: &Remote, action: &ActionRecord) -> Result<Result<(), String>, RemoteError> {
    for digest in digests(action) {
        if store.has_object(digest) {
            continue;
        }
        let tmp = store.tmp_path("fetch");
        let fetched = remote.fetch_object(digest, &tmp);
        let outcome = match fetched {
            Ok(Fetched::Arrived { digest: actual }) if actual == digest => store.adopt_object(&tmp, digest).map_err(|e| RemoteError {
                url: remote.url().to_string(),
                what: format!("cannot store the downloaded object {digest}"),
                cause: e.to_string(),
            }),
            Ok(Fetched::Arrived { digest: actual }) => {
                // Out of the way, as `verify --remote` would: the upload of
                // the node that runs again puts the right bytes there.
                let _ = std::fs::remove_file(&tmp);
                let moved = remote.quarantine(digest)?;
                return Ok(Err(format!("the remote object {digest} of `{}` is corrupt (its content hashes to {actual}; moved to {moved})", action.node)));
            }
            Ok(Fetched::Missing) => return Ok(Err(format!("the remote object {digest} of `{}` is missing", action.node))),
            Err(e) => Err(e),
        };
        if outcome.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        outcome?;
    }
    Ok(Ok(()))
}

/// The remote's result of `key`, its objects brought into the local store
/// (the caller writes the local record).
pub fn pull(store: &Store, remote: &Remote, key: &str) -> Result<Pulled, RemoteError> {
    let Some(bytes) = remote.get_record(key)? else { return Ok(Pulled::Miss) };
    let action = match parse(remote, key, &bytes) {
        Ok(a) => a,
        Err(why) => return Ok(Pulled::Broken(why)),
    };
    Ok(match pull_objects(store, remote, &action)? {
        Ok(()) => Pulled::Hit(Box::new(action)),
        Err(why) => Pulled::Broken(why),
    })
}

/// Objects smaller than this are uploaded without asking first whether the
/// remote has them (one request instead of two; the bytes are the same).
const ASK_FIRST: u64 = 256 << 10;

fn upload(store: &Store, remote: &Remote, action: &ActionRecord, overwrite: bool) -> Result<(), RemoteError> {
    let files = std::iter::once((action.log.as_str(), None)).chain(action.outputs.values().map(|f| (f.digest.as_str(), Some(f.size))));
    for (digest, size) in files {
        let ask = !overwrite && size.is_none_or(|s| s >= ASK_FIRST);
        if overwrite || !(if ask { remote.has_object(digest)? } else { remote.knows(digest) }) {
            remote.put_object(digest, &store.object_path(digest))?;
        }
    }
    Ok(())
}

/// Publish a node that ran (its objects are in the local store): the
/// remote's record of the key afterwards, ours or the adopted winner's.
pub fn publish(store: &Store, remote: &Remote, action: ActionRecord) -> Result<Published, RemoteError> {
    upload(store, remote, &action, false)?;
    let bytes = serde_json::to_vec_pretty(&action).expect("an action record is JSON");
    if remote.create_record(&action.key, bytes.clone())? {
        return Ok(Published::Ours(action));
    }
    if let Some(winner) = remote.get_record(&action.key)? {
        if let Ok(winner) = parse(remote, &action.key, &winner) {
            if pull_objects(store, remote, &winner)?.is_ok() {
                return Ok(Published::Adopted(winner));
            }
        }
    }
    // The record there names objects that are lost or corrupt (or is not a
    // record): ours replaces it, with every object uploaded again, since a
    // corrupt remote object may have the digest of one of ours.
    upload(store, remote, &action, true)?;
    remote.replace_record(&action.key, bytes)?;
    Ok(Published::Ours(action))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(output: &str, digest: &str) -> ActionRecord {
        let d = "a".repeat(64);
        serde_json::from_value(serde_json::json!({
            "key": "k", "node": "n", "stage": "s",
            "material": {"kind": "command", "version": 1, "params": {}, "sources": {}, "inputs": []},
            "inputs": [], "outputs": {output: {"digest": digest, "size": 1}}, "results_dir": "results/s",
            "output_digest": d, "log": d, "duration_s": 0.0, "finished_unix": 0,
            "environment": {"radpipe": "0", "os": "linux", "arch": "x86_64"}
        }))
        .unwrap()
    }

    #[test]
    fn a_record_that_would_reach_outside_the_store_or_workspace_is_refused() {
        let d = "0123456789abcdef".repeat(4);
        assert!(sound(&record("out/a.txt", &d)).is_ok());
        for name in ["/home/u/.bashrc", "../x", "out/../../x", ""] {
            assert!(sound(&record(name, &d)).unwrap_err().contains("leaves its folder"), "{name}");
        }
        for digest in ["ab/../../../x", "é".repeat(32).as_str(), &d.to_uppercase(), &d[..63]] {
            assert!(sound(&record("out/a.txt", digest)).unwrap_err().contains("not a blake3 digest"), "{digest}");
        }
    }
}
