//! `radpipe exec-node FILE`: execute one prepared unit of work from its
//! serialised description alone. The pipeline is planned again from the file
//! and overrides the unit names (so the node's stage and parameters come from
//! the same source as the scheduler's), the inputs are resolved from the store
//! by digest, and the outputs and action records are committed to it (and
//! published to the remote cache the unit names). The
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
    super::print_json(&execute_unit(&plan, &store, &unit));
    ExitCode::SUCCESS
}
