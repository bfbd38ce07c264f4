use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Ctx, EXIT_FAILED};
use radpipe_engine::lineage;
use radpipe_engine::store::Store;

#[derive(Debug, Parser)]
pub struct Args {
    /// The pipeline file (its workspace's store is read).
    pipeline: PathBuf,
    /// A metric id (`<stage>/<path in its metrics.json>`, e.g. `table2/external/DLS/auc`),
    /// a node id (`prep[a]`) or an output path (`out/a.txt`, `results/ingest/summary.json`).
    target: String,
    /// Print one JSON document with every node, parameter and source digest.
    #[arg(long)]
    json: bool,
    /// Read this run (ids are the file names in `.radpipe/runs/`; a sweep's are
    /// in its summary). Default: for a file in a sweep member's folder the
    /// latest run into it, else the latest run into `results/`.
    #[arg(long, value_name = "ID")]
    run: Option<String>,
}

/// Walks the action records from the target back to the source files, printing
/// at each stage its kind, version, parameters, patient set and source digests.
pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    if !args.pipeline.exists() {
        eprintln!("error: {}: no such pipeline file", args.pipeline.display());
        return ExitCode::from(super::EXIT_INVALID);
    }
    let Some(store) = Store::existing(&ctx.workspace) else {
        eprintln!("error: no store in {} yet; run the pipeline first", ctx.workspace.display());
        return ExitCode::from(EXIT_FAILED);
    };
    match lineage::lineage(&store, &args.target, args.run.as_deref()) {
        Ok(l) if args.json => {
            super::print_json(&l);
            ExitCode::SUCCESS
        }
        Ok(l) => {
            print!("{}", lineage::render_text(&l));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
