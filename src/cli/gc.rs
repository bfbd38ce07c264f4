use clap::Parser;
use std::collections::HashSet;
use std::process::ExitCode;

use super::{Ctx, EXIT_FAILED};
use radpipe_engine::store::Store;

#[derive(Debug, Parser)]
pub struct Args {
    /// Keep everything the latest N runs used.
    #[arg(long, default_value_t = 5)]
    keep_runs: usize,
}

/// Removes run records beyond the latest N, the action records and objects no
/// kept run uses, and leftovers of interrupted runs in `.radpipe/tmp/`; the
/// action index goes too (the next run rebuilds it from what is left). Only
/// the local store: nothing on the remote cache is ever deleted (other
/// workspaces' records reference it).
pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    let Some(store) = Store::existing(&ctx.workspace) else {
        eprintln!("nothing to collect: no store in {}", ctx.workspace.display());
        return ExitCode::SUCCESS;
    };
    let result = (|| -> std::io::Result<(usize, usize, usize, u64)> {
        let _lock = store.lock(|holder| eprintln!("waiting for the store lock, held by {holder}"))?;
        let ids = store.run_ids();
        let (keep, drop) = ids.split_at(args.keep_runs.min(ids.len()));
        let mut keys: HashSet<String> = HashSet::new();
        for id in keep {
            if let Some(run) = store.read_run(id) {
                keys.extend(run.nodes.into_values());
            }
        }
        let mut live: HashSet<String> = HashSet::new();
        let mut removed_actions = 0;
        for key in store.action_keys()? {
            if keys.contains(&key) {
                if let Some(a) = store.read_action(&key) {
                    live.insert(a.log);
                    live.extend(a.outputs.into_values().map(|f| f.digest));
                }
            } else {
                store.remove_action(&key)?;
                removed_actions += 1;
            }
        }
        let (mut removed_objects, mut bytes) = (0, 0u64);
        for digest in store.object_digests()? {
            if !live.contains(&digest) {
                let path = store.object_path(&digest);
                bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(path)?;
                removed_objects += 1;
            }
        }
        for id in drop {
            std::fs::remove_file(store.root.join("runs").join(format!("{id}.json")))?;
        }
        store.drop_index()?;
        for entry in std::fs::read_dir(store.root.join("tmp"))? {
            let p = entry?.path();
            let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        }
        Ok((drop.len(), removed_actions, removed_objects, bytes))
    })();
    match result {
        Ok((runs, actions, objects, bytes)) => {
            println!("removed {runs} run records, {actions} action records, {objects} objects ({:.1} MB)", bytes as f64 / 1e6);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
