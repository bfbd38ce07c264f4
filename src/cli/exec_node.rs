//! `radpipe exec-node FILE`: execute one prepared unit of work from its
//! serialised description alone. The pipeline is planned again from the file
//! and overrides the unit names (so the node's stage and parameters come from
//! the same source as the scheduler's), the inputs are resolved from the store
//! by digest, and the outputs and action records are committed to it (and
//! published to the remote cache the unit names). A Slurm job passes
//! `--outcomes FILE`, which the submitting run reads when the job ends. The
//! store lock belongs to the scheduler that wrote the unit.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Ctx, EXIT_FAILED};
use radpipe_engine::exec::{execute_unit, Unit};
use radpipe_engine::remote::Remote;
use radpipe_engine::store::Store;

#[derive(Debug, Parser)]
pub struct Args {
    /// The unit's description (JSON).
    unit: PathBuf,
    /// Write the outcomes to this file (atomically, after the nodes are
    /// committed) instead of stdout: how a cluster job answers.
    #[arg(long, value_name = "FILE")]
    outcomes: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    let unit: Unit = match std::fs::read(&args.unit).map_err(|e| e.to_string()).and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: {}: not a unit of work: {e}", args.unit.display());
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let ctx = Ctx { workspace: unit.workspace.clone(), settings: ctx.settings.clone() };
    let plan = match ctx.plan(&unit.pipeline, &unit.overrides) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let Some(store) = Store::existing(&unit.workspace) else {
        eprintln!("error: no store in {}", unit.workspace.display());
        return ExitCode::from(EXIT_FAILED);
    };
    // The unit names the remote its scheduler publishes to.
    let remote = match unit.remote.as_deref().map(Remote::open).transpose() {
        Ok(r) => r.map(std::sync::Arc::new),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let store = store.with_remote(remote);
    let outcomes = execute_unit(&plan, &store, &unit);
    let Some(file) = args.outcomes else {
        super::print_json(&outcomes);
        return ExitCode::SUCCESS;
    };
    let text = serde_json::to_vec(&outcomes).unwrap_or_default();
    match store.write_atomic(&file, &text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the outcomes to {}: {e}", file.display());
            ExitCode::from(EXIT_FAILED)
        }
    }
}
