use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

use super::progress::Progress;
use super::{Ctx, EXIT_FAILED};
use radpipe_engine::events::{Event, Reporter};
use radpipe_engine::exec::{self, Executor, LocalExecutor, RunOptions, RunSummary, SubprocessExecutor};
use radpipe_engine::store::{Store, StoreLock};
use radpipe_engine::Plan;

#[derive(Debug, Parser)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Override a value of the pipeline file, e.g. `--set cohorts.external.table=other.csv`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    #[command(flatten)]
    exec: ExecArgs,
    /// Print one JSON document on stdout: executed, cached, failed, skipped, results.
    #[arg(long)]
    json: bool,
    /// Run only these stages (and the stages they need).
    #[arg(long, value_name = "STAGE", num_args = 1..)]
    only: Vec<String>,
    /// Re-execute these stages even when cached.
    #[arg(long, value_name = "STAGE", num_args = 1..)]
    force: Vec<String>,
}

/// How nodes execute; shared by `run` and `sweep`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Nodes to run at once (default: the number of CPUs).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Let other nodes (other patients, other sweep members) finish when one fails.
    #[arg(long)]
    pub keep_going: bool,
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
    let (store, _lock) = match open_locked(ctx, &reporter) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let options = args.exec.options(args.force, args.only, args.sets);
    let executor = match args.exec.executor() {
        Ok(e) => e,
        Err(code) => return code,
    };
    let summary = match execute(&plan, &store, &options, executor.as_ref(), &reporter) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if args.json {
        super::print_json(&outcome_json(&summary));
    }
    if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

impl ExecArgs {
    /// The scheduler's options for a recorded run with these overrides.
    pub(super) fn options(&self, force: Vec<String>, only: Vec<String>, overrides: Vec<String>) -> RunOptions {
        let jobs = self.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        RunOptions { jobs, keep_going: self.keep_going, force, only, overrides, record: true }
    }

    /// The executor `--executor` names.
    pub(super) fn executor(&self) -> Result<Box<dyn Executor>, ExitCode> {
        match self.executor {
            ExecutorKind::Local => Ok(Box::new(LocalExecutor)),
            ExecutorKind::Subprocess => match std::env::current_exe() {
                Ok(program) => Ok(Box::new(SubprocessExecutor { program })),
                Err(e) => {
                    eprintln!("error: cannot find the radpipe executable for `exec-node`: {e}");
                    Err(ExitCode::from(EXIT_FAILED))
                }
            },
        }
    }
}

/// Run a plan; its last line on stderr counts what executed and where the results are.
pub(super) fn execute(plan: &Plan, store: &Store, options: &RunOptions, executor: &dyn Executor, reporter: &Progress) -> Result<RunSummary, ExitCode> {
    let summary = exec::run(plan, store, options, executor, reporter).map_err(|e| {
        eprintln!("error: the store could not be written: {e}");
        ExitCode::from(EXIT_FAILED)
    })?;
    eprintln!(
        "run {}: {} executed, {} cached, {} failed, {} skipped; results in {}",
        summary.run_id,
        summary.executed.len(),
        summary.cached.len(),
        summary.failed.len(),
        summary.skipped.len(),
        summary.results.display()
    );
    Ok(summary)
}

/// What `--json` prints for a run.
pub(super) fn outcome_json(summary: &RunSummary) -> serde_json::Value {
    json!({
        "run": summary.run_id,
        "executed": summary.executed,
        "cached": summary.cached,
        "failed": summary.failed.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "errors": summary.failed.iter().map(|(n, why)| json!({"node": n, "error": why})).collect::<Vec<_>>(),
        "skipped": summary.skipped,
        "results": summary.results,
    })
}

/// The workspace's store, locked for this process (waiting for another writer).
pub(super) fn open_locked(ctx: &Ctx, reporter: &Progress) -> Result<(Store, StoreLock), ExitCode> {
    let store = Store::open(&ctx.workspace).map_err(|e| {
        eprintln!("error: cannot open the store in {}: {e}", ctx.workspace.display());
        ExitCode::from(EXIT_FAILED)
    })?;
    let lock = store.lock(|holder| reporter.event(Event::WaitingForLock { holder: holder.to_string() })).map_err(|e| {
        eprintln!("error: cannot lock the store: {e}");
        ExitCode::from(EXIT_FAILED)
    })?;
    Ok((store, lock))
}
