use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use super::Ctx;

#[derive(Debug, Parser)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Override a value of the pipeline file, e.g. `--set params.seed=7`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

/// Schema and semantic checks: syntax, unknown keys and kinds, types, dangling
/// references, cycles, tables against their schema, missing input files.
pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    let plan = match ctx.plan(&args.pipeline, &args.sets) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let missing = radpipe_engine::plan::missing_sources(&plan);
    if !missing.is_empty() {
        return super::report_invalid(missing);
    }
    eprintln!("{}: ok ({} stages, {} nodes)", args.pipeline.display(), plan.stages.len(), plan.nodes.len());
    ExitCode::SUCCESS
}
