use clap::Parser;
use std::process::ExitCode;

use super::{Ctx, EXIT_FAILED, EXIT_INVALID};
use radpipe_engine::remote::sync::named_objects;
use radpipe_engine::remote::{Fetched, RemoteError};
use radpipe_engine::store::{hash_file, ActionRecord, Store};

#[derive(Debug, Parser)]
pub struct Args {
    /// Verify the remote cache (setting `cache.remote`) instead of the local store.
    #[arg(long)]
    remote: bool,
}

/// Re-hashes every object. A corrupt object is reported and moved to
/// `.radpipe/quarantine/` (on the remote: `quarantine/`), so it is never used
/// again: the nodes that made it run again on the next `run` (and, on the
/// remote, upload it again). Action records whose objects are missing are
/// reported too, and the action index is dropped so that their nodes run
/// again. Exit 1 when anything was wrong.
pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    if args.remote {
        return verify_remote(ctx);
    }
    let Some(store) = Store::existing(&ctx.workspace) else {
        println!("no store in {}: nothing to verify", ctx.workspace.display());
        return ExitCode::SUCCESS;
    };
    let result = (|| -> std::io::Result<(usize, usize, usize)> {
        let _lock = store.lock(|holder| eprintln!("waiting for the store lock, held by {holder}"))?;
        let digests = store.object_digests()?;
        let mut corrupt = 0;
        for d in &digests {
            let actual = hash_file(&store.object_path(d))?;
            if &actual != d {
                let moved = store.quarantine(d)?;
                println!("corrupt object {d} (content hashes to {actual}); moved to {}", moved.display());
                corrupt += 1;
            }
        }
        let mut missing = 0;
        for key in store.action_keys()? {
            let Some(a) = store.read_action(&key) else {
                println!("unreadable action record {key}");
                missing += 1;
                continue;
            };
            for (name, f) in &a.outputs {
                if !store.has_object(&f.digest) {
                    println!("{}: output `{name}` ({}) is missing; the node will run again", a.node, f.digest);
                    missing += 1;
                }
            }
        }
        if missing > 0 {
            // The index would still list these records as complete.
            store.drop_index()?;
        }
        Ok((digests.len(), corrupt, missing))
    })();
    match result {
        Ok((n, 0, 0)) => {
            println!("ok: {n} objects verified");
            ExitCode::SUCCESS
        }
        Ok((n, corrupt, missing)) => {
            println!("{n} objects checked: {corrupt} corrupt, {missing} missing");
            ExitCode::from(EXIT_FAILED)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// `verify --remote`: every remote object downloaded and re-hashed, every
/// remote record's objects present.
fn verify_remote(ctx: &Ctx) -> ExitCode {
    let remote = match super::open_remote(&ctx.settings) {
        Ok(Some(r)) => r,
        Ok(None) => {
            eprintln!("error: no remote cache is set (--cache, RADPIPE_CACHE_REMOTE or cache.remote in radpipe.toml)");
            return ExitCode::from(EXIT_INVALID);
        }
        Err(code) => return code,
    };
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot create a scratch folder: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let result = (|| -> Result<(usize, usize, usize), RemoteError> {
        let digests = remote.object_digests()?;
        let mut good = std::collections::HashSet::new();
        let mut corrupt = 0;
        for d in &digests {
            let file = scratch.path().join("object");
            match remote.fetch_object(d, &file)? {
                Fetched::Arrived { digest } if &digest == d => {
                    good.insert(d.clone());
                }
                Fetched::Arrived { digest } => {
                    let moved = remote.quarantine(d)?;
                    println!("corrupt remote object {d} (content hashes to {digest}); moved to {moved}");
                    corrupt += 1;
                }
                Fetched::Missing => {}
            }
        }
        let mut missing = 0;
        for key in remote.record_keys()? {
            let record = remote.get_record(&key)?.and_then(|b| serde_json::from_slice::<ActionRecord>(&b).ok());
            let Some(a) = record else {
                println!("unreadable remote action record {key}");
                missing += 1;
                continue;
            };
            for (name, digest) in named_objects(&a) {
                if !good.contains(digest) {
                    println!("{}: `{name}` ({digest}) is missing on the remote; the next run that needs it runs the node again", a.node);
                    missing += 1;
                }
            }
        }
        Ok((digests.len(), corrupt, missing))
    })();
    match result {
        Ok((n, 0, 0)) => {
            println!("ok: {n} remote objects verified ({})", remote.url());
            ExitCode::SUCCESS
        }
        Ok((n, corrupt, missing)) => {
            println!("{n} remote objects checked: {corrupt} corrupt, {missing} missing ({})", remote.url());
            ExitCode::from(EXIT_FAILED)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
