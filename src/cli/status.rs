use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use super::Ctx;
use radpipe_engine::store::Store;

#[derive(Debug, Parser)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Override a value of the pipeline file (as for `run`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print one JSON document (`stale`: [{node, stage, reasons}], `fresh`: count).
    #[arg(long)]
    json: bool,
}

/// Each node a run would execute, with its reasons: changed parameter (old and
/// new value), changed input file, new or removed patient, new stage version,
/// upstream nodes that will run.
pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    let plan = match ctx.plan(&args.pipeline, &args.sets) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let store = Store::existing(&ctx.workspace);
    let status = radpipe_engine::status::status(&plan, store.as_ref());
    if args.json {
        super::print_json(&status);
        return ExitCode::SUCCESS;
    }
    if status.stale.is_empty() {
        println!("up to date: all {} nodes are cached", status.fresh);
        return ExitCode::SUCCESS;
    }
    for s in &status.stale {
        println!("{}", s.node);
        for r in &s.reasons {
            println!("    {r}");
        }
    }
    println!("{} stale, {} cached", status.stale.len(), status.fresh);
    ExitCode::SUCCESS
}
