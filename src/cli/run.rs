use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

use super::progress::Progress;
use super::{Ctx, EXIT_FAILED};
use radpipe_engine::events::{Event, Reporter};
use radpipe_engine::exec::{self, Executor, LocalExecutor, RunOptions, SubprocessExecutor};
use radpipe_engine::store::Store;

#[derive(Debug, Parser)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Override a value of the pipeline file, e.g. `--set cohorts.external.table=other.csv`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Nodes to run at once (default: the number of CPUs).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Let other nodes (other patients) finish when one fails.
    #[arg(long)]
    keep_going: bool,
    /// Print one JSON document on stdout: executed, cached, failed, skipped, results.
    #[arg(long)]
    json: bool,
    /// Run only these stages (and the stages they need).
    #[arg(long, value_name = "STAGE", num_args = 1..)]
    only: Vec<String>,
    /// Re-execute these stages even when cached.
    #[arg(long, value_name = "STAGE", num_args = 1..)]
    force: Vec<String>,
    /// Where units of work run: `local` (threads of this process) or
    /// `subprocess` (each unit by `radpipe exec-node` in a child process that
    /// resolves its inputs from the store by digest, as a cluster job would).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    executor: ExecutorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    Local,
    Subprocess,
}

/// Execute what is stale and reuse what is cached; exit 1 when a node failed.
pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    let plan = match ctx.plan(&args.pipeline, &args.sets) {
        Ok(p) => p,
        Err(code) => return code,
    };
    for name in args.only.iter().chain(&args.force) {
        if !plan.stages.iter().any(|s| &s.name == name) {
            eprintln!("error: `{name}` is not a stage of {}", args.pipeline.display());
            return ExitCode::from(super::EXIT_INVALID);
        }
    }
    let reporter = Progress::new();
    let store = match Store::open(&ctx.workspace) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot open the store in {}: {e}", ctx.workspace.display());
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let _lock = match store.lock(|holder| reporter.event(Event::WaitingForLock { holder: holder.to_string() })) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot lock the store: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let options = RunOptions {
        jobs: args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
        keep_going: args.keep_going,
        force: args.force,
        only: args.only,
        overrides: args.sets,
        record: true,
    };
    let executor: Box<dyn Executor> = match args.executor {
        ExecutorKind::Local => Box::new(LocalExecutor),
        ExecutorKind::Subprocess => match std::env::current_exe() {
            Ok(program) => Box::new(SubprocessExecutor { program }),
            Err(e) => {
                eprintln!("error: cannot find the radpipe executable for `exec-node`: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        },
    };
    let summary = match exec::run(&plan, &store, &options, executor.as_ref(), &reporter) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the store could not be written: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    eprintln!(
        "run {}: {} executed, {} cached, {} failed, {} skipped; results in {}",
        summary.run_id,
        summary.executed.len(),
        summary.cached.len(),
        summary.failed.len(),
        summary.skipped.len(),
        summary.results.display()
    );
    if args.json {
        super::print_json(&json!({
            "run": summary.run_id,
            "executed": summary.executed,
            "cached": summary.cached,
            "failed": summary.failed.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "errors": summary.failed.iter().map(|(n, why)| json!({"node": n, "error": why})).collect::<Vec<_>>(),
            "skipped": summary.skipped,
            "results": summary.results,
        }));
    }
    if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}
