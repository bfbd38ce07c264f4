use clap::Parser;
use std::process::ExitCode;

use super::{Ctx, EXIT_FAILED};
use radpipe_engine::store::{hash_file, Store};

#[derive(Debug, Parser)]
pub struct Args {}

/// Re-hashes every object. A corrupt object is reported and moved to
/// `.radpipe/quarantine/`, so it is never used again: the nodes that made it
/// run again on the next `run`. Action records whose objects are missing are
/// reported too. Exit 1 when anything was wrong.
pub fn run(ctx: &Ctx, _args: Args) -> ExitCode {
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
